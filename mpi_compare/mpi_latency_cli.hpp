// mpi_latency's command line: the options, and the parser that turns argv into them or into what
// to print and the exit status. CLI11 and the standard library only (no MPI), so that the fuzz
// target (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cli_result.hpp"

namespace chanpool::mpi_compare::latency_cli {

using chanpool::tools::cli_result;

constexpr const char* tool_name = "mpi_latency";
constexpr int exit_usage = 2;
// MPI counts are int; 1 GiB also keeps the message buffer a sane size.
constexpr std::size_t max_message_bytes = std::size_t{1} << 30;

struct options {
  std::vector<std::size_t> sizes;
  std::uint64_t iterations = 100000;
  std::uint64_t batch = 100;
  bool json = false;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws; the caller prints on rank 0 only.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::mpi_compare::latency_cli
