#include "fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "process.hpp"

namespace chanpool::channels::detail {
namespace {

// pid for which registration was attempted (fork gives a child its own mm to register), and
// whether it succeeded. Registration is per process and cheap; it happens on first use.
std::atomic<std::uint32_t> registered_for{0};
std::atomic<bool> registered_ok{false};

bool registered() noexcept {
  const std::uint32_t pid = current_pid();
  if (registered_for.load(std::memory_order_acquire) == pid) return registered_ok.load(std::memory_order_relaxed);
  const bool ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
  registered_ok.store(ok, std::memory_order_relaxed);
  registered_for.store(pid, std::memory_order_release);
  return ok;
}

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

void fast_side_fence() noexcept {
  if (registered()) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    full_fence();
  }
}

void slow_side_fence() noexcept {
  full_fence();
  // Fails only on kernels without membarrier (< 4.16) or where it is filtered; publishers there
  // could not register either and use full fences themselves.
  syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

}  // namespace chanpool::channels::detail
