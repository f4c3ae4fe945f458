// The command line of the MPI pool baselines (mpi_pool_round, mpi_pool_dynamic; mpi_pool.hpp):
// the options, and the parser that turns argv into them or into what to print and the exit
// status. CLI11 and the standard library only (no MPI), so that the fuzz target
// (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cli_result.hpp"

namespace chanpool::mpi_compare::pool {

using chanpool::tools::cli_result;

constexpr int exit_usage = 2;
constexpr std::uint64_t max_items_per_worker = std::uint64_t{1} << 24;
constexpr double max_imbalance_factor = 1e6;
constexpr double max_min_time = 3600;
constexpr unsigned max_num_iters = 100000;

struct options {
  double imbalance_factor = 1;
  std::uint64_t items_per_worker = 4;
  double min_time = 0.1;
  std::uint64_t seed = 1;
  unsigned num_iters = 1;
  bool json = false;
  std::size_t print_items = 0;  // hidden: print this many items of the list and exit (no MPI)
  bool inject_fault = false;    // hidden: rank 1 replies with the wrong item index once

  bool operator==(const options&) const = default;
};

// What the manual page says of one tool.
struct tool_text {
  const char* name;
  const char* summary;      // the manual's NAME line, after "<name> - "
  const char* description;  // the manual's DESCRIPTION: the tool's own schedule
};

// argv[0] is the program. Never prints, exits or throws; the caller prints on rank 0 only, and
// prints the items for --print_items.
cli_result<options> parse_command_line(int argc, const char* const* argv, const tool_text& t);

}  // namespace chanpool::mpi_compare::pool
