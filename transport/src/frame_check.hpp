// Checking and decoding the agent-to-agent frames (wire.hpp) that arrive from the fabric.
//
// Pure functions over untrusted bytes: no I/O, no agent state. The agent calls them before it
// acts on a frame; the fuzz target (tests/fuzz/fuzz_transport_frame.cpp) calls them on mutated
// input. Every length is checked against the bytes actually received before anything is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chanpool/transport/wire.hpp"

namespace chanpool::transport::detail {

enum class frame_verdict : std::uint8_t {
  ok,
  malformed,  // short, wrong magic/version/length, or a source node outside the job
  bad_key,    // a well-formed frame with another job's key
};

struct frame_view {
  wire::frame_header header{};
  const std::byte* body = nullptr;  // header.bytes - sizeof(frame_header) bytes follow
  std::size_t body_bytes = 0;
};

// Checks the header of a frame of `len` received bytes.
frame_verdict check_frame(const std::byte* data, std::size_t len, std::uint32_t node_count, std::uint64_t job_key,
                          frame_view& out) noexcept;

// Body decoders; false when the body does not have the kind's shape.
bool decode_resolve(const frame_view& f, wire::resolve_request& request, std::string_view& name) noexcept;
bool decode_resolve_reply(const frame_view& f, wire::resolve_reply& reply) noexcept;
// An ack frame's body is exactly header.count records; ack_at() reads record i < count.
bool check_acks(const frame_view& f) noexcept;
wire::ack_record ack_at(const frame_view& f, std::uint32_t i) noexcept;

// A large_done frame's body is exactly header.count tags; large_done_tag() reads tag i < count.
bool check_large_done(const frame_view& f) noexcept;
std::uint64_t large_done_tag(const frame_view& f, std::uint32_t i) noexcept;

// One step through a batch body [p, end): reads the message header at p. `body` is the bytes
// inline after it, padding included: the payload, or for a large message its large_source
// (remote_read) or nothing (its payload comes apart as a tagged message).
enum class batch_step : std::uint8_t { message, end, malformed };
batch_step next_message(const std::byte* p, const std::byte* end, wire::message_header& m, std::size_t& body) noexcept;

}  // namespace chanpool::transport::detail
