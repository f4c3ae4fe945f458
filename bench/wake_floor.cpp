// wake_floor: what one sleeping hand-off between two processes costs on this machine, as the
// anchor for every latency figure of a path whose threads sleep (a channel with a sleeping
// receiver, the agent path, apply_async). Two processes ping-pong through one futex word in
// shared memory: each publishes, wakes the other (FUTEX_WAKE) and sleeps (FUTEX_WAIT) until
// answered. No chanpool code; a calibration, like ring_floor. Prints the one-way time (round
// trip / 2, mean over the round trips) with the two processes on CPUs 0 and 1, and both on CPU 0.
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "version_flag.hpp"

namespace {

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT, seen, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& w) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Sets the word to `value`, wakes the other side, sleeps until the word is `answer`.
void hand_off(std::atomic<std::uint32_t>& w, std::uint32_t value, std::uint32_t answer) {
  w.store(value, std::memory_order_seq_cst);
  futex_wake(w);
  for (std::uint32_t seen; (seen = w.load(std::memory_order_seq_cst)) != answer;) futex_wait(w, seen);
}

// One-way nanoseconds, or a negative value if the word cannot be mapped or the child not forked.
double one_way_ns(int child_cpu, std::uint32_t round_trips) {
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -1;
  auto* word = new (mem) std::atomic<std::uint32_t>(0);
  cpu_set_t saved;
  const bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
  const pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    pin(child_cpu);
    for (std::uint32_t i = 1; i <= round_trips; ++i) {
      for (std::uint32_t seen; (seen = word->load(std::memory_order_seq_cst)) != 2 * i - 1;) futex_wait(*word, seen);
      word->store(2 * i, std::memory_order_seq_cst);
      futex_wake(*word);
    }
    _exit(0);
  }
  pin(0);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 1; i <= round_trips; ++i) hand_off(*word, 2 * i - 1, 2 * i);
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  waitpid(child, nullptr, 0);
  if (have_saved) sched_setaffinity(0, sizeof saved, &saved);
  munmap(mem, 4096);
  return ns / round_trips / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (chanpool::tools::print_version_if_asked(argc, argv, "wake_floor")) return 0;
  constexpr std::uint32_t round_trips = 20000;
  const double apart = one_way_ns(1, round_trips);
  const double together = one_way_ns(0, round_trips);
  if (apart < 0 || together < 0) {
    std::fprintf(stderr, "wake_floor: cannot map a shared page or fork a child\n");
    return 1;
  }
  std::printf("wake_floor: futex hand-off between two processes, %u round trips, one way\n", round_trips);
  std::printf("CPUs 0 and 1: %8.1f us\n", apart / 1e3);
  std::printf("both on CPU 0:%8.1f us\n", together / 1e3);
  return 0;
}
