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
# shellcheck source-path=SCRIPTDIR source=lib/compare_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/compare_common.sh"

# shellcheck disable=SC2317  # called by parse_compare_options (lib/compare_common.sh)
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

sizes="64"
iterations="200000"
json_file=""
parse_compare_options compare_latency.sh "8,64,1024" "$@"
setup_compare_run
# rows_file columns: contender, size, median ns, p99 ns (or n/a), iterations, statistic, command.

# fi_pingpong -S takes one size, so each size is a separate server/client pair (fi_pingpong_pair
# in lib/compare_common.sh: its usec/xfer is a mean one-way time, 0.01 us resolution).
# The shm provider only offers FI_EP_RDM, and fi_pingpong defaults to dgram, hence -e rdm.
# Both sides busy-poll like Open MPI's ranks, so they get one core each the way mpirun's
# --bind-to core places them (pin_server_and_client): left to the scheduler, the two pollers
# sometimes share a core and the mean jumps from ~0.3 us to tens of microseconds.
run_fi_pingpong() {
  local contender="libfabric"
  fi_pingpong_contender_ready "$contender" || return 0
  local size count flags display
  for size in ${sizes//,/ }; do
    count="$(iterations_for "$size")"
    flags=(-p shm -e rdm -S "$size" -I "$count")
    display="${server_pin[*]+${server_pin[*]} }fi_pingpong ${flags[*]} (server) + "
    display+="${client_pin[*]+${client_pin[*]} }fi_pingpong ${flags[*]} 127.0.0.1 (client)"
    progress "$contender: $display"
    fi_pingpong_pair "$contender" "$size" 127.0.0.1 "${flags[@]}"
    [ -n "$fi_one_way_ns" ] || continue
    printf '%s\t%s\t%s\tn/a\t%s\t%s\t%s\n' "$contender" "$size" "$fi_one_way_ns" "$count" \
      "mean over all iterations" "$display" >>"$rows_file"
  done
}

read_host_versions
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

host_header
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
