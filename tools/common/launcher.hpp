// Whether this process was started by an MPI launcher (mpirun, srun, hydra): the tools then run
// one node per rank instead of starting virtual nodes themselves.
#pragma once

#include <cstdlib>

namespace chanpool::tools {

inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace chanpool::tools
