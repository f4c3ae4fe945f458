// Which node is given which chunk, and when: the orchestrator's credit policy, kept apart from
// the transport so that tests drive it with a simulated clock (tests/pool/dispatch_test.cpp).
//
// A node holds up to one chunk per worker plus a prefetch (chunks queued in its task channel so
// an idle worker finds its next one at once). Prefetch is a bet that the queued chunk will not be
// the one that ends last while another node's worker idles, so it is sized only on evidence from
// the job the chunk belongs to:
//   - until a job has returned a chunk, its prefetch is the configured prefetch_per_worker;
//   - after that it grows for short chunks, up to max_prefetch_per_worker, so that about
//     horizon_s of that job's work is queued per worker;
//   - at the tail it shrinks to each worker's share of the work not yet started, and when the
//     job's run times vary (or are not known well enough to call them uniform) it stops while
//     the job has tail_rounds rounds of chunks left, which are then handed out on demand.
// Nothing learnt from one job (a warm-up of no-ops, a map of short items) sets the depth of
// another's. Not threadsafe: the scheduler thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <set>
#include <unordered_map>
#include <vector>

namespace chanpool::pool::detail {

struct chunk_ref {
  std::uint32_t job = 0;
  std::uint32_t chunk = 0;
  bool operator<(const chunk_ref& o) const { return job != o.job ? job < o.job : chunk < o.chunk; }
  bool operator==(const chunk_ref& o) const { return job == o.job && chunk == o.chunk; }
};

struct dispatch_limits {
  std::uint32_t prefetch_per_worker = 1;      // before a job has evidence, and the least after
  std::uint32_t max_prefetch_per_worker = 64;
  double horizon_s = 0.002;                   // queued work per worker the prefetch aims at
  // Rounds of chunks (one per live worker each) that a job whose run times vary keeps back from
  // prefetch at its tail, to hand out on demand. Three: in a simulation of 32 x 4 workers and
  // lists of 0.1-0.8 s items (tests/pool/dispatch_test.cpp's model, 20 seeds, 1..32 nodes, 1 ms
  // each way) the worst map was 1.007x the greedy schedule, against 1.024x with two rounds.
  double tail_rounds = 3;
};

// One job's chunk run times: Welford's mean and variance, and a moving average for the depth.
struct run_time_stats {
  std::uint64_t count = 0;
  double mean = 0;
  double m2 = 0;
  double recent = 0;  // exponentially weighted: follows a job whose items change length
  void add(double seconds);
  // Enough chunks seen (8, or one per worker of a smaller pool), and their spread small: a
  // chunk queued behind another ends about when any other would.
  bool uniform(std::size_t live_workers) const;
};

class dispatcher {
 public:
  // What the caller's send did with an offered chunk.
  enum class offer : std::uint8_t {
    sent,     // now outstanding on that node
    blocked,  // the node cannot take it now (its channel is full, it is gone): try others
    dropped,  // not needed any more (its job ended, its items all came back): forget it
  };

  dispatcher() = default;
  explicit dispatcher(dispatch_limits limits) : limits_(limits) {}

  // Nodes are numbered in the order they are added.
  void add_node(std::uint32_t workers);
  std::uint32_t node_count() const { return static_cast<std::uint32_t>(nodes_.size()); }
  bool alive(std::uint32_t node) const { return nodes_.at(node).alive; }
  std::uint32_t workers(std::uint32_t node) const { return nodes_.at(node).workers; }
  std::size_t live_nodes() const;
  // The node can no longer run anything: returns the chunks it held, for the caller to re-run.
  std::set<chunk_ref> node_lost(std::uint32_t node);

  // A job's chunks 0..chunks-1 join the back of the queue, in order.
  void add_job(std::uint32_t job, std::uint32_t chunks);
  // The job is over: its evidence is dropped (its queued chunks are dropped when offered).
  void job_ended(std::uint32_t job) {
    evidence_.erase(job);
    queued_.erase(job);
  }
  // A chunk to run again (its worker died): it goes first.
  void requeue_front(chunk_ref ref) {
    pending_.push_front(ref);
    ++queued_[ref.job];
  }
  void clear_pending() {
    pending_.clear();
    queued_.clear();
  }
  std::size_t pending() const { return pending_.size(); }

  // The last result of `ref` came back from `node` after `seconds` of work: the node's credit
  // for it returns, and the job gains evidence. False when the node did not hold it.
  bool chunk_done(std::uint32_t node, chunk_ref ref, double seconds);
  // `ref` is no longer held by `node` (its worker died): true when it was.
  bool forget(std::uint32_t node, chunk_ref ref) { return nodes_.at(node).outstanding.erase(ref) != 0; }
  // Everything `node` holds, taken from it (a worker died holding an unknown chunk).
  std::set<chunk_ref> take_outstanding(std::uint32_t node);
  const std::set<chunk_ref>& outstanding(std::uint32_t node) const { return nodes_.at(node).outstanding; }

  // How many chunks `node` may hold now, judged on the job whose chunk is next.
  std::uint32_t capacity(std::uint32_t node) const;
  const run_time_stats* evidence(std::uint32_t job) const;

  // Offers queued chunks to nodes below their capacity, round robin from where the last call
  // stopped, until the queue is empty or no node takes one. send(node, ref) -> offer.
  template <class Send>
  void dispatch(Send&& send);

 private:
  struct node_state {
    std::uint32_t workers = 0;
    bool alive = true;
    std::set<chunk_ref> outstanding;  // sent, last result not yet back
  };

  dispatch_limits limits_;
  std::vector<node_state> nodes_;
  std::deque<chunk_ref> pending_;
  std::unordered_map<std::uint32_t, run_time_stats> evidence_;  // per live job (count 0: none yet)
  std::unordered_map<std::uint32_t, std::size_t> queued_;       // per job: its chunks in pending_
  std::uint32_t round_robin_ = 0;
};

template <class Send>
void dispatcher::dispatch(Send&& send) {
  const auto n = node_count();
  if (n == 0) return;
  std::vector<bool> blocked(n, false);
  for (bool progress = true; progress && !pending_.empty();) {
    progress = false;
    for (std::uint32_t i = 0; i < n && !pending_.empty(); ++i) {
      const std::uint32_t k = (round_robin_ + i) % n;
      node_state& node = nodes_[k];
      if (!node.alive || blocked[k] || node.outstanding.size() >= capacity(k)) continue;
      const chunk_ref ref = pending_.front();
      pending_.pop_front();
      if (const auto q = queued_.find(ref.job); q != queued_.end() && --q->second == 0) queued_.erase(q);
      switch (send(k, ref)) {
        case offer::sent:
          node.outstanding.insert(ref);
          progress = true;
          break;
        case offer::blocked:
          requeue_front(ref);
          blocked[k] = true;
          break;
        case offer::dropped:
          progress = true;
          break;
      }
    }
    round_robin_ = (round_robin_ + 1) % n;
  }
}

}  // namespace chanpool::pool::detail
