// The harness shared by the two MPI pool baselines (mpi_pool_round, mpi_pool_dynamic): flags,
// the worker loop, the root's bookkeeping (every item done exactly once), timing and output.
// Each tool supplies only its schedule: how the root hands items to workers.
//
// Messages (all on MPI_COMM_WORLD; rank 0 is the root, ranks 1..P-1 the workers):
//   root -> worker, tag work_tag: a work_message {item index, seconds}; the worker sleeps that
//     long (std::this_thread::sleep_for, no busy wait) and replies;
//   worker -> root, tag reply_tag: the item index (one std::int64_t);
//   root -> worker, tag end_tag, empty: this map is over (sent after the last reply of a map).
// Each of the --num_iters maps starts with an MPI_Barrier of all ranks; its runtime is measured
// at the root from just after that barrier (before the first send) to the last reply.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpi_common.hpp"
#include "mpi_pool_cli.hpp"

namespace chanpool::mpi_compare::pool {

constexpr int exit_failure = 1;  // an item not done exactly once
constexpr int root_rank = 0;
constexpr int work_tag = 21;
constexpr int reply_tag = 22;
constexpr int end_tag = 23;

struct work_message {
  std::int64_t index = 0;
  double seconds = 0;
};
static_assert(sizeof(work_message) == 16);

// What one map's schedule does, seen from the root: the harness supplies these.
class root_channel {
 public:
  root_channel(const std::vector<double>& items, int workers) : items_(items), workers_(workers) {}

  // Sends item `index` to worker rank `worker` (1..workers) with MPI_Send.
  void send(std::size_t index, int worker) {
    const work_message msg{static_cast<std::int64_t>(index), items_[index]};
    assigned_to_[index] = worker;
    MPI_Send(&msg, static_cast<int>(sizeof msg), MPI_BYTE, worker, work_tag, MPI_COMM_WORLD);
  }
  // Receives one reply from any worker (MPI_ANY_SOURCE); returns the worker's rank and
  // records the item it names.
  int receive() {
    std::int64_t index = -1;
    MPI_Status status;
    MPI_Recv(&index, 1, MPI_INT64_T, MPI_ANY_SOURCE, reply_tag, MPI_COMM_WORLD, &status);
    last_reply_ = std::chrono::steady_clock::now();
    record(index, status.MPI_SOURCE);
    return status.MPI_SOURCE;
  }
  std::size_t items() const { return items_.size(); }
  int workers() const { return workers_; }

  // Harness side.
  void begin_map() {
    done_.assign(items_.size(), 0);
    assigned_to_.assign(items_.size(), -1);
  }
  std::chrono::steady_clock::time_point last_reply() const { return last_reply_; }
  // Every item done exactly once? Adds what went wrong to `problems`.
  void check_map(std::vector<std::string>& problems) const {
    for (std::size_t i = 0; i < done_.size(); ++i)
      if (done_[i] != 1)
        add_problem(problems, "item " + std::to_string(i) + " done " + std::to_string(done_[i]) + " times");
  }
  std::vector<std::string> problems_seen;

 private:
  static void add_problem(std::vector<std::string>& problems, std::string text) {
    constexpr std::size_t max_listed = 10;
    if (problems.size() < max_listed) problems.push_back(std::move(text));
  }
  void record(std::int64_t index, int source) {
    if (index < 0 || static_cast<std::uint64_t>(index) >= items_.size()) {
      add_problem(problems_seen, "rank " + std::to_string(source) + " replied for item " + std::to_string(index) +
                                     ", not in 0.." + std::to_string(items_.size() - 1));
      return;
    }
    const auto i = static_cast<std::size_t>(index);
    if (assigned_to_[i] != source)
      add_problem(problems_seen, "rank " + std::to_string(source) + " replied for item " + std::to_string(i) +
                                     ", which was sent to " +
                                     (assigned_to_[i] < 0 ? std::string("no rank") : "rank " + std::to_string(assigned_to_[i])));
    ++done_[i];
  }

  const std::vector<double>& items_;
  int workers_;
  std::vector<unsigned> done_;
  std::vector<int> assigned_to_;
  std::chrono::steady_clock::time_point last_reply_{};
};

struct tool {
  const char* name;
  const char* summary;      // the manual's NAME line, after "<name> - "
  const char* description;  // the manual's DESCRIPTION: the tool's own schedule
  const char* schedule_name;  // for the human summary
  std::function<void(root_channel&)> schedule;
};

// Parsed before MPI_Init (no MPI start-up for --help and flag errors); only rank 0 prints.
inline bool is_printing_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(variable)) return std::string_view(value) == "0";
  return true;  // started without a launcher
}

// The worker side of every map: sleep for each item received, reply with its index, until
// the root says the map is over.
inline void run_worker(const options& opts, int rank) {
  bool fault_pending = opts.inject_fault && rank == 1;
  for (unsigned iter = 0; iter < opts.num_iters; ++iter) {
    MPI_Barrier(MPI_COMM_WORLD);
    for (;;) {
      work_message msg;
      MPI_Status status;
      MPI_Recv(&msg, static_cast<int>(sizeof msg), MPI_BYTE, root_rank, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
      if (status.MPI_TAG == end_tag) break;
      std::this_thread::sleep_for(std::chrono::duration<double>(msg.seconds));
      std::int64_t reply = msg.index;
      if (fault_pending) {
        reply = msg.index + 1;  // names an item sent to another rank (or none)
        fault_pending = false;
      }
      MPI_Send(&reply, 1, MPI_INT64_T, root_rank, reply_tag, MPI_COMM_WORLD);
    }
  }
}

// Zero-overhead references for the human summary.
struct ideal_times {
  double lower_bound = 0;  // max(total / workers, longest item): no schedule does better
  double round = 0;        // round-based: the sum over rounds of the round's longest item
  double dynamic = 0;      // items in list order, each to the first idle worker
};

inline ideal_times ideal(const std::vector<double>& items, std::size_t workers) {
  ideal_times t;
  const double total = std::accumulate(items.begin(), items.end(), 0.0);
  t.lower_bound = std::max(total / static_cast<double>(workers), *std::max_element(items.begin(), items.end()));
  for (std::size_t r = 0; r * workers < items.size(); ++r) {
    const auto first = items.begin() + static_cast<std::ptrdiff_t>(r * workers);
    const auto last = items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), (r + 1) * workers));
    t.round += *std::max_element(first, last);
  }
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (std::size_t w = 0; w < workers; ++w) free_at.push(0.0);
  for (const double item : items) {
    const double start = free_at.top();
    free_at.pop();
    free_at.push(start + item);
    t.dynamic = std::max(t.dynamic, start + item);
  }
  return t;
}

inline void report(const tool& t, const options& opts, int workers, const std::vector<double>& items,
                   const std::vector<double>& runtimes) {
  const double mean = std::accumulate(runtimes.begin(), runtimes.end(), 0.0) / static_cast<double>(runtimes.size());
  if (opts.json) {
    nlohmann::ordered_json j;  // keeps the documented key order
    j["tool"] = t.name;
    j["workers"] = workers;
    j["items"] = items.size();
    j["imbalance_factor"] = opts.imbalance_factor;
    j["min_time"] = opts.min_time;
    j["seed"] = opts.seed;
    j["runtime_s"] = mean;
    j["runtimes_s"] = runtimes;
    std::printf("%s\n", j.dump().c_str());
  } else {
    const auto best = ideal(items, static_cast<std::size_t>(workers));
    std::printf("# %s: %s, %d workers, %zu items (%llu per worker), %s\n", t.name, mpi_library_name().c_str(),
                workers, items.size(), static_cast<unsigned long long>(opts.items_per_worker), t.schedule_name);
    std::printf("# items: uniform(%g, %g) s, seed %llu, total %.6f s of work\n", opts.min_time,
                opts.imbalance_factor * opts.min_time, static_cast<unsigned long long>(opts.seed),
                std::accumulate(items.begin(), items.end(), 0.0));
    for (std::size_t i = 0; i < runtimes.size(); ++i) std::printf("map %-8zu  %.6f s\n", i + 1, runtimes[i]);
    std::printf("runtime       %.6f s (mean of %zu; barrier before the first send -> last reply)\n", mean,
                runtimes.size());
    std::printf("zero overhead round %.6f s, dynamic %.6f s, lower bound %.6f s\n", best.round, best.dynamic,
                best.lower_bound);
  }
  std::fflush(stdout);
}

inline int pool_main(int argc, char** argv, const tool& t) {
  const bool print = is_printing_rank();
  const auto cli = parse_command_line(argc, argv, tool_text{t.name, t.summary, t.description});
  if (print) chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& opts = cli.options;
  if (opts.print_items > 0) {  // a test hook: the list, without MPI
    if (print)
      for (const double item : work_items(opts.seed, opts.print_items, opts.min_time, opts.imbalance_factor))
        std::printf("%.17g\n", item);
    return EXIT_SUCCESS;
  }

  MPI_Init(&argc, &argv);
  int rank = 0;
  int ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks < 2) {
    if (rank == 0)
      std::fprintf(stderr, "%s: needs at least 2 ranks (1 root, >= 1 worker), got %d (run: mpirun -np 5 %s ...)\n",
                   t.name, ranks, t.name);
    MPI_Abort(MPI_COMM_WORLD, exit_usage);
  }
  const int workers = ranks - 1;

  int exit_code = EXIT_SUCCESS;
  if (rank == root_rank) {
    const auto items = work_items(opts.seed, static_cast<std::size_t>(opts.items_per_worker) * static_cast<std::size_t>(workers),
                                  opts.min_time, opts.imbalance_factor);
    root_channel channel(items, workers);
    std::vector<double> runtimes;
    std::vector<std::string> problems;
    for (unsigned iter = 0; iter < opts.num_iters; ++iter) {
      channel.begin_map();
      MPI_Barrier(MPI_COMM_WORLD);
      const auto start = std::chrono::steady_clock::now();
      t.schedule(channel);
      runtimes.push_back(std::chrono::duration<double>(channel.last_reply() - start).count());
      for (int w = 1; w <= workers; ++w) MPI_Send(nullptr, 0, MPI_BYTE, w, end_tag, MPI_COMM_WORLD);
      channel.check_map(channel.problems_seen);
      for (auto& p : channel.problems_seen) problems.push_back("map " + std::to_string(iter + 1) + ": " + p);
      channel.problems_seen.clear();
    }
    if (!problems.empty()) {
      for (const auto& line : problems) std::fprintf(stderr, "%s: %s\n", t.name, line.c_str());
      std::fprintf(stderr, "%s: FAILED: not every item was done exactly once by the rank it was sent to\n", t.name);
      exit_code = exit_failure;
    } else {
      report(t, opts, workers, items, runtimes);
    }
  } else {
    run_worker(opts, rank);
  }
  MPI_Finalize();
  return exit_code;
}

}  // namespace chanpool::mpi_compare::pool
