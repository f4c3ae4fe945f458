#include "waiters.hpp"

#include <algorithm>
#include <atomic>

#include "layout.hpp"
#include "process.hpp"
#include "segment.hpp"

namespace chanpool::channels::detail {
namespace {

template <class T>
std::atomic_ref<T> aref(T& x) noexcept {
  return std::atomic_ref<T>(x);
}

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::uint32_t& record_count(waiter_record& r, waiter_side side) noexcept {
  return side == waiter_side::receiver ? r.receivers : side == waiter_side::sender ? r.senders : r.pollers;
}

std::uint32_t& total_count(const channel_view& v, waiter_side side) noexcept {
  return side == waiter_side::receiver ? v.control->recv_waiters
         : side == waiter_side::sender ? v.control->send_waiters
                                       : v.control->poll_waiters;
}

// Subtracts up to `n` from `word`, never below zero. seq_cst: the totals pair with the armed-bit
// protocol in notify() (channel.cpp).
void subtract_saturating(std::uint32_t& word, std::uint32_t n) noexcept {
  std::uint32_t cur = aref(word).load(std::memory_order_relaxed);
  while (n != 0 && cur != 0 &&
         !aref(word).compare_exchange_weak(cur, cur - std::min(cur, n), std::memory_order_seq_cst,
                                           std::memory_order_relaxed)) {
  }
}

// Takes record `i`, owned by dead process `pid`, back. Exactly one caller wins the CAS.
std::uint32_t reap_record(const channel_view& v, std::uint32_t i, std::uint32_t pid) noexcept {
  waiter_record& r = v.waiters[i];
  std::uint32_t expected = pid;
  if (!aref(r.pid).compare_exchange_strong(expected, waiter_record_reaping, std::memory_order_acquire,
                                           std::memory_order_relaxed))
    return 0;
  std::uint32_t taken = 0;
  for (waiter_side side : {waiter_side::receiver, waiter_side::sender, waiter_side::poller}) {
    const std::uint32_t n = aref(record_count(r, side)).exchange(0, std::memory_order_acq_rel);
    subtract_saturating(total_count(v, side), n);
    taken += n;
  }
  aref(r.start_time).store(0, std::memory_order_relaxed);
  aref(r.pid).store(0, std::memory_order_release);
  return taken;
}

bool record_dead(const waiter_record& r, std::uint32_t pid) noexcept {
  const auto start = aref(const_cast<std::uint64_t&>(r.start_time)).load(std::memory_order_acquire);
  return !process_alive_since(pid, start);
}

bool record_idle(waiter_record& r) noexcept {
  return aref(r.receivers).load(std::memory_order_relaxed) == 0 && aref(r.senders).load(std::memory_order_relaxed) == 0 &&
         aref(r.pollers).load(std::memory_order_relaxed) == 0;
}

// Scans every record; with `idle_too`, also frees dead processes' records that count nothing.
std::uint32_t scan(const channel_view& v, bool idle_too) noexcept {
  const std::uint32_t me = current_pid();
  std::uint32_t taken = 0;
  for (std::uint32_t i = 0; i < v.registry_entries; ++i) {
    waiter_record& r = v.waiters[i];
    const std::uint32_t pid = aref(r.pid).load(std::memory_order_acquire);
    if (pid == 0 || pid == waiter_record_reaping || pid == me) continue;
    if (!idle_too && record_idle(r)) continue;
    if (record_dead(r, pid)) taken += reap_record(v, i, pid);
  }
  return taken;
}

bool is_own(const waiter_record& r, std::uint32_t me, std::uint64_t my_start) noexcept {
  auto& rec = const_cast<waiter_record&>(r);
  return aref(rec.pid).load(std::memory_order_acquire) == me &&
         aref(rec.start_time).load(std::memory_order_acquire) == my_start;
}

// The record this thread used last (most threads wait on one channel): skips the table scan.
struct record_hint {
  const waiter_record* table = nullptr;
  std::uint32_t index = 0;
};
thread_local record_hint last_record;

// The calling process's record, claimed on first use.
std::uint32_t own_record(const channel_view& v) noexcept {
  const std::uint32_t me = current_pid();
  const std::uint64_t my_start = current_start_time();
  if (last_record.table == v.waiters && last_record.index < v.registry_entries &&
      is_own(v.waiters[last_record.index], me, my_start))
    return last_record.index;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t i = 0; i < v.registry_entries; ++i) {
      waiter_record& r = v.waiters[i];
      if (aref(r.pid).load(std::memory_order_acquire) != me) continue;
      const std::uint64_t start = aref(r.start_time).load(std::memory_order_acquire);
      if (start == my_start) {
        last_record = {v.waiters, i};
        return i;
      }
      // A record with our pid and another start time belongs to an earlier, dead process that
      // had our pid. Start time 0 is one of our threads between its claim and its store.
      if (start != 0) reap_record(v, i, me);
    }
    for (std::uint32_t i = 0; i < v.registry_entries; ++i) {
      std::uint32_t expected = 0;
      if (aref(v.waiters[i].pid).load(std::memory_order_relaxed) == 0 &&
          aref(v.waiters[i].pid).compare_exchange_strong(expected, me, std::memory_order_acq_rel,
                                                         std::memory_order_relaxed)) {
        aref(v.waiters[i].start_time).store(my_start, std::memory_order_release);
        last_record = {v.waiters, i};
        return i;
      }
    }
    if (pass == 0) scan(v, true);  // full: free the records of dead processes, then retry
  }
  return no_waiter_record;
}

}  // namespace

std::uint32_t waiter_enter(const channel_view& v, waiter_side side) noexcept {
  const std::uint32_t i = own_record(v);
  if (i == no_waiter_record) return i;
  aref(record_count(v.waiters[i], side)).fetch_add(1, std::memory_order_seq_cst);
  aref(total_count(v, side)).fetch_add(1, std::memory_order_seq_cst);
  return i;
}

void waiter_leave(const channel_view& v, waiter_side side, std::uint32_t record) noexcept {
  if (record >= v.registry_entries) return;
  // Saturating: a reaper may have taken one off for a process that died between its two adds.
  subtract_saturating(total_count(v, side), 1);
  subtract_saturating(record_count(v.waiters[record], side), 1);
}

std::uint32_t reap_dead_waiters(const channel_view& v) noexcept {
  aref(v.control->waiters_scanned_ns).store(now_ns(), std::memory_order_relaxed);
  return scan(v, false);
}

std::uint32_t reap_dead_waiters_every(const channel_view& v, std::chrono::nanoseconds interval) noexcept {
  const std::uint64_t now = now_ns();
  std::uint64_t last = aref(v.control->waiters_scanned_ns).load(std::memory_order_relaxed);
  if (now - last < static_cast<std::uint64_t>(interval.count())) return 0;
  // One scanner per interval across all processes.
  if (!aref(v.control->waiters_scanned_ns).compare_exchange_strong(last, now, std::memory_order_relaxed)) return 0;
  return scan(v, false);
}

}  // namespace chanpool::channels::detail
