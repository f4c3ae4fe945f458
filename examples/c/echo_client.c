/* A C client of the C++ echo peer (examples/cpp_peer.cpp), through the chanpool C API.
 *
 *   CHANPOOL_JOB=demo ./cpp_peer &
 *   CHANPOOL_JOB=demo ./c_echo_client [COUNT]
 *
 * Opens "requests" and "replies" (waiting until the peer has created them), then for each of
 * COUNT messages (default 200): sends it (by copy, or zero-copy through a claim), waits for the
 * reply with a poll set, receives it (by copy, growing the buffer on CHANPOOL_TOO_LARGE, or
 * zero-copy through a claim) and checks that it came back unchanged. Then seals "requests" and
 * expects the peer to seal "replies" in turn. Sizes cycle through inline and heap messages.
 *
 * Message format (shared with the peer): bytes [0, 8) are the sequence number as a
 * little-endian u64; every later byte i is (seq * 7 + i) % 251. Exit status 0 on success. */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */

#include <chanpool/channels.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every wait is bounded: a peer that died makes the example fail instead of hanging. */
static const int64_t kWaitNs = 10LL * 1000 * 1000 * 1000;

static void fill(unsigned char* m, size_t size, uint64_t seq) {
  for (size_t i = 0; i < 8; ++i) m[i] = (unsigned char)(seq >> (8 * i));
  for (size_t i = 8; i < size; ++i) m[i] = (unsigned char)((seq * 7 + i) % 251);
}

static int same(const unsigned char* a, const unsigned char* b, size_t size) { return memcmp(a, b, size) == 0; }

/* Opens `name`, retrying while the peer has not created it yet. */
static int open_when_created(const char* name, chanpool_channel_t** out) {
  const struct timespec nap = {0, 10 * 1000 * 1000};
  for (int tries = 0;; ++tries) {
    const int rc = chanpool_channel_open(name, NULL, out); /* NULL job: $CHANPOOL_JOB */
    if (rc != CHANPOOL_E_NOT_FOUND && rc != CHANPOOL_E_NOT_READY) return rc;
    if (tries == 1000) return rc; /* 10 s */
    nanosleep(&nap, NULL);
  }
}

static int fail(const char* what, int rc) {
  fprintf(stderr, "c_echo_client: %s: %s (%d)\n", what, chanpool_strerror(rc), rc);
  return 1;
}

int main(int argc, char** argv) {
  const long count = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
  /* 8 and 96 fit a default 128-byte slot (96 bytes inline); 97 and up go through the heap. */
  static const size_t sizes[] = {8, 9, 96, 97, 1000, 4096, 65536};
  const size_t nsizes = sizeof sizes / sizeof sizes[0];

  chanpool_channel_t* requests = NULL;
  chanpool_channel_t* replies = NULL;
  int rc = open_when_created("requests", &requests);
  if (rc != CHANPOOL_OK) return fail("open requests", rc);
  rc = open_when_created("replies", &replies);
  if (rc != CHANPOOL_OK) {
    chanpool_channel_close(requests);
    return fail("open replies", rc);
  }

  chanpool_poll_set_t* poll = NULL;
  rc = chanpool_poll_set_create(&poll);
  if (rc == CHANPOOL_OK) rc = chanpool_poll_set_add(poll, replies, CHANPOOL_READABLE, NULL);

  unsigned char* expected = malloc(65536);
  size_t buffer_size = 16; /* deliberately small: CHANPOOL_TOO_LARGE tells us what to grow to */
  unsigned char* buffer = malloc(buffer_size);
  int status = expected && buffer ? 0 : 1;
  if (rc != CHANPOOL_OK) status = fail("poll set", rc);

  for (long seq = 0; status == 0 && seq < count; ++seq) {
    const size_t size = sizes[(size_t)seq % nsizes];
    fill(expected, size, (uint64_t)seq);

    /* Send: even messages by copy, odd ones written in place through a claim. */
    if (seq % 2 == 0) {
      rc = chanpool_channel_send(requests, expected, size, kWaitNs);
    } else {
      chanpool_send_claim_t claim;
      rc = chanpool_channel_claim_send(requests, size, &claim, kWaitNs);
      if (rc == CHANPOOL_OK) {
        fill(claim.data, claim.size, (uint64_t)seq);
        rc = chanpool_channel_commit(requests, &claim, SIZE_MAX);
      }
    }
    if (rc != CHANPOOL_OK) {
      status = fail("send", rc);
      break;
    }

    /* Wait for the reply on the poll set (with one channel, a blocking recv would do as well). */
    chanpool_poll_event_t ready;
    size_t nready = 0;
    rc = chanpool_poll_set_wait(poll, &ready, 1, &nready, kWaitNs);
    if (rc != CHANPOOL_OK || nready != 1 || !(ready.events & CHANPOOL_READABLE)) {
      status = fail("poll set wait", rc);
      break;
    }

    /* Receive: even replies by copy into a buffer that grows on demand, odd ones in place. */
    if (seq % 2 == 0) {
      size_t length = 0;
      rc = chanpool_channel_recv(replies, buffer, buffer_size, &length, kWaitNs);
      if (rc == CHANPOOL_TOO_LARGE) { /* still queued; length is its size */
        unsigned char* bigger = realloc(buffer, length);
        if (!bigger) {
          status = 1;
          break;
        }
        buffer = bigger;
        buffer_size = length;
        rc = chanpool_channel_recv(replies, buffer, buffer_size, &length, kWaitNs);
      }
      if (rc != CHANPOOL_OK) {
        status = fail("recv", rc);
        break;
      }
      if (length != size || !same(buffer, expected, size)) {
        fprintf(stderr, "c_echo_client: reply %ld differs from its request\n", seq);
        status = 1;
      }
    } else {
      chanpool_recv_claim_t claim;
      rc = chanpool_channel_claim_recv(replies, &claim, kWaitNs);
      if (rc != CHANPOOL_OK) {
        status = fail("claim_recv", rc);
        break;
      }
      if (claim.size != size || !same(claim.data, expected, size)) {
        fprintf(stderr, "c_echo_client: reply %ld differs from its request\n", seq);
        status = 1;
      }
      rc = chanpool_channel_release(replies, &claim);
      if (rc != CHANPOOL_OK) status = fail("release", rc);
    }
  }

  if (status == 0) {
    /* Done: seal our side; the peer drains it, then seals the replies. */
    chanpool_channel_seal(requests);
    size_t length = 0;
    rc = chanpool_channel_recv(replies, buffer, buffer_size, &length, kWaitNs);
    if (rc != CHANPOOL_CLOSED) status = fail("expected the peer to seal replies", rc);
  }

  chanpool_channel_stats_t stats;
  if (chanpool_channel_stats(requests, &stats) == CHANPOOL_OK)
    printf("c_echo_client: %ld round trips, %s; lost messages %llu\n", count, status == 0 ? "all verified" : "FAILED",
           (unsigned long long)stats.lost_messages);
  free(buffer);
  free(expected);
  chanpool_poll_set_destroy(poll); /* before closing the channel it watches */
  chanpool_channel_close(replies);
  chanpool_channel_close(requests);
  return status;
}
