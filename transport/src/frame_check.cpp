#include "frame_check.hpp"

#include <cstring>

namespace chanpool::transport::detail {

frame_verdict check_frame(const std::byte* data, std::size_t len, std::uint32_t node_count, std::uint64_t job_key,
                          frame_view& out) noexcept {
  if (data == nullptr || len < sizeof(wire::frame_header)) return frame_verdict::malformed;
  wire::frame_header h;
  std::memcpy(&h, data, sizeof h);
  if (h.magic != wire::frame_magic || h.version != wire::protocol_version || h.bytes != len || h.src_node >= node_count)
    return frame_verdict::malformed;
  if (h.job_key != job_key) return frame_verdict::bad_key;
  out.header = h;
  out.body = data + sizeof h;
  out.body_bytes = len - sizeof h;
  return frame_verdict::ok;
}

bool decode_resolve(const frame_view& f, wire::resolve_request& request, std::string_view& name) noexcept {
  if (f.body_bytes < sizeof request) return false;
  std::memcpy(&request, f.body, sizeof request);
  if (request.name_bytes != f.body_bytes - sizeof request) return false;
  name = std::string_view(reinterpret_cast<const char*>(f.body + sizeof request), request.name_bytes);
  return true;
}

bool decode_resolve_reply(const frame_view& f, wire::resolve_reply& reply) noexcept {
  if (f.body_bytes != sizeof reply) return false;
  std::memcpy(&reply, f.body, sizeof reply);
  return true;
}

bool check_acks(const frame_view& f) noexcept {
  return f.body_bytes == std::uint64_t{f.header.count} * sizeof(wire::ack_record);
}

wire::ack_record ack_at(const frame_view& f, std::uint32_t i) noexcept {
  wire::ack_record a;
  std::memcpy(&a, f.body + std::size_t{i} * sizeof a, sizeof a);
  return a;
}

bool check_large_done(const frame_view& f) noexcept {
  return f.body_bytes == std::uint64_t{f.header.count} * sizeof(std::uint64_t);
}

std::uint64_t large_done_tag(const frame_view& f, std::uint32_t i) noexcept {
  std::uint64_t tag;
  std::memcpy(&tag, f.body + std::size_t{i} * sizeof tag, sizeof tag);
  return tag;
}

batch_step next_message(const std::byte* p, const std::byte* end, wire::message_header& m, std::size_t& body) noexcept {
  if (p >= end) return batch_step::end;
  const auto left = static_cast<std::size_t>(end - p);
  if (left < sizeof m) return batch_step::malformed;
  std::memcpy(&m, p, sizeof m);
  if (m.flags & wire::large) {
    body = (m.flags & wire::remote_read) ? sizeof(wire::large_source) : 0;
  } else {
    body = wire::padded(m.length);
  }
  if (body > left - sizeof m) return batch_step::malformed;
  return batch_step::message;
}

}  // namespace chanpool::transport::detail
