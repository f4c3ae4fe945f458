// The agent-to-agent wire format, and the record a process puts in its node agent's inbox.
//
// Every fabric message between agents is one frame: a frame_header, then a kind-specific body.
// All fields are little-endian fixed-width integers (chanpool runs on little-endian hosts only;
// frame_header::magic read byte-swapped is how a foreign peer would show up). Bodies are padded
// to 8 bytes so every header in a batch is aligned.
//
// Providers may complete receives out of order (tcp;ofi_rxm reports comp_order NONE, and its
// eager and rendezvous paths overtake each other), so batches carry a per-destination sequence
// number and the receiver puts them back in order before delivering.
//
// A receiving agent trusts nothing in a frame: it checks magic, version, job key, source node,
// the frame length against the completion length, and every message length against the end of
// the frame, before it touches the payload. A frame that fails is dropped and counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace chanpool::transport::wire {

inline constexpr std::uint32_t frame_magic = 0x31465043;  // "CPF1"
inline constexpr std::uint16_t protocol_version = 3;  // 2: rma_request, rma_done; 3: remote_read, large_done

enum class frame_kind : std::uint16_t {
  hello = 1,         // start-up: "my endpoint is up"; a node is ready when it heard every peer
  heartbeat = 2,     // liveness when there is no other traffic
  batch = 3,         // count messages, each a message_header + payload; costs one credit
  credit = 4,        // count = batches of the receiver's that this node has fully delivered
  resolve = 5,       // body: resolve_request + channel name
  resolve_reply = 6, // body: resolve_reply
  ack = 7,           // body: count x ack_record (deposited-mode confirmations)
  goodbye = 8,       // orderly shutdown: not a failure
  declared_dead = 9, // "I declared you dead and drop your frames": the receiver leaves the job
  rma_request = 10,  // body: rma_request; the region's owner checks it and moves the bytes
  rma_done = 11,     // body: rma_done; the owner's answer, after the bytes moved (or why not)
  large_done = 12,   // body: count x u64 tags of remote_read messages the receiver is done with
};

struct frame_header {
  std::uint32_t magic;      // frame_magic
  std::uint16_t version;    // protocol_version
  std::uint16_t kind;       // frame_kind
  std::uint64_t job_key;    // per-job secret chosen at bootstrap; a wrong key drops the frame
  std::uint32_t src_node;   // sending agent's node index
  std::uint32_t bytes;      // whole frame, header included; must equal the received length
  std::uint32_t count;      // batch: messages; credit: batches returned; ack: records
  std::uint32_t sequence;   // batch: 0, 1, 2, ... per (source, destination); others: 0
};
static_assert(sizeof(frame_header) == 32);
static_assert(std::is_trivially_copyable_v<frame_header>);

enum message_flags : std::uint16_t {
  deposited = 1,  // the sender waits for an ack once the message is in the target channel
  large = 2,      // payload follows point to point as a tagged message; token is the tag
  // With large: the payload stays in the sending node's memory, and a large_source follows the
  // header in the batch; the receiving agent reads the bytes straight into the target slot and
  // then names the tag in a large_done frame, after which the sender may reuse that memory.
  remote_read = 4,
};

// One message inside a batch frame; `length` payload bytes follow, then padding to 8.
struct message_header {
  std::uint32_t length;      // payload bytes (large: bytes of the tagged message that follows)
  std::uint32_t channel_id;  // id the receiving agent gave the channel at resolve time
  std::uint16_t flags;       // message_flags
  std::uint16_t reserved;
  std::uint32_t src_pid;     // sending process, for acks
  std::uint64_t token;       // deposited: the sender's sequence number; large: the tag
};
static_assert(sizeof(message_header) == 24);
static_assert(std::is_trivially_copyable_v<message_header>);

constexpr std::size_t padded(std::size_t bytes) noexcept { return (bytes + 7) & ~std::size_t{7}; }

// Where a remote_read message's `length` bytes are: the sending agent registered that memory
// (its inbox's heap) once, for remote read only by this job's agents.
struct large_source {
  std::uint64_t address;  // remote address of the first payload byte (fi_read's addr)
  std::uint64_t key;      // the registration's remote key
};
static_assert(sizeof(large_source) == 16, "large_source is part of the wire format");
static_assert(std::is_trivially_copyable_v<large_source>);

// Body of a resolve frame; the channel name (name_bytes, no NUL) follows.
struct resolve_request {
  std::uint32_t src_pid;     // the process asking; the reply goes back to it
  std::uint32_t name_bytes;
  std::uint64_t token;
};
static_assert(sizeof(resolve_request) == 16);

// Body of a resolve_reply frame, and the record a process gets in its reply channel.
struct resolve_reply {
  std::uint32_t src_pid;
  std::int32_t error;              // 0, or a chanpool::errc value (not_found, ...)
  std::uint64_t token;
  std::uint32_t channel_id;
  std::uint32_t reserved;
  std::uint64_t max_message_bytes; // of the target channel
};
static_assert(sizeof(resolve_reply) == 32);

// Body element of an ack frame, and the record a process gets in its reply channel.
struct ack_record {
  std::uint32_t src_pid;
  std::uint8_t status;   // chanpool::status of the deposit
  std::uint8_t flags;    // ack_flags
  std::uint8_t reserved[2];
  std::uint64_t token;   // the message's token; with ack_of_large, the large message's tag
};
// ack_record::flags. A large message's descriptor carries its fabric tag where a small one
// carries the sender's token: the sending agent maps the tag back before the ack goes on.
enum ack_flags : std::uint8_t { ack_of_large = 1 };
static_assert(sizeof(ack_record) == 16);

// --- one-sided transfers (rma.hpp) --------------------------------------------------------------
//
// The agent of the node that owns the target region moves the bytes: it checks the request
// against its region table (generation, range, rights), then reads the initiator's bytes into
// its region (put) or writes its bytes into the initiator's region (get), and answers rma_done.
// So no descriptor is ever used on the provider unchecked, and a closed region's key is never
// presented to the provider (a provider may fail the whole connection between the nodes on one).

enum class rma_op_kind : std::uint16_t { put = 1, get = 2 };

struct rma_request {
  std::uint64_t token;          // the initiating agent's operation id, echoed in rma_done
  std::uint16_t op;             // rma_op_kind
  std::uint16_t reserved0;
  std::uint32_t region_id;      // the target's region
  std::uint64_t generation;     // of the target region, from the descriptor
  std::uint64_t offset;         // absolute offset in the target region
  std::uint64_t length;         // bytes to move
  std::uint64_t peer_key;       // the initiator's region: its remote key
  std::uint64_t peer_address;   // the remote address of the initiator's first byte to move
  std::uint32_t notify_channel; // put: channel id (resolved at the target) to notify, or no_notify
  std::uint32_t reserved1;
  std::uint64_t notify_tag;     // carried to the notification
};
static_assert(sizeof(rma_request) == 72, "rma_request is part of the wire format");
static_assert(std::is_trivially_copyable_v<rma_request>);
inline constexpr std::uint32_t no_notify = 0xffffffffu;

struct rma_done {
  std::uint64_t token;
  std::int32_t error;           // 0, or an rma_errc value
  std::uint32_t reserved;
};
static_assert(sizeof(rma_done) == 16, "rma_done is part of the wire format");

// --- node-local: what a process writes into its agent's inbox channel --------------------------

enum class inbox_kind : std::uint16_t {
  data = 1,     // payload for (dest_node, channel_id)
  resolve = 2,  // payload is a channel name to resolve on dest_node
  flush = 3,    // send every partial batch now
  region_create = 4,  // payload: region_create; the agent answers region_reply
  region_close = 5,   // channel_id: region id; the agent answers region_reply
  rma = 6,            // payload: rma_local; the agent answers rma_reply when the transfer ended
};

// Payload of a region_create record.
struct region_create {
  std::uint64_t bytes;
  std::uint32_t rights;    // rma_rights peers may use
  std::uint32_t reserved;
};
static_assert(sizeof(region_create) == 16);

// Reply record of region_create and region_close.
struct region_reply {
  std::uint32_t src_pid;
  std::int32_t error;      // 0, or an rma_errc / errc value (category in `category`)
  std::uint64_t token;
  std::uint64_t generation;
  std::uint32_t region_id;
  std::uint32_t category;  // 0: rma_errc, 1: chanpool errc, 2: fabric error
  std::uint32_t job_tag;   // this job's tag, for the region's descriptors
  std::uint32_t reserved;
};
static_assert(sizeof(region_reply) == 40);

// What descriptors carry to name their job: derived from the job key, which never leaves the
// agents. A descriptor from another job is refused before anything is sent.
constexpr std::uint32_t job_tag(std::uint64_t job_key) noexcept {
  const std::uint64_t m = job_key * 0x9E3779B97F4A7C15ull;
  return static_cast<std::uint32_t>(m >> 32) | 1u;  // never 0: 0 marks an empty descriptor
}

// Payload of an rma record: a transfer between a region of this node and a remote one.
struct rma_local {
  std::uint16_t op;               // rma_op_kind
  std::uint16_t reserved0;
  std::uint32_t local_region;     // this node's region (its id; generation checked too)
  std::uint64_t local_generation;
  std::uint64_t local_offset;
  std::uint64_t length;
  std::uint32_t remote_node;
  std::uint32_t remote_region;
  std::uint64_t remote_generation;
  std::uint64_t remote_offset;    // absolute in the remote region
  std::uint32_t notify_channel;   // no_notify, or a channel id resolved on remote_node
  std::uint32_t job_tag;          // the remote descriptor's; must be this job's (job_tag())
  std::uint64_t notify_tag;
};
static_assert(sizeof(rma_local) == 72);

// Reply record of an rma transfer.
struct rma_reply {
  std::uint32_t src_pid;
  std::int32_t error;      // 0 or an rma_errc value
  std::uint64_t token;     // the process's token of the transfer
};
static_assert(sizeof(rma_reply) == 16);

struct inbox_header {
  std::uint32_t dest_node;
  std::uint32_t channel_id;
  std::uint16_t kind;        // inbox_kind
  std::uint16_t flags;       // message_flags (deposited)
  std::uint32_t src_pid;
  std::uint64_t token;
};
static_assert(sizeof(inbox_header) == 24);
static_assert(std::is_trivially_copyable_v<inbox_header>);

// What a process finds in its reply channel: a tag, then a resolve_reply or an ack_record.
enum class reply_kind : std::uint32_t { resolve = 1, ack = 2, region = 3, rma = 4 };
struct reply_envelope {
  std::uint32_t kind;  // reply_kind
  std::uint32_t reserved;
};
static_assert(sizeof(reply_envelope) == 8);

}  // namespace chanpool::transport::wire
