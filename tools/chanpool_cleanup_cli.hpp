// chanpool_cleanup's command line: the options, and the parser that turns argv into them or into
// what to print and the exit status. CLI11 and the standard library only, so that the fuzz target
// (tests/fuzz/fuzz_tool_cli.cpp) and tests/tools/tool_cli_test.cpp link it without the channels.
#pragma once

#include <string>

#include "cli_result.hpp"

namespace chanpool::tools::cleanup_cli {

struct options {
  std::string job;       // empty: every job of this user
  bool dry_run = false;
  bool list_only = false;
  bool json = false;

  bool operator==(const options&) const = default;
};

// argv[0] is the program. Never prints, exits or throws.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::tools::cleanup_cli
