// The orchestrator's credit policy (pool/src/dispatch.hpp) driven by a simulated clock: nodes
// with a FIFO task queue and W workers each, fixed message latencies, known run times. No
// processes, no transport, nothing timed: the same inputs give the same schedule every run.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <vector>

#include "dispatch.hpp"

namespace {

using chanpool::pool::detail::chunk_ref;
using chanpool::pool::detail::dispatch_limits;
using chanpool::pool::detail::dispatcher;

// In-order list scheduling with zero overhead: each item to whichever worker is free first.
double greedy_makespan(const std::vector<double>& items, std::size_t workers) {
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (std::size_t w = 0; w < workers; ++w) free_at.push(0.0);
  double end = 0;
  for (const double d : items) {
    const double start = free_at.top();
    free_at.pop();
    free_at.push(start + d);
    end = std::max(end, start + d);
  }
  return end;
}

// A seeded list of items uniform in [min, k * min), like pool_map's.
std::vector<double> work_list(std::size_t n, double min_s, double k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> items(n);
  for (double& d : items) d = min_s + u(rng) * (k - 1) * min_s;
  return items;
}

// A pool of `nodes` x `workers` as the engine drives the dispatcher: a chunk reaches its node's
// queue `latency_s` after it is sent, an idle worker of that node takes it, and its result
// reaches the orchestrator `latency_s` after it ends; then the orchestrator dispatches again.
class simulated_pool {
 public:
  simulated_pool(std::uint32_t nodes, std::uint32_t workers, double latency_s, dispatch_limits limits = {})
      : d_(limits), latency_(latency_s), nodes_(nodes), workers_(workers) {
    for (std::uint32_t k = 0; k < nodes; ++k) d_.add_node(workers);
    idle_.assign(nodes, workers);
    queues_.resize(nodes);
  }

  // Submits a job (one chunk per run time) now.
  std::uint32_t submit(std::vector<double> run_times) {
    const std::uint32_t id = next_job_++;
    jobs_[id] = {std::move(run_times), 0, now_, -1, 0};
    d_.add_job(id, static_cast<std::uint32_t>(jobs_[id].run_times.size()));
    dispatch();
    return id;
  }

  // Runs until nothing is left to happen.
  void run() {
    while (!events_.empty()) {
      const event e = events_.top();
      events_.pop();
      now_ = e.at;
      e.what();
    }
  }

  double now() const { return now_; }
  double started(std::uint32_t job) const { return jobs_.at(job).submitted; }
  double ended(std::uint32_t job) const { return jobs_.at(job).ended; }
  // The most chunks of `job` that one node held before the job's first result came back.
  std::size_t most_held_before_first_result(std::uint32_t job) const { return jobs_.at(job).most_held_early; }
  // The most chunks (of any job) one node ever held.
  std::size_t most_held() const { return most_held_; }
  std::uint32_t workers() const { return workers_; }

 private:
  struct job_sim {
    std::vector<double> run_times;
    std::size_t results = 0;
    double submitted = 0;
    double ended = -1;
    std::size_t most_held_early = 0;
  };
  struct event {
    double at;
    std::uint64_t order;  // ties in the order they were scheduled
    std::function<void()> what;
    bool operator>(const event& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void at(double t, std::function<void()> what) { events_.push({t, order_++, std::move(what)}); }

  void dispatch() {
    d_.dispatch([this](std::uint32_t node, chunk_ref ref) {
      at(now_ + latency_, [this, node, ref] { arrive(node, ref); });
      return dispatcher::offer::sent;
    });
    for (std::uint32_t k = 0; k < nodes_; ++k) {
      const auto& held = d_.outstanding(k);
      most_held_ = std::max(most_held_, held.size());
      std::map<std::uint32_t, std::size_t> per_job;
      for (const chunk_ref& r : held) ++per_job[r.job];
      for (const auto& [job, count] : per_job) {
        job_sim& j = jobs_.at(job);
        if (j.results == 0) j.most_held_early = std::max(j.most_held_early, count);
      }
    }
  }

  void arrive(std::uint32_t node, chunk_ref ref) {
    queues_[node].push_back(ref);
    start_work(node);
  }

  void start_work(std::uint32_t node) {
    while (idle_[node] > 0 && !queues_[node].empty()) {
      const chunk_ref ref = queues_[node].front();
      queues_[node].pop_front();
      --idle_[node];
      const double seconds = jobs_.at(ref.job).run_times[ref.chunk];
      at(now_ + seconds, [this, node, ref, seconds] {
        ++idle_[node];
        start_work(node);
        at(now_ + latency_, [this, node, ref, seconds] { result(node, ref, seconds); });
      });
    }
  }

  void result(std::uint32_t node, chunk_ref ref, double seconds) {
    EXPECT_TRUE(d_.chunk_done(node, ref, seconds)) << "a result for a chunk its node did not hold";
    job_sim& j = jobs_.at(ref.job);
    if (++j.results == j.run_times.size()) {
      j.ended = now_;
      d_.job_ended(ref.job);
    }
    dispatch();
  }

  dispatcher d_;
  double latency_;
  std::uint32_t nodes_;
  std::uint32_t workers_;
  double now_ = 0;
  std::uint64_t order_ = 0;
  std::uint32_t next_job_ = 1;
  std::priority_queue<event, std::vector<event>, std::greater<>> events_;
  std::map<std::uint32_t, job_sim> jobs_;
  std::vector<std::uint32_t> idle_;
  std::vector<std::deque<chunk_ref>> queues_;
  std::size_t most_held_ = 0;
};

constexpr std::uint32_t kNodes = 32;
constexpr std::uint32_t kWorkers = 4;
constexpr double kLatency = 0.0005;  // one way, orchestrator <-> node: a loaded loopback hop
// Before a job's first result, a node holds at most its workers plus the configured prefetch.
constexpr std::size_t kFirstResultBound = kWorkers * (1 + dispatch_limits{}.prefetch_per_worker);

// Start-up's warm-up: one no-op chunk per worker, finished before anything else is submitted.
void warm_up(simulated_pool& p) {
  p.submit(std::vector<double>(kNodes * kWorkers, 20e-6));
  p.run();
}

// The list's makespan within 2% of the zero-overhead in-order schedule, plus one round trip.
void expect_near_greedy(const simulated_pool& p, std::uint32_t job, const std::vector<double>& items) {
  const double ideal = greedy_makespan(items, kNodes * kWorkers);
  const double runtime = p.ended(job) - p.started(job);
  EXPECT_LE(runtime, 1.02 * ideal + 2 * kLatency) << "runtime " << runtime << " s, ideal " << ideal << " s";
}

// A map of 0.1-0.8 s items (seeded), run to its end: nothing sent ahead before its first result,
// and a makespan near the greedy schedule's.
void map_long_items(simulated_pool& p, std::uint64_t seed) {
  const auto items = work_list(kNodes * kWorkers * 4, 0.1, 8, seed);
  const auto job = p.submit(items);
  p.run();
  EXPECT_LE(p.most_held_before_first_result(job), kFirstResultBound);
  expect_near_greedy(p, job, items);
}

TEST(PoolDispatch, FirstMapAfterTheWarmUpIsNotSentAheadOnTheWarmUpsEvidence) {
  simulated_pool p(kNodes, kWorkers, kLatency);
  warm_up(p);
  map_long_items(p, 1);
}

TEST(PoolDispatch, MapOfLongItemsAfterAMapOfShortOnes) {
  simulated_pool p(kNodes, kWorkers, kLatency);
  warm_up(p);
  p.submit(std::vector<double>(20000, 0.001));  // deep prefetch for this one
  p.run();
  EXPECT_GT(p.most_held(), kFirstResultBound) << "short items should have been prefetched deeper";
  map_long_items(p, 2);
}

TEST(PoolDispatch, UniformItemsKeepTheirPrefetch) {
  simulated_pool p(kNodes, kWorkers, kLatency);
  warm_up(p);
  const std::vector<double> items(kNodes * kWorkers * 4, 0.1);
  const auto job = p.submit(items);
  p.run();
  EXPECT_LE(p.most_held_before_first_result(job), kFirstResultBound);
  // Equal items: once the job is known to be uniform, the queued one starts the moment a worker
  // is free; at most one round trip is lost while its first results come in.
  EXPECT_LE(p.ended(job) - p.started(job), greedy_makespan(items, kNodes * kWorkers) + 4 * kLatency + 1e-9);
}

TEST(PoolDispatch, InterleavedJobsEachStartWithoutEvidence) {
  simulated_pool p(kNodes, kWorkers, kLatency);
  warm_up(p);
  const auto a = work_list(kNodes * kWorkers * 2, 0.1, 8, 3);
  const auto b = work_list(kNodes * kWorkers * 2, 0.05, 4, 4);
  const auto ja = p.submit(a);
  const auto jb = p.submit(b);
  p.run();
  EXPECT_LE(p.most_held_before_first_result(ja), kFirstResultBound);
  EXPECT_LE(p.most_held_before_first_result(jb), kFirstResultBound);
  // The two lists back to back, as the pool's FIFO queue hands them out.
  std::vector<double> both = a;
  both.insert(both.end(), b.begin(), b.end());
  const double ideal = greedy_makespan(both, kNodes * kWorkers);
  EXPECT_LE(std::max(p.ended(ja), p.ended(jb)) - p.started(ja), 1.02 * ideal + 2 * kLatency);
}

TEST(PoolDispatch, AStreamOfSingleItemJobsIsNeverSentAhead) {
  simulated_pool p(kNodes, kWorkers, kLatency);
  warm_up(p);
  const auto items = work_list(kNodes * kWorkers * 4, 0.1, 8, 5);
  std::vector<std::uint32_t> jobs;
  for (const double d : items) jobs.push_back(p.submit({d}));  // apply_async, one after another
  const double t0 = p.started(jobs.front());
  p.run();
  // Every job is new when its chunk is sent: no node ever holds more than the configured depth.
  EXPECT_LE(p.most_held(), kFirstResultBound);
  double end = 0;
  for (const auto j : jobs) end = std::max(end, p.ended(j));
  EXPECT_LE(end - t0, 1.02 * greedy_makespan(items, kNodes * kWorkers) + 2 * kLatency);
}

TEST(PoolDispatch, ShortTasksArePrefetchedOnTheirOwnEvidence) {
  // 2 nodes x 2 workers and a fast link: no-op-like chunks keep every worker busy.
  constexpr double latency = 20e-6;
  simulated_pool p(2, 2, latency);
  const std::vector<double> items(40000, 10e-6);
  const auto job = p.submit(items);
  p.run();
  EXPECT_LE(p.most_held_before_first_result(job), 2u * (1 + dispatch_limits{}.prefetch_per_worker));
  EXPECT_GT(p.most_held(), 2u * (1 + dispatch_limits{}.prefetch_per_worker)) << "prefetch never grew";
  const double bound = 40000 * 10e-6 / 4;
  EXPECT_LE(p.ended(job) - p.started(job), 1.1 * bound + 4 * latency);
}

TEST(PoolDispatch, CapacityWithoutEvidenceIsTheConfiguredPrefetch) {
  dispatcher d({.prefetch_per_worker = 2, .max_prefetch_per_worker = 64, .horizon_s = 0.002});
  d.add_node(4);
  d.add_node(4);
  d.add_job(1, 1000);
  EXPECT_EQ(d.capacity(0), 4u * (1 + 2));
  // Evidence of another job changes nothing for this one.
  d.add_job(2, 1);
  EXPECT_EQ(d.capacity(0), 4u * (1 + 2));
}

TEST(PoolDispatch, LittleWorkLeftMeansNoPrefetch) {
  dispatcher d(dispatch_limits{});
  d.add_node(4);
  d.add_node(4);
  d.add_job(1, 9);  // one more than the pool's workers: queuing it would bet on one node
  EXPECT_EQ(d.capacity(0), 4u);
}

TEST(PoolDispatch, ALostNodesChunksComeBackAndRunFirst) {
  dispatcher d(dispatch_limits{});
  d.add_node(1);
  d.add_node(1);
  d.add_job(1, 4);
  std::vector<std::pair<std::uint32_t, chunk_ref>> sent;
  auto send = [&](std::uint32_t node, chunk_ref ref) {
    sent.emplace_back(node, ref);
    return dispatcher::offer::sent;
  };
  d.dispatch(send);
  ASSERT_EQ(sent.size(), 2u);  // one per worker: too little work for prefetch
  const auto lost = d.node_lost(1);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(d.live_nodes(), 1u);
  for (const chunk_ref& r : lost) d.requeue_front(r);
  EXPECT_TRUE(d.chunk_done(0, sent[0].second, 0.01));
  sent.clear();
  d.dispatch(send);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, 0u);
  EXPECT_EQ(sent[0].second, *lost.begin()) << "the re-run goes before the rest";
}

TEST(PoolDispatch, ABlockedNodeIsSkippedAndADroppedChunkForgotten) {
  dispatcher d(dispatch_limits{});
  d.add_node(1);
  d.add_node(1);
  d.add_job(1, 3);
  std::vector<std::uint32_t> to;
  d.dispatch([&](std::uint32_t node, chunk_ref ref) {
    if (ref.chunk == 0) return dispatcher::offer::dropped;
    if (node == 0) return dispatcher::offer::blocked;
    to.push_back(node);
    return dispatcher::offer::sent;
  });
  EXPECT_EQ(d.outstanding(0).size(), 0u);
  EXPECT_EQ(d.outstanding(1).size(), 1u);
  EXPECT_EQ(d.pending(), 1u) << "the chunk node 0 refused waits for the next dispatch";
}

}  // namespace
