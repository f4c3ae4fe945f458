#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a scratch copy of its seed corpus (and with
# its dictionary, <seed-corpus-dir>.dict, where there is one).
#   run_fuzzer.sh <fuzzer> <seed-corpus-dir> <work-dir>
# CHANPOOL_FUZZ_SECONDS (default 15): how long it runs.
# Exits non-zero on a crash, leak, timeout (an input running over 10 s) or out-of-memory; the
# input that did it is left in <work-dir>/ as crash-*, leak-*, timeout-* or oom-*.
set -euo pipefail
fuzzer=$(realpath "$1") seeds=$(realpath "$2") work=$(realpath -m "$3")
seconds=${CHANPOOL_FUZZ_SECONDS:-15}
rm -rf "${work}"
mkdir -p "${work}/corpus"
cp "${seeds}"/* "${work}/corpus/" 2>/dev/null || true
cd "${work}"
# detect_leaks stays on; abort_on_error makes a sanitizer report a crash libFuzzer records.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A dictionary beside the seed corpus (<seeds>.dict) gives the mutations the words it needs.
dict=()
if [[ -f "${seeds}.dict" ]]; then dict=(-dict="${seeds}.dict"); fi
"${fuzzer}" -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  "${dict[@]}" -artifact_prefix="${work}/" corpus &
pid=$!
rc=0
wait "${pid}" || rc=$?
# A target stopped by a finding skips its clean-up: remove the channels of its jobs
# (fuzz<pid>, fuzzc<pid>) here.
rm -f /dev/shm/chanpool."$(id -u)".fuzz"${pid}".* /dev/shm/chanpool."$(id -u)".fuzzc"${pid}".*
exit "${rc}"
