/* One-sided transfers through the chanpool C API (chanpool/transport.h): a process attached to
 * node 0 puts into and gets from a region of node 1, with a notification, then shows the
 * errors of a stale descriptor and of an out-of-range or read-only target.
 *
 *   ./c_rma_put_get [BYTES]          (default 1 MiB; CHANPOOL_JOB names the job)
 *
 * Starts two virtual nodes on this host, attaches to both (a process may attach to several
 * nodes' agents; a real program attaches to its own), creates a region on each, and checks the
 * bytes after every transfer. Exit status 0 on success. */
#define _POSIX_C_SOURCE 200809L

#include <chanpool/transport.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t kWaitNs = 30LL * 1000 * 1000 * 1000; /* every wait bounded */

static int fail(const char* what, int rc) {
  fprintf(stderr, "c_rma_put_get: %s: %s (%d)\n", what, chanpool_strerror(rc), rc);
  return 1;
}

static int expect(const char* what, int rc, int want) {
  if (rc == want) return 0;
  fprintf(stderr, "c_rma_put_get: %s: got %s (%d), expected %s (%d)\n", what, chanpool_strerror(rc), rc,
          chanpool_strerror(want), want);
  return 1;
}

static int run(chanpool_cluster_t* cluster, size_t bytes) {
  char job0[128], job1[128];
  int rc;
  if ((rc = chanpool_cluster_node_job(cluster, 0, job0, sizeof job0, NULL)) != CHANPOOL_OK) return fail("node job", rc);
  if ((rc = chanpool_cluster_node_job(cluster, 1, job1, sizeof job1, NULL)) != CHANPOOL_OK) return fail("node job", rc);
  chanpool_client_t *c0 = NULL, *c1 = NULL;
  if ((rc = chanpool_client_attach(job0, kWaitNs, &c0)) != CHANPOOL_OK) return fail("attach 0", rc);
  if ((rc = chanpool_client_attach(job1, kWaitNs, &c1)) != CHANPOOL_OK) return fail("attach 1", rc);
  chanpool_region_t *a = NULL, *b = NULL, *ro = NULL;
  if ((rc = chanpool_region_create(c0, bytes, CHANPOOL_RMA_READ | CHANPOOL_RMA_WRITE, kWaitNs, &a)) != CHANPOOL_OK)
    return fail("region on node 0", rc);
  if ((rc = chanpool_region_create(c1, bytes, CHANPOOL_RMA_READ | CHANPOOL_RMA_WRITE, kWaitNs, &b)) != CHANPOOL_OK)
    return fail("region on node 1", rc);
  if ((rc = chanpool_region_create(c1, 4096, CHANPOOL_RMA_READ, kWaitNs, &ro)) != CHANPOOL_OK)
    return fail("read-only region", rc);
  chanpool_region_descriptor_t db, dro;
  chanpool_region_descriptor(b, &db);
  chanpool_region_descriptor(ro, &dro);

  /* A notification channel on node 1, opened from node 0. */
  chanpool_channel_t* notes = NULL;
  chanpool_channel_config_t cfg;
  chanpool_channel_config_init(&cfg);
  if ((rc = chanpool_channel_create("notes", job1, &cfg, &notes)) != CHANPOOL_OK) return fail("notes channel", rc);
  chanpool_remote_t* to_notes = NULL;
  if ((rc = chanpool_remote_open(c0, 1, "notes", NULL, &to_notes)) != CHANPOOL_OK) return fail("open notes", rc);

  unsigned char* pa = chanpool_region_data(a);
  unsigned char* pb = chanpool_region_data(b);
  for (size_t i = 0; i < bytes; ++i) pa[i] = (unsigned char)(i * 31 + 7);
  const size_t half = bytes / 2;
  if ((rc = chanpool_put(c0, a, 0, half, &db, half, kWaitNs, to_notes, 42)) != CHANPOOL_OK) return fail("put", rc);
  unsigned char note[64];
  size_t got = 0;
  if ((rc = chanpool_channel_recv(notes, note, sizeof note, &got, kWaitNs)) != CHANPOOL_OK) return fail("notification", rc);
  if (got != 40 || memcmp(pa, pb + half, half) != 0) return fail("put bytes or notification size", CHANPOOL_INVALID);

  /* Asynchronous get of the other half, then test until done. */
  for (size_t i = 0; i < half; ++i) pb[i] = (unsigned char)(i * 13 + 1);
  chanpool_rma_op_t* op = NULL;
  if ((rc = chanpool_get_async(c0, &db, 0, half, a, half, &op)) != CHANPOOL_OK) return fail("get_async", rc);
  if ((rc = chanpool_rma_wait(op, kWaitNs)) != CHANPOOL_OK) return fail("get", rc);
  chanpool_rma_free(op);
  if (memcmp(pb, pa + half, half) != 0) return fail("get bytes", CHANPOOL_INVALID);

  int bad = 0;
  bad |= expect("put past the end", chanpool_put(c0, a, 0, 16, &db, bytes - 8, kWaitNs, NULL, 0), CHANPOOL_E_RMA_OUT_OF_RANGE);
  bad |= expect("put into a read-only region", chanpool_put(c0, a, 0, 16, &dro, 0, kWaitNs, NULL, 0), CHANPOOL_E_RMA_NO_RIGHTS);
  chanpool_region_descriptor_t narrow;
  bad |= expect("narrow", chanpool_region_narrow(&db, 0, 64, CHANPOOL_RMA_READ, &narrow), CHANPOOL_OK);
  bad |= expect("put through a read-only slice", chanpool_put(c0, a, 0, 16, &narrow, 0, kWaitNs, NULL, 0),
                CHANPOOL_E_RMA_NO_RIGHTS);
  bad |= expect("close", chanpool_region_close(b, kWaitNs), CHANPOOL_OK);
  bad |= expect("put with a stale descriptor", chanpool_put(c0, a, 0, 16, &db, 0, kWaitNs, NULL, 0),
                CHANPOOL_E_RMA_STALE_REGION);
  if (strstr(chanpool_strerror(CHANPOOL_E_RMA_STALE_REGION), "stale") == NULL) bad |= fail("strerror", CHANPOOL_INVALID);

  chanpool_region_close(ro, kWaitNs);
  chanpool_region_close(a, kWaitNs);
  chanpool_remote_close(to_notes);
  chanpool_channel_close(notes);
  chanpool_channel_unlink("notes", job1);
  chanpool_client_detach(c0);
  chanpool_client_detach(c1);
  return bad;
}

int main(int argc, char** argv) {
  const size_t bytes = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : (size_t)1 << 20;
  if (bytes < 4096) return fail("BYTES must be at least 4096", CHANPOOL_INVALID);
  chanpool_cluster_t* cluster = NULL;
  const int rc = chanpool_cluster_start(NULL, &cluster);
  if (rc != CHANPOOL_OK) return fail("starting two virtual nodes", rc);
  const int result = run(cluster, bytes);
  chanpool_cluster_stop(cluster);
  if (result == 0) printf("c_rma_put_get: put, get, notification and errors as expected (%zu bytes)\n", bytes);
  return result;
}
