// What the agent hands to libfabric: every context starts with an `operation`, so a completion
// says what it finished. Owned by whoever posted it until its completion (see agent_rx.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "chanpool/transport/fabric.hpp"
#include "inbound.hpp"
#include "outbound.hpp"

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

// A FI_MULTI_RECV buffer: the provider fills it with many frames and releases it when less than
// the largest frame is left.
struct recv_buffer : operation {
  explicit recv_buffer(std::size_t n) : operation(op_kind::multi_recv), bytes(new std::byte[n]), size(n) {}
  // Not value-initialised: pages are touched only when frames land in them, so the many idle
  // agents of a fan-in do not each fault in megabytes they never use.
  std::unique_ptr<std::byte[]> bytes;
  std::size_t size;
  memory_registration mr;
};

// A tagged receive of a large message straight into the target channel's claimed slot.
struct large_recv : operation {
  large_recv() : operation(op_kind::large_recv) {}
  large_delivery delivery;
  std::vector<std::byte> discard;  // where an undeliverable large message lands
  memory_registration mr;
};

}  // namespace chanpool::transport::detail
