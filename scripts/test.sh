#!/usr/bin/env bash
# Builds chanpool and runs its tests: the release build with every test, then the channel tests
# under the asan (address+undefined) and tsan presets with a smaller stress load, then each
# libFuzzer target (preset fuzz, clang) for CHANPOOL_FUZZ_SECONDS (default 15) seconds.
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
  # Tests that get a second try, named in the log when they needed it: the emulated-host fault
  # tests (label cluster, release only), which cut links and stop processes under mpirun on 2
  # shared cores (one failed once in twenty repetitions, docs/cluster.md), and every test under
  # the sanitizers, which slow the Pool's and the transport's processes 5-20x on 2 cores (one
  # pool_map check failed once under tsan and passed in 5 re-runs).
  local retry=() log="build/${preset}/ctest.log"
  [ "${preset}" = release ] || retry=(--repeat until-pass:2)
  env "$@" ctest --preset "${preset}" -j 1 -LE cluster --output-on-failure "${retry[@]}" | tee "${log}"
  if [ "${preset}" = release ]; then
    env "$@" ctest --preset "${preset}" -j 1 -L cluster --output-on-failure --repeat until-pass:2 | tee -a "${log}"
  fi
  if grep -q "\*\*\*Failed" "${log}"; then
    echo "=== preset ${preset}: tests that passed only at their second try:"
    grep "\*\*\*Failed" "${log}"
  fi
}

run_preset release
if [ "${quick}" = 0 ]; then
  # Sanitizers slow everything 5-20x: the stress tests scale down via this variable.
  run_preset asan CHANPOOL_STRESS_MESSAGES=200000 CHANPOOL_FANIN_MESSAGES=200000
  run_preset tsan CHANPOOL_STRESS_MESSAGES=100000 CHANPOOL_FANIN_MESSAGES=100000
  # Short fuzz runs from the committed seed corpora (docs/fuzzing.md has the long ones). Only
  # the fuzz targets and what they link (the channel library, the tools' command-line parsers)
  # are built.
  echo "=== preset fuzz: configure and build"
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "${jobs}" --target fuzz_transport_frame fuzz_pool_wire fuzz_channel_segment fuzz_capi \
    fuzz_tool_cli
  echo "=== preset fuzz: ${CHANPOOL_FUZZ_SECONDS:-15} s per target"
  env CHANPOOL_FUZZ_SECONDS="${CHANPOOL_FUZZ_SECONDS:-15}" ctest --preset fuzz -j 1
fi
echo "=== all test runs passed"
