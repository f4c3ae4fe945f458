// mpi_fanin's command line: the options, and the parser that turns argv into them or into what
// to print and the exit status. CLI11 and the standard library only (no MPI), so that the fuzz
// target (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cli_result.hpp"

namespace chanpool::mpi_compare::fanin_cli {

using chanpool::tools::cli_result;

constexpr const char* tool_name = "mpi_fanin";
constexpr int exit_usage = 2;
// MPI counts are int; 1 GiB also keeps each rank's one buffer a sane size.
constexpr std::size_t max_message_bytes = std::size_t{1} << 30;
constexpr std::uint64_t max_messages_per_sender = std::uint64_t{1} << 40;
// Every message starts with this header (mpi_fanin.cpp's message_header).
constexpr std::size_t header_bytes = 32;

// Test hook (hidden from --help): rank 1 misbehaves once, so that the tests can check that
// every kind of damage is reported.
enum class fault { none, skip, duplicate, corrupt, lose_final };

struct options {
  std::size_t msg_size = 64;
  std::uint64_t messages_per_sender = 100000;
  double duration_s = 0;  // > 0: send for this long instead of a fixed count
  double stall_timeout_s = 60;
  bool json = false;
  fault inject = fault::none;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws; the caller prints on rank 0 only.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::mpi_compare::fanin_cli
