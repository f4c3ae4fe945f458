// Batch calls: send_many / recv_many and the zero-copy runs (claim_send_run, claim_recv_run), on
// MPMC and single-side channels, including partial success and a process killed mid-batch.
#include <algorithm>
#include <array>
#include <atomic>
#include <thread>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

// Parameter: true = single producer and single consumer, false = MPMC.
class ChannelBatch : public channel_test, public ::testing::WithParamInterface<bool> {
 protected:
  ch::channel_config config(std::uint32_t capacity, std::uint64_t heap = 1u << 20) const {
    ch::channel_config c;
    c.capacity = capacity;
    c.slot_bytes = 128;
    c.heap_bytes = heap;
    c.single_producer = GetParam();
    c.single_consumer = GetParam();
    return c;
  }
};

std::vector<std::span<const std::byte>> spans_of(const std::vector<std::vector<std::byte>>& ms) {
  std::vector<std::span<const std::byte>> out;
  for (const auto& m : ms) out.emplace_back(m.data(), m.size());
  return out;
}

TEST_P(ChannelBatch, SendManyRecvManyKeepOrderAndBytes) {
  channel c = make(unique_name(), config(256));
  ASSERT_TRUE(c.is_open());
  // Inline sizes around the slot's capacity (96), an empty message and two heap messages.
  std::vector<std::vector<std::byte>> ms;
  const std::size_t sizes[] = {0, 1, 64, 95, 96, 97, 5000, 8, 96, 3000, 33};
  for (int round = 0; round < 20; ++round)
    for (std::size_t i = 0; i < std::size(sizes); ++i) ms.push_back(pattern(sizes[i], round * 16 + i));
  std::size_t sent = 0;
  ASSERT_EQ(c.send_many(spans_of(ms), sent, 1s), status::ok);
  EXPECT_EQ(sent, ms.size());
  std::vector<std::byte> buffer(64 << 10);
  std::vector<std::size_t> lengths(50);
  std::size_t next = 0;
  while (next < ms.size()) {
    std::size_t got = 0;
    const status st = c.recv_many(buffer, lengths, got, 1s);
    ASSERT_TRUE(st == status::ok || st == status::empty) << to_string(st);
    ASSERT_GT(got, 0u);
    std::size_t at = 0;
    for (std::size_t i = 0; i < got; ++i, ++next) {
      ASSERT_EQ(lengths[i], ms[next].size()) << "message " << next;
      // std::equal, not memcmp: the empty message's vector has no storage (data() may be null).
      EXPECT_TRUE(std::equal(ms[next].begin(), ms[next].end(), buffer.begin() + static_cast<std::ptrdiff_t>(at)))
          << "message " << next;
      at += lengths[i];
    }
  }
  std::size_t got = 7;
  EXPECT_EQ(c.recv_many(buffer, lengths, got, ch::try_once), status::empty);
  EXPECT_EQ(got, 0u);
}

TEST_P(ChannelBatch, PartialSendAndRecvReportCountAndReason) {
  channel c = make(unique_name(), config(8, 0));
  ASSERT_TRUE(c.is_open());
  std::vector<std::vector<std::byte>> ms;
  for (int i = 0; i < 20; ++i) ms.push_back(pattern(40, i));
  std::size_t sent = 0;
  EXPECT_EQ(c.send_many(spans_of(ms), sent, ch::try_once), status::full);
  EXPECT_EQ(sent, 8u);
  EXPECT_EQ(c.send_many(spans_of(ms), sent, 20ms), status::timeout);
  EXPECT_EQ(sent, 0u);
  // A message over the inline capacity on a channel without heap stops the batch there.
  std::vector<std::vector<std::byte>> big = {pattern(200)};
  EXPECT_EQ(c.send_many(spans_of(big), sent, ch::try_once), status::too_large);
  EXPECT_EQ(sent, 0u);

  // The buffer takes 2.5 messages: two come out, the third stays queued.
  std::vector<std::byte> buffer(100);
  std::vector<std::size_t> lengths(8);
  std::size_t got = 0;
  EXPECT_EQ(c.recv_many(buffer, lengths, got, ch::try_once), status::too_large);
  EXPECT_EQ(got, 2u);
  EXPECT_EQ(std::memcmp(buffer.data() + 40, ms[1].data(), 40), 0);
  std::vector<std::byte> tiny(10);
  EXPECT_EQ(c.recv_many(tiny, lengths, got, ch::try_once), status::too_large);
  EXPECT_EQ(got, 0u);
  EXPECT_EQ(lengths[0], 40u) << "the size of the message that did not fit";
  // Only three lengths asked for: ok with three.
  std::span<std::size_t> three(lengths.data(), 3);
  EXPECT_EQ(c.recv_many(buffer, three, got, ch::try_once), status::too_large);  // 100 B holds 2
  EXPECT_EQ(got, 2u);
  std::vector<std::byte> large(4096);
  EXPECT_EQ(c.recv_many(large, three, got, ch::try_once), status::ok);
  EXPECT_EQ(got, 3u);
  EXPECT_EQ(std::memcmp(large.data(), ms[4].data(), 40), 0);
  EXPECT_EQ(c.recv_many(large, lengths, got, ch::try_once), status::empty);
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(c.recv_many(large, lengths, got, 10ms), status::timeout);
  EXPECT_EQ(got, 0u);
  std::vector<std::size_t> none;
  EXPECT_EQ(c.recv_many(large, none, got, ch::try_once), status::invalid);
}

TEST_P(ChannelBatch, SendRunCommitsInPartsAndAbandonsTheRest) {
  channel c = make(unique_name(), config(16, 0));
  ASSERT_TRUE(c.is_open());
  ch::send_run run;
  EXPECT_EQ(c.claim_send_run(0, run, ch::try_once), status::invalid);
  ASSERT_EQ(c.claim_send_run(10, run, ch::try_once), status::ok);
  ASSERT_EQ(run.size(), 10u);
  EXPECT_EQ(run.data(0).size(), c.inline_capacity());
  for (std::size_t i = 0; i < run.size(); ++i) std::memset(run.data(i).data(), static_cast<int>(i + 1), 8);
  ch::send_run other;
  ASSERT_EQ(c.claim_send_run(100, other, ch::try_once), status::ok);
  EXPECT_EQ(other.size(), 6u) << "a run claims what is free, up to the ring's end";
  EXPECT_EQ(c.claim_send_run(1, other, ch::try_once), status::invalid) << "run still active";
  const std::size_t too_long[] = {c.inline_capacity() + 1};
  EXPECT_EQ(c.commit(run, too_long), status::invalid);
  const std::size_t first[] = {8, 8, 4};
  ASSERT_EQ(c.commit(run, first), status::ok);
  EXPECT_EQ(run.size(), 7u);
  std::vector<std::byte> buf(256);
  std::size_t n = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.try_recv(buf, n), status::ok);
    EXPECT_EQ(n, i == 2 ? 4u : 8u);
    EXPECT_EQ(buf[0], std::byte(i + 1));
  }
  EXPECT_EQ(c.try_recv(buf, n), status::empty) << "the rest of the run is still held";
  const std::size_t second[] = {8, 8};
  ASSERT_EQ(c.commit(run, second), status::ok);
  ASSERT_EQ(c.abandon(run), status::ok);
  EXPECT_FALSE(run.active());
  EXPECT_EQ(c.abandon(other), status::ok);
  for (int i = 3; i < 5; ++i) {
    ASSERT_EQ(c.try_recv(buf, n), status::ok);
    EXPECT_EQ(buf[0], std::byte(i + 1));
  }
  EXPECT_EQ(c.try_recv(buf, n), status::empty) << "abandoned slots are skipped";
  EXPECT_EQ(c.stats().lost_messages, 0u);
}

// A run of k messages into a channel that several receivers sleep on wakes k of them, as k
// single sends would: one wake for the run left the others asleep with messages waiting (a
// node's workers sleeping on its task channel stayed asleep while the agent delivered a run of
// tasks; the Pool's maps of short tasks took 12% longer). Likewise for freed slots and senders.
TEST_P(ChannelBatch, RunWakesAsManySleepersAsItPublishesOrFrees) {
  if (GetParam()) GTEST_SKIP() << "one receiver and one sender at most: nothing to wake but one";
  const std::string name = unique_name();
  channel c = make(name, config(8, 0));
  ASSERT_TRUE(c.is_open());
  constexpr std::size_t sleepers = 3;
  // Sleepers that wake only when woken: a waiter's periodic liveness check (50 ms by default)
  // would otherwise hide a missing wake-up as a delay.
  ch::wait_config deep;
  deep.mode = ch::wait_mode::idle;
  deep.liveness_check = std::chrono::seconds(20);
  std::atomic<int> woken{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < sleepers; ++i)
    threads.emplace_back([&] {
      auto mine = channel::open(name, options());
      if (!mine) return;
      mine->set_wait(deep);
      std::vector<std::byte> buf(128);
      std::size_t n = 0;
      if (mine->recv(buf, n, std::chrono::seconds(30)) == status::ok) woken.fetch_add(1);
    });
  // All woken within 5 s, far inside the 20 s they would sleep unwoken.
  auto all_woken = [&] {
    for (int i = 0; i < 5000 && woken.load() < static_cast<int>(sleepers); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return woken.load();
  };
  auto all_asleep = [&](auto count_of) {
    for (int i = 0; i < 20000 && count_of() < sleepers; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return count_of() == sleepers;
  };
  ASSERT_TRUE(all_asleep([&] { return std::size_t{c.poll().blocked_receivers}; }));
  ch::send_run run;
  ASSERT_EQ(c.claim_send_run(sleepers, run, ch::try_once), status::ok);
  ASSERT_EQ(run.size(), sleepers);
  std::vector<std::size_t> lengths(sleepers, 8);
  ASSERT_EQ(c.commit(run, lengths), status::ok);
  EXPECT_EQ(all_woken(), static_cast<int>(sleepers)) << "one wake for the run left the others asleep";
  for (auto& t : threads) t.join();

  // The other way: a full ring, senders asleep, one receive run frees room for all of them.
  std::vector<std::byte> msg(8, std::byte{1});
  while (c.try_send(msg) == status::ok) {
  }
  threads.clear();
  woken = 0;
  for (std::size_t i = 0; i < sleepers; ++i)
    threads.emplace_back([&] {
      auto mine = channel::open(name, options());
      if (!mine) return;
      mine->set_wait(deep);
      if (mine->send(msg, std::chrono::seconds(30)) == status::ok) woken.fetch_add(1);
    });
  ASSERT_TRUE(all_asleep([&] { return std::size_t{c.poll().blocked_senders}; }));
  ch::recv_run got;
  ASSERT_EQ(c.claim_recv_run(sleepers, got, ch::try_once), status::ok);
  ASSERT_EQ(got.size(), sleepers);
  ASSERT_EQ(c.release(got), status::ok);
  EXPECT_EQ(all_woken(), static_cast<int>(sleepers)) << "one wake for the freed run left the others asleep";
  for (auto& t : threads) t.join();
}

TEST_P(ChannelBatch, RecvRunReadsInPlaceAndFreesAtOnce) {
  channel c = make(unique_name(), config(8));
  ASSERT_TRUE(c.is_open());
  std::vector<std::vector<std::byte>> ms;
  for (int i = 0; i < 7; ++i) ms.push_back(pattern(i == 3 ? 2000 : 20 + i, i));
  std::size_t sent = 0;
  ASSERT_EQ(c.send_many(spans_of(ms), sent, ch::try_once), status::ok);
  ch::recv_run run;
  ASSERT_EQ(c.claim_recv_run(5, run, ch::try_once), status::ok);
  ASSERT_EQ(run.size(), 5u);
  for (std::size_t i = 0; i < run.size(); ++i) {
    ASSERT_EQ(run.data(i).size(), ms[i].size());
    EXPECT_EQ(std::memcmp(run.data(i).data(), ms[i].data(), ms[i].size()), 0);
  }
  // The ring has 8 slots, 7 taken: one send fits until the run is released.
  std::vector<std::vector<std::byte>> more(6, pattern(10));
  EXPECT_EQ(c.send_many(spans_of(more), sent, ch::try_once), status::full);
  EXPECT_EQ(sent, 1u);
  ASSERT_EQ(c.release(run), status::ok);
  EXPECT_EQ(c.release(run), status::invalid);
  EXPECT_EQ(c.send_many(spans_of(more), sent, ch::try_once), status::full);
  EXPECT_EQ(sent, 5u);
  ASSERT_EQ(c.claim_recv_run(ch::max_run, run, ch::try_once), status::ok);
  EXPECT_EQ(run.size(), 8u);
  ASSERT_EQ(c.release(run), status::ok);
}

TEST_P(ChannelBatch, SealStopsSendsAndDrainsRuns) {
  channel c = make(unique_name(), config(16));
  ASSERT_TRUE(c.is_open());
  std::vector<std::vector<std::byte>> ms(5, pattern(16));
  std::size_t sent = 0;
  ASSERT_EQ(c.send_many(spans_of(ms), sent, ch::try_once), status::ok);
  c.seal();
  EXPECT_EQ(c.send_many(spans_of(ms), sent, ch::try_once), status::closed);
  EXPECT_EQ(sent, 0u);
  ch::send_run run;
  EXPECT_EQ(c.claim_send_run(4, run, ch::try_once), status::closed);
  std::vector<std::byte> buffer(1024);
  std::vector<std::size_t> lengths(16);
  std::size_t got = 0;
  EXPECT_EQ(c.recv_many(buffer, lengths, got, 1s), status::closed);
  EXPECT_EQ(got, 5u);
  EXPECT_EQ(c.recv_many(buffer, lengths, got, 1s), status::closed);
  EXPECT_EQ(got, 0u);
}

// Two producer threads batch into the ring, one consumer drains with recv_many (MPMC: two
// consumers, runs and copies mixed); every message arrives once, in order per producer.
TEST_P(ChannelBatch, ThreadsBatchingKeepPerProducerOrder) {
  const bool single = GetParam();
  channel c = make(unique_name(), config(64, 0));
  ASSERT_TRUE(c.is_open());
  constexpr std::uint64_t per_producer = 20000;
  const int producers = single ? 1 : 2;
  const int consumers = single ? 1 : 2;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&c, p] {
      std::vector<std::array<std::uint64_t, 2>> words(37);
      std::vector<std::span<const std::byte>> spans;
      for (std::uint64_t seq = 0; seq < per_producer;) {
        const std::uint64_t n = std::min<std::uint64_t>(words.size(), per_producer - seq);
        spans.clear();
        for (std::uint64_t i = 0; i < n; ++i) {
          words[i] = {static_cast<std::uint64_t>(p), seq + i};
          spans.push_back(std::as_bytes(std::span(words[i])));
        }
        std::size_t sent = 0;
        if (c.send_many(spans, sent, 10s) != status::ok) return;
        seq += sent;
      }
    });
  }
  std::atomic<std::uint64_t> received{0};
  std::atomic<int> disorder{0};
  std::vector<std::vector<std::uint64_t>> last(consumers, std::vector<std::uint64_t>(producers, 0));
  for (int k = 0; k < consumers; ++k) {
    threads.emplace_back([&, k] {
      std::vector<std::uint64_t> next(producers, 0);
      std::vector<std::byte> buffer(16 * 64);
      std::vector<std::size_t> lengths(64);
      auto check = [&](const std::byte* at) {
        std::uint64_t w[2];
        std::memcpy(w, at, sizeof w);
        if (w[0] >= static_cast<std::uint64_t>(producers) || w[1] < next[w[0]]) disorder.fetch_add(1);
        else next[w[0]] = w[1] + 1;
        received.fetch_add(1);
      };
      while (received.load() < per_producer * producers) {
        if (k == 1) {
          ch::recv_run run;
          if (c.claim_recv_run(50, run, 50ms) != status::ok) continue;
          for (std::size_t i = 0; i < run.size(); ++i) check(run.data(i).data());
          c.release(run);
        } else {
          std::size_t got = 0;
          c.recv_many(buffer, lengths, got, 50ms);
          for (std::size_t i = 0; i < got; ++i) check(buffer.data() + 16 * i);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(received.load(), per_producer * producers);
  EXPECT_EQ(disorder.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, ChannelBatch, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "single" : "mpmc"; });

// ---- processes killed mid-batch ------------------------------------------------------------------

// Forks a child that sends `before` messages with send_many, claims a run of `claimed` slots,
// publishes the first `published` of them and is SIGKILLed holding the rest; or (claimed == 0)
// claims a receive run of up to 64 messages and is killed holding it.
pid_t fork_batch_holder(child_guard& guard, const std::string& name, const ch::open_options& o, int before,
                        std::size_t claimed, std::size_t published, gate& ready) {
  return guard.add(fork_child([&]() -> int {
    auto r = channel::open(name, o);
    if (!r) return 10;
    if (claimed == 0) {
      ch::recv_run run;
      if (r->claim_recv_run(ch::max_run, run, 5s) != status::ok) return 11;
    } else {
      std::vector<std::vector<std::byte>> ms;
      for (int i = 0; i < before; ++i) ms.push_back(pattern(32, i));
      std::size_t sent = 0;
      if (r->send_many(spans_of(ms), sent, 5s) != status::ok) return 12;
      ch::send_run run;
      if (r->claim_send_run(claimed, run, 5s) != status::ok || run.size() != claimed) return 13;
      std::vector<std::size_t> lengths(published, 32);
      for (std::size_t i = 0; i < claimed; ++i) std::memset(run.data(i).data(), 0x5a, 32);
      if (r->commit(run, lengths) != status::ok) return 14;
    }
    ready.signal();
    for (;;) pause();
  }));
}

// Runs fork_batch_holder, waits until the child holds its run and SIGKILLs it; `c` (the
// parent's handle) then checks liveness every 10 ms.
void kill_batch_holder(channel& c, const std::string& name, const ch::open_options& o, int before,
                       std::size_t claimed, std::size_t published) {
  c.set_wait({.mode = ch::wait_mode::adaptive, .spin_for = std::chrono::microseconds(20), .liveness_check = 10ms});
  child_guard guard;
  gate ready;
  const pid_t child = fork_batch_holder(guard, name, o, before, claimed, published, ready);
  ASSERT_TRUE(ready.wait(10s)) << "child did not claim its run";
  kill_and_reap(child);
  guard.clear();
}

TEST_P(ChannelBatch, SenderKilledMidRunLosesOnlyTheUnpublishedSlots) {
  const std::string name = unique_name();
  channel c = make(name, config(64));
  ASSERT_TRUE(c.is_open());
  ASSERT_NO_FATAL_FAILURE(kill_batch_holder(c, name, options(), 5, 20, 7));
  std::vector<std::byte> buffer(8192);
  std::vector<std::size_t> lengths(64);
  std::size_t total = 0;
  std::size_t got = 0;
  // 5 sent + 7 published arrive; the 13 still held are repaired as one run, then the ring is empty.
  while (total < 12 && c.recv_many(buffer, lengths, got, 2s) != status::timeout) total += got;
  EXPECT_EQ(total, 12u);
  const auto start = clock::now();
  EXPECT_EQ(c.recv_many(buffer, lengths, got, 300ms), status::timeout);
  EXPECT_EQ(got, 0u);
  EXPECT_LT(clock::now() - start, 2s);
  EXPECT_EQ(c.stats().lost_messages, 13u);
  EXPECT_EQ(c.stats().repaired_slots, 13u);
  // The channel (and, single-producer, its lease) is usable again.
  std::vector<std::vector<std::byte>> ms(64, pattern(32));
  std::size_t sent = 0;
  EXPECT_EQ(c.send_many(spans_of(ms), sent, 1s), status::ok);
  EXPECT_EQ(c.recv_many(buffer, lengths, got, 1s), status::ok);
  EXPECT_EQ(got, 64u);
}

TEST_P(ChannelBatch, ReceiverKilledHoldingRunFreesTheSlots) {
  const std::string name = unique_name();
  channel c = make(name, config(16));
  ASSERT_TRUE(c.is_open());
  std::vector<std::vector<std::byte>> ms(9, pattern(32));
  std::size_t sent = 0;
  ASSERT_EQ(c.send_many(spans_of(ms), sent, 1s), status::ok);
  ASSERT_NO_FATAL_FAILURE(kill_batch_holder(c, name, options(), 0, 0, 0));
  // The ring (16) is full once 7 more are in; the 9 held slots come back only by repair.
  std::vector<std::vector<std::byte>> fill(16, pattern(32));
  ASSERT_EQ(c.send_many(spans_of(fill), sent, 2s), status::ok);
  EXPECT_EQ(sent, 16u);
  EXPECT_EQ(c.stats().lost_messages, 9u);
  std::vector<std::byte> buffer(4096);
  std::vector<std::size_t> lengths(64);
  std::size_t got = 0;
  EXPECT_EQ(c.recv_many(buffer, lengths, got, 1s), status::empty);
  EXPECT_EQ(got, 16u);
}

TEST_P(ChannelBatch, RepairCountsEverySlotOfADeadRun) {
  const std::string name = unique_name();
  channel c = make(name, config(32));
  ASSERT_TRUE(c.is_open());
  ASSERT_NO_FATAL_FAILURE(kill_batch_holder(c, name, options(), 2, 20, 0));
  EXPECT_EQ(c.repair(), 20u);
  EXPECT_EQ(c.repair(), 0u);
  EXPECT_EQ(c.stats().lost_messages, 20u);
  std::vector<std::byte> buffer(4096);
  std::vector<std::size_t> lengths(64);
  std::size_t got = 0;
  EXPECT_EQ(c.recv_many(buffer, lengths, got, ch::try_once), status::empty);
  EXPECT_EQ(got, 2u);
}

}  // namespace
}  // namespace chanpool::test
