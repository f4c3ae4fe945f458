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

#include <nlohmann/json.hpp>

#include "chanpool/transport/diagnostics.hpp"
#include "launcher.hpp"
#include "chanpool/pool/pool.hpp"
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
#include "chanpool/pool/mpi.hpp"
#endif
#include "chanpool/workload/work_items.hpp"
#include "pool_map_cli.hpp"
#include "pool_map_latency.hpp"
#include "pool_map_support.hpp"

namespace {

namespace pl = chanpool::pool;
namespace pm = chanpool::tools::pool_map;
using steady = std::chrono::steady_clock;

// The work item: sleep (never spin: the workers share cores with everything else), then
// return the duration so the orchestrator can check every item came back once, in order.
double work_item(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return seconds;
}
CHANPOOL_TASK(work_item);

using options = chanpool::tools::pool_map_cli::options;

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
    return chanpool::tools::exit_usage;
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

}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  const auto cli = chanpool::tools::pool_map_cli::parse_command_line(argc, argv);
  chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& o = cli.options;
#ifdef CHANPOOL_POOL_MAP_WITH_MPI
  if (chanpool::tools::launched_by_mpi()) return run_launched(o, argc, argv);
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
