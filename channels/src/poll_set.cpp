#include "chanpool/channels/poll_set.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <thread>

#include "fence.hpp"
#include "layout.hpp"
#include "segment.hpp"
#include "waiters.hpp"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449  // same number on every architecture (asm-generic table)
#endif

namespace chanpool::channels {
namespace {

using clock = std::chrono::steady_clock;

// struct futex_waitv from <linux/futex.h> (>= 5.16); spelled out for older headers.
struct waitv_entry {
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};
constexpr std::uint32_t futex_size_u32 = 2;  // FUTEX2_SIZE_U32; no FUTEX2_PRIVATE: shared words
constexpr std::size_t futex_waitv_max = 128;

std::atomic<int> waitv_supported{-1};  // -1 unknown, 0 no (ENOSYS), 1 yes

// Returns false if the kernel lacks futex_waitv.
bool wait_on_all(const std::vector<waitv_entry>& entries, clock::duration nap) {
  if (waitv_supported.load(std::memory_order_relaxed) == 0) return false;
  timespec abs{};
  clock_gettime(CLOCK_MONOTONIC, &abs);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(nap).count();
  abs.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
  abs.tv_nsec += static_cast<long>(ns % 1'000'000'000);
  if (abs.tv_nsec >= 1'000'000'000) {
    abs.tv_sec += 1;
    abs.tv_nsec -= 1'000'000'000;
  }
  const long rc = syscall(SYS_futex_waitv, entries.data(), static_cast<unsigned>(entries.size()), 0u, &abs,
                          CLOCK_MONOTONIC);
  if (rc < 0 && errno == ENOSYS) {
    waitv_supported.store(0, std::memory_order_relaxed);
    return false;
  }
  waitv_supported.store(1, std::memory_order_relaxed);
  return true;
}

}  // namespace

std::size_t poll_set::add(const channel& ch, unsigned events) {
  entries_.push_back({&ch, events & (readable | writable)});
  return entries_.size() - 1;
}

bool poll_set::collect(std::vector<poll_event>& ready) const {
  ready.clear();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const poll_info info = entries_[i].ch->poll();
    unsigned got = 0;
    if ((entries_[i].events & readable) && info.readable) got |= readable;
    if ((entries_[i].events & writable) && info.writable) got |= writable;
    if (got) ready.push_back({i, got});
  }
  return !ready.empty();
}

status poll_set::wait(std::vector<poll_event>& ready, timeout t) {
  if (entries_.empty()) return status::invalid;
  for (const auto& e : entries_)
    if (!e.ch->is_open()) return status::invalid;
  if (collect(ready)) return status::ok;
  if (t <= timeout::zero()) return status::timeout;
  const auto start = clock::now();
  const auto deadline = t == forever || t > std::chrono::hours(24 * 365) ? clock::time_point::max() : start + t;
  while (clock::now() < std::min(deadline, start + spin_for_)) {
    if (collect(ready)) return status::ok;
    std::this_thread::yield();
  }

  // Counted in this process's waiter record on each channel, so that a kill in the sleep is undone.
  std::vector<std::uint32_t> records;
  records.reserve(entries_.size());
  for (const auto& e : entries_) records.push_back(detail::waiter_enter(*e.ch->view(), detail::waiter_side::poller));
  // Single-side publishers read poll_waiters without a fence of their own (fence.hpp).
  for (const auto& e : entries_)
    if (e.ch->view()->single_producer || e.ch->view()->single_consumer) {
      detail::slow_side_fence();
      break;
    }
  std::vector<waitv_entry> words;
  auto slice = std::chrono::microseconds(50);  // fallback sleep, doubled up to liveness_check
  status st = status::timeout;
  for (;;) {
    // Snapshot the words first, then check: a send after the check changes a word we sleep on.
    words.clear();
    for (const auto& e : entries_) {
      auto* control = e.ch->view()->control;
      if (e.events & readable)
        words.push_back({std::atomic_ref<std::uint32_t>(control->data_seq).load(std::memory_order_seq_cst),
                         reinterpret_cast<std::uint64_t>(&control->data_seq), futex_size_u32, 0});
      if (e.events & writable)
        words.push_back({std::atomic_ref<std::uint32_t>(control->space_seq).load(std::memory_order_seq_cst),
                         reinterpret_cast<std::uint64_t>(&control->space_seq), futex_size_u32, 0});
    }
    if (collect(ready)) {
      st = status::ok;
      break;
    }
    const auto now = clock::now();
    if (now >= deadline) break;
    if (now - start >= entries_.front().ch->wait().liveness_check) {
      bool repaired = false;
      for (const auto& e : entries_) repaired |= const_cast<channel*>(e.ch)->repair_ends();
      if (repaired) continue;
    }
    for (const auto& e : entries_) detail::reap_dead_waiters_every(*e.ch->view(), detail::scan_interval);
    // A sender that dies mid-claim never bumps a word: bound each sleep like channel waits do.
    const auto cap = entries_.front().ch->wait().liveness_check;
    const auto nap = std::min<clock::duration>(deadline - now, cap);
    if (words.size() > futex_waitv_max || !wait_on_all(words, nap)) {
      std::this_thread::sleep_for(std::min<clock::duration>(nap, slice));
      slice = std::min<std::chrono::microseconds>(slice * 2, std::chrono::duration_cast<std::chrono::microseconds>(cap));
    }
  }
  for (std::size_t i = 0; i < entries_.size(); ++i)
    detail::waiter_leave(*entries_[i].ch->view(), detail::waiter_side::poller, records[i]);
  return st;
}

}  // namespace chanpool::channels
