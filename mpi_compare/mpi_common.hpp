// Helpers shared by the MPI baselines (mpi_latency, mpi_fanin).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <string>

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
