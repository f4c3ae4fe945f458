#!/usr/bin/env bash
# Builds chanpool and runs its tests: the release build with every test, then the channel tests
# under the asan (address+undefined) and tsan presets with a smaller stress load.
#   ./scripts/test.sh            everything (what CI runs)
#   ./scripts/test.sh --quick    release build only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc)

./scripts/install-deps.sh

run_preset() {
  local preset=$1
  shift
  echo "=== preset ${preset}: configure and build"
  cmake --preset "${preset}" >/dev/null
  cmake --build --preset "${preset}" -j "${jobs}"
  echo "=== preset ${preset}: tests"
  env "$@" ctest --preset "${preset}" -j 1
}

run_preset release
if [ "${quick}" = 0 ]; then
  # Sanitizers slow everything 5-20x: the stress tests scale down via this variable.
  run_preset asan CHANPOOL_STRESS_MESSAGES=200000 CHANPOOL_FANIN_MESSAGES=200000
  run_preset tsan CHANPOOL_STRESS_MESSAGES=100000 CHANPOOL_FANIN_MESSAGES=100000
fi
echo "=== all test runs passed"
