// Helpers shared by the MPI baselines (mpi_latency, mpi_bandwidth, mpi_fanin, mpi_pool_round,
// mpi_pool_dynamic).
// work_items(), the Pool comparison's seeded list of durations, lives in
// chanpool/workload/work_items.hpp (target chanpool_workload: free of MPI, for the non-MPI tools
// too) and is included here.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>

#include "chanpool/workload/work_items.hpp"
#include "mpi_help.hpp"  // mpi_environment_help()

namespace chanpool::mpi_compare {

using workload::work_items;

// The MPI library's name and version. Open MPI reports several lines (version, repository,
// date); the first one names it.
// MPI_Init for a two-rank tool: returns this rank, or ends the job with `exit_code` (and a line
// on rank 0 saying how to run it) when the job does not have exactly two ranks.
inline int init_two_ranks(int& argc, char**& argv, const char* tool, int exit_code) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks != 2) {
    if (rank == 0) std::fprintf(stderr, "%s: needs exactly 2 ranks, got %d (run: mpirun -np 2 %s ...)\n", tool, ranks, tool);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  return rank;
}

inline std::string mpi_library_name() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  const std::string text(version, static_cast<std::size_t>(std::max(length, 0)));
  return text.substr(0, text.find_first_of("\r\n,"));
}

}  // namespace chanpool::mpi_compare
