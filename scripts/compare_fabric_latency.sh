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
# shellcheck source-path=SCRIPTDIR source=lib/compare_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/compare_common.sh"

# One provider string for every libfabric contender (design notes: pin one provider and one
# libfabric version per job). chanpool's fabric rows must use the same one.
fabric_provider="tcp;ofi_rxm"
fabric_endpoint="rdm"
fabric_address="127.0.0.1"
# The tcp provider's interface: without it the provider takes the first interface (eth0's
# address here: also local, but not loopback). fi_pingpong's -d (domain) does not select it with
# tcp;ofi_rxm in libfabric 1.17; FI_TCP_IFACE does (checked with ss: 127.0.0.1 connections).
fabric_iface="lo"

# shellcheck disable=SC2317  # called by parse_compare_options (lib/compare_common.sh)
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

sizes="64"
iterations="20000"
json_file=""
parse_compare_options compare_fabric_latency.sh "64,4096,65536" "$@"
setup_compare_run
# rows_file columns: contender, transport, size, one-way ns, p99 ns (or n/a), iterations,
# statistic, command.

# fi_pingpong -S takes one size, so each size is a separate server/client pair on 127.0.0.1
# (fi_pingpong_pair in lib/compare_common.sh: usec/xfer, a mean one-way time, 0.01 us resolution).
# -e rdm: fi_pingpong defaults to dgram endpoints; chanpool uses RDM (and shm offers only RDM).
# FI_TCP_IFACE=lo: the provider's loopback entry (see fabric_iface above). The server and client
# busy-poll, so each gets a core of its own (pin_server_and_client).
run_fi_pingpong_tcp() {
  local contender="libfabric-tcp"
  fi_pingpong_contender_ready "$contender" || return 0
  local size count flags display
  for size in ${sizes//,/ }; do
    count="$(iterations_for "$size")"
    flags=(-p "$fabric_provider" -e "$fabric_endpoint" -S "$size" -I "$count")
    display="FI_TCP_IFACE=$fabric_iface ${server_pin[*]+${server_pin[*]} }fi_pingpong -p '$fabric_provider' ${flags[*]:2} (server) + "
    display+="FI_TCP_IFACE=$fabric_iface ${client_pin[*]+${client_pin[*]} }fi_pingpong -p '$fabric_provider' ${flags[*]:2} $fabric_address (client)"
    progress "$contender: $display"
    FI_TCP_IFACE="$fabric_iface" fi_pingpong_pair "$contender" "$size" "$fabric_address" "${flags[@]}"
    [ -n "$fi_one_way_ns" ] || continue
    printf '%s\t%s\t%s\t%s\tn/a\t%s\t%s\t%s\n' "$contender" "$fabric_provider" "$size" "$fi_one_way_ns" \
      "$count" "mean over all iterations" "$display" >>"$rows_file"
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
  run_json_contender --transport "Open MPI tcp BTL" mpi-tcp "mpirun ${mpi_tcp_flags[*]} mpi_latency ${tool_flags[*]}" \
    "$mpi_bin" mpirun "${mpi_tcp_flags[@]}" "$mpi_bin" "${tool_flags[@]}"
  run_json_contender --transport "Open MPI vader BTL (reference)" mpi-shm "mpirun ${mpi_shm_flags[*]} mpi_latency ${tool_flags[*]}" \
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
  run_json_contender --transport "$fabric_provider, chanpool endpoints" chanpool-direct \
    "latency_bench ${flags[*]} --fabric-mode direct" "$bin" "$bin" "${flags[@]}" --fabric-mode direct
  run_json_contender --transport "$fabric_provider, through the agents" chanpool-agents \
    "latency_bench ${flags[*]} --fabric-mode agent" "$bin" "$bin" "${flags[@]}" --fabric-mode agent
}

read_host_versions
# The provider's first fi_info entry on the interface the baselines use: "provider, fabric,
# domain, version, type, protocol" on one line.
fabric_info="$(FI_TCP_IFACE="$fabric_iface" fi_info -p "$fabric_provider" -t FI_EP_RDM 2>/dev/null |
  awk -F': ' '/^provider:/ { if (n++) exit } NF == 2 { gsub(/^ +/, "", $1); printf "%s%s=%s", sep, $1, $2; sep = ", " }' || true)"

run_chanpool_fabric
run_fi_pingpong_tcp
run_mpi

host_header
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
