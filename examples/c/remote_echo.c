/* Two nodes through the chanpool C API's transport (chanpool/transport.h): an echo between a
 * process on node 0 and one on node 1, each attached to its own node's agent.
 *
 *   ./c_remote_echo [COUNT]          (CHANPOOL_JOB names the job; default "vc<pid>")
 *
 * Starts two virtual nodes on this host (one agent process each, talking only through
 * libfabric), then forks the node-1 process: it creates channel "requests" in node 1's job
 * namespace, attaches to node 1's agent, opens "replies" on node 0 and sends every request back
 * until an empty one arrives. This process, on node 0, creates "replies", attaches to node 0's
 * agent, opens "requests" on node 1 (retrying while it does not exist yet) and sends COUNT
 * messages (default 200; even ones buffered, odd ones deposited), checking each
 * reply. Then it checks the error codes of a wrong name, a wrong node and an oversized
 * message, ends the echo, and stops the nodes. Message format as in echo_client.c. Exit status 0 on success. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, fork under -std=c11 */

#include <chanpool/transport.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int64_t kWaitNs = 10LL * 1000 * 1000 * 1000; /* every wait bounded */

static void fill(unsigned char* m, size_t size, uint64_t seq) {
  for (size_t i = 0; i < 8 && i < size; ++i) m[i] = (unsigned char)(seq >> (8 * i));
  for (size_t i = 8; i < size; ++i) m[i] = (unsigned char)((seq * 7 + i) % 251);
}

static int fail(const char* who, const char* what, int rc) {
  fprintf(stderr, "c_remote_echo (%s): %s: %s (%d)\n", who, what, chanpool_strerror(rc), rc);
  return 1;
}

/* Opens channel `name` on `node`, retrying while its creator has not made it yet (10 s). */
static int open_when_created(chanpool_client_t* client, uint32_t node, const char* name, chanpool_remote_t** out) {
  const struct timespec nap = {0, 10 * 1000 * 1000};
  for (int tries = 0;; ++tries) {
    const int rc = chanpool_remote_open(client, node, name, NULL, out);
    if (rc != CHANPOOL_E_NOT_FOUND || tries == 1000) return rc;
    nanosleep(&nap, NULL);
  }
}

/* Attaches to this node's agent (node_job) and opens channel `name` on node `node`. */
static int connect_to(const char* who, const char* node_job, uint32_t node, const char* name,
                      chanpool_client_t** client, chanpool_remote_t** remote) {
  int rc = chanpool_client_attach(node_job, kWaitNs, client);
  if (rc != CHANPOOL_OK) return fail(who, "attach", rc);
  rc = open_when_created(*client, node, name, remote);
  return rc == CHANPOOL_OK ? 0 : fail(who, name, rc);
}

/* Node 1: echoes "requests" back to "replies" on node 0 until an empty request. */
static int echo(const char* node_job) {
  chanpool_channel_t* requests = NULL;
  chanpool_client_t* client = NULL;
  chanpool_remote_t* replies = NULL;
  int rc = chanpool_channel_create("requests", node_job, NULL, &requests);
  if (rc != CHANPOOL_OK) return fail("node 1", "create requests", rc);
  int status = 1;
  if (connect_to("node 1", node_job, 0, "replies", &client, &replies) != 0) goto done;
  size_t capacity = chanpool_channel_max_message_bytes(requests);
  unsigned char* buffer = malloc(capacity);
  for (;;) {
    size_t length = 0;
    rc = buffer ? chanpool_channel_recv(requests, buffer, capacity, &length, kWaitNs) : CHANPOOL_E_NO_MEMORY;
    if (rc != CHANPOOL_OK) {
      fail("node 1", "recv", rc);
      break;
    }
    if (length == 0) {
      status = 0;
      break;
    }
    rc = chanpool_remote_send(replies, buffer, length, kWaitNs, CHANPOOL_SEND_BUFFERED);
    if (rc != CHANPOOL_OK) {
      fail("node 1", "send reply", rc);
      break;
    }
  }
  free(buffer);
done:
  chanpool_remote_close(replies);
  chanpool_client_detach(client);
  chanpool_channel_close(requests);
  chanpool_channel_unlink("requests", node_job);
  return status;
}

/* The error codes a caller meets: a wrong name, a wrong node, a message over the maximum. */
static int check_errors(chanpool_client_t* client, chanpool_remote_t* requests) {
  chanpool_remote_t* none = NULL;
  int rc = chanpool_remote_open(client, 1, "no-such-channel", NULL, &none);
  if (rc != CHANPOOL_E_NOT_FOUND || none) return fail("node 0", "open of a wrong name gave", rc);
  rc = chanpool_remote_open(client, 7, "requests", NULL, &none);
  if (rc != CHANPOOL_E_PEER_UNREACHABLE || none) return fail("node 0", "open on a wrong node gave", rc);
  const size_t too_big = chanpool_remote_max_message_bytes(requests) + 1;
  chanpool_send_claim_t claim;
  rc = chanpool_remote_claim(requests, too_big, &claim, CHANPOOL_TRY_ONCE);
  if (rc != CHANPOOL_TOO_LARGE || claim.data != NULL) return fail("node 0", "oversized claim gave", rc);
  rc = chanpool_remote_claim(requests, 64, &claim, kWaitNs);
  if (rc == CHANPOOL_OK) rc = chanpool_remote_abandon(requests, &claim); /* nothing is sent */
  if (rc != CHANPOOL_OK) return fail("node 0", "claim and abandon gave", rc);
  rc = chanpool_remote_commit(requests, &claim);
  if (rc != CHANPOOL_INVALID) return fail("node 0", "commit of an abandoned claim gave", rc);
  rc = chanpool_remote_send(requests, NULL, too_big, CHANPOOL_TRY_ONCE, CHANPOOL_SEND_BUFFERED);
  if (rc != CHANPOOL_INVALID) return fail("node 0", "send of NULL data gave", rc);
  unsigned char* big = calloc(1, too_big);
  rc = big ? chanpool_remote_send(requests, big, too_big, CHANPOOL_TRY_ONCE, CHANPOOL_SEND_BUFFERED) : CHANPOOL_E_NO_MEMORY;
  free(big);
  if (rc != CHANPOOL_TOO_LARGE) return fail("node 0", "oversized send gave", rc);
  return 0;
}

/* Node 0: sends `count` requests, one at a time, and checks every reply. */
static int ping(const char* node_job, long count) {
  static const size_t sizes[] = {8, 96, 97, 1000, 4096, 20000, 65536}; /* 20000+: point to point */
  chanpool_channel_t* replies = NULL;
  chanpool_client_t* client = NULL;
  chanpool_remote_t* requests = NULL;
  int rc = chanpool_channel_create("replies", node_job, NULL, &replies);
  if (rc != CHANPOOL_OK) return fail("node 0", "create replies", rc);
  int status = 1;
  unsigned char* sent = malloc(65536);
  unsigned char* got = malloc(65536);
  if (!sent || !got || connect_to("node 0", node_job, 1, "requests", &client, &requests) != 0) goto done;
  status = 0;
  for (long seq = 0; status == 0 && seq < count; ++seq) {
    const size_t size = sizes[(size_t)seq % (sizeof sizes / sizeof sizes[0])];
    fill(sent, size, (uint64_t)seq);
    /* Odd messages deposited (returns once it is in node 1's channel), even ones buffered; every
     * fourth is built in place in the agent's inbox instead (zero copy; buffered). */
    const int mode = seq % 2 ? CHANPOOL_SEND_DEPOSITED : CHANPOOL_SEND_BUFFERED;
    if (seq % 4 == 2) {
      chanpool_send_claim_t claim;
      rc = chanpool_remote_claim(requests, size, &claim, kWaitNs);
      if (rc == CHANPOOL_OK && claim.size != size) rc = CHANPOOL_INVALID;
      if (rc == CHANPOOL_OK) {
        memcpy(claim.data, sent, size); /* an application would build its message here */
        rc = chanpool_remote_commit(requests, &claim);
      }
    } else {
      rc = chanpool_remote_send(requests, sent, size, kWaitNs, mode);
    }
    size_t length = 0;
    if (rc == CHANPOOL_OK) rc = chanpool_channel_recv(replies, got, 65536, &length, kWaitNs);
    if (rc != CHANPOOL_OK) {
      status = fail("node 0", "round trip", rc);
    } else if (length != size || memcmp(sent, got, size) != 0) {
      fprintf(stderr, "c_remote_echo: reply %ld differs from its request\n", seq);
      status = 1;
    }
  }
  if (status == 0) status = check_errors(client, requests);
  /* The empty message ends the echo, deposited: it is in node 1's channel when this returns. */
  rc = chanpool_remote_send(requests, NULL, 0, kWaitNs, CHANPOOL_SEND_DEPOSITED);
  if (rc != CHANPOOL_OK) status = fail("node 0", "send the end", rc);
  if (status == 0) printf("c_remote_echo: %ld round trips between node 0 and node 1, all verified\n", count);
done:
  free(sent);
  free(got);
  chanpool_remote_close(requests);
  chanpool_client_detach(client);
  chanpool_channel_close(replies);
  chanpool_channel_unlink("replies", node_job);
  return status;
}

int main(int argc, char** argv) {
  const long count = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
  chanpool_cluster_config_t config;
  chanpool_cluster_config_init(&config);
  config.nodes = 2;
  config.job = getenv("CHANPOOL_JOB");
  chanpool_cluster_t* cluster = NULL;
  int rc = chanpool_cluster_start(&config, &cluster);
  if (rc != CHANPOOL_OK) return fail("main", "start the virtual nodes", rc);
  char job[2][128];
  for (uint32_t node = 0; node < 2; ++node) {
    rc = chanpool_cluster_node_job(cluster, node, job[node], sizeof job[node], NULL);
    if (rc != CHANPOOL_OK) {
      chanpool_cluster_stop(cluster);
      return fail("main", "node job", rc);
    }
  }
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) _exit(echo(job[1])); /* the cluster belongs to the parent: never stopped here */
  int status = child < 0 ? 1 : ping(job[0], count);
  int child_status = 0;
  if (child > 0 && (waitpid(child, &child_status, 0) != child || !WIFEXITED(child_status) ||
                    WEXITSTATUS(child_status) != 0)) {
    fprintf(stderr, "c_remote_echo: the node-1 process failed (wait status %d)\n", child_status);
    status = 1;
  }
  chanpool_cluster_stop(cluster);
  return status;
}
