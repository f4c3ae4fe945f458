// CLI11 checks for numbers the tools turn into durations, sleeps and counts. CLI11 reads "nan",
// "inf" and "1e999" as doubles, and its Range lets NaN through (every comparison with NaN is
// false), so a Range alone does not keep a tool's chrono casts defined; it reads an empty value
// ("--opt ''") as 0. These checks have no description: adding them leaves --help as it was.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

namespace chanpool::tools {

inline std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A finite number in [lo, hi].
inline CLI::Validator finite_within(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        double d = 0;  // CLI11 gives an empty value the type's default, 0
        if (!v.empty() && !CLI::detail::lexical_cast(v, d)) return {};  // not a number: its conversion says so
        if (std::isfinite(d) && d >= lo && d <= hi) return {};
        return "must be a number from " + number_text(lo) + " to " + number_text(hi) + ", not '" + v + "'";
      },
      std::string());
}

// A finite number, for an option whose CLI::Range already bounds the finite ones.
inline CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        double d = 0;
        if (!CLI::detail::lexical_cast(v, d) || std::isfinite(d)) return {};
        return "must be a finite number, not '" + v + "'";
      },
      std::string());
}

// A whole number in [lo, hi], for an unsigned option: CLI11 reads "-1" into one by wrapping it
// round (strtoull), to 2^64 - 1 for a 64-bit count.
inline CLI::Validator count_within(std::uint64_t lo, std::uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        std::uint64_t n = 0;  // CLI11 gives an empty value the type's default, 0
        if (!v.empty() && !CLI::detail::lexical_cast(v, n)) return {};  // not a number: its conversion says so
        if (n >= lo && n <= hi && v.find('-') == std::string::npos) return {};
        return "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + v + "'";
      },
      std::string());
}

}  // namespace chanpool::tools
