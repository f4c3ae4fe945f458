// Starting a Pool on a cluster: the same binary runs once per node under mpirun or srun (target
// chanpool::pool_mpi). MPI exchanges the agents' addresses and the pool's settings at start-up
// and is not used afterwards: work and results travel through libfabric.
//
//   MPI_Init(&argc, &argv);
//   auto p = chanpool::pool::start_pool_mpi(MPI_COMM_WORLD, {.workers_per_node = 4});
//   if (p) {                      // rank 0: the orchestrator
//     auto r = p->map(square, xs);
//     p->close();
//     p->join();
//   }                             // other ranks return once rank 0's pool has ended
//   MPI_Finalize();
#pragma once

#include <mpi.h>

#include <memory>

#include "chanpool/pool/pool.hpp"

namespace chanpool::pool {

// Collective over comm: rank k is node k (its agent runs in the rank's process; its supervisor
// and workers are forked from it). Rank 0 returns the pool; every other rank serves as a node
// until the pool on rank 0 ends (join, terminate, or its process dies), then returns nullptr.
// options.nodes is ignored (the communicator's size); workers_per_node 0 means the host's cores
// divided among the ranks on that host. Call before starting threads. Throws std::runtime_error
// or std::system_error, on every rank, when a node cannot start.
std::unique_ptr<pool> start_pool_mpi(MPI_Comm comm, pool_options options);

}  // namespace chanpool::pool
