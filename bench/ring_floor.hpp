// The bare cross-process ring that anchors channel_bench (bench/ring_floor, and channel_bench's
// ring-floor ratios): two processes stream 64-byte messages through 4096 slots of 128 bytes in
// shared memory, each slot claimed by a per-slot sequence word:
//   plain  claim and publish with plain stores (a single-producer / single-consumer ring with
//          no crash safety and no API: the ceiling)
//   cas    the same ring, each side claiming its slot with a CAS (what any MPMC ring pays)
// and the one-way latency of a bare cache-line hand-off between the two processes (line_handoff_ns).
// Not a chanpool API: a calibration, like a memcpy anchor.
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace chanpool::bench {

namespace ring_floor_detail {

inline constexpr std::uint64_t slots = 4096;
inline constexpr std::uint64_t slot_bytes = 128;
inline constexpr std::uint64_t claimed_bit = 1ull << 63;

struct ring {
  alignas(64) unsigned char data[slots * slot_bytes];
};

inline std::atomic<std::uint64_t>& sequence(ring* r, std::uint64_t pos) {
  return *reinterpret_cast<std::atomic<std::uint64_t>*>(r->data + (pos % slots) * slot_bytes);
}
inline unsigned char* payload(ring* r, std::uint64_t pos) { return r->data + (pos % slots) * slot_bytes + 16; }

inline void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

// Waits until the slot's sequence is `expected`, then claims it (CAS) or not (plain).
inline void acquire(std::atomic<std::uint64_t>& seq, std::uint64_t expected, bool cas) {
  for (;;) {
    std::uint64_t seen = seq.load(std::memory_order_acquire);
    if (seen == expected && (!cas || seq.compare_exchange_weak(seen, expected | claimed_bit))) return;
    __builtin_ia32_pause();
  }
}

}  // namespace ring_floor_detail

// Messages/s through the bare ring (0 if the ring cannot be mapped or the child not forked).
// The caller is pinned to CPU 0 while it runs (its affinity is restored after), the child to 1.
inline double ring_floor_rate(bool cas, std::uint64_t messages = 20'000'000) {
  using namespace ring_floor_detail;
  void* mem = mmap(nullptr, sizeof(ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  auto* r = static_cast<ring*>(mem);
  for (std::uint64_t i = 0; i < slots; ++i) sequence(r, i).store(2 * i);
  cpu_set_t saved;
  const bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
  const pid_t child = fork();
  if (child < 0) {
    munmap(mem, sizeof(ring));
    return 0;
  }
  if (child == 0) {
    pin(1);
    unsigned char buffer[64];
    for (std::uint64_t h = 0; h < messages; ++h) {
      acquire(sequence(r, h), 2 * h + 1, cas);
      std::memcpy(buffer, payload(r, h), 64);
      asm volatile("" : : "r"(buffer) : "memory");
      sequence(r, h).store(2 * (h + slots), std::memory_order_release);
    }
    _exit(0);
  }
  pin(0);
  unsigned char message[64];
  std::memset(message, 1, sizeof message);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t t = 0; t < messages; ++t) {
    acquire(sequence(r, t), 2 * t, cas);
    std::memcpy(payload(r, t), message, 64);
    sequence(r, t).store(2 * t + 1, std::memory_order_release);
  }
  waitpid(child, nullptr, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (have_saved) sched_setaffinity(0, sizeof saved, &saved);
  munmap(mem, sizeof(ring));
  return static_cast<double>(messages) / seconds;
}

// One way of a cache-line hand-off between two processes (ns, median of `rounds` batches): the
// caller (pinned to CPU 0) and a child (CPU 1) bounce one 64-byte line, each writing the turn
// the other waits for. The latency floor of any cross-process message on this machine: a
// message's one way cannot beat the line that tells the receiver it is there.
inline double line_handoff_ns(std::uint64_t round_trips = 100'000, int rounds = 11) {
  if (rounds < 1) return 0;
  using namespace ring_floor_detail;
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  auto* turn = static_cast<std::atomic<std::uint64_t>*>(mem);
  turn->store(0);
  cpu_set_t saved;
  const bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
  const std::uint64_t total = round_trips * static_cast<std::uint64_t>(rounds);
  const pid_t child = fork();
  if (child < 0) {
    munmap(mem, 4096);
    return 0;
  }
  if (child == 0) {
    pin(1);
    for (std::uint64_t i = 0; i < total; ++i) {
      while (turn->load(std::memory_order_acquire) != 2 * i + 1) __builtin_ia32_pause();
      turn->store(2 * i + 2, std::memory_order_release);
    }
    _exit(0);
  }
  pin(0);
  std::vector<double> batches(static_cast<std::size_t>(rounds));
  std::uint64_t i = 0;
  for (auto& batch : batches) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t k = 0; k < round_trips; ++k, ++i) {
      turn->store(2 * i + 1, std::memory_order_release);
      while (turn->load(std::memory_order_acquire) != 2 * i + 2) __builtin_ia32_pause();
    }
    batch = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
            static_cast<double>(round_trips) / 2;
  }
  waitpid(child, nullptr, 0);
  if (have_saved) sched_setaffinity(0, sizeof saved, &saved);
  munmap(mem, 4096);
  std::sort(batches.begin(), batches.end());
  return batches[batches.size() / 2];
}

}  // namespace chanpool::bench
