/* chanpool C API, remote channels: the libfabric transport of chanpool/transport/client.hpp and
 * bootstrap.hpp for C and FFI callers. A process attaches to its node's agent and sends to a
 * channel on any node by (node, name); the receiver is an ordinary channel of that node
 * (chanpool/channels.h), in the node's job namespace. docs/transport.md describes the semantics.
 *
 * Linking: in the same libchanpool_c.so (`chanpool::c`) as chanpool/channels.h, which therefore
 * depends on libfabric. Return codes, timeouts, chanpool_strerror() and the "threadsafe" /
 * "setup" markings are those of chanpool/channels.h, which this header includes.
 *
 * Starting the nodes' agents:
 *   - on one host, chanpool_cluster_start() forks one agent process per virtual node (tests,
 *     examples, a laptop); node k's job namespace is chanpool_virtual_node_job(job, k);
 *   - on a cluster, one process per node under mpirun/srun calls chanpool_agent_start_mpi()
 *     (chanpool/transport_mpi.h, library libchanpool_c_mpi.so, when chanpool was built with MPI).
 * Any process of the node then calls chanpool_client_attach() with the node's job namespace.
 *
 * One-sided transfers (chanpool/transport/rma.hpp, docs/rma.md): a region is memory in this
 * node's shared memory that its agent registered with the provider; its descriptor (48 bytes,
 * chanpool_region_descriptor_t) can travel in any message; chanpool_put() and chanpool_get()
 * move bytes between a region of this node and one named by a descriptor, on any node.
 */
#ifndef CHANPOOL_TRANSPORT_H
#define CHANPOOL_TRANSPORT_H

#include <chanpool/channels.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chanpool_cluster chanpool_cluster_t; /* virtual nodes on this host (their agents) */
typedef struct chanpool_client chanpool_client_t;   /* this process attached to its node's agent */
typedef struct chanpool_remote chanpool_remote_t;   /* a channel on some node, opened for sending */

/* ---- virtual nodes ------------------------------------------------------------------------ */

/* How to start a virtual cluster (chanpool::transport::cluster_config). Fill with
 * chanpool_cluster_config_init(), then change what you need. */
typedef struct chanpool_cluster_config {
  uint32_t nodes;           /* virtual nodes, >= 1 (default 2) */
  const char* job;          /* job name; NULL or "" = "vc<pid>" */
  const char* provider;     /* libfabric provider; NULL or "" = the transport's choice (tcp;ofi_rxm) */
  int64_t start_timeout_ns; /* every agent must hear from every other within this (default 60 s) */
} chanpool_cluster_config_t;

/* Fills *config with the defaults. Does nothing if config is NULL. Threadsafe. */
CHANPOOL_C_API void chanpool_cluster_config_init(chanpool_cluster_config_t* config);

/* Forks one agent process per node and returns once every agent has heard from every other.
 * Call it before this process starts threads (it forks). config NULL = defaults. Returns
 * CHANPOOL_OK, CHANPOOL_E_PEER_UNREACHABLE (an agent could not start, or not hear from every
 * other within the timeout; the failing node's reason is printed on stderr), CHANPOOL_E_SYSTEM
 * (fork, socketpair: errno), another CHANPOOL_E_* or CHANPOOL_INVALID (out NULL, 0 nodes,
 * negative timeout). On failure *out is NULL and no agent is left running. Setup. */
CHANPOOL_C_API int chanpool_cluster_start(const chanpool_cluster_config_t* config, chanpool_cluster_t** out);

/* Stops every agent (an orderly goodbye), reaps them and frees the handle. NULL is ignored.
 * Only the process that started the cluster may stop it (a forked child must not). Setup. */
CHANPOOL_C_API void chanpool_cluster_stop(chanpool_cluster_t* cluster);

/* The number of nodes; 0 for NULL. Threadsafe. */
CHANPOOL_C_API uint32_t chanpool_cluster_nodes(const chanpool_cluster_t* cluster);

/* Writes node `node`'s job namespace (NUL-terminated) into `buffer` of `capacity` bytes and its
 * length without the NUL into *length (may be NULL). Returns CHANPOOL_OK, CHANPOOL_TOO_LARGE
 * (capacity too small: *length says how long it is) or CHANPOOL_INVALID (NULL cluster, node out
 * of range, buffer NULL with capacity > 0). Threadsafe. */
CHANPOOL_C_API int chanpool_cluster_node_job(const chanpool_cluster_t* cluster, uint32_t node, char* buffer,
                                             size_t capacity, size_t* length);

/* The job namespace of node `node` of job `job` ("<job>-n<node>"), as chanpool_cluster_node_job
 * and the MPI bootstrap name them, for processes that know only the job and their node. Returns
 * as chanpool_cluster_node_job (CHANPOOL_INVALID: job NULL). Threadsafe. */
CHANPOOL_C_API int chanpool_virtual_node_job(const char* job, uint32_t node, char* buffer, size_t capacity,
                                             size_t* length);

/* ---- attaching to a node ------------------------------------------------------------------- */

/* Attaches this process to the agent of the node whose job namespace is `node_job`, waiting up
 * to wait_ns (CHANPOOL_FOREVER, or > 0) for the agent to be ready, and creates this process's
 * reply channel there. Returns CHANPOOL_OK, CHANPOOL_E_NOT_FOUND or CHANPOOL_E_NOT_READY (no
 * agent of that node_job became ready within wait_ns), CHANPOOL_E_TIMED_OUT,
 * CHANPOOL_E_INVALID_NAME, another CHANPOOL_E_* or CHANPOOL_INVALID (also: wait_ns is
 * CHANPOOL_TRY_ONCE). On failure *out is NULL. Setup (distinct handles are independent). */
CHANPOOL_C_API int chanpool_client_attach(const char* node_job, int64_t wait_ns, chanpool_client_t** out);

/* Removes the reply channel and frees the handle. NULL is ignored. Close its remote channels
 * first. Setup. */
CHANPOOL_C_API void chanpool_client_detach(chanpool_client_t* client);

/* This node's number and the job's node count; 0 for NULL. Threadsafe. */
CHANPOOL_C_API uint32_t chanpool_client_node(const chanpool_client_t* client);
CHANPOOL_C_API uint32_t chanpool_client_node_count(const chanpool_client_t* client);

enum chanpool_peer_state {
  CHANPOOL_NODE_UNKNOWN = 0, /* not heard from yet (or no such node) */
  CHANPOOL_NODE_ALIVE = 1,
  CHANPOOL_NODE_DEAD = 2,    /* silent past the agent's peer timeout, or its sends failed */
  CHANPOOL_NODE_LEFT = 3     /* said goodbye (its agent stopped) */
};

/* What this node's agent knows of node `node`: a chanpool_peer_state; CHANPOOL_NODE_UNKNOWN for
 * NULL. Threadsafe, wait-free. */
CHANPOOL_C_API int chanpool_client_peer_state(const chanpool_client_t* client, uint32_t node);

/* Asks the agent to send every partial batch now. Returns CHANPOOL_OK, CHANPOOL_PEER_DEAD (this
 * node's agent is gone) or CHANPOOL_INVALID. Threadsafe. */
CHANPOOL_C_API int chanpool_client_flush(chanpool_client_t* client);

/* ---- remote channels ------------------------------------------------------------------------ */

enum chanpool_route {
  CHANPOOL_ROUTE_DIRECT_IF_LOCAL = 0, /* a channel on this node is written directly (default) */
  CHANPOOL_ROUTE_VIA_AGENT = 1        /* always through the agent (the target may be single-producer) */
};

typedef struct chanpool_remote_options {
  int route;                  /* a chanpool_route */
  int64_t resolve_timeout_ns; /* how long the target node's agent may take to answer (default 10 s) */
} chanpool_remote_options_t;

/* Fills *options with the defaults. Does nothing if options is NULL. Threadsafe. */
CHANPOOL_C_API void chanpool_remote_options_init(chanpool_remote_options_t* options);

/* Resolves channel `name` on node `node` (that node's agent opens it) and stores a handle for
 * sending to it in *out. options NULL = defaults. Returns CHANPOOL_OK, CHANPOOL_E_NOT_FOUND (no
 * such channel there yet: a peer may retry), CHANPOOL_E_PEER_UNREACHABLE (no such node, or it is
 * gone), CHANPOOL_E_TIMED_OUT, CHANPOOL_E_INVALID_NAME, another CHANPOOL_E_* or CHANPOOL_INVALID.
 * On failure *out is NULL. Threadsafe (distinct handles). */
CHANPOOL_C_API int chanpool_remote_open(chanpool_client_t* client, uint32_t node, const char* name,
                                        const chanpool_remote_options_t* options, chanpool_remote_t** out);

/* Frees the handle. NULL is ignored. Setup. */
CHANPOOL_C_API void chanpool_remote_close(chanpool_remote_t* remote);

enum chanpool_send_mode {
  CHANPOOL_SEND_BUFFERED = 0, /* return once this node's agent holds the message */
  CHANPOOL_SEND_DEPOSITED = 1 /* return once it is in the target channel, or with why it is not */
};

/* Sends `size` bytes at `data` (NULL allowed when size is 0) as one message, in FIFO order per
 * sending process and target channel. Returns CHANPOOL_OK; CHANPOOL_FULL (CHANPOOL_TRY_ONCE and
 * the agent's inbox is full: the destination is slow); CHANPOOL_TIMEOUT; CHANPOOL_PEER_DEAD (the
 * target node or this node's agent is gone); CHANPOOL_TOO_LARGE (size >
 * chanpool_remote_max_message_bytes()); CHANPOOL_CLOSED (deposited: the target was sealed);
 * CHANPOOL_INVALID (NULL, unknown mode, bad timeout). Threadsafe; deposited sends of one client
 * wait for their confirmations one at a time. */
CHANPOOL_C_API int chanpool_remote_send(chanpool_remote_t* remote, const void* data, size_t size,
                                        int64_t timeout_ns, int mode);

/* Zero-copy send (buffered): reserves `size` bytes for one message and describes them in *claim
 * (its data and size; `internal` is the implementation's): write the message there, then
 * chanpool_remote_commit() it or chanpool_remote_abandon() it through the same handle. Toward
 * another node the bytes are in this node's agent inbox, and a large message leaves from there
 * (read by the receiving agent straight into the target slot): it is not copied on this node.
 * Returns as chanpool_remote_send(); on failure *claim is zeroed. The claim holds an inbox slot:
 * keep it short. Threadsafe (distinct claims). */
CHANPOOL_C_API int chanpool_remote_claim(chanpool_remote_t* remote, size_t size, chanpool_send_claim_t* claim,
                                         int64_t timeout_ns);
/* Hands a claimed message to the agent (or to the local channel). CHANPOOL_OK, CHANPOOL_PEER_DEAD
 * (this node's agent is gone), CHANPOOL_INVALID (NULL, or a claim not live). Zeroes *claim. */
CHANPOOL_C_API int chanpool_remote_commit(chanpool_remote_t* remote, chanpool_send_claim_t* claim);
/* Gives a claimed message's room back without sending anything. Zeroes *claim. */
CHANPOOL_C_API int chanpool_remote_abandon(chanpool_remote_t* remote, chanpool_send_claim_t* claim);

/* The target channel's largest message; 0 for NULL. Threadsafe. */
CHANPOOL_C_API size_t chanpool_remote_max_message_bytes(const chanpool_remote_t* remote);

/* 1 when the target is on this node and is written directly, 0 otherwise (and for NULL). */
CHANPOOL_C_API int chanpool_remote_is_local(const chanpool_remote_t* remote);

/* ---- one-sided transfers (regions, put, get) ------------------------------------------------- */

/* Codes of one-sided transfers: -200 - chanpool::transport::rma_errc. chanpool_strerror() knows
 * them. */
enum chanpool_rma_code {
  CHANPOOL_E_RMA_OUT_OF_RANGE = -201,        /* outside the region or the descriptor's range */
  CHANPOOL_E_RMA_NO_RIGHTS = -202,           /* put needs CHANPOOL_RMA_WRITE, get CHANPOOL_RMA_READ */
  CHANPOOL_E_RMA_STALE_REGION = -203,        /* the region was closed (maybe created again) */
  CHANPOOL_E_RMA_REGION_CLOSED = -204,       /* the region handle was closed */
  CHANPOOL_E_RMA_PEER_DEAD = -205,           /* the region's node or this node's agent is gone */
  CHANPOOL_E_RMA_WRONG_JOB = -206,           /* a descriptor of another job */
  CHANPOOL_E_RMA_UNSUPPORTED = -207,         /* the provider has no FI_RMA */
  CHANPOOL_E_RMA_NOT_LOCAL = -208,           /* the local region is not this client's node's */
  CHANPOOL_E_RMA_INVALID_DESCRIPTOR = -209,  /* empty or malformed descriptor */
  CHANPOOL_E_RMA_CANCELLED = -210,           /* chanpool_rma_free() of a transfer not waited for */
  CHANPOOL_E_RMA_TIMED_OUT = -211,           /* the wait ran out; the transfer may still finish */
  CHANPOOL_E_RMA_REGISTRATION_FAILED = -212, /* fi_mr_reg refused the memory */
  CHANPOOL_E_RMA_TOO_LARGE = -213,           /* longer than the provider moves in one operation */
  CHANPOOL_E_RMA_NOTIFY_FAILED = -214,       /* bytes landed; the notification channel was full or gone */
  CHANPOOL_E_RMA_TOO_MANY_REGIONS = -215     /* the node's region table is full */
};

#define CHANPOOL_RMA_READ 1u  /* peers may get from it */
#define CHANPOOL_RMA_WRITE 2u /* peers may put into it */

typedef struct chanpool_region chanpool_region_t; /* a region of this node, owned by this process */
typedef struct chanpool_rma_op chanpool_rma_op_t; /* a transfer in flight */

/* Names [offset, offset + length) of a region with the rights it grants; plain bytes, copy it
 * anywhere. Same layout as chanpool::transport::region_descriptor. */
typedef struct chanpool_region_descriptor {
  uint32_t node;
  uint32_t region_id;
  uint64_t generation; /* 0: empty */
  uint64_t offset;
  uint64_t length;
  uint32_t rights;     /* CHANPOOL_RMA_READ | CHANPOOL_RMA_WRITE */
  uint32_t job_tag;
  uint64_t reserved;
} chanpool_region_descriptor_t;

/* Asks this node's agent for a region of `bytes` that peers may access with `rights`, waiting up
 * to timeout_ns. Returns CHANPOOL_OK, CHANPOOL_E_RMA_UNSUPPORTED, CHANPOOL_E_RMA_TOO_MANY_REGIONS,
 * CHANPOOL_E_RMA_REGISTRATION_FAILED, CHANPOOL_E_OUT_OF_MEMORY (larger than the host),
 * CHANPOOL_E_INVALID_CONFIG (0 bytes), CHANPOOL_E_PEER_UNREACHABLE, CHANPOOL_E_TIMED_OUT or
 * CHANPOOL_INVALID. On failure *out is NULL. Threadsafe (distinct handles). */
CHANPOOL_C_API int chanpool_region_create(chanpool_client_t* client, size_t bytes, uint32_t rights, int64_t timeout_ns,
                                          chanpool_region_t** out);
/* Closes the region (its descriptors go stale at once; transfers in flight finish first) and
 * frees the handle. Returns CHANPOOL_OK, CHANPOOL_E_TIMED_OUT, CHANPOOL_E_PEER_UNREACHABLE, or
 * CHANPOOL_INVALID (NULL). The handle is freed in every case. Setup. */
CHANPOOL_C_API int chanpool_region_close(chanpool_region_t* region, int64_t timeout_ns);
/* The region's bytes in this process, and their number; NULL / 0 for NULL. Threadsafe. */
CHANPOOL_C_API void* chanpool_region_data(const chanpool_region_t* region);
CHANPOOL_C_API size_t chanpool_region_size(const chanpool_region_t* region);
/* The descriptor of the whole region. Returns CHANPOOL_OK or CHANPOOL_INVALID. Threadsafe. */
CHANPOOL_C_API int chanpool_region_descriptor(const chanpool_region_t* region, chanpool_region_descriptor_t* out);
/* A narrower descriptor: [offset, offset + length) of *d with at most its rights. Returns
 * CHANPOOL_OK, CHANPOOL_E_RMA_OUT_OF_RANGE, CHANPOOL_E_RMA_NO_RIGHTS,
 * CHANPOOL_E_RMA_INVALID_DESCRIPTOR or CHANPOOL_INVALID. Threadsafe. */
CHANPOOL_C_API int chanpool_region_narrow(const chanpool_region_descriptor_t* d, uint64_t offset, uint64_t length,
                                          uint32_t rights, chanpool_region_descriptor_t* out);

/* Puts `length` bytes of `src` (this node's region) at src_offset into *dst at dst_offset
 * (relative to the descriptor's range), waiting up to timeout_ns for both completions (the
 * source reusable, the bytes visible at the target). With `notify` (a remote channel on dst's
 * node), a chanpool::transport::put_notification carrying `tag` lands in it after the bytes.
 * Returns CHANPOOL_OK or a CHANPOOL_E_RMA_* code (CHANPOOL_E_RMA_TIMED_OUT: it may still
 * finish), or CHANPOOL_INVALID. Threadsafe. */
CHANPOOL_C_API int chanpool_put(chanpool_client_t* client, const chanpool_region_t* src, uint64_t src_offset,
                                uint64_t length, const chanpool_region_descriptor_t* dst, uint64_t dst_offset,
                                int64_t timeout_ns, const chanpool_remote_t* notify, uint64_t tag);
/* Gets `length` bytes of *src at src_offset into `dst` (this node's region) at dst_offset.
 * Returns as chanpool_put(). Threadsafe. */
CHANPOOL_C_API int chanpool_get(chanpool_client_t* client, const chanpool_region_descriptor_t* src, uint64_t src_offset,
                                uint64_t length, const chanpool_region_t* dst, uint64_t dst_offset, int64_t timeout_ns);
/* As chanpool_put() / chanpool_get(), returning at once with a handle in *out (NULL on failure:
 * the error found before anything was sent). Threadsafe. */
CHANPOOL_C_API int chanpool_put_async(chanpool_client_t* client, const chanpool_region_t* src, uint64_t src_offset,
                                      uint64_t length, const chanpool_region_descriptor_t* dst, uint64_t dst_offset,
                                      const chanpool_remote_t* notify, uint64_t tag, chanpool_rma_op_t** out);
CHANPOOL_C_API int chanpool_get_async(chanpool_client_t* client, const chanpool_region_descriptor_t* src,
                                      uint64_t src_offset, uint64_t length, const chanpool_region_t* dst,
                                      uint64_t dst_offset, chanpool_rma_op_t** out);
/* Sets *done to 1 and returns the outcome once the transfer ended; *done = 0 (and CHANPOOL_OK)
 * while it runs. Never blocks on the transfer. One thread per handle. */
CHANPOOL_C_API int chanpool_rma_test(chanpool_rma_op_t* op, int* done);
/* Waits up to timeout_ns: the outcome, or CHANPOOL_E_RMA_TIMED_OUT (wait again). One thread per
 * handle. */
CHANPOOL_C_API int chanpool_rma_wait(chanpool_rma_op_t* op, int64_t timeout_ns);
/* Frees the handle; a transfer not waited for runs to its end unobserved. NULL is ignored. */
CHANPOOL_C_API void chanpool_rma_free(chanpool_rma_op_t* op);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CHANPOOL_TRANSPORT_H */
