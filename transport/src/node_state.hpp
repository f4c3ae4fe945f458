// The node's shared state ("agent-state" segment in the node's job): what the agent publishes
// to the processes of its node. Written by the agent, read by everyone on the node.
//
// Layout rules as for channel segments: fixed-width fields, no pointers, the header's
// magic/state published last with a release store, counters on their own cache lines.
// magic, version, state, header_bytes, creator pid and start time sit at the same offsets as in
// a channel segment header, so chanpool_cleanup can judge the segment's owner the same way.
#pragma once

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "chanpool/channels/error.hpp"
#include "chanpool/transport/agent.hpp"

namespace chanpool::transport::detail {

inline constexpr std::uint64_t node_state_magic = 0x3130545344'4F4E43ull;  // "CNODST01"
inline constexpr std::uint32_t node_state_version = 4;  // 3: phase failed and failure_code; 4: agent_asleep
inline constexpr std::uint32_t max_nodes = 4096;
inline constexpr const char* node_state_name = "agent-state";
inline constexpr const char* inbox_name = "agent-inbox";

// failed: the agent hit an error it cannot go on from (its reason is in failure_code); its
// clients' calls return status::peer_dead as for a stopped agent.
enum class node_phase : std::uint32_t { initialising = 0, connecting = 1, ready = 2, stopped = 3, failed = 4 };

struct alignas(64) node_counters {
  std::uint64_t messages_sent;
  std::uint64_t frames_sent;
  std::uint64_t bytes_sent;
  std::uint64_t large_sent;
  std::uint64_t credit_stalls;
  std::uint64_t dropped_peer_dead;
  std::uint64_t inbox_malformed;
  std::uint64_t large_read_sent;
  // Inbound counters on their own lines, apart from the outbound ones read by other processes.
  alignas(64) std::uint64_t messages_delivered;
  std::uint64_t frames_received;
  std::uint64_t bytes_received;
  std::uint64_t dropped_bad_key;
  std::uint64_t dropped_malformed;
  std::uint64_t dropped_unknown_channel;
  std::uint64_t dropped_undeliverable;
  std::uint64_t peers_dead;
  alignas(64) std::uint64_t delivery_holds;
  std::uint64_t dropped_from_dead;   // frames from a peer this node had declared dead
  std::uint64_t declared_dead_by_peer;  // times a peer said it had declared this node dead
  std::uint64_t large_read_received;
  std::uint64_t reserved_rx[4];
};
static_assert(sizeof(node_counters) == 192);

struct node_state {
  std::uint64_t magic;              // node_state_magic, release-stored last
  std::uint32_t version;
  std::uint32_t phase;              // node_phase (atomic)
  std::uint32_t header_bytes;       // sizeof(node_state)
  std::uint32_t agent_pid;
  std::uint64_t agent_start_time;   // /proc start time, guards against pid reuse
  std::uint32_t node;
  std::uint32_t node_count;
  std::uint32_t address_bytes;
  std::int32_t failure_code;       // with phase failed: a chanpool errc value, else 0
  std::uint8_t address[256];        // the agent's fabric name
  char provider[64];
  node_counters counters;
  // Senders waiting for room in a full inbox sleep on inbox_room (futex); the agent bumps it
  // and wakes them once the inbox is half empty, not for every slot it frees.
  alignas(64) std::uint32_t inbox_room;
  std::uint32_t inbox_waiters;
  // 1 while the agent's progress thread sleeps or is about to; a sender that publishes an inbox
  // record and turns it to 0 rings the node's doorbell (doorbell.hpp). Read on every send: a
  // line of its own, written by the agent only around its sleeps.
  alignas(64) std::uint32_t agent_asleep;
  alignas(64) std::uint32_t peers[max_nodes];   // peer_state per node (atomic)
};
static_assert(offsetof(node_state, version) == 8);
static_assert(offsetof(node_state, agent_pid) == 20);
static_assert(offsetof(node_state, agent_start_time) == 24);
static_assert(offsetof(node_state, counters) % 64 == 0);
static_assert(std::is_trivially_copyable_v<node_state>);

inline std::uint64_t relaxed_load(const std::uint64_t& field) noexcept {
  return std::atomic_ref<const std::uint64_t>(field).load(std::memory_order_relaxed);
}
inline void relaxed_add(std::uint64_t& field, std::uint64_t n) noexcept {
  std::atomic_ref<std::uint64_t>(field).fetch_add(n, std::memory_order_relaxed);
}
inline peer_state load_peer(const node_state* s, std::uint32_t node) noexcept {
  return static_cast<peer_state>(
      std::atomic_ref<const std::uint32_t>(s->peers[node]).load(std::memory_order_acquire));
}
inline void store_peer(node_state* s, std::uint32_t node, peer_state p) noexcept {
  std::atomic_ref<std::uint32_t>(s->peers[node]).store(static_cast<std::uint32_t>(p), std::memory_order_release);
}
inline node_phase load_phase(const node_state* s) noexcept {
  return static_cast<node_phase>(std::atomic_ref<const std::uint32_t>(s->phase).load(std::memory_order_acquire));
}

agent_stats stats_from(const node_counters& c) noexcept;

// The agent's process is alive (pid and start time match: a reused pid is not the agent).
bool agent_process_alive(const node_state* s) noexcept;
// The agent can still move messages: alive, and neither stopped nor failed.
bool agent_serving(const node_state* s) noexcept;

// The channel a process receives its agent's replies on (acks, resolve answers).
inline std::string reply_channel_name(std::uint32_t pid) { return "reply-" + std::to_string(pid); }

// A mapping of a node's state segment.
struct node_state_mapping {
  boost::interprocess::mapped_region region;
  node_state* state = nullptr;
};

// Creates (agent) or opens and validates (everyone else) the segment of `node_job`.
result<node_state_mapping> create_node_state(const std::string& node_job);
void publish_node_state(node_state* s) noexcept;
result<node_state_mapping> open_node_state(const std::string& node_job);
void unlink_node_state(const std::string& node_job) noexcept;

}  // namespace chanpool::transport::detail
