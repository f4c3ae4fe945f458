// The per-node agent: owns the node's libfabric endpoint, and moves messages between the
// processes of its node (through shared-memory channels) and the agents of other nodes.
//
// One progress thread does the agent's work. It sleeps on the completion queue's file descriptor
// and the node's doorbell at once; a process that writes into the inbox while the agent sleeps
// rings the doorbell. So a message wakes one thread per node on its way.
//
// Outbound: processes write records into the agent's inbox channel ("agent-inbox" in the node's
// job). The progress thread drains it and appends each small message to the batch of its destination
// node, flushing a batch when it reaches flush_bytes, when the inbox runs dry (the producers are
// idle), or flush_deadline after its first message while the inbox stays busy. A destination
// takes at most `credits` batches that its agent has not yet delivered; beyond that, batches
// wait (at most ready_batches of them), then the agent stops draining the inbox and the
// producers block on the full inbox: memory is bounded and nothing is dropped.
//
// Inbound: the same thread reads the completion queue in batches. Batches land in posted
// receive slots; each message is copied into its target channel. A target channel that is full
// holds back that source only (its remaining messages are kept, its credit is returned once they
// are delivered). Large messages go point to point straight into the target channel's claimed
// slot: read by the receiving agent from the sender's inbox where the provider has FI_RMA
// (large_by_read), else sent as tagged messages from a copy.
//
// Liveness: every frame from a peer counts as a sign of life; idle peers exchange heartbeats.
// A peer that is silent for peer_timeout, or whose sends fail, is marked dead in the node's
// shared state, and processes sending to it get status::peer_dead. A dead peer stays dead: if it
// comes back, its frames are dropped (dropped_from_dead) and it is told that it was declared
// dead, whereupon it marks every peer dead and so leaves the job.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "chanpool/channels/error.hpp"
#include "chanpool/transport/fabric.hpp"

namespace chanpool::transport {

struct agent_config {
  std::string provider;                                  // see choose_provider()
  std::string listen_address = "127.0.0.1";
  // Aggregation: off sends every message as its own frame (for comparison runs).
  bool aggregation = true;
  // Batch size that triggers a send, and the largest frame. Capped at the provider's eager size
  // (16 KiB on tcp;ofi_rxm unless FI_OFI_RXM_BUFFER_SIZE raises it): see eager_message_limit() in fabric.hpp.
  std::size_t flush_bytes = 64 * 1024;
  std::chrono::microseconds flush_deadline{20};          // max age of a partial batch while busy
  std::size_t large_threshold = 16 * 1024;               // larger payloads go point to point
  std::uint32_t credits = 32;                            // frames in flight per destination
  std::uint32_t ready_batches = 2;                       // sealed frames waiting for credit
  // Receive memory, recv_buffers x recv_buffer_bytes, cut into slots of the largest frame, one
  // posted receive each (at most half the provider's receive queue).
  std::uint32_t recv_buffers = 8;
  std::size_t recv_buffer_bytes = 2 << 20;
  std::uint32_t inbox_capacity = 4096;                   // slots in the inbox channel
  std::chrono::microseconds spin{50};                    // poll this long before sleeping
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds peer_timeout{5000};          // silence that makes a peer dead
  // When set, the agent notes when each small message and batch frame passes it and writes the
  // times to this path plus ".<node>" when it stops (one file per agent, so that every node of a
  // virtual cluster can share one config): chanpool/transport/hop_trace.hpp, latency_bench --hops.
  std::string hop_trace_file;
  // Regions (rma.hpp) this node's processes may have open at once; each is a segment and a
  // registration with the provider.
  std::uint32_t max_regions = 1024;
  // Ask the provider for one-sided RMA (FI_RMA). Without it (or on a provider that lacks it)
  // channels work as before and region::create() reports rma_errc::rma_unsupported.
  bool rma = true;
  // Large messages (over large_threshold) by one-sided read: the payload stays in this node's
  // inbox (shared memory, registered once), the receiving agent reads it straight into the
  // target channel's slot, and neither agent copies it. Needs rma and a provider with FI_RMA;
  // otherwise, or false, the agent copies the payload and sends it as a tagged message.
  bool large_by_read = true;
  // Fork a node keeper: a small process that removes this node's segments if the process running
  // the agent is killed (SIGKILL, or a launcher ending the job) before it stops the agent, and
  // leaves by itself once the agent is destroyed. start_agent_mpi turns it on (the agent then
  // runs in the user's rank); virtual nodes do not need it (their owner removes them).
  bool node_keeper = false;
};

// Counters kept in the node's shared state; any process on the node can read them.
struct agent_stats {
  std::uint64_t messages_sent = 0;        // small messages put on the wire
  std::uint64_t frames_sent = 0;          // batch frames sent
  std::uint64_t bytes_sent = 0;
  std::uint64_t large_sent = 0;           // point-to-point messages sent
  std::uint64_t large_read_sent = 0;      // of them, read by the receiver from this node's inbox
  std::uint64_t large_read_received = 0;  // large messages this node read into its channels
  std::uint64_t messages_delivered = 0;   // into target channels on this node
  std::uint64_t frames_received = 0;      // batch frames accepted
  std::uint64_t bytes_received = 0;
  std::uint64_t credit_stalls = 0;        // times the agent waited for a destination's credit
  // Times a full target channel on this node held back the rest of a source's batch (its credit
  // waits until they are in): the receiving process, not the network, is the bottleneck.
  std::uint64_t delivery_holds = 0;
  std::uint64_t dropped_bad_key = 0;      // frames with a wrong job key
  std::uint64_t dropped_malformed = 0;    // frames with a bad magic/version/length/kind/source
  std::uint64_t dropped_unknown_channel = 0;  // messages for a channel id this agent never gave out
  std::uint64_t dropped_undeliverable = 0;    // target channel closed or message too large for it
  std::uint64_t dropped_peer_dead = 0;    // messages for a destination found dead
  std::uint64_t inbox_malformed = 0;      // records from local processes that made no sense
  std::uint64_t peers_dead = 0;
  // A peer declared dead that comes back (it was stopped, or its link was down, for longer than
  // peer_timeout): its late frames are dropped here and it is told so (declared_dead frame).
  std::uint64_t dropped_from_dead = 0;
  // Times this node was told that a peer had declared it dead; it then treats every peer as
  // dead (its processes see peer_dead and the node leaves the job).
  std::uint64_t declared_dead_by_peer = 0;
};

// Per-node shared-memory state: "agent-state" in the node's job namespace.
enum class peer_state : std::uint32_t { unknown = 0, alive = 1, dead = 2, left = 3 };

class agent {
 public:
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  // Bootstrap step 1: opens the endpoint, creates the node's inbox and shared state.
  // node_job is the shared-memory namespace of this node (its channels live there).
  static result<std::unique_ptr<agent>> create(std::uint32_t node, std::uint32_t node_count,
                                               const std::string& node_job, const agent_config& config);
  // This agent's fabric address, to be exchanged at bootstrap.
  const std::vector<std::byte>& address() const noexcept;
  const endpoint_info& fabric_info() const noexcept;
  // The configuration in effect (flush_bytes may be lowered to the provider's eager size).
  const agent_config& config() const noexcept;

  // Bootstrap step 2: every node's address (index = node) and the job key. Starts the threads,
  // says hello to every peer and returns once it heard from all of them (every connection is then
  // set up, so the first measured send does not pay for it). Past the timeout it returns
  // FI_ETIMEDOUT (as a fabric error), and failure_reason() names the nodes not heard from.
  std::error_code connect(const std::vector<std::vector<std::byte>>& peers, std::uint64_t job_key,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

  // Orderly stop: tells the peers (goodbye), stops the threads, seals the inbox. Idempotent.
  // Threadsafe; may block up to a few ms.
  void stop() noexcept;

  // An agent that hits an error it cannot go on from (the provider refuses to repost a receive
  // buffer) does not end the process it runs in: it stops moving messages, marks every peer
  // dead (its clients' calls return status::peer_dead, and the node's phase reads failed), and
  // keeps the reason here. Empty while the agent is fine. Any thread.
  std::error_code failure() const;
  // Words for failure(), or for why connect() failed (which nodes were not heard from).
  std::string failure_reason() const;

  agent_stats stats() const noexcept;
  std::uint32_t node() const noexcept;
  std::uint32_t node_count() const noexcept;

  struct impl;

 private:
  explicit agent(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Reads a node's counters from its shared state (any process on the node).
result<agent_stats> read_agent_stats(const std::string& node_job);
// The fabric address the node's agent listens on (for tools that talk to it directly).
result<std::vector<std::byte>> read_agent_address(const std::string& node_job);

// A fresh random job key (getrandom).
std::uint64_t make_job_key();

}  // namespace chanpool::transport
