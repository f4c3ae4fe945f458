/* chanpool C API, cluster bootstrap through MPI: one process per node, started by mpirun or
 * srun, starts its node's agent after MPI_Init (chanpool/transport/mpi_bootstrap.hpp in C).
 * The ranks exchange their agents' addresses over MPI; from then on chanpool uses libfabric
 * only. Node k is rank k of `comm`; its job namespace is chanpool_virtual_node_job(job, k).
 *
 * Linking: libchanpool_c_mpi.so (`chanpool::c_mpi`, built when chanpool is built with MPI), with
 * libchanpool_c.so for the rest of the C API (chanpool/transport.h, chanpool/channels.h): the
 * agent runs inside libchanpool_c_mpi.so, and processes reach it through shared memory with
 * chanpool_client_attach(), this one included. Return codes as in chanpool/channels.h. */
#ifndef CHANPOOL_TRANSPORT_MPI_H
#define CHANPOOL_TRANSPORT_MPI_H

#include <mpi.h>

#include <chanpool/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chanpool_agent chanpool_agent_t; /* this node's agent, running in this process */

/* Collective over comm: every rank starts its agent (a thread of this process), and returns
 * once every agent has heard from every other. job: the job name shared by all ranks (not NULL
 * or empty); provider: a libfabric provider or NULL for the transport's choice. Returns
 * CHANPOOL_OK, CHANPOOL_E_TIMED_OUT, CHANPOOL_E_PEER_UNREACHABLE (a rank's agent failed: every
 * rank then fails), another CHANPOOL_E_* or CHANPOOL_INVALID (every rank must pass the same
 * kind of arguments). On failure *out is NULL. Setup. */
CHANPOOL_C_API int chanpool_agent_start_mpi(MPI_Comm comm, const char* job, const char* provider,
                                            chanpool_agent_t** out);

/* Stops the agent (goodbye to the peers), frees the handle. NULL is ignored. Detach this
 * node's clients first. Not collective, but every rank should stop its agent before
 * MPI_Finalize. Setup. */
CHANPOOL_C_API void chanpool_agent_stop(chanpool_agent_t* agent);

/* This node's number (its rank in comm); 0 for NULL. Threadsafe. */
CHANPOOL_C_API uint32_t chanpool_agent_node(const chanpool_agent_t* agent);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CHANPOOL_TRANSPORT_MPI_H */
