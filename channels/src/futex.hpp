// Cross-process futex on a 32-bit word in shared memory. Never FUTEX_PRIVATE_FLAG: waiters and
// wakers are different processes with different mappings of the same page.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace chanpool::channels::detail {

// Sleeps while *word == expected, at most `for_at_most` (negative or max: no limit).
inline void futex_wait(std::uint32_t* word, std::uint32_t expected, std::chrono::nanoseconds for_at_most) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (for_at_most >= std::chrono::nanoseconds::zero() && for_at_most != std::chrono::nanoseconds::max()) {
    ts.tv_sec = static_cast<time_t>(for_at_most.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(for_at_most.count() % 1'000'000'000);
    tsp = &ts;
  }
  // EAGAIN (value changed), EINTR and ETIMEDOUT all mean "look again"; callers loop.
  syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, nullptr, 0);
}

// Returns how many sleepers it woke (0 on error).
inline long futex_wake(std::uint32_t* word, int how_many) noexcept {
  const long woken = syscall(SYS_futex, word, FUTEX_WAKE, how_many, nullptr, nullptr, 0);
  return woken > 0 ? woken : 0;
}

}  // namespace chanpool::channels::detail
