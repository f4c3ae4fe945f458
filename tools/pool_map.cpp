// pool_map: the seed's headline. chanpool's Pool maps a seeded list of sleeping work items over
// N nodes x W workers, beside two MPI pools over the same list and worker count, and beside the
// ideal (the list handed out in order to whichever worker is free first, at zero overhead).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "chanpool/pool/pool.hpp"
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
#include "chanpool/pool/mpi.hpp"
#endif
#include "man_help.hpp"
#include "mpi_compare/work_items.hpp"
#include "pool_map_support.hpp"

namespace {

namespace pl = chanpool::pool;
namespace pm = chanpool::tools::pool_map;
namespace man = chanpool::tools::man;
using steady = std::chrono::steady_clock;

// The work item: sleep (never spin: the workers share cores with everything else), then
// return the duration so the orchestrator can check every item came back once, in order.
double work_item(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return seconds;
}
CHANPOOL_TASK(work_item);

struct options {
  std::vector<double> imbalance_factors{1};
  std::uint64_t items_per_worker = 4;
  unsigned num_iters = 1;
  std::vector<unsigned> nodes{1};
  unsigned workers_per_node = 0;
  double min_time = 0.1;
  std::string mpi = "round,dynamic";
  std::string mpi_args;
  std::uint64_t seed = 1;
  std::size_t chunksize = 0;
  bool json = false;
  std::string csv;
  std::string plot;
  std::string provider;
  unsigned prefetch = 1;
  double mpi_timeout = 600;
};

struct pool_run {
  double runtime_s = 0;
  std::vector<double> runtimes_s;
  bool correct = true;
  std::string problem;
};

pool_run run_pool(pl::pool& p, const std::vector<double>& items, const options& o) {
  pool_run r;
  for (unsigned it = 0; it < o.num_iters; ++it) {
    const auto t0 = steady::now();
    const std::vector<double> results = p.map(work_item, items, o.chunksize);
    const double s = std::chrono::duration<double>(steady::now() - t0).count();
    r.runtimes_s.push_back(s);
    if (results != items) {
      r.correct = false;
      r.problem = "the Pool's results differ from the items (lost, duplicated or out of order)";
    }
  }
  double sum = 0;
  for (double s : r.runtimes_s) sum += s;
  r.runtime_s = sum / static_cast<double>(r.runtimes_s.size());
  return r;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

void print_human(const pm::row& row, const options& o, const pl::pool_info& info, const pool_run& pool,
                 std::size_t items, const std::optional<pm::mpi_pool_run>& round,
                 const std::optional<pm::mpi_pool_run>& dynamic) {
  std::printf("# pool_map: %u nodes x %u workers = %u workers, %zu items (%llu per worker), uniform(%g, %g) s, seed %llu\n",
              row.nodes, row.workers_per_node, row.workers, items, static_cast<unsigned long long>(o.items_per_worker),
              o.min_time, o.min_time * row.imbalance_factor, static_cast<unsigned long long>(o.seed));
  std::printf("# fabric: %s; %s\n", info.fabric.c_str(), info.pinned ? "workers pinned to cores" : "workers not pinned");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (row.workers + row.nodes > cores)
    std::printf("# note: %u workers and %u agent(s) share %u cores: figures include OS scheduling, not only chanpool\n",
                row.workers, row.nodes, cores);
  std::printf("pool start-up    %s  (agents, supervisors and workers up; not in the runtime)\n",
              seconds_text(row.pool_startup_s).c_str());
  std::printf("ideal            %s  (in-order list scheduling, zero overhead)   bound %s  (max(total/workers, longest))\n",
              seconds_text(row.ideal_s).c_str(), seconds_text(row.bound_s).c_str());
  const auto eff = pm::efficiency(row);
  std::printf("pool             %s", seconds_text(row.pool_runtime_s).c_str());
  if (eff && row.ideal_s > 0) std::printf("  efficiency %.1f%% (ideal/runtime)", *eff * 100);
  if (o.min_time == 0) std::printf("  %.0f tasks/s", static_cast<double>(items) / row.pool_runtime_s);
  std::printf("%s\n", pool.correct ? "" : "  RESULTS WRONG");
  if (o.num_iters > 1) {
    std::printf("pool maps       ");
    for (double s : pool.runtimes_s) std::printf(" %.3f", s);
    std::printf(" s\n");
  }
  auto mpi_line = [&](const char* name, const std::optional<pm::mpi_pool_run>& run) {
    if (!run) return;
    if (!run->ok) {
      std::printf("%-16s failed: %s\n", name, run->error.c_str());
      return;
    }
    const auto s = pm::speedup(run->runtime_s, row.pool_runtime_s);
    std::printf("%-16s %s  pool speedup %.2fx\n", name, seconds_text(run->runtime_s).c_str(), s ? *s : 0.0);
  };
  mpi_line("mpi_pool_round", round);
  mpi_line("mpi_pool_dynamic", dynamic);
  std::fflush(stdout);
}

// One map of the seeded list for imbalance factor k on a started pool.
pm::row measure(pl::pool& p, double k, const options& o, pool_run& pool) {
  const pl::pool_info& info = p.info();
  const std::size_t count = static_cast<std::size_t>(info.workers) * o.items_per_worker;
  const auto items = chanpool::mpi_compare::work_items(o.seed, count, o.min_time, k);
  pm::row row;
  row.nodes = info.nodes;
  row.workers_per_node = info.workers_per_node;
  row.workers = info.workers;
  row.imbalance_factor = k;
  row.ideal_s = pm::ideal_makespan(items, info.workers);
  row.bound_s = pm::bound(items, info.workers);
  row.pool_startup_s = info.startup_seconds;
  pool = run_pool(p, items, o);
  row.pool_runtime_s = pool.runtime_s;
  return row;
}

#ifdef CHANPOOL_POOL_MAP_WITH_MPI
constexpr int exit_node_lost = 4;

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// A lost node's rank never reaches MPI_Finalize, and the launcher would wait for it (for a host
// behind a cut link, until the link comes back): once the work is done, end the job. Open MPI
// and Slurm end every rank on MPI_Abort and exit with its code.
[[noreturn]] void end_job_after_node_loss(std::uint64_t nodes_lost, int code) {
  std::fprintf(stderr, "pool_map: %llu node(s) lost while the pool ran; %s; ending the job (MPI_Abort, exit %d)\n",
               static_cast<unsigned long long>(nodes_lost),
               code == 0 ? "every result arrived once (re-run on the other nodes)" : "results were wrong (above)",
               code == 0 ? exit_node_lost : code);
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code == 0 ? exit_node_lost : code);
  std::_Exit(code == 0 ? exit_node_lost : code);  // MPI_Abort does not return
}

// Under mpirun/srun: one node per rank, rank 0 orchestrates and prints. The MPI pools are not
// run from inside an MPI job (mpirun does not nest): run them beside it with the same counts.
int run_launched(options o, int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (o.nodes.size() != 1 || (o.nodes[0] != 1 && o.nodes[0] != static_cast<unsigned>(size))) {
    if (rank == 0)
      std::fprintf(stderr, "pool_map: under mpirun every rank is a node: --nodes must be %d (or left out)\n", size);
    MPI_Finalize();
    return man::exit_usage;
  }
  if (rank == 0 && o.mpi != "none")
    std::fprintf(stderr, "pool_map: under mpirun the MPI pools are not run (mpirun does not nest); run "
                         "mpi_pool_round/mpi_pool_dynamic with -np workers+1 yourself\n");
  pl::pool_options po;
  po.workers_per_node = o.workers_per_node;
  po.prefetch_per_worker = o.prefetch;
  po.max_prefetch_per_worker = std::max<std::uint32_t>(po.max_prefetch_per_worker, o.prefetch);
  if (!o.provider.empty()) po.agent.provider = o.provider;
  int code = 0;
  try {
    auto p = pl::start_pool_mpi(MPI_COMM_WORLD, po);
    if (p) {
      std::vector<pm::row> rows;
      for (const double k : o.imbalance_factors) {
        pool_run pool;
        rows.push_back(measure(*p, k, o, pool));
        if (!pool.correct) {
          std::fprintf(stderr, "pool_map: %s\n", pool.problem.c_str());
          code = 1;
        }
        if (o.json) {
          std::printf("%s\n", pm::to_json(rows.back()).dump().c_str());
        } else {
          print_human(rows.back(), o, p->info(), pool, std::size_t{rows.back().workers} * o.items_per_worker,
                      std::nullopt, std::nullopt);
        }
        std::fflush(stdout);
      }
      const std::uint64_t nodes_lost = p->counters().nodes_lost;
      p->close();
      p->join();
      if (!o.csv.empty()) pm::write_csv(o.csv, rows);
      if (!o.plot.empty()) pm::write_svg_plot(o.plot, rows);
      if (nodes_lost != 0) end_job_after_node_loss(nodes_lost, code);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_map (rank %d): %s\n", rank, e.what());
    code = 1;
  }
  MPI_Finalize();
  return code;
}
#endif

int run(const options& o, const char* argv0) {
  const bool want_round = o.mpi.find("round") != std::string::npos;
  const bool want_dynamic = o.mpi.find("dynamic") != std::string::npos;
  const std::string round_tool = want_round ? pm::find_sibling_tool(argv0, "mpi_pool_round") : "";
  const std::string dynamic_tool = want_dynamic ? pm::find_sibling_tool(argv0, "mpi_pool_dynamic") : "";
  std::vector<pm::row> rows;
  std::vector<pool_run> runs;  // beside rows
  bool all_correct = true;
  bool mpi_failed = false;
  for (const unsigned n : o.nodes) {
    pl::pool_options po;
    po.nodes = n;
    po.workers_per_node = o.workers_per_node;
    po.prefetch_per_worker = o.prefetch;
    po.max_prefetch_per_worker = std::max<std::uint32_t>(po.max_prefetch_per_worker, o.prefetch);
    if (!o.provider.empty()) po.agent.provider = o.provider;
    std::optional<pl::pool> p;
    try {
      p.emplace(po);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pool_map: the Pool did not start on %u nodes: %s\n", n, e.what());
      return 1;
    }
    const pl::pool_info info = p->info();
    for (const double k : o.imbalance_factors) {
      pool_run pool;
      try {
        rows.push_back(measure(*p, k, o, pool));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "pool_map: the map failed: %s\n", e.what());
        return 1;
      }
      if (!pool.correct) {
        all_correct = false;
        std::fprintf(stderr, "pool_map: %s\n", pool.problem.c_str());
      }
      runs.push_back(pool);
    }
    p->close();
    p->join();
    p.reset();
    // The MPI contenders run after the Pool has gone, so they do not share cores with it.
    for (std::size_t r = rows.size() - o.imbalance_factors.size(); r < rows.size(); ++r) {
      pm::row& row = rows[r];
      std::optional<pm::mpi_pool_run> round, dynamic;
      auto request = [&](const std::string& tool) {
        pm::mpi_pool_request q;
        q.tool = tool;
        q.workers = row.workers;
        q.imbalance_factor = row.imbalance_factor;
        q.items_per_worker = o.items_per_worker;
        q.min_time = o.min_time;
        q.seed = o.seed;
        q.num_iters = o.num_iters;
        q.mpi_args = o.mpi_args;
        q.timeout_s = o.mpi_timeout;
        return q;
      };
      if (want_round) {
        round = pm::run_mpi_pool(request(round_tool));
        if (round->ok) row.mpi_round_s = round->runtime_s; else mpi_failed = true;
      }
      if (want_dynamic) {
        dynamic = pm::run_mpi_pool(request(dynamic_tool));
        if (dynamic->ok) row.mpi_dynamic_s = dynamic->runtime_s; else mpi_failed = true;
      }
      if (o.json) {
        std::printf("%s\n", pm::to_json(row).dump().c_str());
        std::fflush(stdout);
        if (round && !round->ok) std::fprintf(stderr, "pool_map: mpi_pool_round: %s\n", round->error.c_str());
        if (dynamic && !dynamic->ok) std::fprintf(stderr, "pool_map: mpi_pool_dynamic: %s\n", dynamic->error.c_str());
      } else {
        print_human(row, o, info, runs[r], std::size_t{row.workers} * o.items_per_worker, round, dynamic);
      }
    }
  }
  if (!o.csv.empty()) pm::write_csv(o.csv, rows);
  if (!o.plot.empty()) pm::write_svg_plot(o.plot, rows);
  if (!all_correct) return 1;
  return mpi_failed ? 3 : 0;
}

template <class T>
std::vector<T> parse_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    std::istringstream one(part);
    T v{};
    if (!(one >> v) || !one.eof()) throw CLI::ValidationError(what, "'" + part + "' is not a number");
    out.push_back(v);
  }
  if (out.empty()) throw CLI::ValidationError(what, "empty list");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app;
  man::page page;
  page.name = "pool_map";
  page.summary = "chanpool's Pool against MPI pools on a seeded list of sleeping work items";
  page.synopsis =
      "pool_map [--imbalance_factor K[,K...]] [--items_per_worker N] [--num_iters N] [--nodes N[,N...]]\n"
      "         [--workers_per_node W] [--min_time S] [--mpi round,dynamic|none] [--mpi_args ARGS]\n"
      "         [--seed S] [--chunksize C] [--prefetch P] [--provider NAME] [--mpi_timeout S]\n"
      "         [--json] [--csv FILE] [--plot FILE.svg]";
  page.description =
      "Maps one seeded list of work items over a chanpool Pool of N nodes x W workers, then runs the\n"
      "MPI pools of mpi_compare/ (mpi_pool_round: the seed's round-based scheme; mpi_pool_dynamic:\n"
      "master/worker, next item to whoever replies) under mpirun with the same worker count and list.\n"
      "Item i sleeps min_time + u_i * (K - 1) * min_time seconds (uniform in [min_time, K * min_time),\n"
      "u_i from std::mt19937_64(seed); see mpi_compare/work_items.hpp), so every contender gets the\n"
      "same work. The Pool's workers pull items from their node's channel as they become idle; each\n"
      "node's queue is topped up from this process by credit.\n"
      "\n"
      "On one host (the default) the nodes are virtual: each has its own agent and shared-memory\n"
      "namespace and reaches the others only through libfabric (tcp;ofi_rxm on loopback).\n"
      "\n"
      "ideal is the makespan of the same list handed out in order to whichever of the same number of\n"
      "workers is free first, with zero overhead: what a perfect dynamic pool achieves. bound is\n"
      "max(total work / workers, longest item). Efficiency is ideal / runtime; speedup is an MPI pool's\n"
      "runtime / the Pool's. Pool start-up is reported apart and is not in the runtime. --min_time 0\n"
      "with many items measures task throughput (tasks/s).";
  page.output =
      "Per (nodes, imbalance factor): a '#' header (sizes, fabric, a note when workers share cores),\n"
      "then 'pool start-up', 'ideal' and 'bound', 'pool' with its efficiency (and tasks/s when\n"
      "--min_time is 0), and one line per MPI pool with the Pool's speedup over it.\n"
      "--json: one line per (nodes, imbalance factor):\n"
      "{\"tool\":\"pool_map\",\"nodes\":N,\"workers_per_node\":W,\"workers\":N*W,\"imbalance_factor\":K,\n"
      " \"ideal_s\":..,\"bound_s\":..,\"pool\":{\"runtime_s\":..,\"startup_s\":..,\"efficiency\":..},\n"
      " \"mpi_round\":{\"runtime_s\":..,\"speedup\":..},\"mpi_dynamic\":{\"runtime_s\":..,\"speedup\":..}}\n"
      "(an MPI key is absent when that pool was not run or failed). --csv writes the same figures as a\n"
      "table; --plot draws speedup vs nodes per imbalance factor and MPI pool as SVG.";
  page.exit_status =
      "0  every run completed and every result was checked\n"
      "1  the Pool failed to start or a map failed or returned wrong results\n"
      "2  bad command line\n"
      "3  an MPI pool failed (the Pool's figures were still printed; the error says why)\n"
      "4  under mpirun/srun: a node was lost while the pool ran; every result still arrived once\n"
      "   (re-run on the other nodes); rank 0 ended the job with MPI_Abort";
  page.environment =
      "FI_PROVIDER                 libfabric provider of the agents (default tcp;ofi_rxm), as --provider\n"
      "OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)  set by pool_map for mpirun, so it runs as root too\n"
      "CHANPOOL_JOB                not used: each Pool picks its own namespace (pool<pid>-<n>)";
  page.examples =
      "pool_map --imbalance_factor=1                         # the README's main job (1 node, one worker per core)\n"
      "pool_map --nodes 32 --workers_per_node 4 --imbalance_factor 8\n"
      "pool_map --nodes 1,2,4,8,16,32 --workers_per_node 4 --imbalance_factor 1,8 --plot speedup.svg --csv sweep.csv\n"
      "pool_map --min_time 0 --items_per_worker 500000 --mpi none   # task throughput";
  man::apply(app, page);
  std::string factors = "1";
  std::string nodes = "1";
  auto* factor_option =
      app.add_option("--imbalance_factor", factors,
                     "K: items sleep uniform(min_time, K*min_time); a list sweeps (with --plot and no K given: 1,8)")
          ->capture_default_str();
  app.add_option("--items_per_worker", o.items_per_worker, "Items per worker: the map has workers * this items")
      ->capture_default_str();
  app.add_option("--num_iters", o.num_iters, "Maps per contender; the runtime is their mean")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--nodes", nodes, "Virtual nodes on this host; a list (1,2,4,...) sweeps")->capture_default_str();
  app.add_option("--workers_per_node", o.workers_per_node, "Workers per node; 0: cores / nodes (hwloc), at least 1")
      ->capture_default_str();
  app.add_option("--min_time", o.min_time, "Shortest item in seconds; 0 measures task throughput")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--mpi", o.mpi, "MPI pools to run beside: round, dynamic, both (round,dynamic) or none")
      ->capture_default_str();
  app.add_option("--mpi_args", o.mpi_args, "Extra mpirun arguments (e.g. \"--mca btl self,vader\"); default: none");
  app.add_option("--mpi_timeout", o.mpi_timeout, "Seconds an MPI pool may run before it is killed")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the work item list")->capture_default_str();
  app.add_option("--chunksize", o.chunksize, "Items per chunk; 0: ceil(items / (4 * workers)) as Python")
      ->capture_default_str();
  app.add_option("--prefetch", o.prefetch, "Chunks queued per worker beyond the one it runs (grows for short tasks)")
      ->capture_default_str();
  app.add_option("--provider", o.provider, "libfabric provider of the agents; default: FI_PROVIDER, else tcp;ofi_rxm");
  app.add_flag("--json", o.json, "One JSON line per run on stdout");
  app.add_option("--csv", o.csv, "Write the figures as CSV to FILE; default: none");
  app.add_option("--plot", o.plot, "Write an SVG plot of speedup vs nodes to FILE; default: none");
  if (const auto code = man::parse(app, argc, argv)) return *code;
  // The seed's figure has both imbalance factors: a plot without a chosen K draws both.
  if (!o.plot.empty() && factor_option->count() == 0) factors = "1,8";
  try {
    o.imbalance_factors = parse_list<double>(factors, "--imbalance_factor");
    o.nodes = parse_list<unsigned>(nodes, "--nodes");
    for (double k : o.imbalance_factors)
      if (k < 1) throw CLI::ValidationError("--imbalance_factor", "must be >= 1");
    for (unsigned n : o.nodes)
      if (n == 0) throw CLI::ValidationError("--nodes", "must be >= 1");
    if (o.mpi != "none" && o.mpi.find("round") == std::string::npos && o.mpi.find("dynamic") == std::string::npos)
      throw CLI::ValidationError("--mpi", "'" + o.mpi + "': use round, dynamic, round,dynamic or none");
  } catch (const CLI::Error& e) {
    std::fprintf(stderr, "pool_map: %s\n", e.what());
    return man::exit_usage;
  }
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
  if (launched_by_mpi()) return run_launched(o, argc, argv);
#endif
  try {
    return run(o, argv[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_map: %s\n", e.what());
    return 1;
  }
}
