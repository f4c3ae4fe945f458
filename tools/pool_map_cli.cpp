// pool_map's command line (pool_map_cli.hpp): the manual page, the options, and the checks of
// the lists and values after CLI11 has parsed them.
#include "pool_map_cli.hpp"

#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "man_help.hpp"
#include "mpi_pool_cli.hpp"  // the MPI pools' ranges: pool_map runs them with the same values

namespace chanpool::tools::pool_map_cli {
namespace {

namespace man = chanpool::tools::man;
namespace mpi_pool = chanpool::mpi_compare::pool;
// run_shell() turns it into a steady_clock deadline: a finite number of seconds well within it.
constexpr double max_mpi_timeout = 1e6;

template <class T>
std::vector<T> parse_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    // istream reads "-1" as an unsigned count by wrapping it round (to 4294967295 nodes).
    if (std::is_unsigned_v<T> && part.find('-') != std::string::npos)
      throw CLI::ValidationError(what, "'" + part + "' is not a count (must be >= 1)");
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
      ->capture_default_str()
      ->check(count_within(0, mpi_pool::max_items_per_worker));
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
            if (d > mpi_pool::max_min_time)
              return "must be at most " + number_text(mpi_pool::max_min_time) +
                     " seconds (as for the MPI pools), not '" + v + "'";
            return {};
          },
          "SECONDS >= 0"));
  app.add_option("--mpi", o.mpi, "MPI pools to run beside: round, dynamic, both (round,dynamic) or none")
      ->capture_default_str();
  app.add_option("--mpi_args", o.mpi_args, "Extra mpirun arguments (e.g. \"--mca btl self,vader\"); default: none");
  app.add_option("--mpi_timeout", o.mpi_timeout, "Seconds an MPI pool may run before it is killed")
      ->capture_default_str()
      ->check(finite_within(0, max_mpi_timeout));
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

// The lists parsed and every value checked; why not on a bad command line.
std::optional<std::string> finish_options(options& o, raw_args& args) {
  // The standard figure has both imbalance factors: a plot without a chosen K draws both.
  if (!o.plot.empty() && args.factor_option->count() == 0) args.factors = "1,8";
  try {
    o.imbalance_factors = parse_list<double>(args.factors, "--imbalance_factor");
    o.nodes = parse_list<unsigned>(args.nodes, "--nodes");
    for (double k : o.imbalance_factors) {
      if (k < 1) throw CLI::ValidationError("--imbalance_factor", "must be >= 1");
      if (k > mpi_pool::max_imbalance_factor)
        throw CLI::ValidationError("--imbalance_factor", "must be at most " +
                                                             number_text(mpi_pool::max_imbalance_factor) +
                                                             " (as for the MPI pools)");
    }
    for (unsigned n : o.nodes)
      if (n == 0) throw CLI::ValidationError("--nodes", "must be >= 1");
    if (o.mpi != "none" && o.mpi.find("round") == std::string::npos && o.mpi.find("dynamic") == std::string::npos)
      throw CLI::ValidationError("--mpi", "'" + o.mpi + "': use round, dynamic, round,dynamic or none");
  } catch (const CLI::Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  CLI::App app;
  man::apply(app, help_page());
  raw_args args;
  add_options(app, r.options, args);
  if (man::parse(app, argc, argv, r)) return r;
  if (auto why = finish_options(r.options, args)) return refuse(r, man::exit_usage, "pool_map: " + *why + "\n");
  return r;
}

}  // namespace chanpool::tools::pool_map_cli
