// ring_floor: the throughput floor and ceiling of this machine for a cross-process ring, as an
// anchor for channel_bench. Two processes (pinned to CPUs 0 and 1) stream 64-byte messages
// through a bare ring of 4096 slots of 128 bytes in shared memory:
//   plain  per-slot sequence word, claim and publish with plain stores (a single-producer /
//          single-consumer ring with no crash safety and no API: the ceiling)
//   cas    the same ring, each side claiming its slot with a CAS (what any MPMC ring pays)
// Prints messages/s for each (--version: the version). Not a chanpool API: a calibration, like a memcpy anchor.
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "version_flag.hpp"

namespace {

constexpr std::uint64_t slots = 4096;
constexpr std::uint64_t slot_bytes = 128;
constexpr std::uint64_t messages = 20'000'000;
constexpr std::uint64_t claimed_bit = 1ull << 63;

struct ring {
  alignas(64) unsigned char data[slots * slot_bytes];
};

std::atomic<std::uint64_t>& sequence(ring* r, std::uint64_t pos) {
  return *reinterpret_cast<std::atomic<std::uint64_t>*>(r->data + (pos % slots) * slot_bytes);
}
unsigned char* payload(ring* r, std::uint64_t pos) { return r->data + (pos % slots) * slot_bytes + 16; }

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

// Waits until the slot's sequence is `expected`, then claims it (CAS) or not (plain).
void acquire(std::atomic<std::uint64_t>& seq, std::uint64_t expected, bool cas) {
  for (;;) {
    std::uint64_t seen = seq.load(std::memory_order_acquire);
    if (seen == expected && (!cas || seq.compare_exchange_weak(seen, expected | claimed_bit))) return;
    __builtin_ia32_pause();
  }
}

double run(bool cas) {
  void* mem = mmap(nullptr, sizeof(ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* r = static_cast<ring*>(mem);
  for (std::uint64_t i = 0; i < slots; ++i) sequence(r, i).store(2 * i);
  const pid_t child = fork();
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
  munmap(mem, sizeof(ring));
  return static_cast<double>(messages) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (chanpool::tools::print_version_if_asked(argc, argv, "ring_floor")) return 0;
  const double plain = run(false);
  const double cas = run(true);
  std::printf("ring_floor: 64 B messages, 128 B slots, 4096 slots, 2 processes on CPUs 0 and 1\n");
  std::printf("plain stores: %6.1f M msgs/s\n", plain / 1e6);
  std::printf("CAS claims:   %6.1f M msgs/s\n", cas / 1e6);
  return 0;
}
