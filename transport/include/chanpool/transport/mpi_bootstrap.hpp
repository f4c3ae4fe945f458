// Cluster bootstrap through MPI (target chanpool::transport_mpi): one process per node, started
// by mpirun or srun, calls start_agent_mpi() after MPI_Init. The ranks exchange their agents'
// addresses (MPI_Allgather) and rank 0's job key (MPI_Bcast); from then on all traffic goes
// through libfabric and MPI is not used again by chanpool.
//
// Node k is rank k of `comm`. Its shared-memory namespace is virtual_node_job(job, k), so
// several ranks on one host (a test, or an oversubscribed run) stay apart; on a real cluster
// with one rank per host it is just as valid.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "chanpool/transport/agent.hpp"

namespace chanpool::transport {

// Collective over comm. The agent runs on a thread of the calling process until stop().
// When the ranks span several hosts and config.listen_address is the loopback default, the
// agents listen on the provider's choice of interface instead (set FI_TCP_IFACE to pick one).
result<std::unique_ptr<agent>> start_agent_mpi(MPI_Comm comm, const std::string& job, const agent_config& config);

}  // namespace chanpool::transport
