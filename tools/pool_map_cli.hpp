// pool_map's command line: the options, and the parser that turns argv into them or into what to
// print and the exit status. CLI11 and the standard library only, so that the fuzz target
// (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it without a Pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli_result.hpp"

namespace chanpool::tools::pool_map_cli {

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

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::tools::pool_map_cli
