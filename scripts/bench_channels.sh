#!/usr/bin/env bash
# Runs every channel benchmark behind docs/benchmarks.md in one go, on this machine:
#   1. one-way latency, side by side: chanpool (mpmc, spsc, sleeping receiver), Open MPI shared
#      memory, fi_pingpong -p shm, Boost.Interprocess message_queue (scripts/compare_latency.sh)
#      and bench/wake_floor, a bare futex hand-off between two processes (what a sleeping
#      receiver pays at least)
#   2. latency_bench's own table, which prints a memcpy of each size as the anchor for large messages
#   3. cross-process throughput microbenchmarks (Google Benchmark: bench/channel_bench), between
#      two runs of bench/ring_floor (a bare ring: this VM's speed before and after)
# Usage: scripts/bench_channels.sh [--iterations N]   (BUILD overrides build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=100000
[ "${1:-}" = "--iterations" ] && iterations="$2"
BUILD="${BUILD:-build/release}"
export BUILD
if [ ! -x "$BUILD/tools/latency_bench" ] || [ ! -x "$BUILD/bench/channel_bench" ] || [ ! -x "$BUILD/bench/wake_floor" ]; then
  ./scripts/install-deps.sh >/dev/null
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$(nproc)" >/dev/null
fi
echo "## latency, side by side"
scripts/compare_latency.sh --sizes 8,64,1024,65536,1048576 --iterations "$iterations"
echo
echo "## the anchor of chanpool-sleeping: one futex hand-off between two processes (bench/wake_floor)"
"$BUILD/bench/wake_floor"
echo
echo "## latency_bench with memcpy anchor (spsc channel, zero-copy above the inline size)"
"$BUILD/tools/latency_bench" --channel spsc --sizes 64,65536,1048576 --iterations "$iterations"
echo
echo "## throughput"
"$BUILD/bench/ring_floor"
"$BUILD/bench/channel_bench" --benchmark_filter='cross_process|send_recv_pair'
"$BUILD/bench/ring_floor"
