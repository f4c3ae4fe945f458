// The single-side fence mode (channels/src/fence.hpp): a receiver that sleeps on every message
// switches its channel's futex word to "the publisher fences", so its later sleeps cost no
// membarrier; a stream that finds nobody asleep switches it back; and no wake-up is lost while the
// mode changes under a cross-process exchange.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "channels/test_util.hpp"
#include "layout.hpp"

namespace chanpool::test {
namespace {

using ch::channel;
using namespace std::chrono_literals;
namespace d = chanpool::channels::detail;

constexpr std::uint32_t mode_on = d::futex_fence_publishers | d::futex_fence_confirmed;
constexpr std::uint32_t mode_bits = mode_on | d::futex_fence_switching;

class FenceMode : public channel_test {
 protected:
  static ch::channel_config spsc(std::uint32_t capacity) {
    ch::channel_config c;
    c.capacity = capacity;
    c.heap_bytes = 1 << 20;
    c.single_producer = true;
    c.single_consumer = true;
    return c;
  }
  static ch::wait_config idle() {
    ch::wait_config w;
    w.mode = ch::wait_mode::idle;
    w.liveness_check = 10s;  // a missed wake-up shows as a 10 s stall, not a quick re-check
    return w;
  }

  // The fence-mode bits of a channel's data_seq word, read through a mapping of its segment.
  std::uint32_t data_mode(const std::string& name) {
    const int fd = ::open(shm_path(job_, name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return UINT32_MAX;
    d::segment_header h{};
    std::uint32_t word = UINT32_MAX;
    if (::pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h)) {
      const off_t at = static_cast<off_t>(h.control_offset + offsetof(d::control_block, data_seq));
      if (::pread(fd, &word, sizeof word, at) != static_cast<ssize_t>(sizeof word)) word = UINT32_MAX;
    }
    ::close(fd);
    return word == UINT32_MAX ? word : word & mode_bits;
  }

  // Sends `n` messages, each only once the receiver has taken the one before and is asleep in
  // recv() again: every one of these receives sleeps.
  static void send_to_sleeper(channel& c, int n, std::uint64_t& seq, const std::atomic<std::uint64_t>& received) {
    for (int i = 0; i < n; ++i) {
      const auto until = clock::now() + 10s;
      while ((received.load() != seq || c.poll().blocked_receivers == 0) && clock::now() < until)
        std::this_thread::sleep_for(20us);
      ASSERT_EQ(received.load(), seq) << "the receiver stopped";
      ASSERT_EQ(c.poll().blocked_receivers, 1u) << "the receiver never went to sleep";
      const auto m = make_message(32, 1, seq++);
      ASSERT_EQ(c.send(as_bytes(m), 5s), status::ok);
    }
  }
  static void wait_received(const std::atomic<std::uint64_t>& received, std::uint64_t n) {
    const auto until = clock::now() + 20s;
    while (received.load() < n && clock::now() < until) std::this_thread::sleep_for(100us);
  }
};

TEST_F(FenceMode, SleepingReceiverSwitchesItOnAndAnAwakeStreamSwitchesItOff) {
  const auto name = unique_name();
  channel tx = make(name, spsc(256));
  ASSERT_EQ(data_mode(name), 0u) << "a new channel starts with asymmetric fences";
  // Messages [0, 16) and [stream_end, total) are received by sleeping calls, the stream between
  // them by calls that never sleep.
  constexpr std::uint64_t stream_end = 16 + 3 * 4096, total = stream_end + 16;
  std::atomic<std::uint64_t> received{0}, bad{0};
  std::thread rx([&] {
    auto in = channel::open(name, options());
    if (!in) return bad.store(UINT64_MAX);
    in->set_wait(idle());
    std::vector<std::byte> got;
    for (std::uint64_t expect = 0; expect < total;) {
      const bool stream = expect >= 16 && expect < stream_end;
      const status st = in->recv(got, stream ? ch::try_once : ch::timeout(20s));
      if (stream && st == status::empty) continue;
      msg_info info{};
      if (st != status::ok || !verify_message(got, info) || info.seq != expect) return bad.store(1 + expect);
      received.store(++expect);
    }
  });
  std::uint64_t seq = 0;
  send_to_sleeper(tx, 16, seq, received);
  wait_received(received, seq);
  EXPECT_EQ(data_mode(name), mode_on) << "16 sleeping receives did not switch the publisher to fences";

  while (seq < stream_end) {
    const auto m = make_message(32, 1, seq++);
    ASSERT_EQ(tx.send(as_bytes(m), 5s), status::ok) << seq - 1;
  }
  wait_received(received, seq);
  // (The receiver's first sleep after the stream pays a membarrier but does not switch yet.)
  EXPECT_EQ(data_mode(name), 0u) << "12288 publishes with nobody asleep left the publisher fencing";

  send_to_sleeper(tx, 16, seq, received);
  rx.join();
  EXPECT_EQ(bad.load(), 0u) << "message " << (bad.load() - 1) << " missing, damaged or out of order";
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(data_mode(name), mode_on) << "sleeping receives after the stream did not switch it on again";
}

TEST_F(FenceMode, NoWakeUpIsLostWhileTheModeFlips) {
  // Rounds of ping-pong (every receive sleeps: the mode goes on) and bursts the echo drains
  // without sleeping (the mode goes off), in both directions, across processes. A lost wake-up
  // stalls a round for liveness_check (10 s); the whole exchange takes a few seconds.
  const auto name = unique_name();
  const auto o = options();
  channel ping = make(name, spsc(64));
  channel pong = make(name + "_back", spsc(64));
  ping.set_wait(idle());
  pong.set_wait(idle());
  const int cycles = kSanitized ? 3 : 12;
  const int rounds = 200, burst = 5000;
  child_guard guard;
  const pid_t echo = guard.add(fork_child([&]() -> int {
    auto in = channel::open(name, o);
    auto out = channel::open(name + "_back", o);
    if (!in || !out) return 10;
    in->set_wait(idle());
    out->set_wait(idle());
    std::vector<std::byte> got;
    for (int c = 0; c < cycles; ++c) {
      for (int i = 0; i < rounds; ++i) {
        if (in->recv(got, 20s) != status::ok) return 11;
        if (out->send(as_bytes(got), 20s) != status::ok) return 12;
      }
      for (int i = 0; i < burst;) {
        const status st = in->recv(got, ch::try_once);
        if (st == status::empty) continue;
        if (st != status::ok) return 13;
        ++i;
      }
      if (out->send(as_bytes(got), 20s) != status::ok) return 14;  // the burst's end
    }
    return 0;
  }));
  const auto start = clock::now();
  std::vector<std::byte> got;
  std::uint64_t seq = 0;
  for (int c = 0; c < cycles; ++c) {
    for (int i = 0; i < rounds; ++i) {
      const auto m = make_message(32, 1, seq++);
      ASSERT_EQ(ping.send(as_bytes(m), 20s), status::ok) << "cycle " << c << " round " << i;
      ASSERT_EQ(pong.recv(got, 20s), status::ok) << "cycle " << c << " round " << i << ": reply lost";
    }
    for (int i = 0; i < burst; ++i) {
      const auto m = make_message(32, 1, seq++);
      ASSERT_EQ(ping.send(as_bytes(m), 20s), status::ok) << "cycle " << c << " burst " << i;
    }
    ASSERT_EQ(pong.recv(got, 20s), status::ok) << "cycle " << c << ": the burst's end lost";
  }
  EXPECT_LT(clock::now() - start, std::chrono::seconds(cycles * 2 + 5)) << "a wake-up was lost and waited out";
  EXPECT_TRUE(expect_children_ok(wait_children({echo}, 30s), "echo"));
}

}  // namespace
}  // namespace chanpool::test
