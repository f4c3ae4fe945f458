// latency_bench --transport fabric (see latency_fabric.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chanpool::tools {

struct fabric_latency_options {
  std::vector<std::size_t> sizes;
  std::uint64_t iterations = 10000;
  std::uint64_t batch = 100;
  std::string mode = "both";   // direct, agent or both
  std::string provider;        // empty: $FI_PROVIDER, else tcp;ofi_rxm
  double agent_spin_us = 0;     // agent threads poll this long before sleeping
  double receiver_spin_us = 0;  // the two processes poll their channel this long before sleeping
  bool pin = true;
  bool hops = false;  // agent mode: trace each message through the agents (one size)
  bool json = false;
};

// Two virtual nodes on this host; under an MPI launcher (when built with MPI), one node per rank.
int run_fabric_latency(const fabric_latency_options& options);

// Under mpirun/srun: rank 0 against every other rank, each rank a node (latency_mpi.cpp).
int run_fabric_latency_mpi(const fabric_latency_options& options);

}  // namespace chanpool::tools
