// mpi_latency's command line (mpi_latency_cli.hpp): the manual page, the shared ping-pong flags
// and the --sizes list.
#include "mpi_latency_cli.hpp"

#include <string>

#include <CLI/CLI.hpp>

#include "man_help.hpp"
#include "mpi_help.hpp"
#include "ping_pong_flags.hpp"

namespace chanpool::mpi_compare::latency_cli {
namespace {

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = tool_name,
      .summary = "MPI ping-pong latency baseline (MPI_Send/MPI_Recv between two ranks)",
      .synopsis = "mpirun -np 2 mpi_latency [--sizes B,B,...] [--iterations N] [--batch N] [--json]",
      .description =
          "Rank 0 sends a message with MPI_Send to rank 1, which answers with a message of the same\n"
          "size (MPI_Recv, then MPI_Send); one-way latency = round trip / 2. The MPI baseline that\n"
          "latency_bench --transport shm is compared against (scripts/compare_latency.sh). Must run\n"
          "as exactly 2 ranks; only rank 0 prints. Which transport MPI uses between the two ranks is\n"
          "up to the MPI library and its parameters (Open MPI on one host: shared memory, vader).\n"
          "\n"
          "Method, per size (shared with latency_bench and boost_mq_latency,\n"
          "tools/common/latency_report.hpp): a warm-up of min(iterations, 10000) round trips, then a\n"
          "pass that reads the clock every --batch round trips (the one-way figure is the median of\n"
          "those batch means / 2) and a pass that times every round trip (clock read included; its\n"
          "99th percentile / 2 is the p99). Sizes >= 65536 B run min(iterations, 2000) round trips.\n"
          "\n"
          "The command line is parsed before MPI_Init: --help and usage errors need no MPI start-up.",
      .output =
          "Text (default):\n"
          "# mpi_latency, transport mpi: one-way latency = round trip / 2\n"
          "# <MPI library and version>, MPI_Send/MPI_Recv between 2 ranks, warm-up ...\n"
          "# median: of batch means; p99: of individually timed round trips (clock read included)\n"
          "# size(B)   one-way(ns)   p99(ns)   iterations   (one row per size)\n"
          "\n"
          "--json: one JSON object (indented over several lines) {\"tool\":\"mpi_latency\",\n"
          "\"transport\":\"mpi\",\"results\":[{\"size\":B,\"one_way_ns\":median,\"p99_ns\":p99,\n"
          "\"iterations\":N}, ...]}.",
      .exit_status = "0 every size was measured.\n"
                     "2 bad command line (unknown option, malformed --sizes, a size outside 1..2^30), or\n"
                     "  not exactly 2 ranks (MPI_Abort with 2; mpirun then exits 2).\n"
                     "MPI errors abort the job (MPI_ERRORS_ARE_FATAL); mpirun reports them.",
      .environment = chanpool::mpi_compare::mpi_environment_help("self,vader"),
      .examples =
          "mpirun -np 2 mpi_latency --sizes 8,64,65536 --iterations 5000\n"
          "mpirun -np 2 --bind-to core --mca pml ob1 --mca btl self,vader mpi_latency --sizes 64 --json\n"
          "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \\\n"
          "  mpirun -np 2 --oversubscribe --bind-to none mpi_latency --sizes 64 --iterations 1000 --json"};
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  chanpool::tools::ping_pong_flags flags;
  chanpool::tools::add_ping_pong_flags(app, flags);
  if (chanpool::tools::man::parse(app, argc, argv, r)) return r;
  chanpool::tools::take_ping_pong_flags(flags, max_message_bytes, tool_name, r);
  return r;
}

}  // namespace chanpool::mpi_compare::latency_cli
