// mpi_bandwidth's command line: the options, and the parser that turns argv into them or into
// what to print and the exit status. CLI11 and the standard library only (no MPI), so that the
// fuzz target (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cli_result.hpp"

namespace chanpool::mpi_compare::bandwidth_cli {

using chanpool::tools::cli_result;

constexpr const char* tool_name = "mpi_bandwidth";
constexpr int exit_usage = 2;
// The one-sided window on rank 1, and so the largest message of every kind.
constexpr std::size_t target_window_bytes = std::size_t{4} << 20;
constexpr std::size_t max_window = 65536;
constexpr std::uint64_t max_windows = 1'000'000;
constexpr double min_seconds = 1e-3;
constexpr double max_seconds = 3600;

enum class kind { send, put, get };

struct options {
  std::vector<std::size_t> sizes;
  std::vector<kind> kinds;
  std::size_t window = 64;
  std::uint64_t iterations = 0;  // 0: chosen from --seconds
  std::uint64_t warmup = 0;      // 0: warmup_windows()
  double seconds = 0.2;
  bool json = false;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws; the caller prints on rank 0 only.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::mpi_compare::bandwidth_cli
