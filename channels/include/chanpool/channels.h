/* chanpool C API: cross-process shared-memory channels for C and for FFI callers (Python ctypes,
 * ...). A thin layer over chanpool::channels::channel and poll_set: channel.hpp, poll_set.hpp and
 * docs/channels.md describe the semantics in full; this header says what differs in C.
 *
 * Linking: `chanpool::c` (libchanpool_c.so.MAJOR, which exports only the chanpool_* functions
 * of this header and of chanpool/transport.h, the remote channels; what ctypes loads) or
 * `chanpool::channels` (the static C++ library, which contains this header's functions too but
 * needs the C++ runtime at link time). The exported list is committed
 * (tests/capi/libchanpool_c.symbols): a change to it is a change of the ABI.
 *
 * Return codes. Every int-returning function returns
 *   CHANPOOL_OK (0)            success;
 *   a positive status          CHANPOOL_FULL .. CHANPOOL_INVALID, the outcome of an operation
 *                              (same values as chanpool::status);
 *   a negative setup error     CHANPOOL_E_*, from create/open/unlink (CHANPOOL_E_INVALID_NAME ..
 *                              CHANPOOL_E_TIMED_OUT are -chanpool::errc), or when memory for
 *                              a handle could not be allocated.
 * chanpool_strerror() describes any of them. No C++ exception ever crosses this API: one caught
 * inside is returned as CHANPOOL_E_NO_MEMORY (std::bad_alloc) or CHANPOOL_E_INTERNAL.
 * A NULL handle or a NULL pointer where one is required returns CHANPOOL_INVALID.
 *
 * Timeouts are int64_t nanoseconds: CHANPOOL_FOREVER (-1) waits without limit, CHANPOOL_TRY_ONCE
 * (0) tries once and returns CHANPOOL_FULL / CHANPOOL_EMPTY instead of waiting, a positive value
 * waits at most that long (then CHANPOOL_TIMEOUT). Any other negative value is CHANPOOL_INVALID.
 *
 * Threads and processes. Calls marked "threadsafe" may run at the same time on one handle from
 * any number of threads (and on other handles of the same channel in any number of processes);
 * they are lock-free and only calls with a non-zero timeout block. Calls marked "setup" must not
 * run concurrently with any other call on the same handle. Distinct handles are independent.
 *
 * Names are 1-100 characters from [A-Za-z0-9_-], scoped per user and per job: a NULL or empty
 * `job` means $CHANPOOL_JOB, else "default". The segment is /dev/shm/chanpool.<uid>.<job>.<name>.
 */
#ifndef CHANPOOL_CHANNELS_H
#define CHANPOOL_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <chanpool/version.h> /* CHANPOOL_VERSION_STRING etc.: the headers' version */

#if defined(__GNUC__)
#define CHANPOOL_C_API __attribute__((visibility("default")))
#else
#define CHANPOOL_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- codes ------------------------------------------------------------------------------- */

enum chanpool_code {
  CHANPOOL_OK = 0,
  CHANPOOL_FULL = 1,      /* no free slot (or heap space) and the call did not wait */
  CHANPOOL_EMPTY = 2,     /* nothing to receive and the call did not wait */
  CHANPOOL_TIMEOUT = 3,   /* the wait's deadline passed */
  CHANPOOL_CLOSED = 4,    /* the channel was sealed (receivers: and drained) */
  CHANPOOL_PEER_DEAD = 5, /* the peer the operation depends on is gone (remote channels) */
  CHANPOOL_TOO_LARGE = 6, /* message larger than the channel allows, or than the receive buffer */
  CHANPOOL_INVALID = 7,   /* bad argument: NULL handle or pointer, claim not live, bad timeout */

  CHANPOOL_E_INVALID_NAME = -1,      /* channel or job name empty, too long or with bad characters */
  CHANPOOL_E_INVALID_CONFIG = -2,    /* capacity not a power of two, slot_bytes not a multiple of 64, ... */
  CHANPOOL_E_NOT_FOUND = -3,         /* no channel of that name for this user and job */
  CHANPOOL_E_ALREADY_EXISTS = -4,    /* create of a name that exists */
  CHANPOOL_E_PERMISSION_DENIED = -5, /* the segment belongs to another user or its mode forbids access */
  CHANPOOL_E_VERSION_MISMATCH = -6,  /* segment written by an incompatible chanpool version */
  CHANPOOL_E_LAYOUT_MISMATCH = -7,   /* header sizes/offsets disagree with the segment size */
  CHANPOOL_E_CORRUPTED = -8,         /* bad magic or checksum in the segment header */
  CHANPOOL_E_NOT_READY = -9,         /* the creator has not finished initialising the segment */
  CHANPOOL_E_OUT_OF_MEMORY = -10,    /* the segment could not be sized or mapped (/dev/shm full?) */
  CHANPOOL_E_PEER_UNREACHABLE = -11, /* transport: the node's agent is gone or never answered */
  CHANPOOL_E_TIMED_OUT = -12,        /* transport: a setup step did not finish within its timeout */
  CHANPOOL_E_SYSTEM = -100,          /* another operating-system error: errno holds it */
  CHANPOOL_E_NO_MEMORY = -101,       /* this process could not allocate memory for a handle */
  CHANPOOL_E_INTERNAL = -102         /* an unexpected C++ exception was caught at the C boundary */
};

/* A static, NUL-terminated English description of any code above (and "unknown chanpool code"
 * for any other value). Never NULL. Threadsafe. */
CHANPOOL_C_API const char* chanpool_strerror(int code);

/* The linked library's version, "MAJOR.MINOR.PATCH" (static, NUL-terminated; compare with
 * CHANPOOL_VERSION_STRING, the headers'). Threadsafe. */
CHANPOOL_C_API const char* chanpool_version(void);

#define CHANPOOL_FOREVER ((int64_t)-1)
#define CHANPOOL_TRY_ONCE ((int64_t)0)

/* ---- types ------------------------------------------------------------------------------- */

typedef struct chanpool_channel chanpool_channel_t;    /* an open channel handle */
typedef struct chanpool_poll_set chanpool_poll_set_t;  /* a set of channels to wait on */

/* Shape of a channel, fixed at create. Fill with chanpool_channel_config_init(), then change
 * what you need (fields as in chanpool::channels::channel_config). */
typedef struct chanpool_channel_config {
  uint32_t capacity;         /* slots; a power of two, 2 .. 2^24 (default 1024) */
  uint32_t slot_bytes;       /* per slot, 16-byte header included; multiple of 64 (default 128) */
  uint64_t heap_bytes;       /* heap for messages larger than a slot; 0 = none (default 16 MiB) */
  uint32_t heap_block_bytes; /* heap granule; a power of two >= 64 (default 4096) */
  bool single_producer;      /* one handle at a time sends (faster; lease-enforced) */
  bool single_consumer;      /* one handle at a time receives */
} chanpool_channel_config_t;

enum chanpool_wait_mode {
  CHANPOOL_WAIT_SPIN = 0,    /* busy-poll until done or deadline */
  CHANPOOL_WAIT_IDLE = 1,    /* sleep on the futex at once */
  CHANPOOL_WAIT_ADAPTIVE = 2 /* spin for spin_ns, then sleep (default) */
};

/* How one handle waits (per handle, not stored in the segment). */
typedef struct chanpool_wait_config {
  int mode;                   /* a chanpool_wait_mode */
  int64_t spin_ns;            /* adaptive: spin this long before sleeping (default 50 us) */
  int64_t liveness_check_ns;  /* probe a slot holder for death after this long (default 50 ms) */
} chanpool_wait_config_t;

/* A snapshot of a channel's state (chanpool::channels::poll_info). */
typedef struct chanpool_poll_info {
  bool readable;              /* a recv would succeed now (or the channel is sealed: recv says closed) */
  bool writable;              /* a small send would succeed now */
  bool closed;                /* sealed */
  uint64_t count;             /* messages sent or being sent and not yet claimed by a receiver */
  uint32_t capacity;
  uint32_t blocked_receivers; /* sleeping in recv or in a poll set on this channel */
  uint32_t blocked_senders;
} chanpool_poll_info_t;

/* Repair counters of a channel (chanpool::channels::channel_stats). */
typedef struct chanpool_channel_stats {
  uint64_t lost_messages;         /* in-flight messages of dead processes, dropped on repair */
  uint64_t repaired_slots;        /* slots taken back from dead holders */
  uint64_t reclaimed_heap_blocks; /* heap blocks taken back from dead processes */
  uint64_t corrupted_messages;    /* slots with impossible length/heap fields, dropped */
  uint32_t attached_processes;    /* live processes registered on the segment */
} chanpool_channel_stats_t;

/* A zero-copy send in progress: write up to `size` bytes at `data`, then commit or abandon it
 * through the handle that claimed it. `internal` is the implementation's state: do not touch.
 * While it is held the slot is held: receivers behind it wait, so keep claims short. */
typedef struct chanpool_send_claim {
  void* data;
  size_t size;
  uint64_t internal[6];
} chanpool_send_claim_t;

/* A zero-copy receive in progress: read `size` bytes at `data`, then release it through the
 * handle that claimed it. The bytes stay valid until the release. */
typedef struct chanpool_recv_claim {
  const void* data;
  size_t size;
  uint64_t internal[4];
} chanpool_recv_claim_t;

/* The most messages one run holds (chanpool::channels::max_run). */
#define CHANPOOL_MAX_RUN 64

/* Zero-copy batch send in progress (chanpool_channel_claim_send_run): `count` consecutive slots,
 * slot i at data[i] with room for `slot_capacity` bytes (the channel's inline capacity). Fill
 * them, then commit the first n (the run keeps the rest, data[] moving up) or abandon what is
 * left, through the handle that claimed. `internal` is the implementation's state: do not touch.
 * Receivers behind the run wait until it is published: keep it short. */
typedef struct chanpool_send_run {
  size_t count;
  size_t slot_capacity;
  void* data[CHANPOOL_MAX_RUN];
  uint64_t internal[6];
} chanpool_send_run_t;

/* Zero-copy batch receive in progress (chanpool_channel_claim_recv_run): `count` consecutive
 * messages, message i being size[i] bytes at data[i], valid until the release. */
typedef struct chanpool_recv_run {
  size_t count;
  const void* data[CHANPOOL_MAX_RUN];
  size_t size[CHANPOOL_MAX_RUN];
  uint64_t internal[98];
} chanpool_recv_run_t;

/* Bits for chanpool_poll_set_add() and chanpool_poll_event_t.events. */
#define CHANPOOL_READABLE 1u
#define CHANPOOL_WRITABLE 2u

typedef struct chanpool_poll_event {
  size_t index;    /* as returned by chanpool_poll_set_add() */
  unsigned events; /* the CHANPOOL_READABLE / CHANPOOL_WRITABLE bits that are ready */
} chanpool_poll_event_t;

/* ---- setup ------------------------------------------------------------------------------- */

/* Fills *config with the C++ defaults (capacity 1024, slot_bytes 128, heap 16 MiB of 4 KiB
 * blocks, MPMC). Does nothing if config is NULL. Threadsafe. */
CHANPOOL_C_API void chanpool_channel_config_init(chanpool_channel_config_t* config);

/* Fills *config with the default wait policy (adaptive, 50 us spin, 50 ms liveness check).
 * Does nothing if config is NULL. Threadsafe. */
CHANPOOL_C_API void chanpool_wait_config_init(chanpool_wait_config_t* config);

/* Creates the channel `name` of `job` (NULL or "" = $CHANPOOL_JOB, else "default") as a new
 * segment (mode 0600), opens it and stores the handle in *out. config NULL = defaults.
 * Returns CHANPOOL_OK, CHANPOOL_E_ALREADY_EXISTS, CHANPOOL_E_INVALID_NAME,
 * CHANPOOL_E_INVALID_CONFIG, CHANPOOL_E_OUT_OF_MEMORY, another CHANPOOL_E_*, or CHANPOOL_INVALID
 * (name or out NULL). *out is set to NULL on any failure. Threadsafe (distinct handles). */
CHANPOOL_C_API int chanpool_channel_create(const char* name, const char* job,
                                           const chanpool_channel_config_t* config,
                                           chanpool_channel_t** out);

/* Opens the existing channel `name` of `job` and stores the handle in *out. Validates the
 * segment. Returns CHANPOOL_OK, CHANPOOL_E_NOT_FOUND (not created yet: a peer may retry),
 * CHANPOOL_E_NOT_READY, CHANPOOL_E_INVALID_NAME, CHANPOOL_E_VERSION_MISMATCH,
 * CHANPOOL_E_LAYOUT_MISMATCH, CHANPOOL_E_CORRUPTED, another CHANPOOL_E_*, or CHANPOOL_INVALID
 * (name or out NULL). *out is set to NULL on any failure. Threadsafe (distinct handles). */
CHANPOOL_C_API int chanpool_channel_open(const char* name, const char* job, chanpool_channel_t** out);

/* Unmaps the channel, deregisters this process and frees the handle. NULL is ignored. Setup: no
 * other call on this handle may run concurrently or follow, and a poll set watching it must be
 * destroyed first. Commit, abandon or release claims made through it first: a claim left live
 * keeps its slot held (receivers behind it wait) until this process exits. Does not remove the
 * name (chanpool_channel_unlink does). */
CHANPOOL_C_API void chanpool_channel_close(chanpool_channel_t* channel);

/* Removes the name `name` of `job`; processes that have it open keep using it until they close.
 * Returns CHANPOOL_OK, CHANPOOL_E_NOT_FOUND, CHANPOOL_E_INVALID_NAME, another CHANPOOL_E_*, or
 * CHANPOOL_INVALID (name NULL). Threadsafe. */
CHANPOOL_C_API int chanpool_channel_unlink(const char* name, const char* job);

/* Sets how this handle waits. Returns CHANPOOL_OK, or CHANPOOL_INVALID (NULL, unknown mode,
 * negative duration). Setup. */
CHANPOOL_C_API int chanpool_channel_set_wait(chanpool_channel_t* channel, const chanpool_wait_config_t* config);

/* ---- sending (threadsafe) ---------------------------------------------------------------- */

/* Copies `size` bytes at `data` (NULL allowed when size is 0) into the channel as one message.
 * Returns CHANPOOL_OK, CHANPOOL_FULL (try once), CHANPOOL_TIMEOUT, CHANPOOL_CLOSED,
 * CHANPOOL_TOO_LARGE (size > chanpool_channel_max_message_bytes()) or CHANPOOL_INVALID (also:
 * a single_producer channel whose lease another live handle holds). */
CHANPOOL_C_API int chanpool_channel_send(chanpool_channel_t* channel, const void* data, size_t size,
                                         int64_t timeout_ns);

/* Zero copy: reserves `size` bytes and fills *claim (data, size). *claim is output only: it
 * must not hold a live claim (one not yet committed or abandoned would be lost, its slot held
 * until this process exits). Returns as chanpool_channel_send; on failure *claim is zeroed. */
CHANPOOL_C_API int chanpool_channel_claim_send(chanpool_channel_t* channel, size_t size,
                                               chanpool_send_claim_t* claim, int64_t timeout_ns);

/* Publishes the first `size` bytes of the claim (SIZE_MAX = all of claim->size) and zeroes
 * *claim. Returns CHANPOOL_OK, or CHANPOOL_INVALID (no live claim, or size > claim->size: the
 * claim stays live). Call it through the handle that claimed. */
CHANPOOL_C_API int chanpool_channel_commit(chanpool_channel_t* channel, chanpool_send_claim_t* claim, size_t size);

/* Gives a claimed slot back without a message (receivers skip it; not counted as lost) and
 * zeroes *claim. Returns CHANPOOL_OK or CHANPOOL_INVALID (no live claim). */
CHANPOOL_C_API int chanpool_channel_abandon(chanpool_channel_t* channel, chanpool_send_claim_t* claim);

/* Batch: sends `count` messages in order (message i: sizes[i] bytes at messages[i]; NULL allowed
 * where the size is 0), in runs of up to 64 slots that are each claimed, filled and published in
 * one step. Sets *sent to how many were sent; the result says why the rest were not:
 * CHANPOOL_OK (all), CHANPOOL_FULL (try once), CHANPOOL_TIMEOUT (timeout_ns covers the whole
 * call), CHANPOOL_CLOSED, CHANPOOL_TOO_LARGE (message *sent is) or CHANPOOL_INVALID (also: NULL
 * sent, or NULL arrays with count > 0; then nothing is sent). */
CHANPOOL_C_API int chanpool_channel_send_many(chanpool_channel_t* channel, const void* const* messages,
                                              const size_t* sizes, size_t count, size_t* sent, int64_t timeout_ns);

/* Zero-copy batch: claims between 1 and min(count, CHANPOOL_MAX_RUN) consecutive slots (as many
 * as are free now, waiting up to timeout_ns for the first) and fills *run. *run is output only:
 * it must not hold a live run. Returns CHANPOOL_OK, CHANPOOL_FULL (try once), CHANPOOL_TIMEOUT,
 * CHANPOOL_CLOSED or CHANPOOL_INVALID (count 0, NULL run; also a single_producer channel whose
 * lease another live handle holds); on failure *run is zeroed. The lease, seal and waiter checks,
 * the index update and the wake-up are paid once per run, not per message. */
CHANPOOL_C_API int chanpool_channel_claim_send_run(chanpool_channel_t* channel, size_t count, chanpool_send_run_t* run,
                                                   int64_t timeout_ns);

/* Publishes the first n slots of the run, slot i with lengths[i] bytes (NULL allowed when n is
 * 0); the run keeps the rest (run->count and run->data move up; zeroed when none is left).
 * Returns CHANPOOL_OK, or CHANPOOL_INVALID (no live run, n > run->count, NULL lengths, or a
 * length over run->slot_capacity: nothing is published). */
CHANPOOL_C_API int chanpool_channel_commit_run(chanpool_channel_t* channel, chanpool_send_run_t* run,
                                               const size_t* lengths, size_t n);

/* Gives back every slot the run still holds (receivers skip them; not counted as lost) and zeroes
 * *run. Returns CHANPOOL_OK or CHANPOOL_INVALID (no live run). */
CHANPOOL_C_API int chanpool_channel_abandon_run(chanpool_channel_t* channel, chanpool_send_run_t* run);

/* ---- receiving (threadsafe) -------------------------------------------------------------- */

/* Copies the next message into `buffer` (`capacity` bytes; NULL allowed when capacity is 0)
 * and sets *length (may be NULL) to its size. If the message is larger than `capacity` it stays
 * queued, *length is set to its size and the result is CHANPOOL_TOO_LARGE: retry with a buffer
 * that large. (So capacity 0 peeks the size of the next message; an empty one is received.)
 * Returns CHANPOOL_OK, CHANPOOL_EMPTY (try once), CHANPOOL_TIMEOUT, CHANPOOL_CLOSED (sealed and
 * drained), CHANPOOL_TOO_LARGE or CHANPOOL_INVALID. */
CHANPOOL_C_API int chanpool_channel_recv(chanpool_channel_t* channel, void* buffer, size_t capacity,
                                         size_t* length, int64_t timeout_ns);

/* Zero copy: claims the next message in place and fills *claim (data, size). *claim is output
 * only, as for chanpool_channel_claim_send. The slot stays held until the release: keep it short.
 * Returns CHANPOOL_OK, CHANPOOL_EMPTY, CHANPOOL_TIMEOUT, CHANPOOL_CLOSED or CHANPOOL_INVALID;
 * on failure *claim is zeroed. */
CHANPOOL_C_API int chanpool_channel_claim_recv(chanpool_channel_t* channel, chanpool_recv_claim_t* claim,
                                               int64_t timeout_ns);

/* Frees the claimed message's slot and zeroes *claim. Returns CHANPOOL_OK or CHANPOOL_INVALID
 * (no live claim). Call it through the handle that claimed. */
CHANPOOL_C_API int chanpool_channel_release(chanpool_channel_t* channel, chanpool_recv_claim_t* claim);

/* Batch: waits up to timeout_ns for the first message, then takes the ones queued behind it
 * without waiting, up to `max_messages`. They are copied back to back into `buffer`
 * (`capacity` bytes); lengths[i] is the size of message i and *received how many there are.
 * The result says why there are not more: CHANPOOL_OK (max_messages received), CHANPOOL_EMPTY
 * (no more queued now), CHANPOOL_TIMEOUT (none within timeout_ns), CHANPOOL_CLOSED (sealed and
 * drained), CHANPOOL_TOO_LARGE (the next message does not fit in what is left of the buffer; it
 * stays queued, and with *received 0, lengths[0] is its size) or CHANPOOL_INVALID (NULL
 * lengths or received, max_messages 0, NULL buffer with capacity > 0). */
CHANPOOL_C_API int chanpool_channel_recv_many(chanpool_channel_t* channel, void* buffer, size_t capacity,
                                              size_t* lengths, size_t max_messages, size_t* received,
                                              int64_t timeout_ns);

/* Zero-copy batch: claims between 1 and min(count, CHANPOOL_MAX_RUN) consecutive messages in
 * place (waiting up to timeout_ns for the first) and fills *run (output only, as for
 * chanpool_channel_claim_send_run). Their slots stay held until the release: keep it short.
 * Returns CHANPOOL_OK, CHANPOOL_EMPTY, CHANPOOL_TIMEOUT, CHANPOOL_CLOSED or CHANPOOL_INVALID;
 * on failure *run is zeroed. */
CHANPOOL_C_API int chanpool_channel_claim_recv_run(chanpool_channel_t* channel, size_t count, chanpool_recv_run_t* run,
                                                   int64_t timeout_ns);

/* Frees every slot of the run at once (one index update and one wake-up) and zeroes *run.
 * Returns CHANPOOL_OK or CHANPOOL_INVALID (no live run). Through the handle that claimed. */
CHANPOOL_C_API int chanpool_channel_release_run(chanpool_channel_t* channel, chanpool_recv_run_t* run);

/* ---- state (threadsafe, wait-free) ------------------------------------------------------- */

/* Fills *info with a snapshot. Returns CHANPOOL_OK or CHANPOOL_INVALID (NULL argument). */
CHANPOOL_C_API int chanpool_channel_poll(const chanpool_channel_t* channel, chanpool_poll_info_t* info);

/* Fills *stats with the repair counters. Returns CHANPOOL_OK or CHANPOOL_INVALID. */
CHANPOOL_C_API int chanpool_channel_stats(const chanpool_channel_t* channel, chanpool_channel_stats_t* stats);

/* Fills *config with the channel's shape as created. Returns CHANPOOL_OK or CHANPOOL_INVALID. */
CHANPOOL_C_API int chanpool_channel_get_config(const chanpool_channel_t* channel, chanpool_channel_config_t* config);

/* Seals the channel for every process: sends then return CHANPOOL_CLOSED; receivers drain what
 * is queued, then get CHANPOOL_CLOSED. Wakes every waiter. Returns CHANPOOL_OK or
 * CHANPOOL_INVALID. */
CHANPOOL_C_API int chanpool_channel_seal(chanpool_channel_t* channel);

/* Repairs now every slot held by a dead process (a zombie included), returns dead processes' heap
 * blocks, and takes processes killed while asleep in the channel off its waiter counts (waiters
 * do this by themselves; this is for a supervisor). Returns the number of slots repaired plus
 * the dead waits removed; 0 for NULL. */
CHANPOOL_C_API size_t chanpool_channel_repair(chanpool_channel_t* channel);

/* The largest message a send accepts (the larger of the inline capacity and the heap), and the
 * largest that is copied inline into a slot. 0 for NULL. */
CHANPOOL_C_API size_t chanpool_channel_max_message_bytes(const chanpool_channel_t* channel);
CHANPOOL_C_API size_t chanpool_channel_inline_capacity(const chanpool_channel_t* channel);

/* ---- poll sets (one thread at a time per set; the channels are shared freely) ------------- */

/* Creates an empty poll set in *out. Returns CHANPOOL_OK, CHANPOOL_E_NO_MEMORY or
 * CHANPOOL_INVALID (out NULL). */
CHANPOOL_C_API int chanpool_poll_set_create(chanpool_poll_set_t** out);

/* Watches `channel` (which must stay open until the set is destroyed) for `events`
 * (CHANPOOL_READABLE and/or CHANPOOL_WRITABLE) and stores its index (0, 1, ...) in *index (may
 * be NULL). Returns CHANPOOL_OK, CHANPOOL_E_NO_MEMORY or CHANPOOL_INVALID (NULL, no or unknown
 * event bits). */
CHANPOOL_C_API int chanpool_poll_set_add(chanpool_poll_set_t* set, const chanpool_channel_t* channel,
                                         unsigned events, size_t* index);

/* Waits until at least one watched channel is ready, then stores up to `capacity` ready
 * channels in `ready` (NULL allowed when capacity is 0) and their number in *count (may be
 * NULL). Readiness is level-triggered: ready channels that did not fit are reported again by the
 * next call. Sealed channels count as readable (recv then says closed). No wake-up is missed.
 * Returns CHANPOOL_OK, CHANPOOL_TIMEOUT (also for a try-once timeout with nothing ready; *count
 * is 0) or CHANPOOL_INVALID (empty set, NULL set, bad timeout). */
CHANPOOL_C_API int chanpool_poll_set_wait(chanpool_poll_set_t* set, chanpool_poll_event_t* ready, size_t capacity,
                                          size_t* count, int64_t timeout_ns);

/* How long a wait spins before it sleeps (default 20 us). Returns CHANPOOL_OK or
 * CHANPOOL_INVALID (NULL set, negative). */
CHANPOOL_C_API int chanpool_poll_set_set_spin(chanpool_poll_set_t* set, int64_t spin_ns);

/* Frees the set (not the channels). NULL is ignored. */
CHANPOOL_C_API void chanpool_poll_set_destroy(chanpool_poll_set_t* set);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* CHANPOOL_CHANNELS_H */
