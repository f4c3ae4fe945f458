#include "fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "layout.hpp"
#include "process.hpp"

namespace chanpool::channels::detail {
namespace {

// Registration is per process and cheap; it happens on first use.
bool registered() noexcept {
  const std::uint32_t pid = current_pid();
  if (membarrier_registered_for.load(std::memory_order_acquire) == pid)
    return membarrier_registered_ok.load(std::memory_order_relaxed);
  const bool ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
  membarrier_registered_ok.store(ok, std::memory_order_relaxed);
  membarrier_registered_for.store(pid, std::memory_order_release);
  return ok;
}

// Fails only on kernels without membarrier (< 4.16) or where it is filtered; publishers there
// could not register either and use full fences themselves.
void membarrier_all() noexcept { syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0); }

std::atomic_ref<std::uint32_t> word_ref(std::uint32_t& w) noexcept { return std::atomic_ref<std::uint32_t>(w); }

constexpr std::uint32_t mode_on = futex_fence_publishers | futex_fence_confirmed;
constexpr std::uint32_t mode_bits = mode_on | futex_fence_switching;
// A waiter switches the word after this many sleeps that each paid a membarrier; a publisher
// switches it back when it crosses a multiple of this many positions with nobody asleep.
constexpr std::uint32_t switch_after_sleeps = 4;
constexpr std::uint64_t quiet_positions = 4096;

}  // namespace

// A full fence. ThreadSanitizer does not model standalone fences (GCC warns with -Wtsan), so
// its builds use a seq_cst read-modify-write on a private word instead, a full barrier on x86.
void full_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
  static std::atomic<std::uint32_t> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

void slow_side_fence() noexcept {
  full_fence();
  membarrier_all();
}

// Why the mode is safe. Every change of the word is a read-modify-write, so the word has one
// modification order, and a sleeper decides on the value its own arming RMW returned:
// - it skips the membarrier only if that value has `publishers` and `confirmed`. A publisher's
//   first load reads some value of the word. At or after the arming: it sees `armed` and wakes.
//   Before it, with `publishers`: it fences and reads again, which with the sleeper's seq_cst RMW
//   is the plain two-fence handshake. Before it, without `publishers`: that value precedes the
//   setting of `publishers` that `confirmed` vouches for, and the membarrier between the two
//   ran a full barrier on the publisher's CPU after that load (else the load would have seen
//   the bit), so the publish before the load was visible before `confirmed` was set — the
//   sleeper's re-check sees it.
// - a publisher clears the mode only by a CAS from a value without `armed`, so never while a
//   sleeper that relied on the mode is armed and not yet woken; a sleeper arming after the clear
//   sees no mode and pays its membarrier. Only the holder of `switching` sets `confirmed`, and
//   nobody clears while it is held, so `confirmed` always follows a membarrier issued after the
//   `publishers` bit it vouches for.
void publish_side_fence(std::uint32_t& word, std::uint64_t first, std::size_t count) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (!registered()) return full_fence();
  std::uint32_t w = word_ref(word).load(std::memory_order_relaxed);
  if (!(w & futex_fence_publishers)) return;
  full_fence();
  const bool crossed = (first / quiet_positions) != ((first + count) / quiet_positions);
  if (!crossed) return;
  w = word_ref(word).load(std::memory_order_relaxed);
  if ((w & (mode_bits | futex_armed)) == mode_on)
    word_ref(word).compare_exchange_strong(w, w & ~mode_on, std::memory_order_seq_cst, std::memory_order_relaxed);
}

std::uint32_t sleep_side_fence(std::uint32_t& word, std::uint32_t armed, std::uint32_t& paid_sleeps) noexcept {
  if ((armed & mode_bits) == mode_on) return armed;  // the arming RMW was this side's full barrier
  const std::uint32_t paid = std::atomic_ref<std::uint32_t>(paid_sleeps).fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t expected = armed;
  bool switching = false;
  if (paid % switch_after_sleeps == 0 && !(armed & (futex_fence_publishers | futex_fence_switching))) {
    std::uint32_t w = armed;
    switching = word_ref(word).compare_exchange_strong(w, w | futex_fence_publishers | futex_fence_switching,
                                                       std::memory_order_seq_cst, std::memory_order_relaxed);
    if (switching) expected = w | futex_fence_publishers | futex_fence_switching;
  }
  full_fence();
  membarrier_all();  // orders this sleep's re-check, and confirms `publishers` if set just now
  if (!switching) return expected;
  std::uint32_t w = word_ref(word).load(std::memory_order_relaxed);
  while (!word_ref(word).compare_exchange_weak(w, (w | futex_fence_confirmed) & ~futex_fence_switching,
                                               std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  // Sleep on a value with `armed`: if a publisher cleared it meanwhile, the wait returns at once.
  return ((w | futex_fence_confirmed) & ~futex_fence_switching) | futex_armed;
}

}  // namespace chanpool::channels::detail
