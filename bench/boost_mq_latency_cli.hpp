// boost_mq_latency's command line: the options, and the parser that turns argv into them or into
// what to print and the exit status. CLI11 and the standard library only (no Boost), so that the
// fuzz target (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cli_result.hpp"

namespace chanpool::bench::boost_mq_cli {

using chanpool::tools::cli_result;

constexpr const char* tool_name = "boost_mq_latency";
constexpr int exit_usage = 2;
// Each queue holds a message of the largest size in shared memory.
constexpr std::size_t max_message_bytes = std::size_t{1} << 30;

struct options {
  std::vector<std::size_t> sizes;
  std::uint64_t iterations = 100000;
  std::uint64_t batch = 100;
  bool json = false;
  bool pin = true;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::bench::boost_mq_cli
