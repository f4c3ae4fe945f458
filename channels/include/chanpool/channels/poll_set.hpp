// Wait on several channels at once for readable / writable.
//
// No missed wake-ups: wait() snapshots each channel's futex word, checks readiness, then sleeps
// on all words together (futex_waitv, Linux >= 5.16), so a send between the check and the sleep
// changes a word and the sleep returns at once. On older kernels it checks, then sleeps in
// short, growing slices (up to wait_config::liveness_check) and checks again: still no missed
// event, at worse latency.
//
// Concurrency: one thread uses a poll_set at a time; the channels it watches are shared freely.
#pragma once

#include <cstddef>
#include <vector>

#include "chanpool/channels/channel.hpp"

namespace chanpool::channels {

enum poll_events : unsigned { readable = 1u, writable = 2u };

struct poll_event {
  std::size_t index;  // as returned by add()
  unsigned events;    // readable | writable, the ones that are ready
};

class poll_set {
 public:
  // Watches `ch` (which must outlive the set) for `events`. Returns its index. Not thread-safe.
  std::size_t add(const channel& ch, unsigned events);
  std::size_t size() const noexcept { return entries_.size(); }

  // Fills `ready` with every ready channel and returns ok, or returns timeout. Sealed channels
  // count as readable (recv reports closed). invalid if the set is empty. May block.
  status wait(std::vector<poll_event>& ready, timeout t = forever);

  void set_spin(std::chrono::nanoseconds spin_for) noexcept { spin_for_ = spin_for; }

 private:
  struct entry {
    const channel* ch;
    unsigned events;
  };
  bool collect(std::vector<poll_event>& ready) const;
  std::vector<entry> entries_;
  std::chrono::nanoseconds spin_for_ = std::chrono::microseconds(20);
};

}  // namespace chanpool::channels
