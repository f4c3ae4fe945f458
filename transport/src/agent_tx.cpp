// The outbound half of the progress thread: drains the inbox, appends each message to its
// destination's batch, seals batches by the flush rules (outbound.hpp), and hands large payloads
// to agent_large.cpp.
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include <cstring>

#include "agent_impl.hpp"
#include "futex.hpp"

namespace chanpool::transport {

namespace w = wire;
using detail::destination;
using detail::frame_buffer;

// Makes d.current a buffer with room, waiting for credit/buffers if all are in use. False if
// the destination died or the agent is stopping meanwhile.
bool agent::impl::ensure_current(destination& d) {
  if (d.current) return true;
  bool counted = false;
  std::uint64_t seen = stall_epoch.load(std::memory_order_acquire);
  std::unique_lock lock(d.mu);
  const auto registrar = [this](frame_buffer& fb) {
    if (auto mr = endpoint.register_memory(fb.bytes.data(), fb.bytes.size())) fb.mr = std::move(*mr);
  };
  while (true) {
    if (d.dead.load(std::memory_order_relaxed) || stopping.load(std::memory_order_relaxed)) return false;
    if (d.may_queue_locked()) {
      if (frame_buffer* fb = d.take_buffer_locked(registrar)) {
        fb->reset();
        d.current = fb;
        return true;
      }
    }
    if (!counted) {
      detail::relaxed_add(counters().credit_stalls, 1);
      counted = true;
    }
    lock.unlock();
    wait_stalled(seen);
    seen = stall_epoch.load(std::memory_order_acquire);
    lock.lock();
    pump_locked(d, tx_hops.get());
  }
}

// Moves d.current to the ready queue and sends what credit allows.
void agent::impl::seal(destination& d) {
  if (!d.current || d.current->count == 0) return;
  std::lock_guard lock(d.mu);
  d.seal_locked(d.current);
  ready_total.fetch_add(1, std::memory_order_relaxed);
  d.current = nullptr;
  d.has_partial.store(false, std::memory_order_relaxed);
  pump_locked(d, tx_hops.get());
}

void agent::impl::drop_for_dead(const w::inbox_header& h) {
  detail::relaxed_add(counters().dropped_peer_dead, 1);
  if (h.flags & w::deposited) {
    w::ack_record a{h.src_pid, static_cast<std::uint8_t>(status::peer_dead), 0, {}, h.token};
    tx_replies.deliver(h.src_pid, &a, sizeof a, w::reply_kind::ack);
  }
}

void agent::impl::handle_inbox_record(channels::recv_run& run, std::size_t i) {
  const std::span<const std::byte> rec = run.data(i);
  if (rec.size() < sizeof(w::inbox_header)) {
    detail::relaxed_add(counters().inbox_malformed, 1);
    return;
  }
  w::inbox_header h;
  std::memcpy(&h, rec.data(), sizeof h);
  const auto payload = rec.subspan(sizeof h);
  const auto kind = static_cast<w::inbox_kind>(h.kind);
  if (kind == w::inbox_kind::flush) {
    for (destination* d : partials) seal(*d);
    return;
  }
  if (kind == w::inbox_kind::region_create) return handle_region_create(h, payload);
  if (kind == w::inbox_kind::region_close) return handle_region_close(h, payload);
  if (kind == w::inbox_kind::rma) return handle_rma(h, payload);
  if (h.dest_node >= node_count || (kind != w::inbox_kind::data && kind != w::inbox_kind::resolve)) {
    detail::relaxed_add(counters().inbox_malformed, 1);
    return;
  }
  destination& d = *destinations[h.dest_node];
  if (d.dead.load(std::memory_order_relaxed)) {
    if (kind == w::inbox_kind::resolve) {
      w::resolve_reply r{h.src_pid, -1, h.token, 0, 0, 0};
      tx_replies.deliver(h.src_pid, &r, sizeof r, w::reply_kind::resolve);
    } else {
      drop_for_dead(h);
    }
    return;
  }
  if (kind == w::inbox_kind::resolve) {
    w::resolve_request req{h.src_pid, static_cast<std::uint32_t>(payload.size()), h.token};
    send_control(h.dest_node, w::frame_kind::resolve, 1, &req, sizeof req, payload.data(), payload.size());
    return;
  }
  if (payload.size() > large_threshold) {
    send_large(d, h, run, i, payload);
    return;
  }
  if (d.current && !d.current->fits(payload.size())) seal(d);
  if (!ensure_current(d)) {
    drop_for_dead(h);
    return;
  }
  if (tx_hops) tx_hops->note(hop::inbox_taken);
  const w::message_header m{static_cast<std::uint32_t>(payload.size()), h.channel_id, h.flags, 0, h.src_pid, h.token};
  append_message(d, m, payload);
}

// Appends to d.current (which has room): a batch just begun is listed as a partial for the flush
// rules, and one that is full, or any with aggregation off, is sealed.
void agent::impl::append_message(destination& d, const w::message_header& m, std::span<const std::byte> body) {
  frame_buffer* fb = d.current;
  if (fb->append(m, body)) {
    d.current_since_ns = detail::now_ns();
    d.has_partial.store(true, std::memory_order_relaxed);
    if (!d.listed_partial) {
      d.listed_partial = true;
      partials.push_back(&d);
    }
  }
  if (!config.aggregation || fb->used + sizeof(w::message_header) > config.flush_bytes) seal(d);
}

// idle: the inbox ran dry (producers idle). A partial batch that stays keeps filling; a returning
// credit nudges TX (flush record) to look again. Drops from `partials` the destinations left
// without one.
void agent::impl::flush_partials(bool idle) {
  const std::uint64_t now = detail::now_ns();
  const std::uint64_t deadline = detail::as_ns(config.flush_deadline);
  std::size_t kept = 0;
  for (destination* dp : partials) {
    destination& d = *dp;
    if (d.current && d.current->count != 0) {
      bool can_send = false, idle_pipe = false;
      {
        std::lock_guard lock(d.mu);
        can_send = d.can_send_now_locked();
        idle_pipe = d.idle_pipe_locked();
      }
      if (detail::should_flush_partial(idle, now - d.current_since_ns >= deadline, can_send, idle_pipe)) seal(d);
    }
    if (d.current && d.current->count != 0) {
      partials[kept++] = &d;
    } else {
      d.listed_partial = false;
    }
  }
  partials.resize(kept);
}

// A partial batch that credit would let go now: TX must wake for its deadline.
bool agent::impl::partial_due() {
  for (destination* d : partials) {
    if (!d->current || !d->current->count) continue;
    std::lock_guard lock(d->mu);
    if (d->can_send_now_locked()) return true;
  }
  return false;
}

// Wakes senders waiting for inbox room once it is at least half empty (see client put()).
void agent::impl::wake_room_waiters() noexcept {
  if (std::atomic_ref<std::uint32_t>(shared.state->inbox_waiters).load(std::memory_order_seq_cst) == 0) return;
  if (inbox.poll().count > config.inbox_capacity / 2) return;
  std::atomic_ref<std::uint32_t>(shared.state->inbox_room).fetch_add(1, std::memory_order_release);
  channels::detail::futex_wake(&shared.state->inbox_room, INT32_MAX);
}

// The inbox is drained in runs of up to channels::max_run records: one claim and one release
// (one index update, one wake-up of waiting producers) per run instead of per record. A few runs
// at a time, then the completion queue gets its turn.
bool agent::impl::drain_inbox() {
  constexpr int runs_per_turn = 4;
  channels::recv_run run;
  bool took = false;
  for (int k = 0; k < runs_per_turn && !stopping.load(std::memory_order_relaxed); ++k) {
    if (inbox.claim_recv_run(channels::max_run, run, channels::try_once) != status::ok) {
      // Dry after taking something: the producers paused, so a partial batch on an idle pipe
      // leaves now, not after another look at the CQ (the flush rules, outbound.hpp). Credits
      // owed go first: a peer answering this batch finds its own pipe idle only once it has
      // our credit for what it sent before, and frames to one peer arrive in order.
      if (took) {
        return_all_credits();
        flush_partials(true);
      }
      break;
    }
    took = true;
    for (std::size_t i = 0; i < run.size(); ++i) handle_inbox_record(run, i);
    clock.since_room_check += static_cast<std::uint32_t>(run.size());
    inbox.release(run);
    if (clock.since_room_check >= 64) {
      clock.since_room_check = 0;
      flush_partials(false);
      wake_room_waiters();
    }
  }
  if (took) clock.last_activity = detail::now_ns();
  return took;
}

}  // namespace chanpool::transport
