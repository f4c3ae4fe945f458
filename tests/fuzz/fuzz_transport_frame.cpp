// Fuzz target: one frame as an agent receives it from the fabric (transport/src/frame_check.hpp).
// The frame is checked against a job of 4 nodes and a fixed key; a frame with another key is
// also decoded as if its key were right, so that the bodies behind the key check are reached.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "frame_check.hpp"
#include "fuzz_input.hpp"

namespace {

namespace w = chanpool::transport::wire;
using namespace chanpool::transport::detail;

constexpr std::uint64_t kJobKey = 0x6b6579206a6f6221ull;
constexpr std::uint32_t kNodes = 4;
volatile std::uint64_t sink;

void decode_body(const frame_view& f, const std::byte* end) {
  switch (static_cast<w::frame_kind>(f.header.kind)) {
    case w::frame_kind::resolve: {
      w::resolve_request req;
      std::string_view name;
      if (decode_resolve(f, req, name)) sink = chanpool::fuzz::touch(name.data(), name.size());
      return;
    }
    case w::frame_kind::resolve_reply: {
      w::resolve_reply rep;
      if (decode_resolve_reply(f, rep)) sink = rep.token;
      return;
    }
    case w::frame_kind::ack:
      if (check_acks(f))
        for (std::uint32_t i = 0; i < f.header.count; ++i) sink = ack_at(f, i).token;
      return;
    case w::frame_kind::batch: {
      const std::byte* p = f.body;
      w::message_header m;
      std::size_t body = 0;
      while (next_message(p, end, m, body) == batch_step::message) {
        // The payload the agent would hand to a channel: it must lie inside the frame.
        if (!(m.flags & w::large)) sink = chanpool::fuzz::touch(p + sizeof m, m.length);
        // A remote_read message's large_source, read by the agent, must lie inside it too.
        if ((m.flags & w::large) && (m.flags & w::remote_read)) sink = chanpool::fuzz::touch(p + sizeof m, sizeof(w::large_source));
        p += sizeof m + body;
      }
      return;
    }
    case w::frame_kind::large_done:
      if (check_large_done(f))
        for (std::uint32_t i = 0; i < f.header.count; ++i) sink = large_done_tag(f, i);
      return;
    default: return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  frame_view f;
  frame_verdict v = check_frame(bytes, size, kNodes, kJobKey, f);
  if (v == frame_verdict::bad_key) {
    w::frame_header h;
    std::memcpy(&h, data, sizeof h);
    v = check_frame(bytes, size, kNodes, h.job_key, f);
  }
  if (v == frame_verdict::ok) decode_body(f, bytes + size);
  return 0;
}
