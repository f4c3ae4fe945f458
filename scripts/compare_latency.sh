#!/usr/bin/env bash
# Runs every one-way latency contender one after another on this machine and prints one combined
# markdown table, so that chanpool's shm channel is compared with its baselines under identical
# conditions (same host, same moment, same sizes and iteration counts):
#   chanpool     latency_bench --transport shm           ($BUILD/tools/latency_bench)
#   mpi          mpirun -np 2 mpi_latency (Open MPI, shared memory BTL)
#   libfabric    fi_pingpong -p shm (libfabric-bin)
#   boost_mq     boost_mq_latency (two boost::interprocess::message_queue)
# latency_bench, mpi_latency and boost_mq_latency share tools/common/latency_report.hpp: median of
# batch means and p99 of single round trips, both halved. fi_pingpong only reports a mean.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/compare_latency.sh [--sizes LIST] [--iterations N] [--json FILE]

Runs chanpool's latency_bench --transport shm, mpi_latency (mpirun -np 2), fi_pingpong -p shm
and boost_mq_latency one after another and prints one markdown table:
  contender | size | one-way median ns | p99 ns | command

Options:
  --sizes LIST       comma-separated message sizes in bytes (default: 64)
  --iterations N     round trips per size (default: 200000); sizes >= 65536 B use min(N, 2000)
  --json FILE        also write all rows to FILE as a JSON array
  -h, --help         show this help

Environment:
  BUILD              build tree holding the binaries (default: <repo>/build/release)

A contender whose binary is missing is skipped with a note; one that fails is reported and makes
the script exit with status 1 after the table. Bad options exit with status 2.
EOF
}

die_usage() {
  echo "compare_latency.sh: $1" >&2
  echo "Run with --help for more information." >&2
  exit 2
}

sizes="64"
iterations="200000"
json_file=""
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
  die_usage "--sizes: malformed size list '$sizes' (expected e.g. 8,64,1024)"
[[ "$iterations" =~ ^[1-9][0-9]{0,8}$ ]] || die_usage "--iterations: expected a positive integer, got '$iterations'"
if [ -n "$json_file" ] && [ ! -d "$(dirname -- "$json_file")" ]; then
  die_usage "--json: directory of '$json_file' does not exist"
fi
command -v python3 >/dev/null || { echo "compare_latency.sh: python3 is required to build the table" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$repo_root/build/release}"

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

# Open MPI's mpirun refuses to run as root unless both variables are set.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/compare_latency.XXXXXX")"
fi_server_pid=""
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
  if [ -n "$fi_server_pid" ] && kill -0 "$fi_server_pid" 2>/dev/null; then
    kill "$fi_server_pid" 2>/dev/null || true
    wait "$fi_server_pid" 2>/dev/null || true
  fi
  rm -rf "$work_dir"
}
trap cleanup EXIT

# Every measurement lands in one tab-separated file, one row per contender and size:
# contender, size, median ns, p99 ns (or n/a), iterations, statistic, command.
rows_file="$work_dir/rows.tsv"
: >"$rows_file"
notes=()
failed=0

progress() { echo "compare_latency.sh: $*" >&2; }

# Runs a tool that prints latency_report.hpp's JSON object and appends its rows.
#   run_json_contender CONTENDER DISPLAY_COMMAND BINARY COMMAND...
run_json_contender() {
  local contender="$1" display="$2" binary="$3"
  shift 3
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
  if ! python3 - "$contender" "$display" "$out" >>"$rows_file" 2>"$err.parse" <<'PY'
import json, sys
contender, command, path = sys.argv[1:4]
text = open(path).read()
# Launchers may print around the tool's output; the tool's object is the first one.
report, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
for r in report["results"]:
    print("\t".join([contender, str(r["size"]), repr(float(r["one_way_ns"])), repr(float(r["p99_ns"])),
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

# fi_pingpong -S takes one size, so each size is a separate server/client pair. Its usec/xfer
# column is elapsed / iterations / 2 (util/pingpong.c show_perf with xfers_per_iter = 2): the
# mean one-way time, printed with 0.01 us resolution. It has no warm-up and no percentiles.
# The shm provider only offers FI_EP_RDM, and fi_pingpong defaults to dgram, hence -e rdm.
# Both sides busy-poll like Open MPI's ranks, so they get one core each the way mpirun's
# --bind-to core places them: left to the scheduler, the two pollers sometimes share a core and
# the mean jumps from ~0.3 us to tens of microseconds (both on one core: no progress for ms).
run_fi_pingpong() {
  local contender="libfabric"
  if ! command -v fi_pingpong >/dev/null; then
    notes+=("$contender: skipped, fi_pingpong not found (Debian package libfabric-bin)")
    progress "$contender: skipped (no fi_pingpong)"
    return 0
  fi
  local server_pin=() client_pin=() cpus=()
  read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0))[:2])')"
  if command -v taskset >/dev/null && [ "${#cpus[@]}" -ge 2 ]; then
    server_pin=(taskset -c "${cpus[0]}")
    client_pin=(taskset -c "${cpus[1]}")
  else
    notes+=("$contender: server and client not pinned (needs taskset and 2 usable CPUs)")
  fi
  local size count port flags display server_out client_out usec
  for size in ${sizes//,/ }; do
    count="$(iterations_for "$size")"
    flags=(-p shm -e rdm -S "$size" -I "$count")
    display="${server_pin[*]+${server_pin[*]} }fi_pingpong ${flags[*]} (server) + "
    display+="${client_pin[*]+${client_pin[*]} }fi_pingpong ${flags[*]} 127.0.0.1 (client)"
    progress "$contender: $display"
    if ! port="$(pick_free_port)"; then
      notes+=("$contender $size B: FAILED, no free TCP control port found"); failed=1; continue
    fi
    server_out="$work_dir/fi_server_$size.out"
    client_out="$work_dir/fi_client_$size.out"
    timeout 600 "${server_pin[@]}" fi_pingpong "${flags[@]}" -B "$port" >"$server_out" 2>&1 &
    fi_server_pid=$!
    for _ in $(seq 1 100); do
      port_is_listening "$port" && break
      kill -0 "$fi_server_pid" 2>/dev/null || break
      sleep 0.05
    done
    if ! timeout 600 "${client_pin[@]}" fi_pingpong "${flags[@]}" -P "$port" 127.0.0.1 >"$client_out" 2>&1; then
      kill "$fi_server_pid" 2>/dev/null || true
      wait "$fi_server_pid" 2>/dev/null || true
      fi_server_pid=""
      notes+=("$contender $size B: FAILED: $(cat "$client_out" "$server_out" | tail -n 4 | tr '\n' ' ')")
      failed=1
      continue
    fi
    wait "$fi_server_pid" 2>/dev/null || true
    fi_server_pid=""
    # The column under the header field usec/xfer, read from the client's report.
    usec="$(awk '$1 == "bytes" { for (i = 1; i <= NF; i++) if ($i == "usec/xfer") column = i; next }
                 column && NF >= column { print $column; exit }' "$client_out")"
    if [[ ! "$usec" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
      notes+=("$contender $size B: FAILED, no usec/xfer value in: $(tr '\n' ' ' <"$client_out")")
      failed=1
      continue
    fi
    printf '%s\t%s\t%s\tn/a\t%s\t%s\t%s\n' "$contender" "$size" \
      "$(awk -v us="$usec" 'BEGIN { printf "%.1f", us * 1000 }')" "$count" "mean over all iterations" \
      "$display" >>"$rows_file"
  done
}

cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
fabric_version="$(fi_info --version 2>/dev/null | paste -sd ',' - | sed 's/,/, /g' || true)"
mpi_version="$(mpirun --version 2>/dev/null | head -n 1 || true)"
boost_version="$(awk '/define BOOST_LIB_VERSION/ { gsub(/"/, "", $3); print $3 }' \
  /usr/include/boost/version.hpp 2>/dev/null || true)"

# MPI placement: --bind-to core --map-by core puts the 2 ranks on 2 distinct cores (no
# oversubscription on a 2-core host) and stops the scheduler from migrating them: Open MPI's
# shared-memory path busy-polls, so each rank needs a core of its own. --mca pml ob1 --mca btl
# self,vader pins the transport to Open MPI's shared-memory BTL (vader); without pml ob1 a usable
# UCX would take over and the btl list would be ignored, and without the btl list tcp/ofi would
# be probed at start-up.
mpi_flags=(-np 2 --bind-to core --map-by core --mca pml ob1 --mca btl "self,vader")

chanpool_bin="$BUILD/tools/latency_bench"
mpi_bin="$BUILD/mpi_compare/mpi_latency"
boost_bin="$BUILD/bench/boost_mq_latency"
tool_flags=(--sizes "$sizes" --iterations "$iterations" --json)

run_json_contender chanpool "latency_bench --transport shm ${tool_flags[*]}" "$chanpool_bin" \
  "$chanpool_bin" --transport shm "${tool_flags[@]}"
# The same ping-pong over channels declared single-producer/single-consumer, and with a receiver
# that sleeps on the futex at once instead of spinning first.
run_json_contender chanpool-spsc "latency_bench --transport shm --channel spsc ${tool_flags[*]}" "$chanpool_bin" \
  "$chanpool_bin" --transport shm --channel spsc "${tool_flags[@]}"
run_json_contender chanpool-sleeping "latency_bench --transport shm --wait idle ${tool_flags[*]}" "$chanpool_bin" \
  "$chanpool_bin" --transport shm --wait idle "${tool_flags[@]}"
if command -v mpirun >/dev/null; then
  run_json_contender mpi "mpirun ${mpi_flags[*]} mpi_latency ${tool_flags[*]}" "$mpi_bin" \
    mpirun "${mpi_flags[@]}" "$mpi_bin" "${tool_flags[@]}"
else
  notes+=("mpi: skipped, mpirun not found (Debian package openmpi-bin)")
fi
run_fi_pingpong
run_json_contender boost_mq "boost_mq_latency ${tool_flags[*]}" "$boost_bin" "$boost_bin" "${tool_flags[@]}"

# The load average shows whether something else competed for the cores during the runs.
header="# $(date -Iseconds) | nproc $(nproc) | CPU ${cpu_model:-unknown} | load $(cut -d' ' -f1-3 /proc/loadavg)"
header+=" | ${fabric_version:-fi_info not found} | ${mpi_version:-mpirun not found} | Boost ${boost_version:-unknown}"
note_text="$(printf '%s\n' "${notes[@]+"${notes[@]}"}")"

python3 - "$rows_file" "$json_file" "$header" "$BUILD" "$sizes" "$iterations" "$note_text" <<'PY'
import json, sys
rows_path, json_path, header, build, sizes, iterations, note_text = sys.argv[1:8]
order = ["chanpool", "chanpool-spsc", "chanpool-sleeping", "mpi", "libfabric", "boost_mq"]
rows = []
for line in open(rows_path):
    contender, size, median, p99, count, statistic, command = line.rstrip("\n").split("\t")
    rows.append({
        "contender": contender,
        "size": int(size),
        "one_way_median_ns": float(median),
        "p99_ns": None if p99 == "n/a" else float(p99),
        "iterations": int(count),
        "statistic": statistic,
        "command": command,
    })
rows.sort(key=lambda r: (r["size"], order.index(r["contender"]) if r["contender"] in order else len(order)))

print(header)
print(f"# BUILD={build} | sizes {sizes} | iterations {iterations} (sizes >= 65536 B: at most 2000)")
print()
print("| contender | size | one-way median ns | p99 ns | command |")
print("|---|---:|---:|---:|---|")
for r in rows:
    median = f"{r['one_way_median_ns']:.1f}"
    if r["statistic"] != "median of batch means":
        median += " (mean)"
    p99 = "n/a" if r["p99_ns"] is None else f"{r['p99_ns']:.1f}"
    print(f"| {r['contender']} | {r['size']} | {median} | {p99} | `{r['command']}` |")
print()
print("One-way = round trip / 2. chanpool, mpi and boost_mq: median of batch means and p99 of single")
print("round trips (tools/common/latency_report.hpp), after a warm-up. libfabric: fi_pingpong's")
print("usec/xfer, a mean over all iterations without warm-up, 10 ns resolution.")
notes = [n for n in note_text.split("\n") if n]
if notes:
    print()
    for n in notes:
        print(f"- note: {n}")
if json_path:
    with open(json_path, "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")
PY

exit "$failed"
