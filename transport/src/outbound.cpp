#include "outbound.hpp"

#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstring>

namespace chanpool::transport::detail {

bool frame_buffer::append(const wire::message_header& m, std::span<const std::byte> payload) noexcept {
  std::memcpy(bytes.data() + used, &m, sizeof m);
  if (!payload.empty()) std::memcpy(bytes.data() + used + sizeof m, payload.data(), payload.size());
  used += sizeof m + wire::padded(payload.size());
  return count++ == 0;
}

destination::destination(std::uint32_t node_index, std::uint32_t window, std::uint32_t ready_limit, std::size_t frame_bytes)
    : node(node_index), window_(window), ready_limit_(ready_limit), frame_bytes_(frame_bytes), credits_(window) {}

frame_buffer* destination::take_buffer_locked(const std::function<void(frame_buffer&)>& registrar) {
  if (!free_.empty()) {
    frame_buffer* fb = free_.back();
    free_.pop_back();
    return fb;
  }
  if (owned_.size() >= std::size_t{window_} + ready_limit_ + 1) return nullptr;
  auto fb = std::make_unique<frame_buffer>(node, frame_bytes_);
  if (registrar) registrar(*fb);
  owned_.push_back(std::move(fb));
  return owned_.back().get();
}

pump_outcome destination::pump_locked(const std::function<ssize_t(frame_buffer&, std::uint32_t)>& post) {
  pump_outcome out;
  while (!ready_.empty() && credits_ > 0 && !dead.load(std::memory_order_relaxed)) {
    frame_buffer* fb = ready_.front();
    const ssize_t rc = post(*fb, next_sequence_);
    if (rc == -FI_EAGAIN) {
      out.busy = true;
      return out;
    }
    if (rc != 0) {
      out.refused = static_cast<long>(rc);
      return out;
    }
    ready_.pop_front();
    ++next_sequence_;
    --credits_;
    ++out.frames;
    out.messages += fb->count;
    out.bytes += fb->used;
  }
  return out;
}

void destination::add_credits_locked(std::uint32_t n) noexcept {
  credits_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{credits_} + n, window_));
}

std::uint64_t destination::drop_ready_locked() {
  std::uint64_t dropped = 0;
  for (frame_buffer* fb : ready_) {
    dropped += fb->count;
    free_.push_back(fb);
  }
  ready_.clear();
  return dropped;
}

void destination::clear_buffers_locked() {
  ready_.clear();
  free_.clear();
  owned_.clear();
  current = nullptr;
}

}  // namespace chanpool::transport::detail
