#!/usr/bin/env bash
# Baselines for chanpool's fabric (inter-node) latency, measured on loopback on this machine in
# one run and printed as one markdown table:
#   libfabric-tcp  FI_TCP_IFACE=lo fi_pingpong -p "tcp;ofi_rxm" -e rdm (libfabric-bin), server + client
#   mpi-tcp        mpirun -np 2 mpi_latency over Open MPI's tcp BTL on lo
#   mpi-shm        the same over the shared-memory BTL: a reference row showing that the tcp row
#                  really went through TCP (it must be many times slower)
#   chanpool-direct  latency_bench --transport fabric --fabric-mode direct (chanpool's endpoints)
#   chanpool-agents  latency_bench --transport fabric --fabric-mode agent (the full agent path)
# mpi_latency reports the median of batch means and a p99 (tools/common/latency_report.hpp);
# fi_pingpong only reports a mean over all its iterations, without warm-up.
set -euo pipefail

# One provider string for every libfabric contender (design notes: pin one provider and one
# libfabric version per job). chanpool's fabric rows must use the same one.
fabric_provider="tcp;ofi_rxm"
fabric_endpoint="rdm"
fabric_address="127.0.0.1"
# The tcp provider's interface: without it the provider takes the first interface (eth0's
# address here: also local, but not loopback). fi_pingpong's -d (domain) does not select it with
# tcp;ofi_rxm in libfabric 1.17; FI_TCP_IFACE does (checked with ss: 127.0.0.1 connections).
fabric_iface="lo"

usage() {
  cat <<'EOF'
Usage: scripts/compare_fabric_latency.sh [--sizes LIST] [--iterations N] [--json FILE]

Measures the fabric latency baselines on loopback, one after another, and prints one markdown table:
  contender | transport | size | one-way us | p99 us | statistic | command

  libfabric-tcp    FI_TCP_IFACE=lo fi_pingpong -p "tcp;ofi_rxm" -e rdm (server, client on 127.0.0.1)
  mpi-tcp          mpirun -np 2 mpi_latency, Open MPI ob1 + tcp BTL restricted to lo
  mpi-shm          mpirun -np 2 mpi_latency, Open MPI ob1 + vader (shared memory), for reference
  chanpool-direct  latency_bench --transport fabric --fabric-mode direct
  chanpool-agents  latency_bench --transport fabric --fabric-mode agent

The header gives the libfabric version (fi_info --version), the provider's fi_info entry for
interface lo, the Open MPI version, CPU, core count and load.

Options:
  --sizes LIST       comma-separated message sizes in bytes (default: 64; e.g. 64,4096,65536)
  --iterations N     round trips per size (default: 20000); sizes >= 65536 B use min(N, 2000)
  --json FILE        also write all rows to FILE as a JSON array
  -h, --help         show this help

Environment:
  BUILD              build tree holding mpi_compare/mpi_latency and tools/latency_bench
                     (default: <repo>/build/release)

A contender whose program is missing is skipped with a note; one that fails is reported and makes
the script exit with status 1 after the table. Bad options exit with status 2.
EOF
}

die_usage() {
  echo "compare_fabric_latency.sh: $1" >&2
  echo "Run with --help for more information." >&2
  exit 2
}

sizes="64"
iterations="20000"
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
  die_usage "--sizes: malformed size list '$sizes' (expected e.g. 64,4096,65536)"
[[ "$iterations" =~ ^[1-9][0-9]{0,8}$ ]] || die_usage "--iterations: expected a positive integer, got '$iterations'"
if [ -n "$json_file" ] && [ ! -d "$(dirname -- "$json_file")" ]; then
  die_usage "--json: directory of '$json_file' does not exist"
fi
command -v python3 >/dev/null || { echo "compare_fabric_latency.sh: python3 is required to build the table" >&2; exit 1; }

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

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/compare_fabric_latency.XXXXXX")"
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
# contender, transport, size, one-way ns, p99 ns (or n/a), iterations, statistic, command.
rows_file="$work_dir/rows.tsv"
: >"$rows_file"
notes=()
failed=0

progress() { echo "compare_fabric_latency.sh: $*" >&2; }

# Runs a tool that prints latency_report.hpp's JSON object and appends its rows.
#   run_json_contender CONTENDER TRANSPORT DISPLAY_COMMAND BINARY COMMAND...
run_json_contender() {
  local contender="$1" transport="$2" display="$3" binary="$4"
  shift 4
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
  if ! python3 - "$contender" "$transport" "$display" "$out" >>"$rows_file" 2>"$err.parse" <<'PY'
import json, sys
contender, transport, command, path = sys.argv[1:5]
text = open(path).read()
# Launchers may print around the tool's output; the tool's object is the first one.
report, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
for r in report["results"]:
    print("\t".join([contender, transport, str(r["size"]), repr(float(r["one_way_ns"])),
                     repr(float(r["p99_ns"])), str(r["iterations"]), "median of batch means", command]))
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
# the scheduler they sometimes share one and the figures jump by orders of magnitude.
server_pin=()
client_pin=()
pin_notes=""
read -r -a usable_cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0))[:2])')"
if command -v taskset >/dev/null && [ "${#usable_cpus[@]}" -ge 2 ]; then
  server_pin=(taskset -c "${usable_cpus[0]}")
  client_pin=(taskset -c "${usable_cpus[1]}")
else
  pin_notes="server and client not pinned (needs taskset and 2 usable CPUs)"
fi

# fi_pingpong -S takes one size, so each size is a separate server/client pair on 127.0.0.1.
# -e rdm: fi_pingpong defaults to dgram endpoints; chanpool uses RDM (and shm offers only RDM).
# FI_TCP_IFACE=lo: the provider's loopback entry (see fabric_iface above).
# Its usec/xfer column is elapsed / iterations / 2 (util/pingpong.c show_perf with
# xfers_per_iter = 2): the mean one-way time, 0.01 us resolution, no warm-up, no percentiles.
run_fi_pingpong_tcp() {
  local contender="libfabric-tcp"
  if ! command -v fi_pingpong >/dev/null; then
    notes+=("$contender: skipped, fi_pingpong not found (Debian package libfabric-bin)")
    progress "$contender: skipped (no fi_pingpong)"
    return 0
  fi
  [ -z "$pin_notes" ] || notes+=("$contender: $pin_notes")
  local size count port flags display server_out client_out usec
  for size in ${sizes//,/ }; do
    count="$(iterations_for "$size")"
    flags=(-p "$fabric_provider" -e "$fabric_endpoint" -S "$size" -I "$count")
    display="FI_TCP_IFACE=$fabric_iface ${server_pin[*]+${server_pin[*]} }fi_pingpong -p '$fabric_provider' ${flags[*]:2} (server) + "
    display+="FI_TCP_IFACE=$fabric_iface ${client_pin[*]+${client_pin[*]} }fi_pingpong -p '$fabric_provider' ${flags[*]:2} $fabric_address (client)"
    progress "$contender: $display"
    if ! port="$(pick_free_port)"; then
      notes+=("$contender $size B: FAILED, no free TCP control port found"); failed=1; continue
    fi
    server_out="$work_dir/fi_server_$size.out"
    client_out="$work_dir/fi_client_$size.out"
    FI_TCP_IFACE="$fabric_iface" timeout 600 "${server_pin[@]}" fi_pingpong "${flags[@]}" -B "$port" >"$server_out" 2>&1 &
    fi_server_pid=$!
    for _ in $(seq 1 100); do
      port_is_listening "$port" && break
      kill -0 "$fi_server_pid" 2>/dev/null || break
      sleep 0.05
    done
    if ! FI_TCP_IFACE="$fabric_iface" timeout 600 "${client_pin[@]}" fi_pingpong "${flags[@]}" -P "$port" "$fabric_address" >"$client_out" 2>&1; then
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
    printf '%s\t%s\t%s\t%s\tn/a\t%s\t%s\t%s\n' "$contender" "$fabric_provider" "$size" \
      "$(awk -v us="$usec" 'BEGIN { printf "%.1f", us * 1000 }')" "$count" "mean over all iterations" \
      "$display" >>"$rows_file"
  done
}

# Open MPI, 2 ranks on 2 distinct cores (--bind-to core --map-by core; both busy-poll).
# --mca pml ob1 keeps a usable UCX from taking over (it would ignore the btl list); --mca btl
# self,tcp leaves TCP as the only transport between the ranks; btl_tcp_if_include lo puts it on
# loopback (by default the tcp BTL excludes 127.0.0.0/8 and uses another local interface).
mpi_common=(-np 2 --bind-to core --map-by core --mca pml ob1)
mpi_tcp_flags=("${mpi_common[@]}" --mca btl "self,tcp" --mca btl_tcp_if_include lo)
mpi_shm_flags=("${mpi_common[@]}" --mca btl "self,vader")

run_mpi() {
  local mpi_bin="$BUILD/mpi_compare/mpi_latency"
  local tool_flags=(--sizes "$sizes" --iterations "$iterations" --json)
  if ! command -v mpirun >/dev/null; then
    notes+=("mpi: skipped, mpirun not found (Debian package openmpi-bin)")
    return 0
  fi
  run_json_contender mpi-tcp "Open MPI tcp BTL" "mpirun ${mpi_tcp_flags[*]} mpi_latency ${tool_flags[*]}" \
    "$mpi_bin" mpirun "${mpi_tcp_flags[@]}" "$mpi_bin" "${tool_flags[@]}"
  run_json_contender mpi-shm "Open MPI vader BTL (reference)" "mpirun ${mpi_shm_flags[*]} mpi_latency ${tool_flags[*]}" \
    "$mpi_bin" mpirun "${mpi_shm_flags[@]}" "$mpi_bin" "${tool_flags[@]}"
}

# chanpool's own rows, same provider and loopback address as the baselines, the two sides pinned
# to two cores like them (latency_bench pins with hwloc):
#   chanpool-direct  two processes, each its own endpoint from transport/fabric.hpp: fi_send /
#                    fi_recv, busy-polled CQ (what fi_pingpong does, through chanpool's hints)
#   chanpool-agents  the full path through two node agents: process -> inbox channel -> agent ->
#                    fabric -> agent -> channel -> process, and back
run_chanpool_fabric() {
  local bin="$BUILD/tools/latency_bench"
  local flags=(--transport fabric --provider "$fabric_provider" --sizes "$sizes" --iterations "$iterations" --json)
  run_json_contender chanpool-direct "$fabric_provider, chanpool endpoints" \
    "latency_bench ${flags[*]} --fabric-mode direct" "$bin" "$bin" "${flags[@]}" --fabric-mode direct
  run_json_contender chanpool-agents "$fabric_provider, through the agents" \
    "latency_bench ${flags[*]} --fabric-mode agent" "$bin" "$bin" "${flags[@]}" --fabric-mode agent
}

cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
fabric_version="$(fi_info --version 2>/dev/null | paste -sd ',' - | sed 's/,/, /g' || true)"
# The provider's first fi_info entry on the interface the baselines use: "provider, fabric,
# domain, version, type, protocol" on one line.
fabric_info="$(FI_TCP_IFACE="$fabric_iface" fi_info -p "$fabric_provider" -t FI_EP_RDM 2>/dev/null |
  awk -F': ' '/^provider:/ { if (n++) exit } NF == 2 { gsub(/^ +/, "", $1); printf "%s%s=%s", sep, $1, $2; sep = ", " }' || true)"
mpi_version="$(mpirun --version 2>/dev/null | head -n 1 || true)"

run_chanpool_fabric
run_fi_pingpong_tcp
run_mpi

header="# $(date -Iseconds) | nproc $(nproc) | CPU ${cpu_model:-unknown} | load $(cut -d' ' -f1-3 /proc/loadavg)"
header2="# libfabric: ${fabric_version:-fi_info not found} | provider: ${fabric_info:-"$fabric_provider (fi_info found no entry on interface $fabric_iface)"}"
header3="# ${mpi_version:-mpirun not found} | BUILD=$BUILD | sizes $sizes | iterations $iterations (sizes >= 65536 B: at most 2000)"
note_text="$(printf '%s\n' "${notes[@]+"${notes[@]}"}")"

python3 - "$rows_file" "$json_file" "$header" "$header2" "$header3" "$note_text" <<'PY' || failed=1
import json, sys
rows_path, json_path, header, header2, header3, note_text = sys.argv[1:7]
order = ["chanpool-direct", "chanpool-agents", "libfabric-tcp", "mpi-tcp", "mpi-shm"]
rows = []
for line in open(rows_path):
    contender, transport, size, median, p99, count, statistic, command = line.rstrip("\n").split("\t")
    rows.append({
        "contender": contender,
        "transport": transport,
        "size": int(size),
        "one_way_median_ns": float(median),
        "p99_ns": None if p99 == "n/a" else float(p99),
        "iterations": int(count),
        "statistic": statistic,
        "command": command,
    })
rows.sort(key=lambda r: (r["size"], order.index(r["contender"]) if r["contender"] in order else len(order)))

notes = [n for n in note_text.split("\n") if n]
# The tcp BTL row must be far slower than the shared-memory one; if not, TCP was not used.
by = {(r["contender"], r["size"]): r for r in rows}
for r in rows:
    shm = by.get(("mpi-shm", r["size"]))
    if r["contender"] == "mpi-tcp" and shm and r["one_way_median_ns"] < 2 * shm["one_way_median_ns"]:
        notes.append(f"mpi-tcp {r['size']} B: WARNING: not clearly slower than mpi-shm "
                     f"({r['one_way_median_ns']:.0f} vs {shm['one_way_median_ns']:.0f} ns): was TCP really used?")

print(header)
print(header2)
print(header3)
print()
print("| contender | transport | size | one-way us | p99 us | statistic | command |")
print("|---|---|---:|---:|---:|---|---|")
for r in rows:
    p99 = "n/a" if r["p99_ns"] is None else f"{r['p99_ns'] / 1000:.2f}"
    print(f"| {r['contender']} | {r['transport']} | {r['size']} | {r['one_way_median_ns'] / 1000:.2f} | {p99} "
          f"| {r['statistic']} | `{r['command']}` |")
print()
print("One-way = round trip / 2, on loopback (127.0.0.1 / lo). mpi-*: median of batch means and p99 of")
print("single round trips (tools/common/latency_report.hpp), after a warm-up. libfabric-tcp:")
print("fi_pingpong's usec/xfer, a mean over all iterations without warm-up, 0.01 us resolution.")
print("mpi-shm is a reference: it shows that mpi-tcp went through TCP.")
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
