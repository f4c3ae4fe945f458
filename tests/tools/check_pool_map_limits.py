#!/usr/bin/env python3
"""pool_map with sizes or values it cannot take: it must say so quickly and clearly, exit with
the documented code, and leave no /dev/shm/chanpool.* segment and no process behind.

  check_pool_map_limits.py <case> -- <pool_map> [args...]

case: 'too_big' (exit 1, the largest size that fits), 'bad_value' (exit 2, the allowed values in
words, no 300-digit numbers), 'start_fails' (exit 1 after the Pool began to start). This script
makes itself a child subreaper, so that any process pool_map leaves behind becomes its child and
is found (then killed)."""
import ctypes
import glob
import os
import re
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
EXPECT = {
    "too_big": (1, [r"need about", r"the largest that fits is \d+ nodes x \d+ workers"]),
    "bad_value": (2, [r"must be a number of seconds, 0 or more"]),
    "start_fails": (1, [r"did not start"]),
}


def children():
    me, out = os.getpid(), []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.append(int(stat.split("/")[2]))
    return out


def main():
    case, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    code, patterns = EXPECT[case]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    took = time.monotonic() - start
    print(out.strip())
    print(f"exit {p.returncode} after {took:.1f} s")
    failures = []
    if p.returncode != code:
        failures.append(f"exit code {p.returncode}, expected {code}")
    for pat in patterns:
        if not re.search(pat, out):
            failures.append(f"no /{pat}/ in its output")
    if re.search(r"\d{20,}", out):
        failures.append("a number of 20 or more digits in its output")
    if took > 30:
        failures.append(f"took {took:.1f} s: a size that does not fit must fail at once")
    time.sleep(0.2)  # orphans re-parent to us as they are left
    left = children()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if left:
        failures.append(f"processes left behind: {left}")
    # The Pool's job is pool<pid>-<n>: its segments are /dev/shm/chanpool.<uid>.pool<pid>-<n>-n<k>.*
    segs = glob.glob(f"/dev/shm/chanpool.{os.getuid()}.pool{p.pid}-*")
    for s in segs:
        os.unlink(s)
    if segs:
        failures.append(f"segments left behind: {segs}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
