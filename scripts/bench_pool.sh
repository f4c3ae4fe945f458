#!/usr/bin/env bash
# The Pool's figures for docs/benchmarks.md, in one run:
#   1. every (nodes, imbalance factor) pair in a fresh pool_map process, as a user types it: the
#      Pool's first map, beside mpi_pool_round, mpi_pool_dynamic and Python's multiprocessing.Pool
#      on the same list and worker count (first.jsonl; the SVG plot is drawn from these);
#   2. the same pairs again, five maps in one Pool each (their mean: a warmed-up Pool; five.jsonl);
#   3. task throughput (no-op tasks on one node) beside Python's multiprocessing.Pool;
#   4. one apply_async round trip to a worker on another node, beside the transport's one-way
#      latency through the agents.
# Then prints the tables of docs/benchmarks.md from the JSON lines.
#   NODES="1 2 4" FACTORS=8 scripts/bench_pool.sh     a part of the sweep
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/bench-pool}
BIN=${BIN:-build/release/tools}
NODES=${NODES:-"1 2 4 8 16 32"}
FACTORS=${FACTORS:-"1 8"}
WORKERS=${WORKERS:-4}
mkdir -p "$OUT"
: >"$OUT/first.jsonl"
: >"$OUT/five.jsonl"
echo "# $(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

set -x
for k in $FACTORS; do
  for n in $NODES; do
    "$BIN"/pool_map --nodes "$n" --workers_per_node "$WORKERS" --imbalance_factor "$k" --json | tee -a "$OUT/first.jsonl"
  done
done
for k in $FACTORS; do
  for n in $NODES; do
    "$BIN"/pool_map --nodes "$n" --workers_per_node "$WORKERS" --imbalance_factor "$k" --num_iters 5 \
      --mpi none --python off --json | tee -a "$OUT/five.jsonl"
  done
done
"$BIN"/pool_map --from_json "$OUT/first.jsonl" --csv "$OUT/first.csv" --plot "$OUT/speedup.svg"
"$BIN"/pool_map --from_json "$OUT/five.jsonl" --csv "$OUT/five.csv"

"$BIN"/pool_map --min_time 0 --items_per_worker 500000 --mpi none --python off
"$BIN"/pool_map --min_time 0 --items_per_worker 100000 --chunksize 1 --mpi none --python off
python3 - <<'PY'
import multiprocessing as mp, os, time
def noop(x): return x
if __name__ == "__main__":
    with mp.Pool(os.cpu_count()) as p:
        p.map(noop, range(1000))
        n = 200000
        t = time.perf_counter(); p.map(noop, range(n), chunksize=1); s = time.perf_counter() - t
        print(f"python multiprocessing.Pool({os.cpu_count()}) map chunksize=1: {n / s:.0f} tasks/s")
        n = 2000000
        t = time.perf_counter(); p.map(noop, range(n)); s = time.perf_counter() - t
        print(f"python multiprocessing.Pool({os.cpu_count()}) map default chunksize: {n / s:.0f} tasks/s")
PY

"$BIN"/pool_map --apply_latency 10000 --nodes 2 --workers_per_node 1 | tee "$OUT/apply_latency.txt"
"$BIN"/latency_bench --transport fabric --fabric-mode both --sizes 64 --iterations 10000 | tee "$OUT/transport_latency.txt"
set +x

python3 - "$OUT/first.jsonl" "$OUT/five.jsonl" <<'PY'
import json, sys

def rows(path):
    out = {}
    for line in open(path):
        if line.startswith("{"):
            d = json.loads(line)
            out[(d["nodes"], d["imbalance_factor"])] = d
    return out

first, five = rows(sys.argv[1]), rows(sys.argv[2])
def cell(d, key):
    c = d.get(key)
    return (f"{c['runtime_s']:.3f}", f"{c['speedup']:.3f}") if c else ("", "")
print("\n| nodes | workers | k | ideal | Pool, first map | / ideal | Pool, mean of 5 maps | / ideal | start-up |"
      " mpi_pool_round | speedup | mpi_pool_dynamic | speedup | Python Pool | speedup |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for key in sorted(first, key=lambda k: (k[1], k[0])):
    d = first[key]
    f5 = five.get(key)
    ideal = d["ideal_s"]
    mean5 = f"{f5['pool']['runtime_s']:.3f} | {f5['pool']['runtime_s'] / ideal:.3f}" if f5 else " | "
    cols = [str(d["nodes"]), str(d["workers"]), str(d["imbalance_factor"]), f"{ideal:.3f}",
            f"{d['pool']['runtime_s']:.3f}", f"{d['pool']['runtime_s'] / ideal:.3f}", mean5,
            f"{d['pool']['startup_s']:.3f}", *cell(d, "mpi_round"), *cell(d, "mpi_dynamic"), *cell(d, "python_pool")]
    print("| " + " | ".join(cols) + " |")
PY
