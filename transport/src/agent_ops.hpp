// What the agent hands to libfabric: every context starts with an `operation`, so a completion
// says what it finished. Owned by whoever posted it until its completion (see agent_rx.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/rma.hpp"
#include "inbound.hpp"
#include "outbound.hpp"
#include "region_table.hpp"

namespace chanpool::transport::detail {

// A control frame (credit, ack, resolve, heartbeat...) in its own buffer; freed on completion.
struct control_frame : operation {
  control_frame() : operation(op_kind::control_send) {}
  std::uint32_t dest = 0;
  std::vector<std::byte> bytes;
  memory_registration mr;
};

// The payload of a large message, sent as a tagged message after its descriptor's batch.
struct large_send : operation {
  large_send() : operation(op_kind::large_send) {}
  std::uint32_t dest = 0;
  std::vector<std::byte> payload;
  memory_registration mr;
};

// The receive memory: one allocation, registered once, cut into slots of the largest frame.
// Not FI_MULTI_RECV: with libfabric 1.17's tcp;ofi_rxm, frames from several peers are placed into
// a multi-receive buffer by their own connections and complete out of order, yet the buffer is
// reported released with the last slice handed out, not the last one filled; reposting it then
// lets a new frame overwrite one still arriving (seen as a corrupted frame and a stalled source
// in the 8-node fan-in stress test). A posted receive per frame has no such hazard.
struct recv_arena {
  explicit recv_arena(std::size_t n) : bytes(new std::byte[n]), size(n) {}
  // Not value-initialised: pages are touched only when frames land in them, so the many idle
  // agents of a fan-in do not each fault in megabytes they never use.
  std::unique_ptr<std::byte[]> bytes;
  std::size_t size;
  memory_registration mr;
};

// One posted receive of a frame, in the arena.
struct recv_slot : operation {
  recv_slot(std::byte* d, std::size_t n) : operation(op_kind::frame_recv), data(d), size(n) {}
  std::byte* data;
  std::size_t size;
};

// A tagged receive of a large message straight into the target channel's claimed slot.
struct large_recv : operation {
  large_recv() : operation(op_kind::large_recv) {}
  large_delivery delivery;
  std::vector<std::byte> discard;  // where an undeliverable large message lands
  memory_registration mr;
};

// A transfer this node's agent carries out as the target region's owner: fi_read of the
// initiator's bytes into the region (put), or fi_write of the region's bytes to it (get).
struct rma_target_op : operation {
  rma_target_op() : operation(op_kind::rma_target) {}
  std::uint32_t source = 0;  // the initiating node
  std::uint64_t token = 0;   // its agent's id of the transfer
  bool is_put = false;
  region_lease lease;
  std::uint32_t notify_channel = wire::no_notify;
  put_notification notice{};
};

// A transfer a process of this node started, waiting for the target's rma_done.
struct pending_rma {
  std::uint32_t src_pid = 0;
  std::uint64_t client_token = 0;
  std::uint32_t dest = 0;
  region_lease local;
};

}  // namespace chanpool::transport::detail
