#!/usr/bin/env bash
# The Pool's figures for docs/benchmarks.md, in one run: pool_map against the MPI pools at 1..32
# virtual nodes x 4 workers, both imbalance factors, then task throughput (no-op tasks on one
# node) beside Python's multiprocessing.Pool. Writes JSON lines, CSV and the SVG plot to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/bench-pool}
BIN=${BIN:-build/release/tools}
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) $(nproc) cores; ring_floor anchor:"
[ -x build/release/bench/ring_floor ] && build/release/bench/ring_floor 2>/dev/null | tail -1 || true
set -x
"$BIN"/pool_map --nodes 1,2,4,8,16,32 --workers_per_node 4 --imbalance_factor 1,8 --json \
  --csv "$OUT/sweep.csv" --plot "$OUT/speedup.svg" | tee "$OUT/sweep.jsonl"
"$BIN"/pool_map --min_time 0 --items_per_worker 500000 --mpi none
"$BIN"/pool_map --min_time 0 --items_per_worker 100000 --chunksize 1 --mpi none
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
