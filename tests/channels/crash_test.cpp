// Crash tests: processes SIGKILLed at random points must never wedge a channel.
//
// Each scenario runs $CHANPOOL_CRASH_ROUNDS rounds (default 20) with seeded random delays; the
// seed is printed ([   SEED   ] line) and can be replayed with CHANPOOL_TEST_SEED. Every child
// is killed at a deadline and reported, so a wedge shows as a failure, not a hang.
#include <array>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

class ChannelCrash : public channel_test {
 protected:
  int rounds() const { return static_cast<int>(env_u64("CHANPOOL_CRASH_ROUNDS", 20)); }

  // A fresh channel for one round, with a fast liveness check on the parent's handle.
  channel round_channel(const std::string& name, const ch::channel_config& cfg) {
    channel c = make(name, cfg);
    c.set_wait(fast_wait());
    return c;
  }

  static ch::wait_config fast_wait() {
    return {.mode = ch::wait_mode::adaptive, .spin_for = std::chrono::microseconds(20), .liveness_check = 10ms};
  }

  // Whole-test budget: rounds stop (and the test fails) when it is spent.
  bool budget_left(clock::time_point start) {
    if (clock::now() - start < budget_) return true;
    ADD_FAILURE() << "test-level deadline of " << budget_.count() << " s hit";
    return false;
  }

  std::chrono::seconds budget_{kSanitized ? 400 : 140};
  std::chrono::seconds round_deadline_{kSanitized ? 60 : 20};
};

// The tests that run on both kinds of channel: GetParam() is true for a channel declared single
// producer and single consumer (one consumer process, and a survivor that takes a dead holder's
// lease over), false for an MPMC channel.
class ChannelCrashModes : public ChannelCrash, public ::testing::WithParamInterface<bool> {
 protected:
  ch::channel_config mode_config() const {
    return {.capacity = 64, .slot_bytes = 128, .heap_bytes = 1 << 20, .single_producer = GetParam(),
            .single_consumer = GetParam()};
  }
};

#define ASSERT_OPEN(c) ASSERT_TRUE((c).is_open()) << "channel could not be created"

// Opens `name` in a child with the fast liveness check; nullopt on failure.
std::optional<channel> child_open(const std::string& name, const ch::open_options& o) {
  auto r = channel::open(name, o);
  if (!r) return std::nullopt;
  channel c = std::move(r).value();
  c.set_wait({.mode = ch::wait_mode::adaptive, .spin_for = std::chrono::microseconds(20), .liveness_check = 10ms});
  return c;
}

[[noreturn]] void pause_forever() {
  for (;;) pause();
}

// Forks a child that opens `name`, takes a send claim of `send_bytes` (filled, never committed)
// or, when `send_bytes` is 0, a receive claim, signals `claimed` and then parks until killed.
// Child exit codes: 10 open failed, 11 claim failed.
pid_t fork_claim_holder(child_guard& guard, const std::string& name, const ch::open_options& o,
                        std::size_t send_bytes, gate& claimed) {
  return guard.add(fork_child([&]() -> int {
    auto r = child_open(name, o);
    if (!r) return 10;
    if (send_bytes == 0) {
      ch::recv_claim rc;
      if (r->claim_recv(rc, 5s) != status::ok) return 11;
    } else {
      ch::send_claim sc;
      if (r->claim_send(send_bytes, sc, 5s) != status::ok) return 11;
      std::memset(sc.data().data(), 0xab, send_bytes);
    }
    claimed.signal();
    pause_forever();
  }));
}

// ---------------------------------------------------------------------------------------------
// A producer sending in a loop (inline and heap sizes, send and claim/commit) is SIGKILLed at a
// random time while 2 consumer processes receive (one on a single-consumer channel). A surviving
// producer (on a single-producer channel, the next holder of the lease) then sends N tagged
// messages: all must arrive, intact and once; at most one message is lost per kill.

TEST_P(ChannelCrashModes, ProducerKilledWhileSending) {
  const auto seed = test_seed();
  std::mt19937_64 rng(seed);
  constexpr std::uint32_t kVictim = 1, kSurvivor = 2;
  constexpr std::uint64_t kTagged = 500;
  struct shared_state {
    std::atomic<std::uint64_t> tagged{0}, dups{0}, bad{0}, victim_msgs{0}, errors{0};
    std::atomic<std::uint8_t> seen[kTagged];
  };
  std::uint64_t total_lost = 0, victim_total = 0;
  const auto start = clock::now();
  for (int round = 0; round < rounds() && budget_left(start); ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    const auto name = unique_name();
    const auto o = options();
    channel c = round_channel(name, mode_config());
    ASSERT_OPEN(c);
    shared_object<shared_state> st;
    child_guard guard;
    std::vector<pid_t> waitees;
    for (int k = 0; k < (GetParam() ? 1 : 2); ++k) {
      waitees.push_back(guard.add(fork_child([&]() -> int {
        auto r = child_open(name, o);
        if (!r) return 10;
        std::vector<std::byte> buf(16384);
        auto last_progress = clock::now();
        while (st->tagged.load() < kTagged) {
          std::size_t len = 0;
          status s = r->recv(buf, len, 20ms);
          if (s == status::timeout) {
            if (clock::now() - last_progress > 15s) return 12;
            continue;
          }
          if (s != status::ok) {
            st->errors.fetch_add(1);
            return 11;
          }
          last_progress = clock::now();
          msg_info info;
          if (!verify_message({buf.data(), len}, info)) {
            st->bad.fetch_add(1);
          } else if (info.producer == kSurvivor && info.seq < kTagged) {
            if (st->seen[info.seq].exchange(1) != 0)
              st->dups.fetch_add(1);
            else
              st->tagged.fetch_add(1);
          } else if (info.producer == kVictim) {
            st->victim_msgs.fetch_add(1);
          } else {
            st->bad.fetch_add(1);
          }
        }
        return 0;
      })));
    }
    gate started;
    pid_t victim = guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      started.signal();
      std::vector<std::byte> buf(16384);
      for (std::uint64_t i = 0;; ++i) {
        const std::size_t n = (i % 4 == 1) ? 2000 + (i * 977) % 12000 : 24 + (i * 13) % 72;
        if (i % 3 == 2) {  // zero-copy path
          ch::send_claim sc;
          if (r->claim_send(n, sc) != status::ok) return 11;
          fill_message(sc.data(), kVictim, i);
          if (r->commit(sc) != status::ok) return 12;
        } else {
          std::span<std::byte> m{buf.data(), n};
          fill_message(m, kVictim, i);
          if (r->send(m) != status::ok) return 13;
        }
      }
    }));
    ASSERT_TRUE(started.wait(10s)) << "victim producer did not start";
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 15000)(rng));
    std::this_thread::sleep_for(delay);
    // The victim must still be running: it never exits by itself.
    ASSERT_EQ(waitpid(victim, nullptr, WNOHANG), 0) << "victim producer exited early";
    kill_and_reap(victim);

    waitees.push_back(guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      for (std::uint64_t i = 0; i < kTagged; ++i) {
        auto m = make_message((i % 5 == 0) ? 6000 : 48, kSurvivor, i);
        if (r->send(as_bytes(m), 10s) != status::ok) return 11;
      }
      return 0;
    })));
    auto exits = wait_children(waitees, round_deadline_);
    expect_children_ok(exits, "consumer/survivor");
    EXPECT_EQ(st->tagged.load(), kTagged) << "tagged messages lost after the kill (delay " << delay.count() << " us)";
    EXPECT_EQ(st->dups.load(), 0u);
    EXPECT_EQ(st->bad.load(), 0u) << "a partially written message was delivered";
    EXPECT_EQ(st->errors.load(), 0u);
    const auto stats = c.stats();
    EXPECT_LE(stats.lost_messages, 1u) << "more than one message lost for one kill";
    EXPECT_EQ(stats.corrupted_messages, 0u);
    total_lost += stats.lost_messages;
    victim_total += st->victim_msgs.load();
    c.close();
    (void)channel::unlink(name, o);
    if (HasFailure()) break;
  }
  std::printf("victim messages delivered: %llu, lost in total: %llu\n", static_cast<unsigned long long>(victim_total),
              static_cast<unsigned long long>(total_lost));
}

// ---------------------------------------------------------------------------------------------
// A producer holding a send claim is killed; a receiver blocked behind the claim gets the next
// message from another process; the dead claim counts as one lost message and a repaired slot.

TEST_F(ChannelCrash, ProducerKilledHoldingSendClaim) {
  const auto seed = test_seed();
  std::mt19937_64 rng(seed);
  double worst_ms = 0;
  const auto start = clock::now();
  for (int round = 0; round < rounds() && budget_left(start); ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    const auto name = unique_name();
    const auto o = options();
    channel c = round_channel(name, {.capacity = 16, .slot_bytes = 128, .heap_bytes = 1 << 20});
    ASSERT_OPEN(c);
    const std::size_t claim_bytes = (round % 2) ? 5000 : 64;  // heap and inline claims
    gate claimed, receiving;
    child_guard guard;
    pid_t claimer = fork_claim_holder(guard, name, o, claim_bytes, claimed);
    ASSERT_TRUE(claimed.wait(10s)) << "claimer did not claim";
    pid_t receiver = guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      receiving.signal();
      std::vector<std::byte> buf(8192);
      std::size_t len = 0;
      status s = r->recv(buf, len, 10s);
      if (s != status::ok) return 20 + static_cast<int>(s);
      msg_info info;
      if (!verify_message({buf.data(), len}, info)) return 12;
      if (info.producer != 77 || info.seq != static_cast<std::uint64_t>(round)) return 13;
      return 0;
    }));
    ASSERT_TRUE(receiving.wait(10s));
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(rng)));
    kill_and_reap(claimer);
    const auto killed_at = clock::now();
    pid_t sender = guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      auto m = make_message(100, 77, static_cast<std::uint64_t>(round));
      return r->send(as_bytes(m), 10s) == status::ok ? 0 : 11;
    }));
    auto re = wait_child(receiver, round_deadline_);
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - killed_at).count();
    worst_ms = std::max(worst_ms, ms);
    EXPECT_TRUE(re.ok()) << "blocked receiver: " << re.describe()
                         << " (exit 20+status: timeout=23; 12 bad checksum; 13 wrong message)";
    expect_children_ok({wait_child(sender, round_deadline_)}, "sender");
    const auto stats = c.stats();
    EXPECT_EQ(stats.lost_messages, 1u);
    EXPECT_GE(stats.repaired_slots, 1u);
    if (claim_bytes > c.inline_capacity()) {
      EXPECT_GE(stats.reclaimed_heap_blocks, 1u);
    }
    EXPECT_EQ(c.poll().count, 0u);
    std::array<std::byte, 8> buf{};
    std::size_t len = 0;
    EXPECT_EQ(c.try_recv(buf, len), status::empty) << "the dead claim must not be delivered";
    c.close();
    (void)channel::unlink(name, o);
    if (HasFailure()) break;
  }
  std::printf("worst kill-to-delivery latency: %.1f ms\n", worst_ms);
}

// ---------------------------------------------------------------------------------------------
// A consumer killed while holding a recv claim on a capacity-4 channel: producers lapping the
// ring must not hang, every later message arrives, and the held message counts as lost.

TEST_F(ChannelCrash, ConsumerKilledHoldingRecvClaim) {
  const auto seed = test_seed();
  std::mt19937_64 rng(seed);
  constexpr std::uint64_t kLater = 200;
  const auto start = clock::now();
  for (int round = 0; round < rounds() && budget_left(start); ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    const auto name = unique_name();
    const auto o = options();
    channel c = round_channel(name, {.capacity = 4, .slot_bytes = 128, .heap_bytes = 1 << 20});
    ASSERT_OPEN(c);
    auto first = make_message((round % 2) ? 3000 : 40, 5, 0);
    ASSERT_EQ(c.send(as_bytes(first)), status::ok);
    gate claimed;
    child_guard guard;
    pid_t holder = fork_claim_holder(guard, name, o, 0, claimed);
    ASSERT_TRUE(claimed.wait(10s)) << "holder did not claim";
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 10000)(rng)));
    kill_and_reap(holder);
    pid_t consumer = guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      std::vector<std::byte> buf(8192);
      for (std::uint64_t i = 1; i <= kLater; ++i) {
        std::size_t len = 0;
        status s = r->recv(buf, len, 10s);
        if (s != status::ok) return 20 + static_cast<int>(s);
        msg_info info;
        if (!verify_message({buf.data(), len}, info)) return 12;
        if (info.seq != i) return 13;  // the held message (seq 0) must not reappear; order holds
      }
      return 0;
    }));
    // The parent laps the 4-slot ring many times, past the dead holder's slot.
    for (std::uint64_t i = 1; i <= kLater; ++i) {
      auto m = make_message((i % 7 == 0) ? 3000 : 40, 5, i);
      status s = c.send(as_bytes(m), 10s);
      ASSERT_EQ(s, status::ok) << "send #" << i << " did not get past the dead consumer's claim";
    }
    expect_children_ok({wait_child(consumer, round_deadline_)}, "consumer");
    const auto stats = c.stats();
    EXPECT_EQ(stats.lost_messages, 1u);
    EXPECT_GE(stats.repaired_slots, 1u);
    EXPECT_EQ(c.poll().count, 0u);
    c.close();
    (void)channel::unlink(name, o);
    if (HasFailure()) break;
  }
}

// ---------------------------------------------------------------------------------------------
// One of two consumers is killed at a random point of its recv loop; between what it recorded
// and what the survivor received, at most one message is missing, none duplicated. On a
// single-consumer channel the survivor starts after the kill (it takes the lease over) and the
// messages are inline: a copying receive hands its slot back only after the copy, so a kill
// inside recv() leaves the message for the survivor and nothing is lost (the one message that may
// be missing was received and not yet recorded).

TEST_P(ChannelCrashModes, ConsumerKilledInRecvLoop) {
  const auto seed = test_seed();
  std::mt19937_64 rng(seed);
  constexpr std::uint64_t kCount = 30000;
  struct shared_state {
    std::atomic<std::uint64_t> recorded{0}, dups{0}, bad{0};
    std::atomic<int> producer_done{0};
    std::atomic<std::uint8_t> seen[kCount];
  };
  std::uint64_t missing_total = 0;
  const auto start = clock::now();
  for (int round = 0; round < rounds() && budget_left(start); ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    const auto name = unique_name();
    const auto o = options();
    channel c = round_channel(name, mode_config());
    ASSERT_OPEN(c);
    shared_object<shared_state> st;
    auto consume = [&](bool survivor, gate* ready) -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      if (ready) ready->signal();
      std::vector<std::byte> buf(16384);
      int idle = 0;
      for (;;) {
        std::size_t len = 0;
        status s = r->recv(buf, len, 20ms);
        if (s == status::timeout) {
          if (survivor && st->producer_done.load() != 0) {
            if (st->recorded.load() >= kCount || ++idle >= 50) return 0;
          }
          continue;
        }
        if (s != status::ok) return 11;
        idle = 0;
        msg_info info;
        if (!verify_message({buf.data(), len}, info) || info.seq >= kCount) {
          st->bad.fetch_add(1);
          continue;
        }
        if (st->seen[info.seq].exchange(1) != 0) st->dups.fetch_add(1);
        st->recorded.fetch_add(1);
      }
    };
    gate victim_ready, go;
    child_guard guard;
    const bool single = GetParam();
    pid_t survivor = single ? 0 : guard.add(fork_child([&] { return consume(true, nullptr); }));
    pid_t victim = guard.add(fork_child([&] { return consume(false, &victim_ready); }));
    ASSERT_TRUE(victim_ready.wait(10s));
    pid_t producer = guard.add(fork_child([&]() -> int {
      auto r = child_open(name, o);
      if (!r) return 10;
      for (std::uint64_t i = 0; i < kCount; ++i) {
        auto m = make_message((i % 20 == 3 && !single) ? 5000 : 24 + i % 70, 4, i);
        if (r->send(as_bytes(m), 10s) != status::ok) return 11;
        if (i % 1000 == 999) std::this_thread::sleep_for(1ms);  // keep the stream going ~30 ms+
      }
      st->producer_done.store(1);
      return 0;
    }));
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 25000)(rng));
    std::this_thread::sleep_for(delay);
    kill_and_reap(victim);
    if (single) survivor = guard.add(fork_child([&] { return consume(true, nullptr); }));
    expect_children_ok(wait_children({producer, survivor}, round_deadline_), "producer/survivor");
    std::uint64_t missing = 0;
    for (auto& s : st->seen) missing += s.load() == 0;
    missing_total += missing;
    EXPECT_LE(missing, 1u) << "killed after " << delay.count() << " us";
    EXPECT_EQ(st->dups.load(), 0u);
    EXPECT_EQ(st->bad.load(), 0u);
    EXPECT_LE(c.stats().lost_messages, single ? 0u : 1u)
        << (single ? "a copying receive of an inline message was dropped" : "more than one message lost for one kill");
    c.close();
    (void)channel::unlink(name, o);
    if (HasFailure()) break;
  }
  std::printf("messages missing over all rounds: %llu\n", static_cast<unsigned long long>(missing_total));
}

INSTANTIATE_TEST_SUITE_P(Modes, ChannelCrashModes, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "single" : "mpmc"; });

// ---------------------------------------------------------------------------------------------
// Heap blocks of a producer killed between claim_send of a large message and commit come back:
// afterwards a message of the largest size the fresh heap allowed can be claimed again.

// The largest size claimable on the (empty) channel, probed in heap_block steps.
std::size_t largest_claim(channel& c) {
  const std::size_t step = c.config().heap_block_bytes;
  for (std::size_t n = c.max_message_bytes(); n > c.inline_capacity(); n -= std::min(n, step)) {
    ch::send_claim sc;
    if (c.claim_send(n, sc, ch::try_once) == status::ok) {
      (void)c.abandon(sc);
      return n;
    }
    if (n <= step) break;
  }
  return 0;
}

class ChannelCrashHeap : public ChannelCrash {
 protected:
  enum class healer { explicit_repair, waiting_sender, waiting_receiver };

  void run(healer how) {
    const auto seed = test_seed();
    std::mt19937_64 rng(seed);
    const auto start = clock::now();
    for (int round = 0; round < rounds() && budget_left(start); ++round) {
      SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
      const auto name = unique_name();
      const auto o = options();
      channel c = round_channel(name, {.capacity = 8, .slot_bytes = 128, .heap_bytes = 64 << 10, .heap_block_bytes = 4096});
      ASSERT_OPEN(c);
      const std::size_t biggest = largest_claim(c);
      ASSERT_GE(biggest, std::size_t{32} << 10) << "a 64 KiB heap should fit a 32 KiB message";
      const std::size_t victim_bytes =
          std::uniform_int_distribution<std::size_t>(c.inline_capacity() + 1, biggest)(rng);
      gate claimed;
      child_guard guard;
      pid_t victim = fork_claim_holder(guard, name, o, victim_bytes, claimed);
      ASSERT_TRUE(claimed.wait(10s)) << "victim did not claim";
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 5000)(rng)));
      kill_and_reap(victim);

      ch::send_claim sc;
      pid_t receiver = -1;
      if (how == healer::explicit_repair) {
        EXPECT_GE(c.repair(), 1u) << "repair() found nothing to repair after the kill";
        EXPECT_EQ(c.claim_send(biggest, sc, ch::try_once), status::ok)
            << "heap not usable in full right after repair(); victim held " << victim_bytes << " bytes";
      } else if (how == healer::waiting_sender) {
        // The waiting sender notices the dead holder by itself (liveness_check 10 ms).
        EXPECT_EQ(c.claim_send(biggest, sc, 5s), status::ok)
            << "waiting sender did not reclaim the dead producer's " << victim_bytes << " heap bytes";
      } else {
        // A receiver blocked behind the dead claim repairs it; the parent's waiting large send
        // then gets the heap and the receiver gets that message.
        receiver = guard.add(fork_child([&]() -> int {
          auto r = child_open(name, o);
          if (!r) return 10;
          std::vector<std::byte> got;
          status s = r->recv(got, 10s);
          if (s != status::ok) return 20 + static_cast<int>(s);
          msg_info info;
          if (!verify_message(got, info) || info.producer != 6u) return 12;
          return 0;
        }));
        EXPECT_EQ(c.claim_send(biggest, sc, 5s), status::ok)
            << "large send still blocked although a receiver waits behind the dead claim; victim held "
            << victim_bytes << " bytes";
      }
      if (sc.active()) {
        auto m = make_message(biggest, 6, static_cast<std::uint64_t>(round));
        std::memcpy(sc.data().data(), m.data(), biggest);
        ASSERT_EQ(c.commit(sc), status::ok);
        if (receiver < 0) {
          std::vector<std::byte> got;
          ASSERT_EQ(c.recv(got, 5s), status::ok) << "committed message after the dead claim not received";
          msg_info info;
          EXPECT_TRUE(verify_message(got, info));
          EXPECT_EQ(info.producer, 6u);
        }
      }
      if (receiver > 0) expect_children_ok({wait_child(receiver, round_deadline_)}, "receiver");
      const auto stats = c.stats();
      EXPECT_EQ(stats.lost_messages, 1u);
      EXPECT_GE(stats.repaired_slots, 1u);
      EXPECT_GE(stats.reclaimed_heap_blocks, 1u);
      c.close();
      (void)channel::unlink(name, o);
      if (HasFailure()) break;
    }
  }
};

TEST_F(ChannelCrashHeap, HeapReclaimedAfterExplicitRepair) { run(healer::explicit_repair); }
TEST_F(ChannelCrashHeap, HeapReclaimedByWaitingReceiver) { run(healer::waiting_receiver); }
TEST_F(ChannelCrashHeap, HeapReclaimedByWaitingSender) { run(healer::waiting_sender); }

// ---------------------------------------------------------------------------------------------
// A supervisor's repair() reports the repair of a killed claim holder (send or recv claim).

TEST_F(ChannelCrash, SupervisorRepair) {
  const auto seed = test_seed();
  std::mt19937_64 rng(seed);
  const auto start = clock::now();
  for (int round = 0; round < rounds() && budget_left(start); ++round) {
    const bool recv_side = round % 2 == 1;
    SCOPED_TRACE("round " + std::to_string(round) + (recv_side ? " (recv claim)" : " (send claim)") + " seed " +
                 std::to_string(seed));
    const auto name = unique_name();
    const auto o = options();
    channel c = round_channel(name, {.capacity = 16, .slot_bytes = 128, .heap_bytes = 1 << 20});
    ASSERT_OPEN(c);
    if (recv_side) {
      auto m = make_message(60, 1, 0);
      ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    }
    gate claimed;
    child_guard guard;
    // 200 bytes is a heap message with 128-byte slots.
    pid_t holder = fork_claim_holder(guard, name, o, recv_side ? 0 : 200, claimed);
    ASSERT_TRUE(claimed.wait(10s));
    EXPECT_EQ(c.repair(), 0u) << "repair() must not touch a live holder";
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 5000)(rng)));
    kill_and_reap(holder);
    EXPECT_GE(c.repair(), 1u) << "repair() missed the dead claim holder";
    EXPECT_EQ(c.repair(), 0u) << "second repair() has nothing left";
    auto stats = c.stats();
    EXPECT_GE(stats.repaired_slots, 1u);
    EXPECT_EQ(stats.lost_messages, 1u);
    if (!recv_side) {
      EXPECT_GE(stats.reclaimed_heap_blocks, 1u);
    }
    // The channel works normally afterwards.
    auto m = make_message(60, 2, 1);
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    std::vector<std::byte> got;
    ASSERT_EQ(c.recv(got, ch::try_once), status::ok) << "message behind the repaired slot not received at once";
    msg_info info;
    EXPECT_TRUE(verify_message(got, info));
    EXPECT_EQ(info.producer, 2u);
    EXPECT_EQ(c.poll().count, 0u);
    c.close();
    (void)channel::unlink(name, o);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace chanpool::test
