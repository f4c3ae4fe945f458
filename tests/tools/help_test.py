#!/usr/bin/env python3
"""Checks that each tool's --help is the manual page that tools/common/man_help.hpp lays out.

usage: help_test.py TOOL_PATH [TOOL_PATH ...]

For every tool:
  - `TOOL --help` exits 0, prints the page on stdout and nothing on stderr; `-h` prints the same;
  - the headings NAME, SYNOPSIS, DESCRIPTION, OPTIONS, OUTPUT, EXIT STATUS, ENVIRONMENT,
    EXAMPLES each stand alone on a line, once, in that order, and no section is empty;
  - NAME reads "<tool> - <summary>";
  - OPTIONS, CLI11's list, has -h,--help, and every option that takes a value shows its default
    ("=value") or says "default" in its description;
  - every option of that list appears in SYNOPSIS;
  - every --option written after the tool's name in SYNOPSIS or EXAMPLES is in that list, and
    every --option mentioned anywhere else in the page is either in the list or one of the
    launchers' (mpirun, srun) options below, unless it follows another tool's name on its line;
  - an unknown option exits 2 (EXIT STATUS of every tool: bad command line).
"""
import os
import re
import shlex
import subprocess
import sys

HEADINGS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "OUTPUT", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES"]
# Options of other programs that the pages may mention (mpirun, srun, spack, ctest).
FOREIGN_OPTIONS = {"--mca", "--oversubscribe", "--bind-to", "--map-by", "--ntasks-per-node", "--test"}
# Programs whose options a page may quote ("as latency_bench --transport shm"): on a line, what
# follows another program's name is not checked against this tool's options.
OTHER_PROGRAMS = {"latency_bench", "fanin_bench", "chanpool_cleanup", "mpi_latency", "mpi_bandwidth", "mpi_fanin", "mpi_pool_round",
                  "mpi_pool_dynamic", "pool_map", "boost_mq_latency", "channel_bench", "ring_floor", "wake_floor", "fi_pingpong"}
# Set by a launcher; unset so that the MPI tools print (they print on rank 0 only).
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")
OPTION_TOKEN = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")

failures = []


def fail(tool, message):
    failures.append(f"{tool}: {message}")


def run(command):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def split_sections(text):
    """{heading: [lines]} for the headings that stand alone on a line; their order."""
    sections, order, current = {}, [], None
    for line in text.splitlines():
        if line in HEADINGS:
            current = line
            order.append(line)
            sections.setdefault(line, [])
        elif current is not None:
            sections[current].append(line)
    return sections, order


def parse_options(lines):
    """CLI11's option list: [(names, spec, description)], names like ['-h', '--help']."""
    entries = []
    for line in lines:
        m = re.match(r"^  (-\S.*)$", line)
        if m:
            parts = re.split(r"\s{2,}", m.group(1), maxsplit=1)
            spec = parts[0]
            names = [re.sub(r"\{.*\}$", "", n) for n in spec.split()[0].split(",")]
            entries.append([names, spec, parts[1] if len(parts) > 1 else ""])
        elif entries and re.match(r"^\s{4,}\S", line):
            entries[-1][2] += " " + line.strip()  # a wrapped description
    return entries


def takes_value(spec):
    words = spec.split()
    return len(words) > 1 and re.match(r"^[A-Z]+", words[1]) is not None


def strip_quotes_and_comments(text):
    text = re.sub(r'"[^"]*"', '""', text)
    text = re.sub(r"'[^']*'", "''", text)
    return re.sub(r"\s#.*$", "", text)


def command_lines(lines, name, continuation_without_name):
    """The lines that call the tool, each joined with its continuation lines."""
    word = re.compile(r"(^|[\s/])" + re.escape(name) + r"(\s|$)")
    joined, current = [], None
    for line in lines:
        if word.search(line):
            current = line
            joined.append(current)
        elif current is not None and (continuation_without_name or joined[-1].rstrip().endswith("\\")):
            joined[-1] = joined[-1].rstrip().rstrip("\\") + " " + line.strip()
        else:
            current = None
    result = []
    for line in joined:
        m = word.search(line)
        result.append(line[m.end():])
    return result


def check_tool(path):
    name = os.path.basename(path)
    done = run([path, "--help"])
    if done.returncode != 0:
        fail(name, f"--help exited {done.returncode}; stderr: {done.stderr.strip()[-500:]}")
        return
    if done.stderr.strip():
        fail(name, f"--help wrote to stderr: {done.stderr.strip()[-500:]}")
    text = done.stdout
    short = run([path, "-h"])
    if short.returncode != 0 or short.stdout != text:
        fail(name, f"-h differs from --help (exit {short.returncode})")

    sections, order = split_sections(text)
    for heading in HEADINGS:
        if order.count(heading) != 1:
            fail(name, f"heading {heading!r} appears {order.count(heading)} times (want 1)")
    if [h for h in order if h in HEADINGS] != HEADINGS:
        fail(name, f"headings out of order: {order}")
    for heading in HEADINGS:
        if heading in sections and not any(line.strip() for line in sections[heading]):
            fail(name, f"section {heading} is empty")
    if any(f.startswith(name + ":") for f in failures):
        return

    name_lines = [line.strip() for line in sections["NAME"] if line.strip()]
    if len(name_lines) != 1 or not name_lines[0].startswith(name + " - ") or len(name_lines[0]) <= len(name) + 3:
        fail(name, f"NAME must be one line '{name} - <summary>', got {name_lines}")

    options = parse_options(sections["OPTIONS"])
    listed = {n for names, _, _ in options for n in names}
    if "--help" not in listed or "-h" not in listed:
        fail(name, "OPTIONS lacks -h,--help")
    for names, spec, description in options:
        if takes_value(spec) and "=" not in spec and "default" not in description.lower():
            fail(name, f"option {spec.split()[0]} shows no default (neither '=value' nor 'default' in its text)")

    synopsis_text = "\n".join(sections["SYNOPSIS"])
    for names, spec, _ in options:
        longs = [n for n in names if n.startswith("--")]
        if "--help" in longs:
            continue
        if not any(re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", synopsis_text) for n in longs or names):
            fail(name, f"option {'/'.join(names)} is not in SYNOPSIS")

    for heading, continuation in (("SYNOPSIS", True), ("EXAMPLES", False)):
        for call in command_lines(sections[heading], name, continuation):
            for token in OPTION_TOKEN.findall(strip_quotes_and_comments(call)):
                if token not in listed:
                    fail(name, f"{heading} calls {name} with {token}, which is not one of its options")

    others = re.compile(r"(?<![\w-])(" + "|".join(sorted(OTHER_PROGRAMS - {name})) + r")(?![\w-])")
    for heading in HEADINGS:
        if heading == "OPTIONS":
            continue
        own_text = [others.split(line, maxsplit=1)[0] for line in sections[heading]]
        for token in OPTION_TOKEN.findall("\n".join(own_text)):
            if token not in listed and token not in FOREIGN_OPTIONS:
                fail(name, f"{heading} mentions {token}, which is neither an option of {name} nor a launcher's")

    bad = run([path, "--no-such-option-for-help-test"])
    if bad.returncode != 2:
        fail(name, f"an unknown option exited {bad.returncode}, want 2 (bad command line)")

    if not any(f.startswith(name + ":") for f in failures):
        print(f"{name}: ok ({len(options)} options)")


def main():
    tools = sys.argv[1:]
    if not tools or any(t.startswith("-") for t in tools):
        print(__doc__, file=sys.stderr)
        return 2
    for tool in tools:
        try:
            check_tool(tool)
        except (OSError, subprocess.TimeoutExpired) as e:
            fail(os.path.basename(tool), f"could not run: {e}")
    for line in failures:
        print(f"help_test: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
