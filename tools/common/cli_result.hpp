// What a tool's command-line parser returns: the options, or what to print and the exit status
// when the tool should stop at once (--help, --version, a bad command line). A parser prints
// nothing, exits nothing and lets no exception out, so that a fuzz target can run it
// (tests/fuzz/fuzz_tool_cli.cpp) and the tests can check it without running the tool.
#pragma once

#include <iostream>
#include <string>

namespace chanpool::tools {

// Exit status of every tool for a bad command line (CLI11's own codes, 100-127, are not used).
inline constexpr int exit_usage = 2;

template <class Options>
struct cli_result {
  Options options{};
  bool exit_now = false;  // stop: print `out` and `err`, exit with `exit_code`
  int exit_code = 0;
  std::string out;        // for stdout (--help, --version)
  std::string err;        // for stderr (why the command line was refused)
};

// Prints what a parser left to print, as the tool printed it before parsing was split out.
template <class Options>
void print_cli_messages(const cli_result<Options>& r) {
  std::cout << r.out;
  std::cerr << r.err;
}

// Refuses the command line: `message` on stderr, exit status `exit_code`.
template <class Options>
cli_result<Options>& refuse(cli_result<Options>& r, int exit_code, std::string message) {
  r.exit_now = true;
  r.exit_code = exit_code;
  r.err = std::move(message);
  return r;
}

}  // namespace chanpool::tools
