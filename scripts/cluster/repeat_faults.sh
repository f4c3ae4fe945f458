#!/usr/bin/env bash
# Runs each fault of tests/cluster (pool_map and fanin_bench on 4 emulated hosts; a link cut, a
# stop longer than peer_timeout, a SIGKILLed agent) N times (default 20) and prints, per fault,
# how many runs passed and the time from the fault to the end of the job (min / median / max).
#   scripts/cluster/repeat_faults.sh [N] [BUILD_DIR] [CASE...]   (BUILD_DIR default build/release;
#   CASE: pool_map_link_cut pool_map_stopped pool_map_agent_killed fanin_link_cut fanin_stopped
#   fanin_agent_killed; default all)
# Environment: CLUSTER_LAUNCHER=srun runs them under Slurm (run.sh --launcher srun; default
# mpirun); CLUSTER_FAIL_LOGS=DIR keeps the whole output of each failed run there.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20}
build=${2:-build/release}
run=scripts/cluster/run.sh
launcher=${CLUSTER_LAUNCHER:-mpirun}
fail_logs=${CLUSTER_FAIL_LOGS:-}
[ -z "$fail_logs" ] || mkdir -p "$fail_logs"
map=("$build/tools/pool_map" --workers_per_node 2 --imbalance_factor 8 --items_per_worker 8)
map_long=("$build/tools/pool_map" --workers_per_node 2 --imbalance_factor 8 --items_per_worker 16)
fanin=("$build/tools/fanin_bench" --senders_per_node 2 --duration 12)
# Under srun the fault is counted from later (every host has its node's segments, run.sh): a map of
# 8 items per worker can end before a fault 2 s after that, so it gets 16.
[ "$launcher" = srun ] && map=("${map_long[@]}")
declare -A cases=(
  [pool_map_link_cut]="--fault link --fault_at 2 --expect_rc 4 --expect every.result.arrived.once -- ${map[*]}"
  [pool_map_stopped]="--fault stop --fault_at 2 --stop_for 7 --expect_rc 4 --expect every.result.arrived.once -- ${map_long[*]}"
  [pool_map_agent_killed]="--fault kill --fault_at 2 --expect_rc 9,137 -- ${map_long[*]}"
  [fanin_link_cut]="--fault link --expect_rc 4 --expect node.2.is.unreachable -- ${fanin[*]}"
  [fanin_stopped]="--fault stop --stop_for 7 --expect_rc 4 --expect node.2.is.unreachable -- ${fanin[*]}"
  [fanin_agent_killed]="--fault kill --expect_rc 9,137 -- ${fanin[*]}"
)
# srun ends the step with 137, or 4 when fanin_bench's rank 0 saw the dead agent and aborted first.
[ "$launcher" = srun ] && cases[fanin_agent_killed]="--fault kill --expect_rc 4,137 -- ${fanin[*]}"
shift $(($# < 2 ? $# : 2))
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(pool_map_link_cut pool_map_stopped pool_map_agent_killed fanin_link_cut fanin_stopped fanin_agent_killed)
for name in "${names[@]}"; do
  pass=0
  times=()
  segs=0
  for ((i = 1; i <= n; i++)); do
    # shellcheck disable=SC2086
    output=$($run --launcher "$launcher" --hosts 4 --fault_host 2 --limit 15 --quiet ${cases[$name]} 2>&1)
    line=$(grep '^cluster-result:' <<<"$output")
    if [[ $line == *verdict=pass* ]]; then
      pass=$((pass + 1))
    else
      echo "  $name run $i: $line"
      [ -z "$fail_logs" ] || echo "$output" >"$fail_logs/$launcher.$name.$i.log"
    fi
    t=$(sed -n 's/.*fault_to_end=\([0-9.]*\).*/\1/p' <<<"$line")
    [ -n "$t" ] && times+=("$t")
    s=$(sed -n 's/.*segments_left=\([0-9]*\).*/\1/p' <<<"$line")
    [ -n "$s" ] && [ "$s" != 0 ] && segs=$((segs + 1))
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  count=$(wc -l <<<"$sorted")
  echo "$name ($launcher): $pass/$n passed; fault to end of job: min $(head -1 <<<"$sorted") s, median $(sed -n "$(((count + 1) / 2))p" <<<"$sorted") s, max $(tail -1 <<<"$sorted") s; runs leaving segments: $segs"
done
