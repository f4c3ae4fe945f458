// The MPI pools' command line (mpi_pool_cli.hpp): the manual page and the options.
#include "mpi_pool_cli.hpp"

#include <string>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "man_help.hpp"
#include "mpi_help.hpp"

namespace chanpool::mpi_compare::pool {
namespace {

// The manual page printed by --help (tools/common/man_help.hpp): the tool's summary and
// schedule, then what the harness shares.
chanpool::tools::man::page manual(const tool_text& t) {
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

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv, const tool_text& t) {
  cli_result<options> r;
  options& o = r.options;
  CLI::App app;
  chanpool::tools::man::apply(app, manual(t));
  app.add_option("--imbalance_factor", o.imbalance_factor,
                 "K: items take uniform(min_time, K * min_time) seconds (1: all take min_time)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, max_imbalance_factor))
      ->check(chanpool::tools::finite_number());
  app.add_option("--items_per_worker", o.items_per_worker, "Items per worker: the map has workers * this items")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, max_items_per_worker));
  app.add_option("--min_time", o.min_time, "Shortest item, in seconds (e.g. 0.1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, max_min_time))
      ->check(chanpool::tools::finite_number());
  app.add_option("--seed", o.seed, "Seed of the item list (std::mt19937_64)")->capture_default_str();
  app.add_option("--num_iters", o.num_iters, "Run the whole map this many times and report each")
      ->capture_default_str()
      ->check(CLI::Range(1u, max_num_iters));
  app.add_flag("--json", o.json, "Print only one JSON line on stdout");
  // An empty group hides these from --help: they exist for the tests only.
  // The items are generated before they are printed: no more than one worker's largest list.
  app.add_option("--print_items", o.print_items, "Test hook: print the first N items (%.17g, one a line) and exit")
      ->check(CLI::Range(std::size_t{0}, std::size_t{max_items_per_worker}))
      ->group("");
  app.add_flag("--inject_fault", o.inject_fault, "Test hook: rank 1 replies with the wrong item index once")
      ->group("");
  chanpool::tools::man::parse(app, argc, argv, r);
  return r;
}

}  // namespace chanpool::mpi_compare::pool
