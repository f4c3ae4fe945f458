// MPMC stress across processes: 4 producer processes x 4 consumer processes.
//
// Total message count: $CHANPOOL_STRESS_MESSAGES (default 10^7; 10^6 in sanitizer builds when
// the variable is unset). Consumers record every message in an anonymous MAP_SHARED area created
// before fork: per consumer and producer a bitmap of received sequence numbers and the last
// sequence seen. At the end the parent checks: nothing lost, nothing duplicated (within or across
// consumers), checksums intact, and per-producer order held within each consumer.
#include <bit>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

class ChannelStress : public channel_test {};

constexpr int kProducers = 4;
constexpr int kConsumers = 4;

struct alignas(64) stress_counters {
  std::atomic<std::uint64_t> received{0};  // flushed by consumers in batches
  std::atomic<std::uint64_t> bad_checksum{0};
  std::atomic<std::uint64_t> bad_range{0};
  std::atomic<std::uint64_t> local_dups{0};
  std::atomic<std::uint64_t> disorder{0};
  std::atomic<std::uint64_t> recv_errors{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> heap_messages{0};
};

struct stress_plan {
  std::uint64_t total = 0;
  bool mixed = false;  // mixed sizes, 1 in 50 an 8 KiB heap message
};

std::size_t message_size(const stress_plan& plan, std::uint64_t seq, std::uint32_t producer) {
  if (!plan.mixed) return 64;
  if (seq % 50 == 17) return 8192;
  return 24 + mix64(seq * 4 + producer) % 73;  // 24 .. 96: inline with the default 128-byte slot
}

std::uint64_t default_total() { return kSanitized ? 1'000'000 : 10'000'000; }

void run_stress(const std::string& name, const ch::open_options& o, const stress_plan& plan) {
  const std::uint64_t total = plan.total;
  ASSERT_GE(total, static_cast<std::uint64_t>(kProducers));
  std::uint64_t per[kProducers];
  for (int p = 0; p < kProducers; ++p) per[p] = total / kProducers + (p < static_cast<int>(total % kProducers) ? 1 : 0);
  const std::uint64_t words = (per[0] + 63) / 64;  // per[0] is the largest

  auto cr = channel::create(name, {}, o);
  ASSERT_TRUE(cr) << cr.error().message();
  channel c = std::move(cr).value();

  shared_object<stress_counters> counters;
  shared_array<std::uint64_t> bitmaps(static_cast<std::size_t>(kConsumers) * kProducers * words);
  shared_array<std::uint64_t> last_seen(static_cast<std::size_t>(kConsumers) * 8);  // seq+1, 0 = none; 64 B/consumer
  auto bitmap = [&](int consumer, int producer) {
    return bitmaps.data() + (static_cast<std::size_t>(consumer) * kProducers + producer) * words;
  };

  const auto deadline = std::chrono::seconds(kSanitized ? 1100 : 380);
  child_guard guard;
  std::vector<pid_t> pids;
  const auto t0 = clock::now();

  for (int k = 0; k < kConsumers; ++k) {
    pids.push_back(guard.add(fork_child([&, k]() -> int {
      auto r = channel::open(name, o);
      if (!r) return 10;
      channel& ch = *r;
      std::vector<std::byte> buf(16384);
      std::uint64_t* last = last_seen.data() + k * 8;
      std::uint64_t local = 0, bytes = 0, heap = 0;
      int idle = 0;  // consecutive 20 ms timeouts
      for (;;) {
        std::size_t len = 0;
        status s = ch.recv(buf, len, 20ms);
        if (s == status::ok) {
          idle = 0;
          msg_info info;
          bytes += len;
          heap += len > ch.inline_capacity();
          if (!verify_message({buf.data(), len}, info)) {
            counters->bad_checksum.fetch_add(1);
          } else if (info.producer >= kProducers || info.seq >= per[info.producer]) {
            counters->bad_range.fetch_add(1);
          } else {
            std::uint64_t* bm = bitmap(k, static_cast<int>(info.producer));
            const std::uint64_t bit = std::uint64_t{1} << (info.seq % 64);
            if (bm[info.seq / 64] & bit) counters->local_dups.fetch_add(1);
            bm[info.seq / 64] |= bit;
            if (last[info.producer] != 0 && info.seq + 1 <= last[info.producer]) counters->disorder.fetch_add(1);
            last[info.producer] = info.seq + 1;
          }
          if (++local == 4096) {
            counters->received.fetch_add(local);
            local = 0;
          }
          continue;
        }
        if (s != status::timeout) {
          counters->recv_errors.fetch_add(1);
          return 11;
        }
        // Idle: publish what we have; stop once all consumers together received everything.
        if (local != 0) {
          counters->received.fetch_add(local);
          local = 0;
        }
        if (counters->received.load() >= total) break;
        // Nothing at all for 15 s while the total is not reached: messages were lost (the bitmaps
        // say which). Stop instead of waiting for the deadline.
        if (++idle > 750) break;
      }
      counters->bytes.fetch_add(bytes);
      counters->heap_messages.fetch_add(heap);
      return 0;
    })));
  }
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(guard.add(fork_child([&, p]() -> int {
      auto r = channel::open(name, o);
      if (!r) return 10;
      channel& ch = *r;
      std::vector<std::byte> buf(16384);
      for (std::uint64_t i = 0; i < per[p]; ++i) {
        const std::size_t n = message_size(plan, i, static_cast<std::uint32_t>(p));
        std::span<std::byte> m{buf.data(), n};
        fill_message(m, static_cast<std::uint32_t>(p), i);
        if (ch.send(m) != status::ok) return 11;  // blocking send
      }
      return 0;
    })));
  }

  auto exits = wait_children(pids, deadline);
  const double secs = std::chrono::duration<double>(clock::now() - t0).count();
  guard.clear();
  const bool children_ok = expect_children_ok(exits, "stress process");
  std::printf("stress: %llu messages (%s) in %.2f s = %.2f M msg/s, %.1f MB/s, %llu heap messages\n",
              static_cast<unsigned long long>(total), plan.mixed ? "mixed sizes" : "64 B", secs, total / secs / 1e6,
              counters->bytes.load() / secs / 1e6, static_cast<unsigned long long>(counters->heap_messages.load()));
  ::testing::Test::RecordProperty("messages", std::to_string(total));
  ::testing::Test::RecordProperty("seconds", std::to_string(secs));
  if (!children_ok) {
    for (auto& e : exits)
      if (e.timed_out) ADD_FAILURE() << "deadline of " << deadline.count() << " s hit; received "
                                     << counters->received.load() << " of " << total;
  }

  // Merge the bitmaps: every sequence exactly once across all consumers.
  std::uint64_t missing = 0, cross_dups = 0;
  for (int p = 0; p < kProducers; ++p) {
    for (std::uint64_t w = 0; w < words; ++w) {
      std::uint64_t acc = 0;
      for (int k = 0; k < kConsumers; ++k) {
        const std::uint64_t v = bitmap(k, p)[w];
        cross_dups += static_cast<std::uint64_t>(std::popcount(acc & v));
        acc |= v;
      }
      std::uint64_t valid = ~std::uint64_t{0};
      if (w == per[p] / 64) valid = (per[p] % 64 == 0) ? 0 : ((std::uint64_t{1} << (per[p] % 64)) - 1);
      if (w > per[p] / 64) valid = 0;
      missing += static_cast<std::uint64_t>(std::popcount(valid & ~acc));
    }
  }
  EXPECT_EQ(counters->received.load(), total);
  EXPECT_EQ(missing, 0u) << "lost messages";
  EXPECT_EQ(counters->local_dups.load() + cross_dups, 0u) << "duplicated messages";
  EXPECT_EQ(counters->bad_checksum.load(), 0u) << "corrupted payloads";
  EXPECT_EQ(counters->bad_range.load(), 0u) << "messages with impossible producer/sequence";
  EXPECT_EQ(counters->disorder.load(), 0u) << "per-producer order violated within a consumer";
  EXPECT_EQ(counters->recv_errors.load(), 0u);
  for (int k = 0; k < kConsumers; ++k)
    for (int p = 0; p < kProducers; ++p) {
      // Every consumer saw something of every producer is not guaranteed; the last seen sequence
      // must however be a valid one.
      EXPECT_LE(last_seen[k * 8 + p], per[p]);
    }
  auto st = c.stats();
  EXPECT_EQ(st.lost_messages, 0u);
  EXPECT_EQ(st.corrupted_messages, 0u);
  EXPECT_EQ(st.repaired_slots, 0u);
  EXPECT_EQ(c.poll().count, 0u);
}

TEST_F(ChannelStress, MpmcProcesses64B) {
  stress_plan plan;
  plan.total = env_u64("CHANPOOL_STRESS_MESSAGES", default_total());
  run_stress(unique_name(), options(), plan);
}

TEST_F(ChannelStress, MpmcProcessesMixedSizes) {
  stress_plan plan;
  plan.total = std::max<std::uint64_t>(env_u64("CHANPOOL_STRESS_MESSAGES", default_total()) / 10, kProducers);
  plan.mixed = true;
  run_stress(unique_name(), options(), plan);
}

}  // namespace
}  // namespace chanpool::test
