// latency_bench's command line: the options, and the parser that turns argv into them (the sizes
// parsed and the flags checked against each other) or into what to print and the exit status.
// CLI11 and the standard library only, so that the fuzz target (tests/fuzz/fuzz_tool_cli.cpp) and
// tests/tools/tool_cli_test.cpp link it without the channels or the transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli_result.hpp"

namespace chanpool::tools::latency_bench_cli {

// The largest --sizes value, as for the other ping-pong tools (1 GiB); --bandwidth takes 4 MiB.
constexpr std::size_t max_message_bytes = std::size_t{1} << 30;

struct options {
  std::string transport = "shm";
  std::string sizes_text = "8,64,1024,65536,1048576";
  std::uint64_t iterations = 100000;
  std::uint64_t large_iterations = 2000;
  std::uint64_t batch = 100;
  std::string wait = "adaptive";
  double spin_us = 50;
  std::string path = "auto";
  std::string channel_kind = "mpmc";
  bool pin = true;
  bool json = false;
  std::string fabric_mode = "both";
  std::string provider;
  double agent_spin_us = 50;     // the agents' own default (agent_config::spin; latency_bench.cpp checks)
  double receiver_spin_us = 0;
  bool hops = false;
  bool bandwidth = false;
  std::uint32_t window = 64;
  // Filled by the parser: --sizes as numbers (--bandwidth: its default sizes unless given, sorted,
  // without repeats), and whether --iterations was given (the fabric modes choose it otherwise).
  std::vector<std::size_t> sizes;
  bool iterations_given = false;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws. What needs a channel (a size above the
// channel's largest message) is checked by latency_bench itself.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::tools::latency_bench_cli
