#!/usr/bin/env bash
# libfabric's own RMA bandwidth on loopback, a bandwidth anchor beside mpi_bandwidth: fabtests'
# fi_rma_bw -p "tcp;ofi_rxm" -e rdm -o write, then -o read, server and client on 127.0.0.1
# (FI_TCP_IFACE=lo, as scripts/compare_fabric_latency.sh), one pair per size.
#   The window (-W) is mpi_bandwidth's: 64, capped so that window * size <= 64 MiB; iterations
#   (-I) move about 64 MiB per size, at least 2 windows (fi_rma_bw needs more iterations than
#   the window); fi_rma_bw's own warm-up (-w, 10 by default) comes first.
#   With -o write and -o read BOTH sides issue the operations at the same time (fabtests
#   benchmarks/benchmark_shared.c, bandwidth_rma): each side's MB/s (bytes / microsecond = 10^6 B/s)
#   counts its own transfers while the other side's run too, so the link carries twice that.
#   The client's figure is the table's; the server's is printed beside it.
# fi_rma_bw: $FI_RMA_BW, else fi_rma_bw on PATH, else the one scripts/fetch_fabtests.sh built for
# the installed libfabric; without one the script says so and exits 0 (an optional anchor).
# Usage: scripts/fi_rma_bw_loopback.sh [--sizes LIST]     exit 1 if a run failed
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/compare_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/compare_common.sh"  # port_is_listening, pick_free_port

sizes="4096,65536,262144,1048576,4194304"
if [ "${1:-}" = "--sizes" ] && [ $# -ge 2 ]; then sizes="$2"; elif [ $# -gt 0 ]; then
  echo "usage: scripts/fi_rma_bw_loopback.sh [--sizes LIST]" >&2; exit 2
fi
provider="tcp;ofi_rxm"
cache="${FABTESTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chanpool/fabtests}"
version="$(dpkg-query -W -f='${source:Version}' libfabric1 2>/dev/null || true)"
version="${version#*:}"
bin="${FI_RMA_BW:-$(command -v fi_rma_bw || echo "$cache/${version%-*}/bin/fi_rma_bw")}"
if [ ! -x "$bin" ]; then
  echo "fi_rma_bw: skipped, not found (scripts/fetch_fabtests.sh builds it; FI_RMA_BW names one)"
  exit 0
fi

work="$(mktemp -d)"
server_pid=""
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
failed=0

# One server/client pair; prints "client-MB/s server-MB/s" from the last line of each report
# (columns: bytes iters total time MB/sec usec/xfer Mxfers/sec).
run_pair() {
  local port
  port="$(pick_free_port)" || { echo "no free TCP port" >&2; return 1; }
  FI_TCP_IFACE=lo timeout 120 "$bin" "$@" -B "$port" >"$work/server" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    port_is_listening "$port" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! FI_TCP_IFACE=lo timeout 120 "$bin" "$@" -P "$port" 127.0.0.1 >"$work/client" 2>&1; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    tail -n 3 "$work/client" "$work/server" >&2
    return 1
  fi
  wait "$server_pid" || true
  server_pid=""
  echo "$(awk 'END { print $5 }' "$work/client") $(awk 'END { print $5 }' "$work/server")"
}

echo "# $bin, libfabric ${version:-?}, provider $provider, 127.0.0.1 (FI_TCP_IFACE=lo); both sides transfer at once"
printf '%-6s %10s %7s %11s %12s %12s\n' "# op" "size(B)" "window" "iterations" "client MB/s" "server MB/s"
for op in write read; do
  for size in ${sizes//,/ }; do
    window=$(( size * 64 <= (64 << 20) ? 64 : (64 << 20) / size ))
    [ "$window" -ge 1 ] || window=1
    iterations=$(( (64 << 20) / size ))
    [ "$iterations" -gt $(( 2 * window )) ] || iterations=$(( 2 * window + 1 ))
    if figures="$(run_pair -p "$provider" -e rdm -o "$op" -S "$size" -W "$window" -I "$iterations")"; then
      read -r client server <<<"$figures"
      printf '%-6s %10s %7s %11s %12s %12s\n' "$op" "$size" "$window" "$iterations" "$client" "$server"
    else
      echo "$op $size: FAILED (fi_rma_bw -p '$provider' -e rdm -o $op -S $size -W $window -I $iterations)"
      failed=1
    fi
  done
done
exit "$failed"
