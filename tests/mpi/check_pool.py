#!/usr/bin/env python3
"""Runs mpi_pool_round / mpi_pool_dynamic and checks their results.

usage:
  check_pool.py items -- TOOL
      TOOL --print_items (hidden flag, no MPI) must print the documented list: the same for two
      runs, different for another seed, and equal to the list recomputed here (mt19937_64 and
      the mapping of tools/workload/chanpool/workload/work_items.hpp, written out in Python) to the last bit.
  check_pool.py json --tool NAME --workers W [--items_per_worker N] [--min_time S]
                     [--imbalance_factor K] [--seed SEED] [--num_iters I] -- COMMAND...
      COMMAND must succeed and print exactly one JSON line with the documented keys, in order,
      and each runtime must be plausible: >= the ideal lower bound max(total / W, longest item)
      (minus 1 ms) and < 10 times it; for mpi_pool_round also >= the round schedule's
      zero-overhead time (the sum of each round's longest item).
  check_pool.py fails --exit_code C --stderr REGEX -- COMMAND...
      COMMAND must exit with status C and print REGEX (Python re.search) on stderr.
"""
import argparse
import math
import sys

import mpi_check_common as common
from mpi_check_common import check_fails, fail, one_json_line, run

common.PROG = "check_pool"

KEYS = ["tool", "workers", "items", "imbalance_factor", "min_time", "seed", "runtime_s", "runtimes_s"]
MASK64 = (1 << 64) - 1
EPSILON_S = 1e-3


class MT19937_64:
    """std::mt19937_64, as the C++ standard defines it."""

    N, M = 312, 156
    MATRIX_A = 0xB5026F5AA96619E9
    UPPER, LOWER = (MASK64 << 31) & MASK64, (1 << 31) - 1

    def __init__(self, seed):
        self.mt = [seed & MASK64]
        for i in range(1, self.N):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.index = self.N

    def __call__(self):
        if self.index >= self.N:
            mt = self.mt
            for i in range(self.N):
                y = (mt[i] & self.UPPER) | (mt[(i + 1) % self.N] & self.LOWER)
                mt[i] = mt[(i + self.M) % self.N] ^ (y >> 1) ^ (self.MATRIX_A if y & 1 else 0)
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK64


def work_items(seed, count, min_time, imbalance_factor):
    """tools/workload/chanpool/workload/work_items.hpp's work_items(), operation for operation."""
    engine = MT19937_64(seed)
    span = (imbalance_factor - 1.0) * min_time
    return [min_time + ((engine() >> 11) * 2.0 ** -53) * span for _ in range(count)]


def check_items(command):
    engine = MT19937_64(5489)
    for _ in range(9999):
        engine()
    if engine() != 9981545732273789042:
        fail("the Python mt19937_64 does not give the standard's 10000th value")

    def printed(*flags):
        done = run(command + ["--print_items", "1000", *flags])
        if done.returncode != 0:
            fail(f"{' '.join(command)} --print_items exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    cases = [("1", "0.1", "1"), ("1", "0.1", "8"), ("42", "0.01", "8"), ("18446744073709551615", "2.5", "3.7")]
    for seed, min_time, k in cases:
        flags = ["--seed", seed, "--min_time", min_time, "--imbalance_factor", k]
        first, second = printed(*flags), printed(*flags)
        if first != second:
            fail(f"two runs with {flags} printed different lists")
        values = [float(line) for line in first.split()]
        expected = work_items(int(seed), 1000, float(min_time), float(k))
        if len(values) != 1000:
            fail(f"{flags}: {len(values)} items printed, expected 1000")
        for i, (got, want) in enumerate(zip(values, expected)):
            if got != want:  # %.17g round-trips a double exactly
                fail(f"{flags}: item {i} is {got!r}, the documented formula gives {want!r}")
        low, high = float(min_time), float(k) * float(min_time)
        if not all(low <= v < high or (low == high == v) for v in values):
            fail(f"{flags}: an item outside [{low}, {high})")
    if printed("--seed", "1", "--imbalance_factor", "8") == printed("--seed", "2", "--imbalance_factor", "8"):
        fail("seeds 1 and 2 printed the same list")
    print(f"ok: {' '.join(command)} --print_items: deterministic and equal to the documented formula")


def check_json(args, command):
    doc, line = one_json_line(command, KEYS)
    items = args.workers * args.items_per_worker
    expected = {"tool": args.tool, "workers": args.workers, "items": items, "seed": args.seed}
    for key, want in expected.items():
        if doc[key] != want or type(doc[key]) is not type(want):
            fail(f"{key} is {doc[key]!r}, expected {want!r}")
    for key, want in (("imbalance_factor", args.imbalance_factor), ("min_time", args.min_time)):
        if not isinstance(doc[key], (int, float)) or doc[key] != want:
            fail(f"{key} is {doc[key]!r}, expected {want!r}")
    runtimes = doc["runtimes_s"]
    if not isinstance(runtimes, list) or len(runtimes) != args.num_iters:
        fail(f"runtimes_s should hold {args.num_iters} values: {runtimes!r}")
    if not all(isinstance(r, (int, float)) and math.isfinite(r) and r > 0 for r in runtimes):
        fail(f"runtimes_s has a value that is not a positive number: {runtimes!r}")
    if not math.isclose(doc["runtime_s"], sum(runtimes) / len(runtimes), rel_tol=1e-9):
        fail(f"runtime_s {doc['runtime_s']} is not the mean of runtimes_s {runtimes}")

    durations = work_items(args.seed, items, args.min_time, args.imbalance_factor)
    bound = max(sum(durations) / args.workers, max(durations))
    floor, floor_name = bound, "the ideal lower bound max(total / workers, longest item)"
    if args.tool == "mpi_pool_round":
        rounds = sum(max(durations[r:r + args.workers]) for r in range(0, items, args.workers))
        floor, floor_name = rounds, "the round schedule's zero-overhead time"
    for r in runtimes:
        if r < floor - EPSILON_S:
            fail(f"runtime {r:.6f} s is below {floor_name}, {floor:.6f} s: items cannot have been slept")
        if r >= 10 * bound:
            fail(f"runtime {r:.6f} s is >= 10 x the ideal lower bound {bound:.6f} s")
    print(f"ok: {' '.join(command)}\n{line}\n"
          f"ideal lower bound {bound:.6f} s; {floor_name} {floor:.6f} s")


def main():
    if "--" not in sys.argv:
        fail(__doc__)
    split = sys.argv.index("--")
    command = sys.argv[split + 1:]
    if not command:
        fail(__doc__)
    parser = argparse.ArgumentParser(prog="check_pool.py", usage=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("items")
    json_mode = sub.add_parser("json")
    json_mode.add_argument("--tool", required=True, choices=["mpi_pool_round", "mpi_pool_dynamic"])
    json_mode.add_argument("--workers", type=int, required=True)
    json_mode.add_argument("--items_per_worker", type=int, default=4)
    json_mode.add_argument("--min_time", type=float, default=0.1)
    json_mode.add_argument("--imbalance_factor", type=float, default=1.0)
    json_mode.add_argument("--seed", type=int, default=1)
    json_mode.add_argument("--num_iters", type=int, default=1)
    fails_mode = sub.add_parser("fails")
    fails_mode.add_argument("--exit_code", type=int, required=True)
    fails_mode.add_argument("--stderr", required=True)
    args = parser.parse_args(sys.argv[1:split])
    if args.mode == "items":
        check_items(command)
    elif args.mode == "json":
        check_json(args, command)
    else:
        check_fails(args, command)


if __name__ == "__main__":
    main()
