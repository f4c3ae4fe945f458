// The wait loop of every blocking channel call (channel.cpp, batch.cpp): spin, then sleep on
// the futex word, probing the holder of the slot in the way for liveness.
#pragma once

#include <sched.h>

#include <algorithm>

#include "chanpool/channels/channel.hpp"
#include "process.hpp"
#include "ring.hpp"

namespace chanpool::channels {

inline bool channel::hold_lease(std::uint64_t& lease) noexcept {
  const std::uint64_t mine = (std::uint64_t{detail::current_pid()} << 32) | lease_token_;
  return detail::aref(lease).load(std::memory_order_acquire) == mine || take_lease(lease, mine);
}

template <class Once>
status channel::wait_until_done(Once&& once, bool sender, timeout t) noexcept {
  using namespace detail;
  std::uint64_t blocker = 0;
  status st = once(blocker);
  if (st != status::full && st != status::empty) return st;
  if (t <= timeout::zero()) {
    // Busy try-once loops must not spin forever behind a dead holder: probe now and then.
    if (blocker != 0 && ++try_probe_countdown % try_probe_every == 0 && repair_if_dead(blocker)) st = once(blocker);
    return st;
  }
  const channel_view& v = *view_;
  const auto start = clock::now();
  const auto deadline = t == forever || t > std::chrono::hours(24 * 365) ? clock::time_point::max() : start + t;
  std::uint64_t watched = blocker;
  auto watched_since = start;
  // Probes a holder that has blocked us for liveness_check. Returns true if it repaired.
  auto probe = [&](clock::time_point now) {
    if (blocker != watched) {
      watched = blocker;
      watched_since = now;
      return false;
    }
    if (now - watched_since < wait_.liveness_check) return false;
    watched_since = now;
    if (blocker != 0) return repair_if_dead(blocker);
    if (sender && heap_starved) {
      // The heap may be held by a dead sender's slot anywhere in the ring, or by blocks it never
      // attached. Rare and rate-limited, so scan everything.
      const auto reclaimed = aref(v.control->reclaimed_heap_blocks).load(std::memory_order_relaxed);
      return repair() != 0 || aref(v.control->reclaimed_heap_blocks).load(std::memory_order_relaxed) != reclaimed;
    }
    return false;
  };

  if (wait_.mode != wait_mode::idle) {
    const auto spin_end = wait_.mode == wait_mode::spin ? deadline : start + wait_.spin_for;
    for (std::uint32_t round = 0;; ++round) {
      for (int i = 0; i < 32; ++i) {
        cpu_relax();
        st = once(blocker);
        if (st != status::full && st != status::empty) return st;
      }
      const auto now = clock::now();
      if (probe(now)) continue;
      if (now >= deadline) return status::timeout;
      if (now >= spin_end) break;
      if (wait_.mode == wait_mode::spin && now - start > wait_.spin_for) sched_yield();  // share an oversubscribed core
    }
  }

  std::uint32_t& word = sender ? v.control->space_seq : v.control->data_seq;
  const bool single_publisher = sender ? v.single_consumer : v.single_producer;
  const waiter_side side = sender ? waiter_side::sender : waiter_side::receiver;
  // Counted in this process's waiter record, so that a kill in the sleep below is undone.
  const std::uint32_t record = waiter_enter(v, side);
  for (;;) {
    // Arm, then check, then sleep on the armed value (see notify()). A single publisher on the
    // other side may read the word without a fence of its own: then pay for both sides here.
    std::uint32_t seen = aref(word).fetch_or(futex_armed, std::memory_order_seq_cst) | futex_armed;
    if (single_publisher) seen = sleep_side_fence(word, seen, paid_sleeps_[sender ? 1 : 0]);
    st = once(blocker);
    if (st != status::full && st != status::empty) break;
    const auto now = clock::now();
    if (probe(now)) continue;
    if (now >= deadline) {
      st = status::timeout;
      break;
    }
    reap_dead_waiters_every(v, scan_interval);  // others killed in their sleep
    // Capped so that a holder that died without waking us is still probed.
    const auto nap = std::min<clock::duration>(deadline - now, wait_.liveness_check);
    futex_wait(&word, seen, std::chrono::duration_cast<std::chrono::nanoseconds>(nap));
  }
  waiter_leave(v, side, record);
  return st;
}

// --- crash repair --------------------------------------------------------------------------------

}  // namespace chanpool::channels
