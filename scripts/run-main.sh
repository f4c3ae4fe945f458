#!/usr/bin/env bash
# Builds chanpool (release) and runs the main job: pool_map, chanpool's Pool against the MPI
# pools and Python's multiprocessing.Pool on the embedded default (virtual nodes on this host).
# Extra arguments go to pool_map, e.g. --nodes 32 --workers_per_node 4 --imbalance_factor 8.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target pool_map >/dev/null
exec ./build/release/tools/pool_map --imbalance_factor=1 "$@"
