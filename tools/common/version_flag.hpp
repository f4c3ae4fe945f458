// --version for every chanpool program: "<name> (chanpool) X.Y.Z", the version CMake's
// project() declares (chanpool/version.h). man_help.hpp gives it to the CLI11 tools; the
// Google Benchmark programs, whose command line is the library's, call print_if_asked().
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "chanpool/version.h"

namespace chanpool::tools {

inline std::string version_line(std::string_view name) {
  return std::string(name) + " (chanpool) " CHANPOOL_VERSION_STRING;
}

// True when argv has --version (the whole command line of ring_floor and wake_floor).
inline bool asks_for_version(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--version") return true;
  return false;
}

// Prints the version line and returns true when argv has --version.
inline bool print_version_if_asked(int argc, char** argv, std::string_view name) {
  if (!asks_for_version(argc, argv)) return false;
  std::printf("%s\n", version_line(name).c_str());
  return true;
}

}  // namespace chanpool::tools
