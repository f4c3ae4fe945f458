// The flags every ping-pong tool shares (latency_bench's --sizes, mpi_latency, boost_mq_latency),
// with the same names, defaults and help, and the parsing of a --sizes list. CLI11 and the
// standard library only, so that the tools' command-line parsers link without the rest of
// latency_report.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_result.hpp"

namespace chanpool::tools {

struct ping_pong_flags {
  std::string sizes_text = "8,64,1024,65536,1048576";
  std::uint64_t iterations = 100000;
  std::uint64_t batch = 100;
  bool json = false;
};
inline constexpr std::uint64_t max_iterations = 100'000'000;

inline void add_ping_pong_flags(CLI::App& app, ping_pong_flags& flags) {
  app.add_option("--sizes", flags.sizes_text, "Comma-separated message sizes in bytes")->capture_default_str();
  app.add_option("--iterations", flags.iterations,
                 "Timed round trips per size and pass; sizes >= 65536 B use min(N, 2000)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, max_iterations));
  app.add_option("--batch", flags.batch, "Round trips per clock read in the median pass")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, max_iterations));
  app.add_flag("--json", flags.json, "Print only one JSON object (tool, transport, results) on stdout");
}

// Parses "8,64,1024" into sizes; returns false on a malformed list.
inline bool parse_sizes(const std::string& text, std::vector<std::size_t>& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    // Digits only: stoull alone would accept " 8" and wrap "-1" around.
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos) return false;
    std::size_t used = 0;
    unsigned long long v = 0;
    try { v = std::stoull(item, &used); } catch (...) { return false; }
    if (used != item.size()) return false;
    out.push_back(static_cast<std::size_t>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out.empty();
}

// Parses --sizes and checks each against [1, max_bytes]; returns the message for the user on error.
inline std::optional<std::string> size_list_error(const std::string& text, std::vector<std::size_t>& sizes,
                                                  std::size_t max_bytes) {
  if (!parse_sizes(text, sizes))
    return "--sizes: malformed size list '" + text + "' (expected comma-separated byte counts, e.g. 8,64,1024)";
  for (const auto size : sizes)
    if (size == 0 || size > max_bytes)
      return "--sizes: " + std::to_string(size) + " is out of range (1.." + std::to_string(max_bytes) + " bytes)";
  return std::nullopt;
}

// After a ping-pong tool's command line is parsed: the shared flags into its options (iterations,
// batch, json, sizes), or the command line refused for its --sizes list. True when `r` says stop.
template <class Options>
bool take_ping_pong_flags(const ping_pong_flags& flags, std::size_t max_bytes, const char* tool,
                          cli_result<Options>& r) {
  r.options.iterations = flags.iterations;
  r.options.batch = flags.batch;
  r.options.json = flags.json;
  if (const auto error = size_list_error(flags.sizes_text, r.options.sizes, max_bytes)) {
    refuse(r, exit_usage, std::string(tool) + ": " + *error + "\nRun with --help for more information.\n");
    return true;
  }
  return false;
}

}  // namespace chanpool::tools
