// The ENVIRONMENT section shared by the MPI baselines' manual pages. Free of MPI, so that their
// command-line parsers (mpi_*_cli.cpp) link without it.
#pragma once

#include <string>

namespace chanpool::mpi_compare {

// The ENVIRONMENT section of every MPI tool's --help; btl_example is an Open MPI btl list.
inline std::string mpi_environment_help(const std::string& btl_example) {
  return "OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK\n"
         "        read before MPI_Init: only the process whose rank is 0 (or one started without a\n"
         "        launcher) prints --help and usage errors.\n"
         "OMPI_ALLOW_RUN_AS_ROOT=1, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n"
         "        Open MPI's mpirun refuses to run as root without both.\n"
         "OMPI_MCA_<param>\n"
         "        Open MPI parameters, as mpirun --mca <param> <value> (e.g. OMPI_MCA_btl=" +
         btl_example + ").";
}

}  // namespace chanpool::mpi_compare
