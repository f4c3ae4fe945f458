#!/usr/bin/env bash
# Runs a command under mpirun or srun across N emulated hosts (scripts/cluster/lib.sh), optionally
# injects a fault into one host, checks the outcome, and always removes the hosts.
#
#   scripts/cluster/run.sh --hosts 4 [options] -- PROGRAM [ARGS...]
#
# PROGRAM runs once per host (mpirun -np N --map-by node, started on host h0, reaching the
# others through an rsh agent that enters their namespaces), or with --launcher srun under a
# Slurm started for the run (scripts/cluster/slurm.sh: slurmctld on h0, one slurmd per host):
# srun -N N -n N --mpi=pmix --kill-on-bad-exit=1 on h0.
#   --launcher L         mpirun (default) | srun
#   --srun_arg A         one more srun option (repeatable), e.g. --kill-on-bad-exit=0
#   --hosts N            hosts (default 4)
#   --fault F            none | link (cut host K's link) | kill (SIGKILL host K's rank process,
#                        which runs its agent) | stop (SIGSTOP every process of host K for
#                        --stop_for seconds, then SIGCONT)
#   --fault_host K       default 1
#   --fault_at S         seconds after every host runs its rank (default 3; under srun, and
#                        has its node's segments)
#   --stop_for S         default 8
#   --restore_after S    link fault: bring the link back after S seconds (default: never)
#   --limit S            the job must end within S seconds of the fault (default 25), else it
#                        is killed and reported as a hang
#   --expect_rc N[,M..]  the launcher's exit status must be one of these (default 0)
#   --expect REGEX       the combined output must match (repeatable)
#   --quiet              print the output only when a check fails
#   --launcher_tcp_retries N  net.ipv4.tcp_retries2 on h0, where the launcher runs (default 2, about
#                        1.4 s before a message to an unreachable host fails; Linux default 15)
#   --allow_segments     segments left in /dev/shm are reported, not a failure (a job that Open
#                        MPI kills with signals)
# Prints one line "cluster-result: rc=... seconds=... fault_to_end=... segments_left=...
# processes_left=... verdict=pass|fail". Exit status: 0 pass, 1 fail, 77 cannot run here
# (the reason is printed), 2 bad arguments. Under srun, slurm.sh's CLUSTER_* variables set
# Slurm's timeouts and keep its logs (docs/cluster.md, "Slurm").
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=slurm.sh
. "$here/slurm.sh"

hosts=4 fault=none fault_host=1 fault_at=3 stop_for=8 restore_after="" limit=25 expect_rc=0 quiet=0
launcher_tcp_retries=2 allow_segments=0 launcher_kind=mpirun
declare -a expect=() srun_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=$2; shift 2 ;;
    --launcher) launcher_kind=$2; shift 2 ;;
    --srun_arg) srun_args+=("$2"); shift 2 ;;
    --fault) fault=$2; shift 2 ;;
    --fault_host) fault_host=$2; shift 2 ;;
    --fault_at) fault_at=$2; shift 2 ;;
    --stop_for) stop_for=$2; shift 2 ;;
    --restore_after) restore_after=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --expect_rc) expect_rc=$2; shift 2 ;;
    --expect) expect+=("$2"); shift 2 ;;
    --quiet) quiet=1; shift ;;
    --launcher_tcp_retries) launcher_tcp_retries=$2; shift 2 ;;
    --allow_segments) allow_segments=1; shift ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "run.sh: no program given (… -- PROGRAM ARGS)" >&2; exit 2; }
case $fault in none | link | kill | stop) ;; *) echo "run.sh: --fault must be none, link, kill or stop" >&2; exit 2 ;; esac
case $launcher_kind in mpirun | srun) ;; *) echo "run.sh: --launcher must be mpirun or srun" >&2; exit 2 ;; esac
[ "$hosts" -ge 2 ] || { echo "run.sh: --hosts must be >= 2" >&2; exit 2; }
[ "$fault" = none ] || [ "$fault_host" -ne 0 ] || { echo "run.sh: --fault_host 0 runs the launcher; pick another" >&2; exit 2; }

missing=$(cluster_missing)
[ -z "$missing" ] || missing=${missing}
if [ "$launcher_kind" = srun ]; then
  [ -n "$missing" ] || missing=$(slurm_missing)
else
  command -v mpirun >/dev/null 2>&1 || missing=${missing:-"needs mpirun (Open MPI)"}
fi
if [ -n "$missing" ]; then
  echo "SKIP: the emulated cluster cannot run here: $missing"
  exit 77
fi

trap 'cluster_down' EXIT
trap 'exit 130' INT TERM
cluster_up "$hosts" || { echo "cluster-result: verdict=fail (the hosts could not be built)"; exit 1; }
if [ "$launcher_kind" = srun ]; then
  slurm_up || { echo "cluster-result: verdict=fail (Slurm could not be started on the hosts)"; exit 1; }
fi
out="$cluster_dir/output"

# Open MPI: one daemon per host through the rsh agent, its out-of-band and MPI traffic on eth0
# only. The out-of-band keepalives keep their defaults (300 s idle): when Open MPI notices a lost
# daemon before the job has ended it aborts the job, so it must not notice first.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_plm_rsh_agent="$cluster_dir/rsh"
export OMPI_MCA_oob_tcp_if_include=eth0 OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_btl=self,vader,tcp
# The agents find eth0 by themselves (start_agent_mpi lets the provider choose when the ranks span
# hosts; lo and eth0 are all a host has); CLUSTER_FI_TCP_IFACE names one explicitly.
[ -n "${CLUSTER_FI_TCP_IFACE:-}" ] && export FI_TCP_IFACE="$CLUSTER_FI_TCP_IFACE"
# The daemons start in $HOME: a relative program path is made absolute, and the ranks start here.
program=$1
shift
case $program in */*) program=$(realpath "$program") ;; esac
# After MPI_Abort mpirun tells every daemon to end and waits for each; a message to a host behind
# a cut link is retransmitted until net.ipv4.tcp_retries2 gives up (15: about 15 minutes). The
# launcher's host (h0; the setting is per network namespace) gives up after --launcher_tcp_retries.
ip netns exec "$(cluster_ns 0)" sysctl -qw net.ipv4.tcp_retries2="$launcher_tcp_retries"
start=$(date +%s.%N)
if [ "$launcher_kind" = srun ]; then
  # Every rank opens its TCP connections to the others inside MPI_Init instead of at the first
  # message: under srun, on this loaded machine, Open MPI 4.1's btl tcp now and then failed a
  # connection made during the start-up and crashed the rank (a NULL callback); far less often
  # so (docs/cluster.md, "Slurm").
  export OMPI_MCA_mpi_preconnect_mpi=1
  # --kill-on-bad-exit: a rank that dies or exits non-zero ends the step (else the others could
  # wait for it forever, e.g. in MPI_Init); --srun_arg options come after and may undo it.
  slurm_exec 0 srun -N "$hosts" -n "$hosts" --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 \
    --chdir="$PWD" "${srun_args[@]}" "$program" "$@" >"$out" 2>&1 &
else
  cluster_exec 0 mpirun --wdir "$PWD" --hostfile "$cluster_dir/hostfile" -np "$hosts" --map-by node --oversubscribe \
    --bind-to none "$program" "$@" >"$out" 2>&1 &
fi
launcher=$!

# a - b for two `date +%s.%N` readings
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
elapsed() { minus "$(date +%s.%N)" "$start"; }
# The rank process of host K: the program's process whose parent is that host's Open MPI daemon
# (orted; on h0 mpirun itself) or the step's slurmstepd.
rank_pid() {
  local p parent
  for p in $(cluster_pids "$1"); do
    parent=$(ps -o comm= -p "$(ps -o ppid= -p "$p" | tr -d ' ')" 2>/dev/null)
    case $parent in orted | mpirun | slurmstepd) echo "$p"; return ;; esac
  done
}

fault_time=""
if [ "$fault" != none ]; then
  # Counted from the moment every host runs its rank (mpirun's start-up varies with the load).
  # Under srun, from the moment every host also has its node's segments: a rank exists well
  # before its MPI_Init ends (a PMIx fence through every slurmstepd, seconds on a busy machine),
  # and a fault counted from the ranks' start alone landed in the start-up.
  declare -a host_ready=()
  for ((i = 0; i < 600; i++)); do
    all=1
    for ((k = 0; k < hosts; k++)); do
      [ -n "${host_ready[$k]:-}" ] && continue
      [ -n "$(rank_pid "$k")" ] || { all=0; break; }
      [ "$launcher_kind" = mpirun ] && continue
      [ -n "$(cluster_segments "$k")" ] || { all=0; break; }
      host_ready[$k]=1  # under srun a host once ready is not polled again (less load at start-up)
    done
    [ "$all" = 1 ] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$fault_at"
  fault_time=$(date +%s.%N)
  case $fault in
    link) ip -n "$(cluster_switch)" link set "p$fault_host" down ;;
    kill) p=$(rank_pid "$fault_host"); [ -n "$p" ] && kill -KILL "$p" ;;
    stop) for p in $(cluster_host_pids "$fault_host"); do kill -STOP "$p"; done ;;
  esac
  cluster_log "fault '$fault' on h$fault_host at $(elapsed) s"
fi

deadline=$(($(date +%s) + limit))
stopped_until=""
[ "$fault" = stop ] && stopped_until=$(($(date +%s) + stop_for))
restore_at=""
[ -n "$restore_after" ] && restore_at=$(($(date +%s) + restore_after))
hang=0
while kill -0 "$launcher" 2>/dev/null; do
  now=$(date +%s)
  if [ -n "$stopped_until" ] && [ "$now" -ge "$stopped_until" ]; then
    for p in $(cluster_host_pids "$fault_host"); do kill -CONT "$p"; done
    cluster_log "h$fault_host resumed at $(elapsed) s"
    stopped_until=""
  fi
  if [ -n "$restore_at" ] && [ "$now" -ge "$restore_at" ]; then
    ip -n "$(cluster_switch)" link set "p$fault_host" up
    cluster_log "h$fault_host link back at $(elapsed) s"
    restore_at=""
  fi
  if [ "$now" -ge "$deadline" ]; then hang=1; break; fi
  sleep 0.1
done
end=$(date +%s.%N)
rc=0
if [ "$hang" = 1 ]; then
  rc=124
  cluster_log "the job did not end within $limit s: killing it; still running:"
  for ((k = 0; k < hosts; k++)); do
    for p in $(cluster_pids "$k"); do cluster_log "  h$k: $(ps -o pid=,stat=,args= -p "$p" | cut -c1-120)"; done
  done
  for ((k = 0; k < hosts; k++)); do for p in $(cluster_pids "$k"); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done; done
  wait "$launcher" 2>/dev/null
else
  wait "$launcher"
  rc=$?
fi
[ -n "$stopped_until" ] && for p in $(cluster_host_pids "$fault_host"); do kill -CONT "$p"; done
seconds=$(minus "$end" "$start")
after_fault=""
[ -n "$fault_time" ] && after_fault=$(minus "$end" "$fault_time")

# A host behind a cut link cannot hear that the job ended: what runs there (its Open MPI daemon,
# the rank waiting in it) is counted, then the link comes back and it must end by itself.
cut_left=0
if [ "$fault" = link ] && [ -z "$restore_after" ] && [ "$hang" = 0 ]; then
  cut_left=$(cluster_pids "$fault_host" | wc -l)
  ip -n "$(cluster_switch)" link set "p$fault_host" up
  for ((i = 0; i < 300; i++)); do [ -z "$(cluster_pids "$fault_host")" ] && break; sleep 0.1; done
  cluster_log "h$fault_host: $cut_left processes ran there when the job ended; link back, $(cluster_pids "$fault_host" | wc -l) left after $((i / 10)) s"
fi
# What the job left behind: processes on any host (given 5 s to finish leaving), segments.
left=0
for ((i = 0; i < 50; i++)); do
  left=0
  for ((k = 0; k < hosts; k++)); do left=$((left + $(cluster_pids "$k" | wc -l))); done
  [ "$left" = 0 ] && break
  sleep 0.1
done
if [ "$left" != 0 ]; then
  for ((k = 0; k < hosts; k++)); do
    for p in $(cluster_pids "$k"); do cluster_log "left on h$k: $(ps -o pid=,stat=,args= -p "$p" | cut -c1-150)"; done
  done
fi
segments=0
for ((k = 0; k < hosts; k++)); do
  s=$(cluster_segments "$k")
  [ -z "$s" ] && continue
  segments=$((segments + $(echo "$s" | wc -l)))
  cluster_log "left in h$k:/dev/shm: $(echo "$s" | tr '\n' ' ')"
done

[ "$launcher_kind" = srun ] && slurm_save_logs
verdict=pass
why=""
[ "$hang" = 0 ] || { verdict=fail; why="$why; hang"; }
[[ ",$expect_rc," == *",$rc,"* ]] || { verdict=fail; why="$why; exit status $rc, expected $expect_rc"; }
[ "$segments" = 0 ] || [ "$allow_segments" = 1 ] || { verdict=fail; why="$why; $segments segments left"; }
[ "$left" = 0 ] || { verdict=fail; why="$why; $left processes left"; }
for re in "${expect[@]}"; do
  grep -Eq -- "$re" "$out" || { verdict=fail; why="$why; output lacks /$re/"; }
done
if [ "$quiet" = 0 ] || [ "$verdict" = fail ]; then cat "$out"; fi
echo "cluster-result: hosts=$hosts launcher=$launcher_kind fault=$fault rc=$rc seconds=$seconds fault_to_end=${after_fault:-none}" \
  "segments_left=$segments processes_left=$left cut_host_processes=$cut_left verdict=$verdict${why:+ (${why#; })}"
[ "$verdict" = pass ]
