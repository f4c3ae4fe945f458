# shellcheck shell=bash
# Helpers shared by scripts/compare_latency.sh and scripts/compare_fabric_latency.sh, which source
# this file (it only defines functions and constants; running it does nothing). Each script keeps
# its usage text, its contenders and its table; in this order it calls
#   parse_compare_options NAME SIZES_EXAMPLE "$@"   (after setting the defaults sizes, iterations,
#                                                    json_file and defining usage)
#   setup_compare_run                               (BUILD, work_dir, rows_file, notes, failed)
# and then the helpers below. Rows go to $rows_file, one tab-separated line each, notes to the
# notes array; failed=1 makes the script exit with status 1 after its table.

# Bad options exit with status 2.
die_usage() {
  echo "$compare_name: $1" >&2
  echo "Run with --help for more information." >&2
  exit 2
}

# Sets compare_name (the script's name in messages) and parses the options shared by both scripts
# into sizes, iterations and json_file, whose defaults the caller sets beforehand. SIZES_EXAMPLE
# is the list shown when --sizes is malformed.
#   parse_compare_options NAME SIZES_EXAMPLE ARGS...
parse_compare_options() {
  compare_name="$1"
  local sizes_example="$2"
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --sizes) [ $# -ge 2 ] || die_usage "--sizes needs a value"; sizes="$2"; shift 2 ;;
      --sizes=*) sizes="${1#*=}"; shift ;;
      --iterations) [ $# -ge 2 ] || die_usage "--iterations needs a value"; iterations="$2"; shift 2 ;;
      --iterations=*) iterations="${1#*=}"; shift ;;
      --json) [ $# -ge 2 ] || die_usage "--json needs a file name"; json_file="$2"; shift 2 ;;
      --json=*) json_file="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die_usage "unknown argument '$1'" ;;
    esac
  done
  [[ "$sizes" =~ ^[1-9][0-9]{0,9}(,[1-9][0-9]{0,9})*$ ]] ||
    die_usage "--sizes: malformed size list '$sizes' (expected e.g. $sizes_example)"
  [[ "$iterations" =~ ^[1-9][0-9]{0,8}$ ]] || die_usage "--iterations: expected a positive integer, got '$iterations'"
  if [ -n "$json_file" ] && [ ! -d "$(dirname -- "$json_file")" ]; then
    die_usage "--json: directory of '$json_file' does not exist"
  fi
  command -v python3 >/dev/null || { echo "$compare_name: python3 is required to build the table" >&2; exit 1; }
}

# Same cap as the C++ tools apply internally, so that fi_pingpong runs the same counts.
large_message_bytes=65536
large_message_max_iterations=2000
iterations_for() {
  if [ "$1" -ge "$large_message_bytes" ] && [ "$iterations" -gt "$large_message_max_iterations" ]; then
    echo "$large_message_max_iterations"
  else
    echo "$iterations"
  fi
}

# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
  if [ -n "$fi_server_pid" ] && kill -0 "$fi_server_pid" 2>/dev/null; then
    kill "$fi_server_pid" 2>/dev/null || true
    wait "$fi_server_pid" 2>/dev/null || true
  fi
  rm -rf "$work_dir"
}

# BUILD (default <repo>/build/release), a work directory removed on exit (with any fi_pingpong
# server still running), an empty rows file, no notes, failed=0.
# shellcheck disable=SC2034  # BUILD and failed are for the sourcing script
setup_compare_run() {
  local repo_root
  repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  BUILD="${BUILD:-$repo_root/build/release}"

  # Open MPI's mpirun refuses to run as root unless both variables are set.
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi

  work_dir="$(mktemp -d "${TMPDIR:-/tmp}/${compare_name%.sh}.XXXXXX")"
  fi_server_pid=""
  trap cleanup EXIT

  # Every measurement lands in one tab-separated file, one row per contender and size (columns:
  # see the script's table code).
  rows_file="$work_dir/rows.tsv"
  : >"$rows_file"
  notes=()
  failed=0
}

progress() { echo "$compare_name: $*" >&2; }

# Runs a tool that prints latency_report.hpp's JSON object and appends its rows: contender,
# transport (only with --transport), size, one-way ns, p99 ns, iterations, statistic, command.
#   run_json_contender [--transport TRANSPORT] CONTENDER DISPLAY_COMMAND BINARY COMMAND...
run_json_contender() {
  local lead=()
  if [ "$1" = "--transport" ]; then
    lead=("$2")
    shift 2
  fi
  local contender="$1" display="$2" binary="$3"
  shift 3
  lead=("$contender" ${lead[@]+"${lead[@]}"})
  if [ ! -x "$binary" ]; then
    notes+=("$contender: skipped, binary not found at $binary")
    progress "$contender: skipped (no $binary)"
    return 0
  fi
  progress "$contender: $display"
  local out="$work_dir/$contender.out" err="$work_dir/$contender.err" status=0
  "$@" >"$out" 2>"$err" || status=$?
  if [ "$status" -ne 0 ]; then
    notes+=("$contender: FAILED (exit status $status): $(tail -n 3 "$err" | tr '\n' ' ')")
    failed=1
    return 0
  fi
  if ! python3 - "$out" "$display" "${lead[@]}" >>"$rows_file" 2>"$err.parse" <<'PY'
import json, sys
path, command = sys.argv[1:3]
lead = sys.argv[3:]  # contender, and the transport where the table has that column
text = open(path).read()
# Launchers may print around the tool's output; the tool's object is the first one.
report, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
for r in report["results"]:
    print("\t".join(lead + [str(r["size"]), repr(float(r["one_way_ns"])), repr(float(r["p99_ns"])),
                            str(r["iterations"]), "median of batch means", command]))
PY
  then
    notes+=("$contender: FAILED, output is not latency_report JSON: $(tail -n 1 "$err.parse")")
    failed=1
  fi
}

# fi_pingpong's server listens on a TCP control port before the client may connect; the client
# does not retry, so wait for the listening socket (state 0A in /proc/net/tcp).
port_is_listening() {
  local hex_port
  hex_port="$(printf '%04X' "$1")"
  awk -v port=":$hex_port" 'NR > 1 && substr($2, length($2) - 4) == port && $4 == "0A" { found = 1 }
                            END { exit found ? 0 : 1 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    port_is_listening "$port" || { echo "$port"; return 0; }
  done
  return 1
}

# Two busy-polling processes each get a core of their own (like mpirun --bind-to core): left to
# the scheduler they sometimes share one and the figures jump by orders of magnitude (both on one
# core: no progress for milliseconds). Sets server_pin and client_pin (taskset commands, empty
# when pinning is not possible, which a note for CONTENDER says).
#   pin_server_and_client CONTENDER
pin_server_and_client() {
  server_pin=()
  client_pin=()
  read -r -a usable_cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0))[:2])')"
  if command -v taskset >/dev/null && [ "${#usable_cpus[@]}" -ge 2 ]; then
    server_pin=(taskset -c "${usable_cpus[0]}")
    client_pin=(taskset -c "${usable_cpus[1]}")
  else
    notes+=("$1: server and client not pinned (needs taskset and 2 usable CPUs)")
  fi
}

# Before a fi_pingpong contender's runs: without fi_pingpong it is skipped with a note (status 1),
# else its server and client are pinned (pin_server_and_client).
#   fi_pingpong_contender_ready CONTENDER || return 0
fi_pingpong_contender_ready() {
  local contender="$1"
  if ! command -v fi_pingpong >/dev/null; then
    notes+=("$contender: skipped, fi_pingpong not found (Debian package libfabric-bin)")
    progress "$contender: skipped (no fi_pingpong)"
    return 1
  fi
  pin_server_and_client "$contender"
}

# One fi_pingpong server/client pair for one size (fi_pingpong -S takes one size): the server
# under server_pin, the client under client_pin connecting to ADDRESS, both with FLAGS and the
# caller's environment. fi_pingpong's usec/xfer column is elapsed / iterations / 2
# (util/pingpong.c show_perf with xfers_per_iter = 2): the mean one-way time, 0.01 us resolution,
# no warm-up, no percentiles. Sets fi_one_way_ns to it in ns ("%.1f"); on a failure it is empty,
# a note says why and failed=1.
#   fi_pingpong_pair CONTENDER SIZE ADDRESS FLAGS...
# shellcheck disable=SC2034  # fi_one_way_ns is for the sourcing script
fi_pingpong_pair() {
  local contender="$1" size="$2" address="$3" port server_out client_out usec
  shift 3
  fi_one_way_ns=""
  if ! port="$(pick_free_port)"; then
    notes+=("$contender $size B: FAILED, no free TCP control port found"); failed=1; return 0
  fi
  server_out="$work_dir/fi_server_$size.out"
  client_out="$work_dir/fi_client_$size.out"
  timeout 600 "${server_pin[@]}" fi_pingpong "$@" -B "$port" >"$server_out" 2>&1 &
  fi_server_pid=$!
  for _ in $(seq 1 100); do
    port_is_listening "$port" && break
    kill -0 "$fi_server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! timeout 600 "${client_pin[@]}" fi_pingpong "$@" -P "$port" "$address" >"$client_out" 2>&1; then
    kill "$fi_server_pid" 2>/dev/null || true
    wait "$fi_server_pid" 2>/dev/null || true
    fi_server_pid=""
    notes+=("$contender $size B: FAILED: $(cat "$client_out" "$server_out" | tail -n 4 | tr '\n' ' ')")
    failed=1
    return 0
  fi
  wait "$fi_server_pid" 2>/dev/null || true
  fi_server_pid=""
  # The column under the header field usec/xfer, read from the client's report.
  usec="$(awk '$1 == "bytes" { for (i = 1; i <= NF; i++) if ($i == "usec/xfer") column = i; next }
               column && NF >= column { print $column; exit }' "$client_out")"
  if [[ ! "$usec" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    notes+=("$contender $size B: FAILED, no usec/xfer value in: $(tr '\n' ' ' <"$client_out")")
    failed=1
    return 0
  fi
  fi_one_way_ns="$(awk -v us="$usec" 'BEGIN { printf "%.1f", us * 1000 }')"
}

# The host facts both tables print: cpu_model, fabric_version (fi_info --version on one line) and
# mpi_version (first line of mpirun --version), empty where not found.
# shellcheck disable=SC2034  # all for the sourcing script
read_host_versions() {
  cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
  fabric_version="$(fi_info --version 2>/dev/null | paste -sd ',' - | sed 's/,/, /g' || true)"
  mpi_version="$(mpirun --version 2>/dev/null | head -n 1 || true)"
}

# Sets header to the table's first line: date, core count, CPU and the load average, which shows
# whether something else competed for the cores during the runs. Call after read_host_versions.
# shellcheck disable=SC2034  # header is for the sourcing script
host_header() {
  header="# $(date -Iseconds) | nproc $(nproc) | CPU ${cpu_model:-unknown} | load $(cut -d' ' -f1-3 /proc/loadavg)"
}
