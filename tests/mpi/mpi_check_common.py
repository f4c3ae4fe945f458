"""Helpers shared by the MPI baseline checkers (check_fanin.py, check_pool.py)."""
import json
import re
import subprocess
import sys

# The checker's name in messages; each checker sets it.
PROG = "check"


def fail(message):
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(1)


def run(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(command)} did not finish in 240 s")


def check_fails(args, command):
    """COMMAND must exit with args.exit_code and print args.stderr (a regex) on stderr."""
    done = run(command)
    if done.returncode != args.exit_code:
        fail(f"{' '.join(command)} exited {done.returncode}, expected {args.exit_code}; stderr: "
             f"{done.stderr.strip()[-2000:]}")
    if not re.search(args.stderr, done.stderr):
        fail(f"stderr does not match {args.stderr!r}: {done.stderr.strip()[-2000:]}")
    print(f"ok: {' '.join(command)} failed as expected")


def one_json_line(command, keys):
    """Runs COMMAND, which must exit 0 and print exactly one JSON object with `keys` in order; returns it and its text."""
    done = run(command)
    if done.returncode != 0:
        fail(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        fail(f"expected exactly one line on stdout, got {len(lines)}: {done.stdout[:600]!r}")
    try:
        doc = json.loads(lines[0])
    except json.JSONDecodeError as error:
        fail(f"stdout is not JSON ({error}): {lines[0][:400]!r}")
    if not isinstance(doc, dict) or list(doc) != keys:
        fail(f"expected the keys {keys} in this order, got {list(doc) if isinstance(doc, dict) else doc!r}")
    return doc, lines[0]
