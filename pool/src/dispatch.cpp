// The orchestrator's credit policy. See dispatch.hpp.
#include "dispatch.hpp"

#include <algorithm>
#include <cmath>

namespace chanpool::pool::detail {
namespace {

// Chunks of a job seen before its spread is trusted (fewer in a pool of fewer workers).
constexpr std::uint64_t min_samples_for_uniform = 8;
// A job whose chunk run times have a standard deviation within this fraction of their mean is
// uniform: any queued chunk ends about when any other would.
constexpr double uniform_spread = 0.05;
// Weight of the newest chunk in run_time_stats::recent.
constexpr double recent_weight = 0.1;

}  // namespace

void run_time_stats::add(double seconds) {
  ++count;
  const double delta = seconds - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (seconds - mean);
  recent = count == 1 ? seconds : (1 - recent_weight) * recent + recent_weight * seconds;
}

bool run_time_stats::uniform(std::size_t live_workers) const {
  if (count < std::clamp<std::uint64_t>(live_workers, 2, min_samples_for_uniform)) return false;
  return std::sqrt(m2 / static_cast<double>(count - 1)) <= uniform_spread * mean;
}

void dispatcher::add_node(std::uint32_t workers) { nodes_.push_back({workers, true, {}}); }

std::size_t dispatcher::live_nodes() const {
  return static_cast<std::size_t>(std::count_if(nodes_.begin(), nodes_.end(), [](const node_state& n) { return n.alive; }));
}

std::set<chunk_ref> dispatcher::node_lost(std::uint32_t node) {
  nodes_.at(node).alive = false;
  return take_outstanding(node);
}

void dispatcher::add_job(std::uint32_t job, std::uint32_t chunks) {
  for (std::uint32_t c = 0; c < chunks; ++c) pending_.push_back({job, c});
  if (chunks != 0) queued_[job] += chunks;
  evidence_.try_emplace(job);  // empty until a chunk comes back
}

bool dispatcher::chunk_done(std::uint32_t node, chunk_ref ref, double seconds) {
  const bool held = nodes_.at(node).outstanding.erase(ref) != 0;
  // A late duplicate of an ended job's chunk adds nothing (and no entry).
  if (const auto it = evidence_.find(ref.job); it != evidence_.end()) it->second.add(seconds);
  return held;
}

std::set<chunk_ref> dispatcher::take_outstanding(std::uint32_t node) {
  std::set<chunk_ref> taken;
  taken.swap(nodes_.at(node).outstanding);
  return taken;
}

const run_time_stats* dispatcher::evidence(std::uint32_t job) const {
  const auto it = evidence_.find(job);
  return it == evidence_.end() ? nullptr : &it->second;
}

std::uint32_t dispatcher::capacity(std::uint32_t node) const {
  const std::uint32_t workers = nodes_.at(node).workers;
  if (pending_.empty()) return workers;
  const run_time_stats* seen = evidence(pending_.front().job);

  // Depth from this job's own chunks only; before it has any, what the options say.
  std::uint32_t per_worker = limits_.prefetch_per_worker;
  if (seen != nullptr && seen->count > 0) {
    const double want = std::ceil(limits_.horizon_s / std::max(seen->recent, 1e-9));
    per_worker = static_cast<std::uint32_t>(std::clamp<double>(
        want, limits_.prefetch_per_worker, std::max(limits_.prefetch_per_worker, limits_.max_prefetch_per_worker)));
  }

  // Chunks that would still wait for a worker once every idle worker of the pool had one:
  // queued here, plus those queued on nodes beyond their running ones, less the idle slots.
  std::size_t waiting = pending_.size();
  std::size_t idle = 0;
  std::size_t live_workers = 0;
  for (const node_state& n : nodes_) {
    if (!n.alive) continue;
    live_workers += n.workers;
    const std::size_t held = n.outstanding.size();
    if (held > n.workers) waiting += held - n.workers; else idle += n.workers - held;
  }
  if (live_workers == 0) return workers;
  const std::size_t unstarted = waiting > idle ? waiting - idle : 0;
  // A node may queue its workers' share of that, so at the tail each worker of the pool is
  // offered the same and none holds an item another, idle worker could have run. Unless the job
  // is known to be uniform, an item queued behind a long one could end last while others idle:
  // prefetch then stops while the job itself has tail_rounds rounds of chunks left, and those go
  // out on demand. Other jobs' chunks behind it do not count: nothing says how long they run.
  const bool uniform = seen != nullptr && seen->uniform(live_workers);
  std::size_t left = unstarted;
  if (!uniform) {
    const auto own = queued_.find(pending_.front().job);
    left = std::min(left, own == queued_.end() ? std::size_t{0} : own->second);
  }
  const auto reserve =
      uniform ? std::size_t{0} : static_cast<std::size_t>(limits_.tail_rounds * static_cast<double>(live_workers));
  const std::size_t share_per_worker = left > reserve ? (left - reserve) / live_workers : 0;
  return workers + workers * static_cast<std::uint32_t>(std::min<std::size_t>(per_worker, share_per_worker));
}

}  // namespace chanpool::pool::detail
