#!/usr/bin/env python3
"""Runs mpi_fanin (under mpirun) and checks its result.

usage:
  check_fanin.py json --senders N --msg_size B [--messages_per_sender M] -- COMMAND...
      COMMAND must succeed and print exactly one JSON line with the documented keys, in order;
      with --messages_per_sender the message count must be N * M, else (a --duration run) >= N.
  check_fanin.py fails --exit_code C --stderr REGEX -- COMMAND...
      COMMAND must exit with status C and print REGEX (Python re.search) on stderr.
"""
import argparse
import math
import sys

import mpi_check_common as common
from mpi_check_common import check_fails, fail, one_json_line

common.PROG = "check_fanin"

KEYS = ["tool", "senders", "msg_size", "messages", "msgs_per_s", "bytes_per_s", "p50_us", "p99_us", "elapsed_s"]


def check_json(args, command):
    doc, line = one_json_line(command, KEYS)
    if doc["tool"] != "mpi_fanin":
        fail(f"tool is {doc['tool']!r}")
    for key in KEYS[1:4]:
        if not isinstance(doc[key], int):
            fail(f"{key} is not an integer: {doc}")
    for key in KEYS[4:]:
        if not isinstance(doc[key], (int, float)) or not math.isfinite(doc[key]) or doc[key] <= 0:
            fail(f"{key} is not a positive number: {doc}")
    if doc["senders"] != args.senders:
        fail(f"senders {doc['senders']}, expected {args.senders}")
    if doc["msg_size"] != args.msg_size:
        fail(f"msg_size {doc['msg_size']}, expected {args.msg_size}")
    if args.messages_per_sender is not None:
        if doc["messages"] != args.senders * args.messages_per_sender:
            fail(f"messages {doc['messages']}, expected {args.senders} * {args.messages_per_sender}")
    elif doc["messages"] < args.senders:
        fail(f"messages {doc['messages']}: fewer than one per sender")
    # The derived figures agree with each other.
    rate = doc["messages"] / doc["elapsed_s"]
    if not math.isclose(doc["msgs_per_s"], rate, rel_tol=1e-6):
        fail(f"msgs_per_s {doc['msgs_per_s']} != messages / elapsed_s = {rate}")
    if not math.isclose(doc["bytes_per_s"], doc["msgs_per_s"] * doc["msg_size"], rel_tol=1e-6):
        fail(f"bytes_per_s {doc['bytes_per_s']} != msgs_per_s * msg_size")
    if doc["p99_us"] < doc["p50_us"]:
        fail(f"p99_us {doc['p99_us']} < p50_us {doc['p50_us']}")
    print(f"ok: {' '.join(command)}\n{line}")


def main():
    if "--" not in sys.argv:
        fail(__doc__)
    split = sys.argv.index("--")
    command = sys.argv[split + 1:]
    if not command:
        fail(__doc__)
    parser = argparse.ArgumentParser(prog="check_fanin.py", usage=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    json_mode = sub.add_parser("json")
    json_mode.add_argument("--senders", type=int, required=True)
    json_mode.add_argument("--msg_size", type=int, required=True)
    json_mode.add_argument("--messages_per_sender", type=int)
    fails_mode = sub.add_parser("fails")
    fails_mode.add_argument("--exit_code", type=int, required=True)
    fails_mode.add_argument("--stderr", required=True)
    args = parser.parse_args(sys.argv[1:split])
    (check_json if args.mode == "json" else check_fails)(args, command)


if __name__ == "__main__":
    main()
