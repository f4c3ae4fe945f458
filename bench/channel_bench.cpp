// Google Benchmark microbenchmarks of chanpool channels.
//
//   send_recv_pair/mpmc|spsc/<size>  one thread: send then recv (the cost of the two calls, no
//                                contention), on an MPMC channel and on one declared single-producer
//                                and single-consumer
//   send_recv_after_dead_sleepers/<n>  the same on a channel where n receiver processes were
//                                SIGKILLed while asleep in recv() (their wait must not stay counted)
//   spsc_cross_process/<size>         1 -> 1 process over a channel declared single-producer and
//                                     single-consumer (plain-store fast paths), messages/s
//   mpmc_channel_1p1c_cross_process/<size>  1 -> 1 process over an MPMC channel, messages/s
//   mpmc_cross_process/<size>         2 producer processes -> 2 consumer processes, messages/s
//   spsc_batch_cross_process/<size>/<k>      as spsc_cross_process, in batches of k messages
//                                     (send_many / recv_many) through slots that hold <size> inline
//   mpmc_batch_1p1c_cross_process/<size>/<k> the same over an MPMC channel
//
// Every cross-process case runs the bare ring of bench/ring_floor (ring_floor.hpp, 5 M messages
// of 64 B, plain stores and CAS claims) in the same process just before and just after itself,
// and reports the mean as floor_plain_Mps / floor_cas_Mps and its own rate against it as
// x_plain_floor / x_cas_floor: each figure has its anchor from the same run beside it (per
// message; the floor always moves 64 B).
//
// Cross-process runs: each benchmark iteration is one batch of `batch` messages; the time is
// from releasing the producers to the last consumer finishing (manual time, so the start-up
// nap of up to 0.2 ms per side is included: under 0.1% of a batch). Producers and consumers are
// pinned round robin to the allowed CPUs; with more processes than CPUs they share.
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "ring_floor.hpp"
#include "version_flag.hpp"

namespace ch = chanpool::channels;
using chanpool::status;

namespace {

ch::open_options bench_job() { return {.job = "gbench" + std::to_string(::getpid())}; }

ch::channel make_channel(const std::string& name, std::size_t message_bytes, bool single = false,
                         std::uint32_t slot_bytes = 128) {
  ch::channel_config config;
  config.single_producer = single;
  config.single_consumer = single;
  config.capacity = 4096;
  config.slot_bytes = slot_bytes;
  config.heap_bytes = std::max<std::uint64_t>(64u << 20, 2 * message_bytes);
  ch::channel::unlink(name, bench_job());
  auto c = ch::channel::create(name, config, bench_job());
  if (!c) throw std::runtime_error("channel create: " + c.error().message());
  return std::move(*c);
}

// Forks `n` receivers that sleep in recv() on `name`, waits until they are counted, kills them.
void kill_sleeping_receivers(ch::channel& c, const std::string& name, int n) {
  std::vector<pid_t> pids;
  const ch::open_options job = bench_job();  // the parent's: bench_job() names the caller's pid
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      auto r = ch::channel::open(name, job);
      if (r) {
        r->set_wait({.mode = ch::wait_mode::idle});
        std::vector<std::byte> got;
        (void)r->recv(got, ch::forever);
      }
      ::_exit(1);
    }
    pids.push_back(pid);
  }
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       c.poll().blocked_receivers < static_cast<std::uint32_t>(n) && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (pid_t pid : pids) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

void send_recv_after_dead_sleepers(benchmark::State& state) {
  auto c = make_channel("deadsleep", 64);
  kill_sleeping_receivers(c, "deadsleep", static_cast<int>(state.range(0)));
  std::vector<std::byte> msg(64, std::byte{7}), buffer(64);
  std::size_t length = 0;
  for (auto _ : state) {
    if (c.try_send(msg) != status::ok) state.SkipWithError("send failed");
    if (c.try_recv(buffer, length) != status::ok) state.SkipWithError("recv failed");
    benchmark::DoNotOptimize(buffer.data());
  }
  state.counters["counted_sleepers_after"] = c.poll().blocked_receivers;
  state.SetItemsProcessed(state.iterations());
  ch::channel::unlink("deadsleep", bench_job());
}

void send_recv_pair(benchmark::State& state, bool single) {
  const auto size = static_cast<std::size_t>(state.range(0));
  auto c = make_channel("pair", size, single);
  std::vector<std::byte> msg(size, std::byte{7}), buffer(size);
  std::size_t length = 0;
  for (auto _ : state) {
    if (c.try_send(msg) != status::ok) state.SkipWithError("send failed");
    if (c.try_recv(buffer, length) != status::ok) state.SkipWithError("recv failed");
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
  c.close();
  ch::channel::unlink("pair", bench_job());
}

// Start/finish handshake shared with the forked producers and consumers.
struct alignas(64) control {
  std::atomic<std::int64_t> generation{0};  // -1: exit
  std::atomic<std::int32_t> producers_done{0};
  std::atomic<std::int32_t> consumers_done{0};
  std::atomic<std::int32_t> failures{0};
};

// The parent must not compete for the two cores while it waits: it naps instead of yielding.
void nap() { std::this_thread::sleep_for(std::chrono::microseconds(200)); }

// Spreads the forked processes over the allowed CPUs, one each, round robin.
void pin_to_allowed_cpu(int index) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  const int count = CPU_COUNT(&allowed);
  if (count <= 0) return;
  int wanted = index % count;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (wanted-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}

void wait_generation(control* ctl, std::int64_t& seen) {
  std::int64_t g;
  while ((g = ctl->generation.load(std::memory_order_acquire)) == seen) nap();
  seen = g;
}

// A producer's share of one iteration: `k` at a time through send_many when k > 1.
bool produce(ch::channel& c, const std::vector<std::byte>& msg, std::uint64_t count, std::uint64_t k) {
  if (k <= 1) {
    for (std::uint64_t i = 0; i < count; ++i)
      if (c.send(msg) != status::ok) return false;
    return true;
  }
  const std::vector<std::span<const std::byte>> spans(k, std::span<const std::byte>(msg));
  for (std::uint64_t i = 0; i < count; i += k) {
    std::size_t sent = 0;
    const std::size_t n = static_cast<std::size_t>(std::min(k, count - i));
    if (c.send_many({spans.data(), n}, sent) != status::ok) return false;
  }
  return true;
}

// A consumer's share: until the zero-length sentinel, `k` at a time through recv_many when k > 1.
bool consume(ch::channel& c, std::size_t size, std::uint64_t k) {
  std::vector<std::byte> buffer(std::max<std::size_t>(size, 1) * std::max<std::uint64_t>(k, 1));
  if (k <= 1) {
    for (std::size_t length = 1; length != 0;)
      if (c.recv(buffer, length) != status::ok) return false;
    return true;
  }
  std::vector<std::size_t> lengths(k);
  for (;;) {
    std::size_t got = 0;
    const status st = c.recv_many(buffer, lengths, got);
    if (st != status::ok && st != status::empty) return false;
    for (std::size_t i = 0; i < got; ++i)
      if (lengths[i] == 0) return true;
  }
}

void cross_process(benchmark::State& state, int producers, int consumers, bool single, std::uint64_t k = 1) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::uint64_t batch = size > 1024 ? 200'000 : 2'000'000;
  const std::uint64_t per_producer = batch / static_cast<std::uint64_t>(producers);
  // The anchor, in this process just before and just after the case (the machine may be shared).
  double floor_plain = chanpool::bench::ring_floor_rate(false, 5'000'000);
  double floor_cas = chanpool::bench::ring_floor_rate(true, 5'000'000);
  // Batch cases hold the message inline: slots of the message plus the 16-byte header.
  const auto slot_bytes = k > 1 ? static_cast<std::uint32_t>(std::max<std::size_t>(128, (size + 16 + 63) / 64 * 64)) : 128u;
  auto c = make_channel("xproc", size, single, slot_bytes);
  c.set_wait({.mode = ch::wait_mode::spin});
  void* mem = ::mmap(nullptr, sizeof(control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* ctl = new (mem) control;
  std::vector<pid_t> children;
  for (int p = 0; p < producers; ++p) {
    if (const pid_t pid = ::fork(); pid == 0) {
      pin_to_allowed_cpu(p);
      std::vector<std::byte> msg(size, std::byte{1});
      std::int64_t seen = 0;
      for (;;) {
        wait_generation(ctl, seen);
        if (seen < 0) std::_Exit(0);
        if (!produce(c, msg, per_producer, k)) ctl->failures.fetch_add(1);
        if (single) c.send({});
        ctl->producers_done.fetch_add(1, std::memory_order_acq_rel);
      }
    } else {
      children.push_back(pid);
    }
  }
  for (int k = 0; k < consumers; ++k) {
    if (const pid_t pid = ::fork(); pid == 0) {
      pin_to_allowed_cpu(producers + k);
      std::int64_t seen = 0;
      for (;;) {
        wait_generation(ctl, seen);
        if (seen < 0) std::_Exit(0);
        // A zero-length message is the end-of-batch sentinel.
        if (!consume(c, size, k)) ctl->failures.fetch_add(1);
        ctl->consumers_done.fetch_add(1, std::memory_order_acq_rel);
      }
    } else {
      children.push_back(pid);
    }
  }
  double total_seconds = 0;
  for (auto _ : state) {
    ctl->producers_done.store(0);
    ctl->consumers_done.store(0);
    const auto t0 = std::chrono::steady_clock::now();
    ctl->generation.fetch_add(1, std::memory_order_acq_rel);
    while (ctl->producers_done.load(std::memory_order_acquire) < producers) nap();
    // In a single-producer channel the parent may not send: the producer sends the sentinels.
    if (!single)
      for (int k = 0; k < consumers; ++k) c.send({});
    while (ctl->consumers_done.load(std::memory_order_acquire) < consumers) nap();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_seconds += seconds;
    state.SetIterationTime(seconds);
  }
  ctl->generation.store(-1, std::memory_order_release);
  for (auto pid : children) ::waitpid(pid, nullptr, 0);
  if (ctl->failures.load()) state.SkipWithError("a send or recv failed");
  const auto messages = static_cast<std::int64_t>(per_producer * static_cast<std::uint64_t>(producers));
  state.SetItemsProcessed(state.iterations() * messages);
  state.SetBytesProcessed(state.iterations() * messages * static_cast<std::int64_t>(size));
  state.counters["msgs_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * messages), benchmark::Counter::kIsRate);
  floor_plain = (floor_plain + chanpool::bench::ring_floor_rate(false, 5'000'000)) / 2;
  floor_cas = (floor_cas + chanpool::bench::ring_floor_rate(true, 5'000'000)) / 2;
  const double rate = total_seconds > 0 ? static_cast<double>(state.iterations() * messages) / total_seconds : 0;
  state.counters["floor_plain_Mps"] = floor_plain / 1e6;
  state.counters["floor_cas_Mps"] = floor_cas / 1e6;
  state.counters["x_plain_floor"] = floor_plain > 0 ? rate / floor_plain : 0;
  state.counters["x_cas_floor"] = floor_cas > 0 ? rate / floor_cas : 0;
  ::munmap(mem, sizeof(control));
  c.close();
  ch::channel::unlink("xproc", bench_job());
}

void spsc_cross_process(benchmark::State& state) { cross_process(state, 1, 1, true); }
void mpmc_channel_1p1c_cross_process(benchmark::State& state) { cross_process(state, 1, 1, false); }
void mpmc_cross_process(benchmark::State& state) { cross_process(state, 2, 2, false); }
void spsc_batch_cross_process(benchmark::State& state) {
  cross_process(state, 1, 1, true, static_cast<std::uint64_t>(state.range(1)));
}
void mpmc_batch_1p1c_cross_process(benchmark::State& state) {
  cross_process(state, 1, 1, false, static_cast<std::uint64_t>(state.range(1)));
}

}  // namespace

BENCHMARK_CAPTURE(send_recv_pair, mpmc, false)->Arg(64)->Arg(4096);
BENCHMARK_CAPTURE(send_recv_pair, spsc, true)->Arg(64)->Arg(4096);
BENCHMARK(send_recv_after_dead_sleepers)->Arg(2);
BENCHMARK(spsc_cross_process)->Arg(64)->Arg(4096)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(mpmc_channel_1p1c_cross_process)->Arg(64)->Arg(4096)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(mpmc_cross_process)->Arg(64)->Arg(4096)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(spsc_batch_cross_process)->Args({64, 64})->Args({1024, 16})->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(mpmc_batch_1p1c_cross_process)->Args({64, 64})->Args({1024, 16})->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

// BENCHMARK_MAIN(), and --version as every chanpool program has it.
int main(int argc, char** argv) {
  if (chanpool::tools::print_version_if_asked(argc, argv, "channel_bench")) return 0;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
