// pool_map: chanpool's Pool maps a seeded list of sleeping work items over N nodes x W workers,
// beside two MPI pools and Python's multiprocessing.Pool over the same list and worker count, and
// beside the ideal (the list handed out in order to whichever worker is free first, at zero
// overhead). --apply_latency measures one apply_async round trip instead.
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/pool/pool.hpp"
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
#include "chanpool/pool/mpi.hpp"
#endif
#include "man_help.hpp"
#include "chanpool/workload/work_items.hpp"
#include "pool_map_latency.hpp"
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
  std::string python = "auto";  // auto: when python3 is here (every node is local then)
  std::uint64_t apply_latency = 0;
  std::vector<std::string> from_json;
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

// The contenders' runs of one row (absent: not run).
struct contenders {
  std::optional<pm::contender_run> round, dynamic, python;
};

void print_human(const pm::row& row, const options& o, const pl::pool_info& info, const pool_run& pool,
                 std::size_t items, const contenders& c) {
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
  auto contender_line = [&](const char* name, const std::optional<pm::contender_run>& run) {
    if (!run) return;
    if (!run->ok) {
      std::printf("%-16s failed: %s\n", name, run->error.c_str());
      return;
    }
    const auto s = pm::speedup(run->runtime_s, row.pool_runtime_s);
    std::printf("%-16s %s  pool speedup %.2fx\n", name, seconds_text(run->runtime_s).c_str(), s ? *s : 0.0);
  };
  contender_line("mpi_pool_round", c.round);
  contender_line("mpi_pool_dynamic", c.dynamic);
  contender_line("python Pool", c.python);
  std::fflush(stdout);
}

// One map of the seeded list for imbalance factor k on a started pool.
pm::row measure(pl::pool& p, double k, const options& o, pool_run& pool) {
  const pl::pool_info& info = p.info();
  const std::size_t count = static_cast<std::size_t>(info.workers) * o.items_per_worker;
  const auto items = chanpool::workload::work_items(o.seed, count, o.min_time, k);
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
      std::fprintf(stderr, "pool_map: under a launcher (mpirun, srun) every rank is a node: --nodes must be %d (or left out)\n", size);
    MPI_Finalize();
    return man::exit_usage;
  }
  if (rank == 0 && o.mpi != "none")
    std::fprintf(stderr, "pool_map: under a launcher the MPI pools are not run (launchers do not nest); run "
                         "mpi_pool_round/mpi_pool_dynamic with -np workers+1 yourself\n");
  if (rank == 0 && o.python == "on")
    std::fprintf(stderr, "pool_map: under a launcher Python's Pool is not run (it has one host's cores only)\n");
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
          print_human(rows.back(), o, p->info(), pool, std::size_t{rows.back().workers} * o.items_per_worker, {});
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

// The MPI pools and Python's Pool on the row's list, each with the row's worker count; their
// runtimes go into the row.
contenders run_contenders(pm::row& row, const options& o, const std::string& round_tool, const std::string& dynamic_tool,
                          bool want_python) {
  contenders c;
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
  if (o.mpi.find("round") != std::string::npos) {
    c.round = pm::run_mpi_pool(request(round_tool));
    if (c.round->ok) row.mpi_round_s = c.round->runtime_s;
  }
  if (o.mpi.find("dynamic") != std::string::npos) {
    c.dynamic = pm::run_mpi_pool(request(dynamic_tool));
    if (c.dynamic->ok) row.mpi_dynamic_s = c.dynamic->runtime_s;
  }
  if (want_python) {
    pm::python_pool_request q;
    q.workers = row.workers;
    q.items = chanpool::workload::work_items(o.seed, std::size_t{row.workers} * o.items_per_worker, o.min_time,
                                                row.imbalance_factor);
    q.num_iters = o.num_iters;
    q.timeout_s = o.mpi_timeout;
    c.python = pm::run_python_pool(q);
    if (c.python->ok) row.python_s = c.python->runtime_s;
  }
  return c;
}

int run(const options& o, const char* argv0) {
  const std::string round_tool =
      o.mpi.find("round") != std::string::npos ? pm::find_sibling_tool(argv0, "mpi_pool_round") : "";
  const std::string dynamic_tool =
      o.mpi.find("dynamic") != std::string::npos ? pm::find_sibling_tool(argv0, "mpi_pool_dynamic") : "";
  std::vector<pm::row> rows;
  std::vector<pool_run> runs;  // beside rows
  bool all_correct = true;
  bool contender_failed = false;
  const bool want_python = o.python == "on" || (o.python == "auto" && pm::python_available());
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
    // The contenders run after the Pool has gone, so they do not share cores with it.
    for (std::size_t r = rows.size() - o.imbalance_factors.size(); r < rows.size(); ++r) {
      pm::row& row = rows[r];
      const contenders c = run_contenders(row, o, round_tool, dynamic_tool, want_python);
      for (const auto* run : {&c.round, &c.dynamic, &c.python})
        if (*run && !(*run)->ok) contender_failed = true;
      if (o.json) {
        std::printf("%s\n", pm::to_json(row).dump().c_str());
        std::fflush(stdout);
        if (c.round && !c.round->ok) std::fprintf(stderr, "pool_map: mpi_pool_round: %s\n", c.round->error.c_str());
        if (c.dynamic && !c.dynamic->ok) std::fprintf(stderr, "pool_map: mpi_pool_dynamic: %s\n", c.dynamic->error.c_str());
        if (c.python && !c.python->ok) std::fprintf(stderr, "pool_map: python Pool: %s\n", c.python->error.c_str());
      } else {
        print_human(row, o, info, runs[r], std::size_t{row.workers} * o.items_per_worker, c);
      }
    }
  }
  if (!o.csv.empty()) pm::write_csv(o.csv, rows);
  if (!o.plot.empty()) pm::write_svg_plot(o.plot, rows);
  if (!all_correct) return 1;
  return contender_failed ? 3 : 0;
}

// --from_json: the rows of earlier runs' JSON lines, drawn and tabled without running anything.
int redraw(const options& o) {
  std::vector<pm::row> rows;
  for (const std::string& path : o.from_json) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "pool_map: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find('{') == std::string::npos) continue;
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (const auto r = j.is_discarded() ? std::nullopt : pm::row_from_json(j)) rows.push_back(*r);
    }
  }
  if (rows.empty()) {
    std::fprintf(stderr, "pool_map: no pool_map --json map lines in the --from_json files\n");
    return 1;
  }
  if (!o.csv.empty()) pm::write_csv(o.csv, rows);
  if (!o.plot.empty()) pm::write_svg_plot(o.plot, rows);
  std::printf("pool_map: %zu rows from %zu file(s)\n", rows.size(), o.from_json.size());
  return 0;
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

// The manual page (--help).
man::page help_page() {
  man::page page;
  page.name = "pool_map";
  page.summary = "chanpool's Pool against MPI pools and Python's Pool on a seeded list of sleeping work items";
  page.synopsis =
      "pool_map [--imbalance_factor K[,K...]] [--items_per_worker N] [--num_iters N] [--nodes N[,N...]]\n"
      "         [--workers_per_node W] [--min_time S] [--mpi round,dynamic|none] [--mpi_args ARGS]\n"
      "         [--seed S] [--chunksize C] [--prefetch P] [--provider NAME] [--mpi_timeout S]\n"
      "         [--python auto|on|off] [--json] [--csv FILE] [--plot FILE.svg]\n"
      "pool_map --apply_latency N [--nodes N] [--workers_per_node W] [--provider NAME] [--json]\n"
      "pool_map --from_json FILE... [--csv FILE] [--plot FILE.svg]";
  page.description =
      "Maps one seeded list of work items over a chanpool Pool of N nodes x W workers, then runs the\n"
      "MPI pools of mpi_compare/ (mpi_pool_round: rounds of one item per worker, the next round once\n"
      "all replied; mpi_pool_dynamic: master/worker, next item to whoever replies) under mpirun, and\n"
      "Python's multiprocessing.Pool (map with chunksize=1), each with the same worker count and list.\n"
      "Item i sleeps min_time + u_i * (K - 1) * min_time seconds (uniform in [min_time, K * min_time),\n"
      "u_i from std::mt19937_64(seed); see tools/workload/chanpool/workload/work_items.hpp), so every contender gets the\n"
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
      "with many items measures task throughput (tasks/s).\n"
      "\n"
      "Python's Pool is handed the same durations (written to a temporary file), starts its workers\n"
      "with one untimed map of empty items, then maps the list num_iters times; every result is\n"
      "checked. It runs when python3 is found (--python auto) and only on one host: under mpirun it is\n"
      "not run.\n"
      "\n"
      "--apply_latency N measures what one apply_async costs its caller instead: an empty task, one call\n"
      "at a time, from this process to a worker and back (submit to get()), until N calls ran on a\n"
      "node other than the caller's (at least 2 nodes; 1000 untimed calls first). It prints the\n"
      "median, 99th percentile, mean and minimum for workers on another node and on the caller's.";
  page.output =
      "Per (nodes, imbalance factor): a '#' header (sizes, fabric, a note when workers share cores),\n"
      "then 'pool start-up', 'ideal' and 'bound', 'pool' with its efficiency (and tasks/s when\n"
      "--min_time is 0), and one line per MPI pool and for Python's Pool with the Pool's speedup over it.\n"
      "--json: one line per (nodes, imbalance factor):\n"
      "{\"tool\":\"pool_map\",\"nodes\":N,\"workers_per_node\":W,\"workers\":N*W,\"imbalance_factor\":K,\n"
      " \"ideal_s\":..,\"bound_s\":..,\"pool\":{\"runtime_s\":..,\"startup_s\":..,\"efficiency\":..},\n"
      " \"mpi_round\":{\"runtime_s\":..,\"speedup\":..},\"mpi_dynamic\":{\"runtime_s\":..,\"speedup\":..},\n"
      " \"python_pool\":{\"runtime_s\":..,\"speedup\":..}}\n"
      "(a contender's key is absent when it was not run or failed). --csv writes the same figures as a\n"
      "table; --plot draws speedup vs nodes per imbalance factor and contender as SVG.\n"
      "--apply_latency --json: {\"tool\":\"pool_map\",\"mode\":\"apply_latency\",\"nodes\":N,\"workers_per_node\":W,\n"
      " \"fabric\":..,\"other_node\":{\"count\":..,\"median_us\":..,\"p99_us\":..,\"mean_us\":..,\"min_us\":..},\n"
      " \"same_node\":{...}}";
  page.exit_status =
      "0  every run completed and every result was checked\n"
      "1  the Pool failed to start or a map failed or returned wrong results\n"
      "2  bad command line\n"
      "3  an MPI pool or Python's Pool failed (the Pool's figures were still printed; the error says why)\n"
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
      "pool_map --min_time 0 --items_per_worker 500000 --mpi none --python off   # task throughput\n"
      "pool_map --apply_latency 10000 --nodes 2 --workers_per_node 1   # one apply_async round trip";
  return page;
}

// The flags as typed, before the lists are parsed.
struct raw_args {
  std::string factors = "1";
  std::string nodes = "1";
  CLI::Option* factor_option = nullptr;
};

void add_options(CLI::App& app, options& o, raw_args& args) {
  args.factor_option =
      app.add_option("--imbalance_factor", args.factors,
                     "K: items sleep uniform(min_time, K*min_time); a list sweeps (with --plot and no K given: 1,8)")
          ->capture_default_str();
  app.add_option("--items_per_worker", o.items_per_worker, "Items per worker: the map has workers * this items")
      ->capture_default_str();
  app.add_option("--num_iters", o.num_iters, "Maps per contender; the runtime is their mean")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--nodes", args.nodes, "Virtual nodes on this host; a list (1,2,4,...) sweeps")->capture_default_str();
  app.add_option("--workers_per_node", o.workers_per_node, "Workers per node; 0: cores / nodes (hwloc), at least 1")
      ->capture_default_str();
  app.add_option("--min_time", o.min_time, "Shortest item in seconds; 0 measures task throughput")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !std::isfinite(d) || d < 0)
              return "must be a number of seconds, 0 or more (0 measures task throughput), not '" + v + "'";
            return {};
          },
          "SECONDS >= 0"));
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
  app.add_option("--python", o.python,
                 "Python's multiprocessing.Pool beside: auto (when python3 is found), on or off")
      ->capture_default_str()->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--apply_latency", o.apply_latency,
                 "N > 0: time N apply_async round trips to another node instead of a map; default: off");
  app.add_option("--from_json", o.from_json,
                 "Run nothing: write --csv/--plot from the JSON lines of earlier runs in these files");
  app.add_flag("--json", o.json, "One JSON line per run on stdout");
  app.add_option("--csv", o.csv, "Write the figures as CSV to FILE; default: none");
  app.add_option("--plot", o.plot, "Write an SVG plot of speedup vs nodes to FILE; default: none");
}

// The lists parsed and every value checked; false (after saying why) on a bad command line.
bool finish_options(options& o, raw_args& args) {
  // The standard figure has both imbalance factors: a plot without a chosen K draws both.
  if (!o.plot.empty() && args.factor_option->count() == 0) args.factors = "1,8";
  try {
    o.imbalance_factors = parse_list<double>(args.factors, "--imbalance_factor");
    o.nodes = parse_list<unsigned>(args.nodes, "--nodes");
    for (double k : o.imbalance_factors)
      if (k < 1) throw CLI::ValidationError("--imbalance_factor", "must be >= 1");
    for (unsigned n : o.nodes)
      if (n == 0) throw CLI::ValidationError("--nodes", "must be >= 1");
    if (o.mpi != "none" && o.mpi.find("round") == std::string::npos && o.mpi.find("dynamic") == std::string::npos)
      throw CLI::ValidationError("--mpi", "'" + o.mpi + "': use round, dynamic, round,dynamic or none");
  } catch (const CLI::Error& e) {
    std::fprintf(stderr, "pool_map: %s\n", e.what());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  options o;
  CLI::App app;
  man::apply(app, help_page());
  raw_args args;
  add_options(app, o, args);
  if (const auto code = man::parse(app, argc, argv)) return *code;
  if (!finish_options(o, args)) return man::exit_usage;
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
  if (launched_by_mpi()) return run_launched(o, argc, argv);
#endif
  try {
    if (!o.from_json.empty()) return redraw(o);
    if (o.apply_latency > 0)
      return pm::run_apply_latency({.nodes = o.nodes.front(), .workers_per_node = o.workers_per_node == 0 ? 1 : o.workers_per_node,
                                    .round_trips = o.apply_latency, .provider = o.provider, .json = o.json});
    return run(o, argv[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_map: %s\n", e.what());
    return 1;
  }
}
