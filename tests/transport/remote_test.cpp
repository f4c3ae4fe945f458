// Remote channels through node agents on virtual nodes: send/recv across 2 and 8 nodes, order
// per sender, deposited mode, bad names and sizes (large messages: large_test.cpp).
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "transport_test_util.hpp"

namespace chanpool::test {
namespace {

TEST(Remote, TwoNodesSendRecvInOrder) {
  virtual_job vj(2);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  EXPECT_FALSE(rc.is_local());
  constexpr std::uint64_t n = 20000;
  std::vector<std::byte> buf(256);
  std::uint64_t next = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto m = make_message(64, 7, i);
    ASSERT_EQ(rc.send(m, 10s), status::ok);
    // Drain as we go so the sink (1024 slots) never blocks the agent for long.
    std::size_t len = 0;
    while (sink.try_recv(buf, len) == status::ok) {
      msg_info info;
      ASSERT_TRUE(verify_message({buf.data(), len}, info));
      ASSERT_EQ(info.seq, next++);
    }
  }
  while (next < n) {
    std::size_t len = 0;
    ASSERT_EQ(sink.recv(buf, len, 10s), status::ok) << "got " << next << " of " << n;
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info));
    ASSERT_EQ(info.seq, next++);
  }
  // The agent counts a batch's deliveries after its last message is in the channel, so the
  // receiver can hold every message a moment before the counter says so.
  auto stats = tr::read_agent_stats(vj.cluster.node_job(1)).value();
  for (const auto until = clock::now() + 5s; stats.messages_delivered < n && clock::now() < until;) {
    std::this_thread::sleep_for(1ms);
    stats = tr::read_agent_stats(vj.cluster.node_job(1)).value();
  }
  EXPECT_EQ(stats.messages_delivered, n);
  EXPECT_EQ(stats.dropped_malformed + stats.dropped_bad_key + stats.dropped_unknown_channel, 0u);
  // Aggregation: far fewer frames than messages.
  auto sent = c.stats();
  EXPECT_LT(sent.frames_sent, n / 4) << "messages were not batched";
}

// CPU time (user + system) of a process so far, from /proc/<pid>/stat, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// An idle agent sleeps (on its CQ and the doorbell), and a message written while it sleeps
// wakes it. Without the ring a sleeping agent would look at its inbox only when its sleep ends
// (up to 50 ms: a median near 25 ms); with it, the message goes at once.
TEST(Remote, IdleAgentsSleepAndASendWakesThem) {
  tr::agent_config cfg = test_agent_config();
  cfg.heartbeat_interval = std::chrono::milliseconds(2000);
  cfg.peer_timeout = std::chrono::milliseconds(10000);
  virtual_job vj(2, cfg);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  std::vector<std::byte> buf(256);
  std::vector<clock::duration> took;
  for (int i = 0; i < 21; ++i) {
    std::this_thread::sleep_for(30ms);  // both agents asleep by now
    const auto sent_at = clock::now();
    ASSERT_EQ(rc.send(make_message(64, 1, static_cast<std::uint64_t>(i)), 10s), status::ok);
    std::size_t len = 0;
    ASSERT_EQ(sink.recv(buf, len, 10s), status::ok);
    took.push_back(clock::now() - sent_at);
  }
  std::sort(took.begin(), took.end());
  EXPECT_LT(took[took.size() / 2], 10ms) << "a send to a sleeping agent waited for its sleep to end";
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long before = cpu_ticks(vj.cluster.agent_pid(0)) + cpu_ticks(vj.cluster.agent_pid(1));
  std::this_thread::sleep_for(1s);
  const long used = cpu_ticks(vj.cluster.agent_pid(0)) + cpu_ticks(vj.cluster.agent_pid(1)) - before;
  // A progress thread that never sleeps uses the whole second (ticks); a sleeping one almost none.
  EXPECT_LT(used, ticks / 4) << "idle agents used " << used << " of " << ticks << " ticks in a second";
}

TEST(Remote, WrongNameIsNotFound) {
  virtual_job vj(2);
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "no-such-channel"});
  ASSERT_FALSE(rc);
  EXPECT_EQ(rc.error(), errc::not_found) << rc.error().message();
  auto bad_node = c.open({5, "x"});
  ASSERT_FALSE(bad_node);
  EXPECT_EQ(bad_node.error(), errc::peer_unreachable);
}

TEST(Remote, OversizedMessageIsTooLarge) {
  virtual_job vj(2);
  ch::channel_config cfg;
  cfg.heap_bytes = 1 << 20;
  auto sink = ch::channel::create("sink", cfg, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  EXPECT_EQ(rc.max_message_bytes(), sink.max_message_bytes());
  std::vector<std::byte> big(sink.max_message_bytes() + 1);
  EXPECT_EQ(rc.send(big), status::too_large);
}

// Every size around the largest message that still goes in a batch, with a frame size that is
// not a multiple of 8: padding and headers must never push a frame past its buffer.
TEST(Remote, SizesAroundTheFrameLimitArriveIntact) {
  auto cfg = test_agent_config();
  cfg.flush_bytes = 10001;
  virtual_job vj(2, cfg);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  std::vector<std::byte> out;
  std::uint64_t seq = 0;
  for (std::size_t size = 9900; size <= 10100; ++size) {
    ASSERT_EQ(rc.send(make_message(size, 4, seq), 10s), status::ok) << size;
    ASSERT_EQ(sink.recv(out, 10s), status::ok) << size;
    msg_info info;
    ASSERT_TRUE(verify_message(out, info)) << size;
    ASSERT_EQ(info.seq, seq++);
    ASSERT_EQ(out.size(), size);
  }
}

TEST(Remote, DepositedReturnsAfterDelivery) {
  virtual_job vj(2);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  for (std::uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(rc.send(make_message(48, 2, i), 10s, tr::send_mode::deposited), status::ok);
    // Deposited means it is already in the target channel.
    EXPECT_TRUE(sink.poll().readable);
    std::vector<std::byte> out;
    ASSERT_EQ(sink.recv(out, ch::try_once), status::ok);
  }
  sink.seal();
  EXPECT_EQ(rc.send(make_message(48, 2, 100), 10s, tr::send_mode::deposited), status::closed);
}

TEST(Remote, LocalNodeRoutesDirectlyOrThroughAgent) {
  virtual_job vj(2);
  ch::channel_config cfg;
  cfg.single_producer = true;  // only the agent writes it when routed via_agent
  auto sink = ch::channel::create("sink", cfg, {vj.cluster.node_job(0)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto direct = c.open({0, "sink"}).value();
  EXPECT_TRUE(direct.is_local());
  auto via = c.open({0, "sink"}, {.routing = tr::route::via_agent}).value();
  EXPECT_FALSE(via.is_local());
  for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(via.send(make_message(64, 3, i), 10s), status::ok);
  std::vector<std::byte> out;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(sink.recv(out, 10s), status::ok);
    msg_info info;
    ASSERT_TRUE(verify_message(out, info));
    EXPECT_EQ(info.seq, i);
  }
}

// Eight nodes, two senders on each, all to one sink on node 0: every message once, in order
// per sender.
TEST(Remote, EightNodesFanInOrderPerSender) {
  virtual_job vj(8);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(0)}).value();
  constexpr std::uint32_t senders_per_node = 2;
  constexpr std::uint64_t per_sender = 5000;
  child_guard guard;
  std::vector<pid_t> pids;
  for (std::uint32_t node = 0; node < 8; ++node)
    for (std::uint32_t s = 0; s < senders_per_node; ++s) {
      const std::uint32_t id = node * senders_per_node + s;
      pids.push_back(guard.add(fork_child([&, node, id] {
        auto c = tr::client::attach(vj.cluster.node_job(node));
        if (!c) return 2;
        auto rc = c->open({0, "sink"});
        if (!rc) return 3;
        for (std::uint64_t i = 0; i < per_sender; ++i)
          if (rc->send(make_message(64, id, i), 30s) != status::ok) return 4;
        return 0;
      })));
    }
  const std::uint32_t senders = 8 * senders_per_node;
  std::vector<std::uint64_t> next(senders, 0);
  std::vector<std::byte> buf(256);
  for (std::uint64_t got = 0; got < senders * per_sender; ++got) {
    std::size_t len = 0;
    ASSERT_EQ(sink.recv(buf, len, 30s), status::ok) << "after " << got;
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info));
    ASSERT_LT(info.producer, senders);
    ASSERT_EQ(info.seq, next[info.producer]++) << "sender " << info.producer;
  }
  expect_children_ok(wait_children(pids, 60s), "sender");
  guard.clear();
  std::size_t len = 0;
  EXPECT_EQ(sink.try_recv(buf, len), status::empty) << "a message arrived twice";
}

}  // namespace
}  // namespace chanpool::test
