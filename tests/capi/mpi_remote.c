/* The MPI bootstrap of the C API (chanpool/transport_mpi.h), as a C program under mpirun: each
 * rank starts its node's agent, attaches to it, and every rank but 0 sends COUNT messages to
 * channel "sink" on node 0 (even ones buffered, odd ones deposited); rank 0 receives and checks
 * them all, in order per sender. Exit status 0 on every rank on success.
 *
 *   mpirun -np 3 capi_mpi_remote [COUNT] */
#include <chanpool/transport_mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const int64_t kWaitNs = 10LL * 1000 * 1000 * 1000;

static int fail(int rank, const char* what, int rc) {
  fprintf(stderr, "capi_mpi_remote (rank %d): %s: %s (%d)\n", rank, what, chanpool_strerror(rc), rc);
  return 1;
}

/* Rank 0: COUNT messages from each other rank, each "<rank> <seq>", in order per rank. */
static int receive(chanpool_channel_t* sink, int ranks, long count) {
  long* next = calloc((size_t)ranks, sizeof *next);
  int status = next ? 0 : 1;
  for (long i = 0; status == 0 && i < count * (ranks - 1); ++i) {
    char buffer[64];
    size_t length = 0;
    const int rc = chanpool_channel_recv(sink, buffer, sizeof buffer - 1, &length, kWaitNs);
    if (rc != CHANPOOL_OK) {
      status = fail(0, "recv", rc);
      break;
    }
    buffer[length] = '\0';
    int from = -1;
    long seq = -1;
    if (sscanf(buffer, "%d %ld", &from, &seq) != 2 || from < 1 || from >= ranks || seq != next[from]++) {
      fprintf(stderr, "capi_mpi_remote (rank 0): unexpected message \"%s\"\n", buffer);
      status = 1;
    }
  }
  free(next);
  return status;
}

static int send_all(chanpool_client_t* client, int rank, long count) {
  chanpool_remote_t* sink = NULL;
  int rc = chanpool_remote_open(client, 0, "sink", NULL, &sink);
  if (rc != CHANPOOL_OK) return fail(rank, "open sink on node 0", rc);
  for (long seq = 0; rc == CHANPOOL_OK && seq < count; ++seq) {
    char message[64];
    const int n = snprintf(message, sizeof message, "%d %ld", rank, seq);
    rc = chanpool_remote_send(sink, message, (size_t)n, kWaitNs, seq % 2 ? CHANPOOL_SEND_DEPOSITED : CHANPOOL_SEND_BUFFERED);
  }
  if (rc == CHANPOOL_OK) rc = chanpool_client_flush(client);
  chanpool_remote_close(sink);
  return rc == CHANPOOL_OK ? 0 : fail(rank, "send", rc);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const long count = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
  int rank = 0, ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  /* Every rank must use the same job: rank 0's pid, broadcast. */
  long pid = (long)getpid();
  MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  char job[32];
  snprintf(job, sizeof job, "capimpi%ld", pid);

  chanpool_agent_t* agent = NULL;
  int rc = chanpool_agent_start_mpi(MPI_COMM_WORLD, job, NULL, &agent);
  int status = rc == CHANPOOL_OK ? 0 : fail(rank, "start the agent", rc);
  char node_job[64];
  chanpool_virtual_node_job(job, (uint32_t)rank, node_job, sizeof node_job, NULL);
  chanpool_client_t* client = NULL;
  chanpool_channel_t* sink = NULL;
  if (status == 0 && (rc = chanpool_client_attach(node_job, kWaitNs, &client)) != CHANPOOL_OK)
    status = fail(rank, "attach", rc);
  if (status == 0 && chanpool_agent_node(agent) != (uint32_t)rank) status = fail(rank, "agent node", CHANPOOL_INVALID);
  if (status == 0 && rank == 0 && (rc = chanpool_channel_create("sink", node_job, NULL, &sink)) != CHANPOOL_OK)
    status = fail(rank, "create sink", rc);
  int all = 0;
  MPI_Allreduce(&status, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); /* sink exists everywhere's view */
  if (all == 0) status = rank == 0 ? receive(sink, ranks, count) : send_all(client, rank, count);
  MPI_Allreduce(&status, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); /* nobody stops while others send */
  if (sink) {
    chanpool_channel_close(sink);
    chanpool_channel_unlink("sink", node_job);
  }
  chanpool_client_detach(client);
  chanpool_agent_stop(agent);
  if (rank == 0 && all == 0) printf("capi_mpi_remote: %ld messages from each of %d ranks, all in order\n", count, ranks - 1);
  MPI_Finalize();
  return all;
}
