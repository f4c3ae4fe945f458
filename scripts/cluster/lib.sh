# Emulated cluster hosts on one machine, sourced by scripts/cluster/run.sh.
#
# Host k (0..N-1) is a network namespace with its own address 10.231.0.(k+1)/24 on eth0, a veth
# whose other end is port p<k> of bridge br0 inside one more namespace (the "switch"). Nothing is
# created in the calling namespace: no interface, address or route, so no traffic can leave.
# A holder process per host (sleep) owns the host's mount and UTS namespaces: hostname h<k>, a
# private tmpfs on /dev/shm and a private /etc/hosts naming every host. nsenter into the holder
# is "being on host k" (cluster_exec). cluster_down removes everything and is safe to call twice.

cluster_prefix="cpc$$"
cluster_dir=""
cluster_hosts=0
declare -a cluster_holder=()
# Pids of daemons that serve the job on the hosts (slurm.sh): not counted as the job's processes.
cluster_daemons=""

cluster_log() { echo "cluster: $*" >&2; }

# Prints why the harness cannot run here (empty when it can).
cluster_missing() {
  [ "$(id -u)" = 0 ] || { echo "needs root (network and mount namespaces)"; return; }
  local tool
  for tool in ip unshare nsenter mountpoint; do
    command -v "$tool" >/dev/null 2>&1 || { echo "needs $tool"; return; }
  done
  ip netns add "${cluster_prefix}probe" 2>/dev/null || { echo "cannot create a network namespace (ip netns add)"; return; }
  if ! ip netns exec "${cluster_prefix}probe" unshare --mount --uts --propagation private true 2>/dev/null; then
    ip netns del "${cluster_prefix}probe" 2>/dev/null
    echo "cannot create mount and UTS namespaces (unshare)"
    return
  fi
  ip netns del "${cluster_prefix}probe" 2>/dev/null
}

cluster_ns() { echo "${cluster_prefix}h$1"; }
cluster_switch() { echo "${cluster_prefix}sw"; }
cluster_addr() { echo "10.231.0.$(($1 + 1))"; }

# cluster_up N: builds N hosts; returns non-zero (after cleaning up) when a step fails.
cluster_up() {
  cluster_hosts=$1
  cluster_dir=$(mktemp -d "/tmp/${cluster_prefix}.XXXXXX")
  local sw k ns
  sw=$(cluster_switch)
  ip netns add "$sw" || return 1
  ip -n "$sw" link add br0 type bridge || return 1
  ip -n "$sw" link set br0 up || return 1
  : >"$cluster_dir/hosts"
  echo "127.0.0.1 localhost" >>"$cluster_dir/hosts"
  for ((k = 0; k < cluster_hosts; k++)); do echo "$(cluster_addr "$k") h$k" >>"$cluster_dir/hosts"; done
  for ((k = 0; k < cluster_hosts; k++)); do
    ns=$(cluster_ns "$k")
    ip netns add "$ns" || return 1
    ip -n "$sw" link add "p$k" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$sw" link set "p$k" master br0 up || return 1
    ip -n "$ns" link set lo up || return 1
    ip -n "$ns" addr add "$(cluster_addr "$k")/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
    # The holder: new mount + UTS namespaces inside the host's network namespace.
    ip netns exec "$ns" unshare --mount --uts --propagation private -- /bin/sh -c \
      "hostname h$k && mount -t tmpfs -o size=2g,mode=1777 chanpool-shm /dev/shm &&
       mount --bind '$cluster_dir/hosts' /etc/hosts && echo \$\$ >'$cluster_dir/h$k.pid' && exec sleep 100000" \
      </dev/null >/dev/null 2>"$cluster_dir/h$k.holder.err" &
    disown $!
    local waited=0
    while [ ! -s "$cluster_dir/h$k.pid" ]; do
      sleep 0.05
      waited=$((waited + 1))
      if [ "$waited" -gt 100 ]; then
        cluster_log "host h$k did not start: $(cat "$cluster_dir/h$k.holder.err")"
        return 1
      fi
    done
    cluster_holder[$k]=$(cat "$cluster_dir/h$k.pid")
  done
  # The launcher's remote shell: "rsh h<k> command..." runs the command on host k.
  cat >"$cluster_dir/rsh" <<RSH
#!/bin/sh
# rsh replacement for mpirun (plm_rsh_agent): runs "\$@" on host \$1 of this emulated cluster.
host=\$1
shift
pid=\$(cat "$cluster_dir/\$host.pid" 2>/dev/null) || { echo "rsh: no host \$host" >&2; exit 255; }
exec nsenter -t "\$pid" -n -m -u -- /bin/sh -c "\$*"
RSH
  chmod +x "$cluster_dir/rsh"
  for ((k = 0; k < cluster_hosts; k++)); do echo "h$k slots=64"; done >"$cluster_dir/hostfile"
}

# cluster_exec K command...: runs a command on host K.
cluster_exec() {
  local k=$1
  shift
  nsenter -t "${cluster_holder[$k]}" -n -m -u -- "$@"
}

# Every process on host K other than its holder, daemons included (one pid per line).
cluster_host_pids() {
  local p
  for p in $(ip netns pids "$(cluster_ns "$1")" 2>/dev/null); do
    [ "$p" = "${cluster_holder[$1]}" ] || echo "$p"
  done
}

# The job's processes on host K: not its holder, not the daemons.
cluster_pids() {
  local p
  for p in $(cluster_host_pids "$1"); do
    [[ " $cluster_daemons " == *" $p "* ]] || echo "$p"
  done
}

# Chanpool segments in host K's /dev/shm.
cluster_segments() { cluster_exec "$1" /bin/sh -c 'ls /dev/shm | grep "^chanpool\." || true'; }

cluster_down() {
  local k p sw
  sw=$(cluster_switch)
  for ((k = 0; k < cluster_hosts; k++)); do
    for p in $(cluster_host_pids "$k"); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    [ -n "${cluster_holder[$k]:-}" ] && kill -KILL "${cluster_holder[$k]}" 2>/dev/null
  done
  wait 2>/dev/null
  for ((k = 0; k < cluster_hosts; k++)); do ip netns del "$(cluster_ns "$k")" 2>/dev/null; done
  ip netns del "$sw" 2>/dev/null
  [ -n "$cluster_dir" ] && rm -rf "$cluster_dir"
  cluster_hosts=0
  cluster_dir=""
  cluster_daemons=""
  return 0
}
