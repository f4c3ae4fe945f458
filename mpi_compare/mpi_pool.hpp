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

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "man_help.hpp"
#include "mpi_common.hpp"

namespace chanpool::mpi_compare::pool {

constexpr int exit_failure = 1;  // an item not done exactly once
constexpr int exit_usage = 2;
constexpr int root_rank = 0;
constexpr int work_tag = 21;
constexpr int reply_tag = 22;
constexpr int end_tag = 23;
constexpr std::uint64_t max_items_per_worker = std::uint64_t{1} << 24;

struct work_message {
  std::int64_t index = 0;
  double seconds = 0;
};
static_assert(sizeof(work_message) == 16);

struct options {
  double imbalance_factor = 1;
  std::uint64_t items_per_worker = 4;
  double min_time = 0.1;
  std::uint64_t seed = 1;
  unsigned num_iters = 1;
  bool json = false;
  std::size_t print_items = 0;  // hidden: print this many items of the list and exit (no MPI)
  bool inject_fault = false;    // hidden: rank 1 replies with the wrong item index once
};

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

// The manual page printed by --help (tools/common/man_help.hpp): the tool's summary and
// schedule, then what the harness shares.
inline chanpool::tools::man::page manual(const tool& t) {
  const std::string n = t.name;
  const std::string pad(n.size(), ' ');
  return {
      .name = n,
      .summary = t.summary,
      .synopsis = "mpirun -np P " + n + " [--imbalance_factor K] [--items_per_worker N] [--min_time S]\n" +
                  "             " + pad + " [--seed SEED] [--num_iters I] [--json]",
      .description =
          std::string(t.description) +
          "\n"
          "A work item is a sleep (std::this_thread::sleep_for; the worker does not spin, though Open\n"
          "MPI ranks busy-poll while they wait in MPI_Recv, which on an oversubscribed machine\n"
          "competes with everything else). The durations come from one seeded list that\n"
          "mpi_pool_round, mpi_pool_dynamic and chanpool's Pool generate identically: item i is\n"
          "min_time + u_i * ((K - 1) * min_time), u_i = (x_i >> 11) * 2^-53, x_i the i-th output of\n"
          "std::mt19937_64(SEED): uniform in [min_time, K * min_time) (chanpool/workload/work_items.hpp).\n"
          "Each reply carries the item's index; the root checks that every item was done exactly\n"
          "once, by the rank it was sent to.\n"
          "\n"
          "Messages: root -> worker an item {index, seconds} (tag 21); worker -> root the index\n"
          "(tag 22); root -> worker an empty end-of-map message (tag 23).\n"
          "\n"
          "runtime = at the root, from the MPI_Barrier before the first send to the last reply. With\n"
          "--num_iters I the whole map runs I times (same list), each timed from its own barrier.\n"
          "P >= 2. Only rank 0 prints. The command line is parsed before MPI_Init: --help and usage\n"
          "errors need no MPI start-up.",
      .output =
          "Text (default):\n"
          "# " + n + ": <MPI library>, W workers, N items (M per worker), <schedule>\n"
          "# items: uniform(min, max) s, seed SEED, total T s of work\n"
          "map 1 ... map I     the runtime of each map, in seconds\n"
          "runtime             their mean\n"
          "zero overhead       what the round and the dynamic schedule would take with free\n"
          "                    messages, and the lower bound max(total / workers, longest item)\n"
          "\n"
          "--json, one line with the keys in this order:\n"
          "{\"tool\":\"" + n + "\",\"workers\":W,\"items\":N,\"imbalance_factor\":K,\"min_time\":S,\n"
          " \"seed\":SEED,\"runtime_s\":MEAN,\"runtimes_s\":[R1,...]}\n"
          "runtime_s is the mean of runtimes_s, one entry per --num_iters map.",
      .exit_status =
          "0 every item of every map done exactly once.\n"
          "1 an item done twice, never, or by a rank it was not sent to (described on stderr;\n"
          "  nothing on stdout).\n"
          "2 bad command line, or fewer than 2 ranks (MPI_Abort with 2).",
      .environment = mpi_environment_help("self,vader"),
      .examples =
          "The two standard cases (4 items per worker, 0.1 s to 0.1 * K s) with 32 workers:\n"
          "mpirun -np 33 " + n + " --imbalance_factor 1 --json\n"
          "mpirun -np 33 " + n + " --imbalance_factor 8 --json\n"
          "As root and with more ranks than cores (Open MPI refuses both unless told):\n"
          "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \\\n"
          "  mpirun -np 129 --oversubscribe --bind-to none " + n + " --imbalance_factor 8 --num_iters 3\n"
          "A small run (4 workers, items of 10 to 80 ms):\n"
          "mpirun -np 5 " + n + " --min_time 0.01 --imbalance_factor 8 --num_iters 2\n"
          "Force a transport: shared memory: --mca pml ob1 --mca btl self,vader;\n"
          "TCP: --mca pml ob1 --mca btl self,tcp."};
}

// Returns an exit code when the program should stop (help shown, items printed, bad flags).
inline std::optional<int> parse_command_line(int argc, char** argv, const tool& t, options& opts, bool print) {
  CLI::App app;
  chanpool::tools::man::apply(app, manual(t));
  app.add_option("--imbalance_factor", opts.imbalance_factor,
                 "K: items take uniform(min_time, K * min_time) seconds (1: all take min_time)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--items_per_worker", opts.items_per_worker, "Items per worker: the map has workers * this items")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, max_items_per_worker));
  app.add_option("--min_time", opts.min_time, "Shortest item, in seconds (e.g. 0.1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--seed", opts.seed, "Seed of the item list (std::mt19937_64)")->capture_default_str();
  app.add_option("--num_iters", opts.num_iters, "Run the whole map this many times and report each")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_flag("--json", opts.json, "Print only one JSON line on stdout");
  // An empty group hides these from --help: they exist for the tests only.
  app.add_option("--print_items", opts.print_items, "Test hook: print the first N items (%.17g, one a line) and exit")
      ->group("");
  app.add_flag("--inject_fault", opts.inject_fault, "Test hook: rank 1 replies with the wrong item index once")
      ->group("");
  if (const auto exit_code = chanpool::tools::man::parse(app, argc, argv, print))
    return *exit_code == EXIT_SUCCESS ? EXIT_SUCCESS : exit_usage;
  if (opts.print_items > 0) {
    if (print)
      for (const double item : work_items(opts.seed, opts.print_items, opts.min_time, opts.imbalance_factor))
        std::printf("%.17g\n", item);
    return EXIT_SUCCESS;
  }
  return std::nullopt;
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
  options opts;
  if (const auto exit_code = parse_command_line(argc, argv, t, opts, is_printing_rank())) return *exit_code;

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
