// Channels declared single_producer / single_consumer: lease enforcement, takeover after a
// crash, order and integrity under a cross-process stream, seal, and sleeping waiters woken
// through the asymmetric-fence path (wait_mode::idle so every wait sleeps).
#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;
using namespace std::chrono_literals;

class SingleSide : public channel_test {
 protected:
  static ch::channel_config spsc(std::uint32_t capacity = 64) {
    ch::channel_config c;
    c.capacity = capacity;
    c.heap_bytes = 1 << 20;
    c.single_producer = true;
    c.single_consumer = true;
    return c;
  }
};

TEST_F(SingleSide, ConfigRoundTripsThroughOpen) {
  const auto name = unique_name();
  channel c = make(name, spsc());
  auto other = channel::open(name, options());
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_TRUE(other->config().single_producer);
  EXPECT_TRUE(other->config().single_consumer);
}

TEST_F(SingleSide, SecondHandleCannotSendUntilFirstCloses) {
  const auto name = unique_name();
  channel a = make(name, spsc());
  auto b = channel::open(name, options());
  ASSERT_TRUE(b);
  const auto m = make_message(64, 1, 0);
  ASSERT_EQ(a.send(as_bytes(m), 1s), status::ok);
  EXPECT_EQ(b->send(as_bytes(m), 1s), status::invalid) << "two producers on a single-producer channel";
  std::vector<std::byte> got;
  ASSERT_EQ(b->recv(got, 1s), status::ok);  // b is the consumer now
  EXPECT_EQ(a.recv(got, 10ms), status::invalid) << "two consumers on a single-consumer channel";
  a.close();
  EXPECT_EQ(b->send(as_bytes(m), 1s), status::ok) << "lease not freed by close()";
  EXPECT_EQ(b->recv(got, 1s), status::ok);
}

TEST_F(SingleSide, LeaseOfKilledProducerIsTakenOverAndItsClaimRepaired) {
  const auto name = unique_name();
  const auto o = options();
  channel c = make(name, spsc(8));
  ch::wait_config w;
  w.liveness_check = 10ms;
  c.set_wait(w);
  gate claimed;
  child_guard guard;
  const pid_t holder = guard.add(fork_child([&]() -> int {
    auto r = channel::open(name, o);
    if (!r) return 10;
    const auto first = make_message(64, 7, 0);
    if (r->send(as_bytes(first), 5s) != status::ok) return 11;
    ch::send_claim sc;
    if (r->claim_send(300, sc, 5s) != status::ok) return 12;  // a heap message, never committed
    claimed.signal();
    pause();
    return 0;
  }));
  ASSERT_TRUE(claimed.wait(10s));
  const auto m = make_message(64, 1, 1);
  EXPECT_EQ(c.send(as_bytes(m), 20ms), status::invalid) << "live holder's lease must be respected";
  kill_and_reap(holder);
  ASSERT_EQ(c.send(as_bytes(m), 5s), status::ok) << "lease of a dead producer not taken over";
  std::vector<std::byte> got;
  msg_info info;
  ASSERT_EQ(c.recv(got, 5s), status::ok);
  ASSERT_TRUE(verify_message(got, info));
  EXPECT_EQ(info.producer, 7u);
  ASSERT_EQ(c.recv(got, 5s), status::ok) << "receiver stuck behind the dead producer's claim";
  ASSERT_TRUE(verify_message(got, info));
  EXPECT_EQ(info.producer, 1u);
  EXPECT_EQ(c.stats().lost_messages, 1u);
  EXPECT_GE(c.stats().reclaimed_heap_blocks, 1u);
}

TEST_F(SingleSide, CrossProcessStreamKeepsOrderAndIntegrity) {
  const auto name = unique_name();
  const auto o = options();
  const std::uint64_t total = kSanitized ? 20'000 : 1'000'000;
  channel c = make(name, spsc(256));
  shared_object<std::atomic<std::uint64_t>> bad;
  child_guard guard;
  const pid_t producer = guard.add(fork_child([&]() -> int {
    auto r = channel::open(name, o);
    if (!r) return 10;
    std::vector<std::byte> buf(9000);
    for (std::uint64_t seq = 0; seq < total; ++seq) {
      // Every 97th message goes through the heap; the rest inline.
      const std::size_t size = seq % 97 == 5 ? 9000 : 24 + seq % 64;
      fill_message({buf.data(), size}, 3, seq);
      if (r->send({buf.data(), size}, 30s) != status::ok) return 11;
    }
    return 0;
  }));
  std::vector<std::byte> got;
  msg_info info;
  for (std::uint64_t seq = 0; seq < total; ++seq) {
    ASSERT_EQ(c.recv(got, 30s), status::ok) << "at " << seq;
    if (!verify_message(got, info) || info.producer != 3 || info.seq != seq) {
      bad->fetch_add(1);
      ADD_FAILURE() << "message " << seq << " corrupted or out of order (got seq " << info.seq << ")";
      break;
    }
  }
  auto exits = wait_children({producer}, 60s);
  EXPECT_TRUE(expect_children_ok(exits, "producer"));
  EXPECT_EQ(bad->load(), 0u);
  EXPECT_EQ(c.recv(got, ch::try_once), status::empty);
}

TEST_F(SingleSide, SleepingWaitersAreWokenEveryTime) {
  // idle: every wait sleeps on the futex, so each round crosses the asymmetric-fence protocol.
  const auto name = unique_name();
  const auto o = options();
  channel c = make(name, spsc(2));
  ch::wait_config idle;
  idle.mode = ch::wait_mode::idle;
  idle.liveness_check = 10s;  // a missed wake-up shows as a long wait, not a quick re-check
  c.set_wait(idle);
  const int rounds = kSanitized ? 200 : 2000;
  channel back = make(name + "_back", spsc(2));
  back.set_wait(idle);
  child_guard guard;
  const pid_t echo = guard.add(fork_child([&]() -> int {
    auto r = channel::open(name + "_back", o);
    auto in = channel::open(name, o);
    if (!r || !in) return 10;
    r->set_wait(idle);
    in->set_wait(idle);
    std::vector<std::byte> got;
    for (int i = 0; i < rounds; ++i) {
      if (in->recv(got, 5s) != status::ok) return 11;
      if (r->send(as_bytes(got), 5s) != status::ok) return 12;
    }
    return 0;
  }));
  const auto start = clock::now();
  std::vector<std::byte> got;
  for (int i = 0; i < rounds; ++i) {
    const auto m = make_message(32, 1, static_cast<std::uint64_t>(i));
    ASSERT_EQ(c.send(as_bytes(m), 5s), status::ok) << "round " << i;
    ASSERT_EQ(back.recv(got, 5s), status::ok) << "round " << i << ": reply lost (missed wake-up?)";
  }
  // A missed wake-up costs liveness_check (10 s); 2000 clean rounds take well under a second each.
  EXPECT_LT(clock::now() - start, std::chrono::seconds(rounds / 20 + 5));
  EXPECT_TRUE(expect_children_ok(wait_children({echo}, 30s), "echo"));
}

TEST_F(SingleSide, SealDrainsThenReportsClosed) {
  const auto name = unique_name();
  channel c = make(name, spsc());
  const auto m = make_message(40, 1, 0);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  c.seal();
  EXPECT_EQ(c.send(as_bytes(m)), status::closed);
  std::vector<std::byte> got;
  EXPECT_EQ(c.recv(got, 1s), status::ok);
  EXPECT_EQ(c.recv(got, 1s), status::ok);
  EXPECT_EQ(c.recv(got, 1s), status::closed);
}

}  // namespace
}  // namespace chanpool::test
