#!/usr/bin/env python3
"""Runs pool_map --json and checks each line: the keys docs/tools.md lists, the ideal recomputed from the
seeded list (tests/mpi/check_pool.py's formula), a runtime no shorter than the bound, and the MPI pools and
Python's Pool when asked for; then --apply_latency's JSON line. Also checks that bad flags exit 2 with a message.

usage: check_pool_map.py POOL_MAP [--mpi]
       check_pool_map.py POOL_MAP --launched NP -- MPIRUN [ARGS...]
         (pool_map started by mpirun, one node per rank: NP nodes, no MPI contenders)
"""
import json
import heapq
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mpi"))
from check_pool import work_items  # noqa: E402  (the shared reference of the item list)


def fail(message):
    print(f"check_pool_map: {message}", file=sys.stderr)
    sys.exit(1)


def ideal(items, workers):
    free = [0.0] * workers
    end = 0.0
    for d in items:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


# Every run below maps seed 3's list, 4 items per worker, min_time 0.02 s, imbalance 1 and 8.
COMMON = ["--workers_per_node", "2", "--imbalance_factor", "1,8", "--min_time", "0.02", "--seed", "3", "--json"]
KEYS = ("tool", "nodes", "workers_per_node", "workers", "imbalance_factor", "ideal_s", "bound_s", "pool")


def json_lines(args, count):
    """Runs pool_map; it must exit 0 and print `count` JSON lines, each checked against the list."""
    run = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        fail(f"{' '.join(args)} exited {run.returncode}: {run.stderr}")
    lines = [l for l in run.stdout.splitlines() if l.strip()]
    if len(lines) != count:
        fail(f"expected {count} JSON lines, got {len(lines)}: {run.stdout}")
    docs = []
    for line in lines:
        doc = json.loads(line)
        for key in KEYS:
            if key not in doc:
                fail(f"missing '{key}': {doc}")
        if doc["tool"] != "pool_map" or doc["workers"] != doc["nodes"] * 2:
            fail(f"wrong tool or workers: {doc}")
        want = ideal(work_items(3, doc["workers"] * 4, 0.02, float(doc["imbalance_factor"])), doc["workers"])
        if abs(doc["ideal_s"] - want) > 1e-9:
            fail(f"ideal {doc['ideal_s']} != recomputed {want}")
        pool = doc["pool"]
        # The ideal is in-order greedy scheduling, not optimal: another order can beat it, so
        # only the absolute bound max(total/workers, longest) is a floor.
        if not (pool["runtime_s"] >= doc["bound_s"] * 0.999 and pool["efficiency"] > 0 and pool["startup_s"] > 0):
            fail(f"implausible pool figures: {pool} (ideal {want}, bound {doc['bound_s']})")
        docs.append(doc)
    return docs


def check_launched(tool, nodes, launcher):
    for doc in json_lines([*launcher, "-np", str(nodes), tool, *COMMON, "--mpi", "none"], 2):  # rank 0 prints
        if doc["nodes"] != nodes:
            fail(f"expected {nodes} nodes: {doc}")
    print("check_pool_map: launched ok")


def check_apply_latency(tool):
    args = [tool, "--apply_latency", "200", "--json"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        fail(f"{' '.join(args)} exited {run.returncode}: {run.stderr}")
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    if doc.get("mode") != "apply_latency" or doc.get("nodes") != 2:
        fail(f"not an apply_latency line of 2 nodes: {doc}")
    other = doc["other_node"]
    if other["count"] != 200 or not (0 < other["min_us"] <= other["median_us"] <= other["p99_us"]):
        fail(f"implausible round trips to the other node: {other}")


def main():
    tool = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "--launched":
        check_launched(tool, int(sys.argv[3]), sys.argv[sys.argv.index("--") + 1:])
        return
    with_mpi = "--mpi" in sys.argv[2:]
    # The contenders run with the MPI build only: they add a minute; Python's Pool comes with them.
    docs = json_lines([tool, "--nodes", "1,2", *COMMON, "--mpi", "round,dynamic" if with_mpi else "none",
                       "--python", "on" if with_mpi else "off"], 4)
    for doc in docs:
        for contender in ("mpi_round", "mpi_dynamic", "python_pool"):
            if with_mpi != (contender in doc):
                fail(f"'{contender}' {'missing' if with_mpi else 'unexpected'}: {doc}")
            if with_mpi and not (doc[contender]["runtime_s"] > 0 and doc[contender]["speedup"] > 0):
                fail(f"implausible {contender}: {doc[contender]}")
        # Python's Pool ran the same list: no faster than the bound of that list.
        if with_mpi and doc["python_pool"]["runtime_s"] < doc["bound_s"] * 0.999:
            fail(f"Python's Pool beat the bound of its list: {doc}")
    check_apply_latency(tool)
    for bad in (["--imbalance_factor", "0.5"], ["--nodes", "0"], ["--nodes", "two"], ["--mpi", "bogus"],
                ["--python", "maybe"]):
        r = subprocess.run([tool, *bad, "--mpi", "none"] if bad[0] != "--mpi" else [tool, *bad],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 2 or not r.stderr.strip():
            fail(f"{bad} should exit 2 with a message, got {r.returncode}: {r.stderr!r}")
    print("check_pool_map: ok")


if __name__ == "__main__":
    main()
