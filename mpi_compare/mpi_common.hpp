// Helpers shared by the MPI baselines (mpi_latency, mpi_fanin, mpi_pool_round, mpi_pool_dynamic).
// work_items(), the Pool comparison's seeded list of durations, lives in work_items.hpp (free of
// MPI, for the non-MPI tools too) and is included here.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "work_items.hpp"

namespace chanpool::mpi_compare {

// The MPI library's name and version. Open MPI reports several lines (version, repository,
// date); the first one names it.
inline std::string mpi_library_name() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  const std::string text(version, static_cast<std::size_t>(std::max(length, 0)));
  return text.substr(0, text.find_first_of("\r\n,"));
}

}  // namespace chanpool::mpi_compare
