// mpi_latency: MPI_Send/MPI_Recv ping-pong between rank 0 and rank 1, the MPI baseline that
// chanpool's `latency_bench --transport shm` is compared against. Timing, statistics and output
// come from tools/common/latency_report.hpp so that every contender is measured the same way.
//
//   mpirun -np 2 mpi_latency --sizes 8,64,1024 --iterations 100000 [--json]
#include <mpi.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "latency_report.hpp"
#include "man_help.hpp"
#include "mpi_common.hpp"

namespace {

namespace report = chanpool::tools;

constexpr const char* tool_name = "mpi_latency";
constexpr const char* transport_name = "mpi";
constexpr int exit_usage = 2;

// Large messages are slow per round trip; capping them keeps a full size sweep short while
// still giving thousands of samples. Every ping-pong tool applies the same cap.
// MPI counts are int; 1 GiB also keeps the message buffer a sane size.
constexpr std::size_t max_message_bytes = std::size_t{1} << 30;
// measure_round_trips keeps one double per iteration for the p99 pass: 100 M = 800 MB.

constexpr int ping_rank = 0;
constexpr int pong_rank = 1;
constexpr int ping_pong_tag = 7;

struct options {
  std::vector<std::size_t> sizes;
  std::uint64_t iterations = 100000;
  std::uint64_t batch = 100;
  bool json = false;
};


// Parsed before MPI_Init so that --help and flag errors need no MPI start-up; mpirun's
// environment tells which rank this is, so that only rank 0 prints.
bool is_printing_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(variable)) return std::string_view(value) == "0";
  return true;  // started without a launcher
}

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

// Returns an exit code when the program should stop (help shown or bad command line).
std::optional<int> parse_command_line(int argc, char** argv, options& opts, bool print) {
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  report::ping_pong_flags flags;
  report::add_ping_pong_flags(app, flags);
  if (const auto exit_code = chanpool::tools::man::parse(app, argc, argv, print))
    return *exit_code == EXIT_SUCCESS ? EXIT_SUCCESS : exit_usage;
  opts.iterations = flags.iterations;
  opts.batch = flags.batch;
  opts.json = flags.json;
  if (const auto error = report::size_list_error(flags.sizes_text, opts.sizes, max_message_bytes)) {
    if (print) std::fprintf(stderr, "%s: %s\nRun with --help for more information.\n", tool_name, error->c_str());
    return exit_usage;
  }
  return std::nullopt;
}

using chanpool::mpi_compare::mpi_library_name;

// Send and receive errors need no checks: MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL.
void send_to(int peer, std::vector<char>& buffer, std::size_t size) {
  MPI_Send(buffer.data(), static_cast<int>(size), MPI_BYTE, peer, ping_pong_tag, MPI_COMM_WORLD);
}

void receive_from(int peer, std::vector<char>& buffer, std::size_t size) {
  MPI_Recv(buffer.data(), static_cast<int>(size), MPI_BYTE, peer, ping_pong_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

std::vector<report::latency_row> run_pinger(const options& opts, std::vector<char>& buffer) {
  std::vector<report::latency_row> rows;
  for (const auto size : opts.sizes) {
    const auto iterations = report::iterations_for(size, opts.iterations);
    auto round_trip = [&] {
      send_to(pong_rank, buffer, size);
      receive_from(pong_rank, buffer, size);
    };
    for (std::uint64_t i = 0; i < report::warm_up_for(iterations); ++i) round_trip();
    rows.push_back(report::measure_round_trips(size, iterations, opts.batch, round_trip));
  }
  return rows;
}

void run_ponger(const options& opts, std::vector<char>& buffer) {
  for (const auto size : opts.sizes) {
    const auto iterations = report::iterations_for(size, opts.iterations);
    const auto answers = report::warm_up_for(iterations) + report::round_trips_per_size(iterations);
    for (std::uint64_t i = 0; i < answers; ++i) {
      receive_from(ping_rank, buffer, size);
      send_to(ping_rank, buffer, size);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (const auto exit_code = parse_command_line(argc, argv, opts, is_printing_rank())) return *exit_code;

  const int rank = chanpool::mpi_compare::init_two_ranks(argc, argv, tool_name, exit_usage);

  // Filled once so that the first send does not fault pages in inside the timed loop.
  std::vector<char> buffer(*std::max_element(opts.sizes.begin(), opts.sizes.end()), 'x');
  if (rank == ping_rank) {
    const auto rows = run_pinger(opts, buffer);
    if (opts.json) {
      std::printf("%s\n", report::to_json(tool_name, transport_name, rows).dump(2).c_str());
    } else {
      const auto header = mpi_library_name() + ", MPI_Send/MPI_Recv between 2 ranks, warm-up min(iterations, " +
                          std::to_string(report::max_warm_up_round_trips) + ") round trips per size";
      report::print_table(tool_name, transport_name, rows, header);
    }
    std::fflush(stdout);
  } else {
    run_ponger(opts, buffer);
  }
  MPI_Finalize();
  return EXIT_SUCCESS;
}
