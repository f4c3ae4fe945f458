// Ring helpers shared by the single-message and batch paths (channel.cpp, batch.cpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "chanpool/channels/status.hpp"
#include "fence.hpp"
#include "futex.hpp"
#include "layout.hpp"
#include "segment.hpp"
#include "waiters.hpp"

namespace chanpool::channels::detail {

using clock = std::chrono::steady_clock;

template <class T>
inline std::atomic_ref<T> aref(T& x) noexcept {
  return std::atomic_ref<T>(x);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

inline std::uint32_t blocks_for(const channel_view& v, std::size_t bytes) noexcept {
  return static_cast<std::uint32_t>((bytes + v.heap_block_bytes - 1) >> v.heap_block_shift);
}

// The futex words data_seq and space_seq are | epoch (31 bits) | armed (bit 0) |. A waiter sets
// `armed` before its last check and sleeps on the armed value. A publisher that finds it set
// moves the epoch (which also ends sleeps that have not started yet) and wakes one sleeper.
// With one sleeper it also clears `armed`, so the publishes that follow, until the sleeper has
// woken and re-armed, cost no system call: a burst into a channel whose receiver is still being
// scheduled pays one wake, not one per message. With several sleepers it stays armed, so every
// publish wakes the next one, as a plain counter would. poll_set waiters sleep on unarmed
// snapshots of the word: while any wait, every publish moves the epoch and wakes them all.
//
// Callers have just published either with a seq_cst RMW, which orders the publish before these
// loads (pairs with the waiter's seq_cst arming), or with a release store followed by
// publish_side_fence() (pairs with sleep_side_fence() or slow_side_fence() after arming).
//
// A run (commit of a send run, release of a receive run) publishes `published` slots at once and
// wakes as many sleepers as that, not one: a run of tasks into a channel that several workers
// sleep on must wake several workers, as the same messages sent one at a time would.
//
// The counts include processes killed in their sleep until someone takes them off (waiters.hpp).
// A wake that finds nobody asleep while the counts say several sleep is the sign of that: it
// triggers a (rate-limited) scan, so the dead stop costing a futex_wake per publish.
inline void notify(const channel_view& v, std::uint32_t& word, std::uint32_t& waiters, std::size_t published = 1) noexcept {
  if (aref(v.control->poll_waiters).load(std::memory_order_seq_cst) != 0) {
    aref(word).fetch_add(futex_epoch_step, std::memory_order_seq_cst);
    if (futex_wake(&word, INT_MAX) == 0) reap_dead_waiters_every(v, evidence_scan_interval);
    return;
  }
  std::uint32_t w = aref(word).load(std::memory_order_seq_cst);
  while (w & futex_armed) {
    if (aref(waiters).load(std::memory_order_seq_cst) > 1) {
      aref(word).fetch_add(futex_epoch_step, std::memory_order_seq_cst);
      const int wake = static_cast<int>(std::min<std::size_t>(published, INT_MAX));
      if (futex_wake(&word, wake) == 0) reap_dead_waiters_every(v, evidence_scan_interval);
      return;
    }
    if (aref(word).compare_exchange_weak(w, (w + futex_epoch_step) & ~futex_armed, std::memory_order_seq_cst,
                                         std::memory_order_seq_cst)) {
      futex_wake(&word, 1);
      return;
    }
  }
}

inline void notify_receivers(const channel_view& v, std::size_t published = 1) noexcept {
  notify(v, v.control->data_seq, v.control->recv_waiters, published);
}
inline void notify_senders(const channel_view& v, std::size_t freed = 1) noexcept {
  notify(v, v.control->space_seq, v.control->send_waiters, freed);
}

// After a single side's release stores published the positions [first, first + count): its
// fence (publish_side_fence) and the wake-up (notify), sharing one load of the futex word in the
// common case, where nobody sleeps or polls and the word is not in the publisher-fences mode.
// Only the holder of the side's lease calls it.
inline void publish_single(const channel_view& v, std::uint32_t& word, std::uint32_t& waiters, std::uint64_t first,
                           std::size_t count) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const std::uint32_t w = aref(word).load(std::memory_order_relaxed);
  if (!(w & (futex_armed | futex_fence_publishers)) && membarrier_ready() &&
      aref(v.control->poll_waiters).load(std::memory_order_relaxed) == 0)
    return;
  publish_side_fence(word, first, count);
  notify(v, word, waiters, count);
}
inline void publish_single_to_receivers(const channel_view& v, std::uint64_t first, std::size_t count = 1) noexcept {
  publish_single(v, v.control->data_seq, v.control->recv_waiters, first, count);
}
inline void publish_single_to_senders(const channel_view& v, std::uint64_t first, std::size_t count = 1) noexcept {
  publish_single(v, v.control->space_seq, v.control->send_waiters, first, count);
}

// Whether the slot at `pos` is EMPTY (FULL) for that position's lap; `c` is its control word.
inline bool free_at(const channel_view& v, std::uint64_t pos, std::uint64_t& c) noexcept {
  c = aref(v.slot(pos)->ctrl).load(std::memory_order_acquire);
  return ctrl_seq_diff(c, pos) == 0 && ctrl_state(c) == slot_empty;
}
inline bool full_at(const channel_view& v, std::uint64_t pos, std::uint64_t& c) noexcept {
  c = aref(v.slot(pos)->ctrl).load(std::memory_order_acquire);
  return ctrl_seq_diff(c, pos) == 0 && ctrl_state(c) == slot_full;
}

// Moves `index` past the slot serving sequence `seq40`, if it still points at it.
inline void help_past(std::uint64_t& index, std::uint64_t seq40) noexcept {
  std::uint64_t at = aref(index).load(std::memory_order_relaxed);
  if ((at & ctrl_seq_mask) == seq40) aref(index).compare_exchange_strong(at, at + 1, std::memory_order_relaxed);
}

inline std::uint64_t ctrl_seq40(std::uint64_t c) noexcept { return c >> ctrl_seq_shift; }

// A slot serves at most one lap ahead of the index that points at it (released: pos + capacity).
// Further ahead, with the index still at `pos` (not a stale read), is damage from someone who
// wrote over the segment: helping the index on one step at a time would take up to 2^40 steps.
inline bool damaged_index(const channel_view& v, std::uint64_t& index, std::uint64_t pos) noexcept {
  if (aref(index).load(std::memory_order_relaxed) != pos) return false;
  aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
  return true;
}

// Publishes an abandoned (empty) message in a slot the caller holds as WRITING.
inline void publish_abandoned(const channel_view& v, slot_header* s, std::uint64_t seq40) noexcept {
  aref(s->flags).store(slot_flag_abandoned, std::memory_order_relaxed);
  aref(s->length).store(0, std::memory_order_relaxed);
  aref(s->ctrl).exchange(make_ctrl(seq40, slot_full, 0), std::memory_order_seq_cst);
  notify_receivers(v);
}

// Returns a slot the caller holds as READING to the next lap.
inline void release_slot(const channel_view& v, slot_header* s, std::uint64_t seq40) noexcept {
  aref(s->ctrl).exchange(make_ctrl(seq40 + v.capacity, slot_empty, 0), std::memory_order_seq_cst);
  notify_senders(v);
}

inline thread_local std::uint32_t try_probe_countdown = 0;
// Set by send_once when the heap, not the ring, was full: only then is a scan of every slot for
// a dead holder of heap blocks worth its O(capacity) cost.
inline thread_local bool heap_starved = false;

// A sender found the slot at `pos` (control word c) not EMPTY for this lap. Returns false after
// helping tail on (the caller retries), true when the ring is full: then `blocker` is the
// slot's word if a process holds it (for the liveness probe).
inline bool send_blocked(const channel_view& v, std::uint64_t pos, std::uint64_t c, std::uint64_t& blocker) noexcept {
  auto& tail = v.control->tail;
  const std::int64_t diff = ctrl_seq_diff(c, pos);
  if (diff > static_cast<std::int64_t>(v.capacity) && damaged_index(v, tail, pos)) return true;
  if (diff >= 0) {
    // Slot already claimed for `pos` (or beyond): the claimer has not moved tail yet. Help.
    std::uint64_t at = pos;
    aref(tail).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
    return false;
  }
  // The slot still serves the previous lap: the ring is full unless tail moved meanwhile.
  if (aref(tail).load(std::memory_order_relaxed) != pos) return false;
  if (ctrl_pid(c) != 0) blocker = c;
  return true;
}

// A receiver found the slot at `pos` (control word c) not FULL for this lap. Returns ok after
// helping head on (the caller retries), else empty (then `blocker` is set if a send is in
// progress there) or closed.
inline status recv_blocked(const channel_view& v, std::uint64_t pos, std::uint64_t c, std::uint64_t& blocker) noexcept {
  auto& head = v.control->head;
  const std::int64_t diff = ctrl_seq_diff(c, pos);
  if (diff == 0 && ctrl_state(c) == slot_reading) {
    std::uint64_t at = pos;
    aref(head).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
    return status::ok;
  }
  if (diff > static_cast<std::int64_t>(v.capacity) && damaged_index(v, head, pos)) return status::empty;
  if (diff > 0) {
    // Position `pos` was consumed and its slot recycled: head is behind. Help it on.
    std::uint64_t at = pos;
    aref(head).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
    return status::ok;
  }
  if (aref(head).load(std::memory_order_relaxed) != pos) return status::ok;
  if (diff == 0 && ctrl_state(c) == slot_writing) {
    blocker = c;  // a send is in progress; its holder may have died
    return status::empty;
  }
  // seq_cst: pairs with the claim + closed check in send_once (no message slips past a seal).
  if (aref(v.control->closed).load(std::memory_order_seq_cst) == sealed) return status::closed;
  return status::empty;
}

inline constexpr std::uint32_t try_probe_every = 4096;  // try-once calls blocked by the same kind of slot

}  // namespace chanpool::channels::detail
