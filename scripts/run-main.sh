#!/usr/bin/env bash
# Builds chanpool (release) and runs the main job. Until the Pool lands, the main job is the
# shared-memory latency benchmark; extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target latency_bench >/dev/null
exec ./build/release/tools/latency_bench --transport shm "$@"
