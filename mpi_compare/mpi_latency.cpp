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

#include "latency_report.hpp"
#include "mpi_common.hpp"
#include "mpi_latency_cli.hpp"

namespace {

namespace report = chanpool::tools;
namespace cli_ns = chanpool::mpi_compare::latency_cli;
using cli_ns::exit_usage;
using cli_ns::options;
using cli_ns::tool_name;

constexpr const char* transport_name = "mpi";

// Large messages are slow per round trip; capping them keeps a full size sweep short while
// still giving thousands of samples. Every ping-pong tool applies the same cap.
// measure_round_trips keeps one double per iteration for the p99 pass: 100 M = 800 MB.

constexpr int ping_rank = 0;
constexpr int pong_rank = 1;
constexpr int ping_pong_tag = 7;

// Parsed before MPI_Init so that --help and flag errors need no MPI start-up; mpirun's
// environment tells which rank this is, so that only rank 0 prints.
bool is_printing_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(variable)) return std::string_view(value) == "0";
  return true;  // started without a launcher
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
  const auto cli = cli_ns::parse_command_line(argc, argv);
  if (is_printing_rank()) chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& opts = cli.options;

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
