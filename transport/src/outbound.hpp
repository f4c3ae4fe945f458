// The outbound side of a node agent, per destination node: the batch being filled, sealed frames
// waiting for credit, the credit window and the frame buffers. No libfabric calls: sending a
// frame is a function the caller passes (pump_locked), so the window's rules are tested directly
// (tests/transport/outbound_test.cpp).
//
// Threads: the agent's progress thread fills `current`, seals it, returns credits and frees
// buffers on send completions; the owner's thread (stop, a peer's death found by a failed call)
// may mark a destination dead. Fields marked (mu) are guarded by `mu`; (TX) are the progress
// thread's alone, touched by its outbound half; the atomics are read by either.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/wire.hpp"
#include "operation.hpp"

namespace chanpool::transport::detail {

// One batch frame: a frame header, then messages (message_header + payload padded to 8).
struct frame_buffer : operation {
  frame_buffer(std::uint32_t dest_node, std::size_t capacity) : operation(op_kind::batch_send), dest(dest_node), bytes(capacity) {}
  std::uint32_t dest;
  std::vector<std::byte> bytes;
  std::size_t used = 0;
  std::uint32_t count = 0;
  memory_registration mr;

  void reset() noexcept {
    used = sizeof(wire::frame_header);
    count = 0;
  }
  bool fits(std::size_t payload_bytes) const noexcept {
    return used + sizeof(wire::message_header) + wire::padded(payload_bytes) <= bytes.size();
  }
  // Appends one message (the caller checked fits()); true when it is the batch's first.
  bool append(const wire::message_header& m, std::span<const std::byte> payload) noexcept;
};

// What one pump_locked() call sent, and why it stopped.
struct pump_outcome {
  std::uint32_t frames = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  bool busy = false;  // the provider said -FI_EAGAIN: retry after progress
  long refused = 0;   // the provider refused a frame with this error: the peer is unreachable
};

// Nagle's rule for a partial batch. When the inbox ran dry (idle), a batch goes at once if
// nothing is in flight to its destination (an idle pipe: latency wins), or once it is past its
// deadline and credit allows. While the inbox is busy it goes only past its deadline, with
// credit: it keeps filling meanwhile, so frames grow with the load.
constexpr bool should_flush_partial(bool inbox_idle, bool past_deadline, bool can_send_now, bool idle_pipe) noexcept {
  if (inbox_idle) return past_deadline ? can_send_now : idle_pipe;
  return past_deadline && can_send_now;
}

class destination {
 public:
  // window: frames in flight; ready_limit: sealed frames that may wait for credit.
  destination(std::uint32_t node, std::uint32_t window, std::uint32_t ready_limit, std::size_t frame_bytes);

  const std::uint32_t node;
  std::mutex mu;

  // --- (mu) ---
  // A buffer for a new batch: a free one, or a new one while fewer than window + ready_limit + 1
  // exist; nullptr when all are in use. `registrar` registers a new buffer's memory.
  frame_buffer* take_buffer_locked(const std::function<void(frame_buffer&)>& registrar);
  // True while another sealed frame may wait (TX stops filling and waits beyond that).
  bool may_queue_locked() const noexcept { return ready_.size() < ready_limit_; }
  void seal_locked(frame_buffer* fb) { ready_.push_back(fb); }
  // Posts ready frames while credit lasts: post(frame, sequence) returns 0, -FI_EAGAIN or an error.
  pump_outcome pump_locked(const std::function<ssize_t(frame_buffer&, std::uint32_t sequence)>& post);
  // Credits returned by the peer, never above the window: a forged or duplicated credit frame
  // cannot unbound it.
  void add_credits_locked(std::uint32_t n) noexcept;
  // The peer is dead: ready frames go back to the free list. Returns the messages dropped.
  std::uint64_t drop_ready_locked();
  void release_locked(frame_buffer* fb) { free_.push_back(fb); }
  bool idle_pipe_locked() const noexcept { return ready_.empty() && credits_ == window_; }
  bool can_send_now_locked() const noexcept { return credits_ > ready_.size(); }
  std::uint32_t credits_locked() const noexcept { return credits_; }
  std::size_t ready_locked() const noexcept { return ready_.size(); }
  std::uint32_t next_sequence_locked() const noexcept { return next_sequence_; }
  // Lets go of every buffer (the endpoint is closed: nothing is in flight any more).
  void clear_buffers_locked();

  // --- (TX) ---
  frame_buffer* current = nullptr;        // the batch being filled
  std::uint64_t current_since_ns = 0;     // when its first message went in
  std::uint64_t next_tag = 1;             // of the next large message
  bool listed_partial = false;            // in the agent's list of partial batches

  // --- atomics ---
  std::atomic<bool> has_partial{false};   // TX sets; RX reads to nudge TX on credit
  std::atomic<bool> dead{false};

 private:
  const std::uint32_t window_;
  const std::uint32_t ready_limit_;
  const std::size_t frame_bytes_;
  std::vector<std::unique_ptr<frame_buffer>> owned_;  // (mu)
  std::vector<frame_buffer*> free_;                   // (mu)
  std::deque<frame_buffer*> ready_;                   // (mu) sealed, waiting for credit or the provider
  std::uint32_t credits_;                             // (mu)
  std::uint32_t next_sequence_ = 0;                   // (mu) of the next batch frame sent
};

}  // namespace chanpool::transport::detail
