// Batch calls: a run of consecutive ring slots claimed, filled and published (or received and
// released) in one step.
//
// Every slot of a run keeps its own control word (layout.hpp) and goes through the same states
// as a single claim, so receivers, repair and seal treat a run slot by slot; a process killed
// with a run held is repaired by repair_if_dead, which follows the dead holder's consecutive
// slots (each message lost is counted). What a run saves is the work around the slots: the
// lease and seal checks, the index update, the publishing fence and the wake-up are paid once
// per run instead of once per message.
#include <algorithm>
#include <cstring>

#include "chanpool/channels/channel.hpp"
#include "heap.hpp"
#include "process.hpp"
#include "ring.hpp"
#include "wait_loop.hpp"

namespace chanpool::channels {

using namespace detail;

namespace {

// Moves a monotonic index up to `target`, unless a helper moved it there or beyond already.
void advance_to(std::uint64_t& index, std::uint64_t target) noexcept {
  std::uint64_t at = aref(index).load(std::memory_order_relaxed);
  while (at < target && !aref(index).compare_exchange_weak(at, target, std::memory_order_relaxed)) {
  }
}

// The fields of a FULL slot, read before claiming it: valid only while ctrl is unchanged, which
// peek() checks after the reads (acquire keeps the re-check after them).
struct peeked {
  std::uint32_t length = 0;
  bool abandoned = false;
  bool sound = false;
  const std::byte* data = nullptr;
};

bool peek(const channel_view& v, slot_header* s, std::uint64_t c, peeked& m) noexcept {
  m.length = aref(s->length).load(std::memory_order_acquire);
  const std::uint32_t flags = aref(s->flags).load(std::memory_order_acquire);
  const bool on_heap = flags & slot_flag_heap;
  const std::uint32_t first = on_heap ? aref(s->heap_first()).load(std::memory_order_acquire) : 0;
  const std::uint32_t count = on_heap ? aref(s->heap_count()).load(std::memory_order_acquire) : 0;
  if (aref(s->ctrl).load(std::memory_order_relaxed) != c) return false;
  m.abandoned = flags & slot_flag_abandoned;
  if (on_heap) {
    m.sound = first < v.heap_blocks && count <= v.heap_blocks - first &&
              std::uint64_t{count} << v.heap_block_shift >= m.length;
    m.data = v.block_address(first);
  } else {
    m.sound = m.length <= v.inline_capacity;
    m.data = v.inline_payload(s);
  }
  return true;
}

// A whole call's deadline, handed to each wait in it as what is left.
struct call_deadline {
  timeout total;
  clock::time_point end;
  explicit call_deadline(timeout t) noexcept
      : total(t), end(t > timeout::zero() && t != forever ? clock::now() + t : clock::time_point::max()) {}
  timeout left() const noexcept {
    if (total == forever || total <= timeout::zero()) return total;
    const auto now = clock::now();
    return now >= end ? try_once : std::chrono::duration_cast<timeout>(end - now);
  }
  // A try-once made after the deadline passed reports the deadline, not full/empty.
  status tag(status st) const noexcept {
    return (st == status::full || st == status::empty) && total > timeout::zero() ? status::timeout : st;
  }
};

}  // namespace

// --- send ----------------------------------------------------------------------------------------

status channel::send_run_once(std::size_t count, send_run& run, std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  const bool single = v.single_producer;
  if (single && !hold_lease(v.control->producer_lease)) return status::invalid;
  if (aref(v.control->closed).load(std::memory_order_relaxed)) return status::closed;
  const std::uint32_t pid = current_pid();
  auto& tail = v.control->tail;
  for (;;) {
    const std::uint64_t pos = aref(tail).load(std::memory_order_relaxed);
    __builtin_prefetch(v.slot(pos), 1, 3);
    std::uint64_t c = 0;
    if (free_at(v, pos, c)) {
      std::size_t n = 0;
      if (single) {
        // The lease makes us the only writer of EMPTY slots: plain stores, one index update.
        do {
          aref(v.slot(pos + n)->ctrl).store(make_ctrl(pos + n, slot_writing, pid), std::memory_order_relaxed);
        } while (++n < count && free_at(v, pos + n, c));
        aref(tail).store(pos + n, std::memory_order_release);
      } else {
        do {
          std::uint64_t expected = c;
          if (!aref(v.slot(pos + n)->ctrl).compare_exchange_strong(expected, make_ctrl(pos + n, slot_writing, pid),
                                                                   std::memory_order_seq_cst,
                                                                   std::memory_order_relaxed))
            break;
        } while (++n < count && free_at(v, pos + n, c));
        if (n == 0) continue;
        advance_to(tail, pos + n);
      }
      // As in send_once: a seal a receiver acted on is seen here.
      if (aref(v.control->closed).load(std::memory_order_seq_cst) != open_state) {
        for (std::size_t i = 0; i < n; ++i) publish_abandoned(v, v.slot(pos + i), (pos + i) & ctrl_seq_mask);
        return status::closed;
      }
      for (std::size_t i = 0; i < n; ++i) aref(v.slot(pos + i)->flags).store(0, std::memory_order_relaxed);
      run.ring_ = v.ring;
      run.mask_ = v.mask;
      run.position_ = pos;
      run.count_ = n;
      run.slot_bytes_ = v.slot_bytes;
      run.payload_offset_ = sizeof(slot_header);
      run.payload_bytes_ = v.inline_capacity;
      return status::ok;
    }
    if (send_blocked(v, pos, c, blocker)) return status::full;
  }
}

status channel::claim_send_run(std::size_t count, send_run& run, timeout t) noexcept {
  if (!view_ || run.active() || count == 0) return status::invalid;
  count = std::min(count, max_run);
  heap_starved = false;
  return wait_until_done([&](std::uint64_t& blocker) { return send_run_once(count, run, blocker); }, true, t);
}

status channel::commit(send_run& run, std::span<const std::size_t> lengths) noexcept {
  if (!view_ || !run.active() || lengths.size() > run.count_) return status::invalid;
  const channel_view& v = *view_;
  for (const std::size_t length : lengths)
    if (length > v.inline_capacity) return status::invalid;
  if (lengths.empty()) return status::ok;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const std::uint64_t pos = run.position_ + i;
    slot_header* s = v.slot(pos);
    aref(s->length).store(static_cast<std::uint32_t>(lengths[i]), std::memory_order_relaxed);
    aref(s->ctrl).store(make_ctrl(pos, slot_full, 0), std::memory_order_release);
  }
  // One fence for the run orders every publish before the waiter checks in notify().
  if (v.single_producer) {
    publish_single_to_receivers(v, run.position_, lengths.size());
  } else {
    full_fence();
    notify_receivers(v, lengths.size());
  }
  run.position_ += lengths.size();
  run.count_ -= lengths.size();
  return status::ok;
}

status channel::abandon(send_run& run) noexcept {
  if (!view_ || !run.active()) return status::invalid;
  for (std::size_t i = 0; i < run.count_; ++i)
    publish_abandoned(*view_, view_->slot(run.position_ + i), (run.position_ + i) & ctrl_seq_mask);
  run.count_ = 0;
  return status::ok;
}

status channel::send_many(std::span<const std::span<const std::byte>> messages, std::size_t& sent,
                          timeout t) noexcept {
  sent = 0;
  if (!view_) return status::invalid;
  const std::size_t inline_bytes = view_->inline_capacity;
  const call_deadline deadline(t);
  while (sent < messages.size()) {
    if (messages[sent].size() > inline_bytes) {
      const status st = send(messages[sent], deadline.left());
      if (st != status::ok) return deadline.tag(st);
      ++sent;
      continue;
    }
    std::size_t k = 1;
    while (k < max_run && sent + k < messages.size() && messages[sent + k].size() <= inline_bytes) ++k;
    if (view_->single_producer) {
      const auto part = messages.subspan(sent, k);
      std::size_t n = 0;
      std::uint64_t blocker = 0;
      status st = send_run_single(part, n, blocker);
      if (st == status::full)
        st = wait_until_done([&](std::uint64_t& b) { return send_run_single(part, n, b); }, true, deadline.left());
      if (st != status::ok) return deadline.tag(st);
      sent += n;
      continue;
    }
    send_run run;
    const status st = claim_send_run(k, run, deadline.left());
    if (st != status::ok) return deadline.tag(st);
    std::size_t lengths[max_run];
    const std::size_t n = run.size();
    for (std::size_t i = 0; i < n; ++i) {
      const std::span<const std::byte> m = messages[sent + i];
      if (!m.empty()) std::memcpy(run.data(i).data(), m.data(), m.size());
      lengths[i] = m.size();
    }
    commit(run, {lengths, n});
    sent += n;
  }
  return status::ok;
}

// --- receive -------------------------------------------------------------------------------------

status channel::recv_run_once(std::size_t count, std::size_t budget, recv_run& run, std::size_t& first_length,
                              std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  const bool single = v.single_consumer;
  if (single && !hold_lease(v.control->consumer_lease)) return status::invalid;
  const std::uint32_t pid = current_pid();
  auto& head = v.control->head;
  for (;;) {
    const std::uint64_t pos = aref(head).load(std::memory_order_relaxed);
    slot_header* s = v.slot(pos);
    __builtin_prefetch(s, 1, 3);
    std::uint64_t c = aref(s->ctrl).load(std::memory_order_seq_cst);
    const std::int64_t diff = ctrl_seq_diff(c, pos);
    if (diff == 0 && ctrl_state(c) == slot_full) {
      peeked m;
      if (!peek(v, s, c, m)) continue;
      if (m.length > budget && !m.abandoned) {
        first_length = m.length;
        return status::too_large;
      }
      std::size_t n = 0;
      std::size_t used = 0;
      const bool skip = m.abandoned || !m.sound;
      // Claims slot pos + n, observed as c (single: plain store; the lease makes us the only claimer).
      auto claim = [&](std::uint64_t at, std::uint64_t seen) {
        if (single) {
          aref(v.slot(at)->ctrl).store(make_ctrl(at, slot_reading, pid), std::memory_order_relaxed);
          return true;
        }
        return aref(v.slot(at)->ctrl).compare_exchange_strong(seen, make_ctrl(at, slot_reading, pid),
                                                              std::memory_order_acquire, std::memory_order_relaxed);
      };
      for (;;) {
        if (!claim(pos + n, c)) break;
        run.data_[n] = m.data;
        run.size_[n] = m.length;
        used += m.length;
        if (++n == count || skip) break;
        if (!full_at(v, pos + n, c) || !peek(v, v.slot(pos + n), c, m)) break;
        if (m.abandoned || !m.sound || m.length > budget - used) break;
      }
      if (n == 0) continue;
      if (single) {
        aref(head).store(pos + n, std::memory_order_release);
      } else {
        advance_to(head, pos + n);
      }
      if (skip) {
        // An abandoned slot (skipped) or a damaged one (dropped, never read out of bounds).
        if (!m.abandoned) aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
        release_slot(v, s, pos & ctrl_seq_mask);
        continue;
      }
      run.position_ = pos;
      run.count_ = n;
      first_length = run.size_[0];
      return status::ok;
    }
    if (const status st = recv_blocked(v, pos, c, blocker); st != status::ok) return st;
  }
}

status channel::claim_recv_run(std::size_t count, recv_run& run, timeout t) noexcept {
  if (!view_ || run.active() || count == 0) return status::invalid;
  count = std::min(count, max_run);
  std::size_t first_length = 0;
  return wait_until_done(
      [&](std::uint64_t& blocker) { return recv_run_once(count, SIZE_MAX, run, first_length, blocker); }, false, t);
}

status channel::release(recv_run& run) noexcept {
  if (!view_ || !run.active()) return status::invalid;
  const channel_view& v = *view_;
  for (std::size_t i = 0; i < run.count_; ++i) {
    const std::uint64_t pos = run.position_ + i;
    slot_header* s = v.slot(pos);
    if (aref(s->flags).load(std::memory_order_relaxed) & slot_flag_heap)
      heap_free(v, aref(s->heap_first()).load(std::memory_order_relaxed),
                aref(s->heap_count()).load(std::memory_order_relaxed));
    aref(s->ctrl).store(make_ctrl(pos + v.capacity, slot_empty, 0), std::memory_order_release);
  }
  if (v.single_consumer) {
    publish_single_to_senders(v, run.position_, run.count_);
  } else {
    full_fence();
    notify_senders(v, run.count_);
  }
  run.count_ = 0;
  return status::ok;
}

status channel::recv_many(std::span<std::byte> buffer, std::span<std::size_t> lengths, std::size_t& received,
                          timeout t) noexcept {
  received = 0;
  if (!view_ || lengths.empty()) return status::invalid;
  std::size_t used = 0;
  timeout wait = t;
  while (received < lengths.size()) {
    const std::size_t want = std::min(lengths.size() - received, max_run);
    if (view_->single_consumer) {
      bool general = false;
      std::size_t got = 0;
      const auto out = lengths.subspan(received, want);
      auto once = [&](std::uint64_t& b) { return recv_run_single(buffer, used, out, got, b, general); };
      std::uint64_t blocker = 0;
      status st = once(blocker);
      if (st == status::empty) st = wait_until_done(once, false, wait);
      if (!general) {
        received += got;
        if (st != status::ok) return st;
        wait = try_once;
        continue;
      }
    }
    recv_run run;
    std::size_t first_length = 0;
    const std::size_t budget = buffer.size() - used;
    const status st = wait_until_done(
        [&](std::uint64_t& blocker) { return recv_run_once(want, budget, run, first_length, blocker); }, false,
        wait);
    if (st != status::ok) {
      if (st == status::too_large && received == 0) lengths[0] = first_length;
      return st;
    }
    for (std::size_t i = 0; i < run.count_; ++i) {
      const std::span<const std::byte> m = run.data(i);
      if (!m.empty()) std::memcpy(buffer.data() + used, m.data(), m.size());
      used += m.size();
      lengths[received++] = m.size();
    }
    release(run);
    wait = try_once;  // only the first message is waited for
  }
  return status::ok;
}

}  // namespace chanpool::channels
