// Large channel messages between nodes, by both paths: read by the receiving agent straight from
// the sender's inbox heap (agent_config::large_by_read, the default where the provider has
// FI_RMA), and copied and sent as tagged messages. Order with small messages, bytes, deposited
// confirmations, a fan-in from every node, and a receiver lost while it holds reads.
#include "transport_test_util.hpp"

namespace chanpool::test {
namespace {

enum class large_path { read, copy };

tr::agent_config config_for(large_path p) {
  auto cfg = test_agent_config();
  cfg.large_by_read = p == large_path::read;
  return cfg;
}

class LargeMessages : public ::testing::TestWithParam<large_path> {
 protected:
  // The read path is taken where the provider has FI_RMA (tcp;ofi_rxm, shm, ...).
  static bool reads(const tr::agent_stats& s) { return GetParam() == large_path::read && s.large_read_sent > 0; }
  void expect_path(const tr::agent_stats& sender, const tr::agent_stats& receiver) {
    ASSERT_GT(sender.large_sent, 0u);
    if (GetParam() == large_path::copy) {
      EXPECT_EQ(sender.large_read_sent, 0u);
      EXPECT_EQ(receiver.large_read_received, 0u);
    } else {
      // Every large message went by read: no copy in either agent.
      EXPECT_EQ(sender.large_read_sent, sender.large_sent);
      EXPECT_EQ(receiver.large_read_received, sender.large_read_sent);
    }
  }
};

ch::channel_config big_sink(std::uint64_t heap = 16u << 20) {
  ch::channel_config cfg;
  cfg.heap_bytes = heap;
  return cfg;
}

TEST_P(LargeMessages, KeepOrderAndBytesAmongSmallOnes) {
  virtual_job vj(2, config_for(GetParam()));
  auto sink = ch::channel::create("sink", big_sink(), {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  // Around the large threshold (16 KiB), the eager limit, and up to 3 MiB.
  const std::size_t sizes[] = {64, 100 * 1024, 80, 1 << 20, 16 * 1024 + 1, 32, 3 << 20, 200, 65536, 16 * 1024};
  constexpr int rounds = 6;
  std::atomic<bool> bad{false};
  std::atomic<int> received{0};
  std::thread receiver([&] {
    std::vector<std::byte> out;
    for (int r = 0; r < rounds; ++r)
      for (std::size_t k = 0; k < std::size(sizes); ++k) {
        if (sink.recv(out, 20s) != status::ok) {
          bad = true;
          return;
        }
        msg_info info;
        const std::uint64_t expect = static_cast<std::uint64_t>(r) * std::size(sizes) + k;
        if (!verify_message(out, info) || info.seq != expect || out.size() != sizes[k]) bad = true;
        ++received;
      }
  });
  std::uint64_t seq = 0;
  for (int r = 0; r < rounds; ++r)
    for (std::size_t s : sizes) ASSERT_EQ(rc.send(make_message(s, 1, seq++), 20s), status::ok);
  receiver.join();
  EXPECT_FALSE(bad);
  EXPECT_EQ(received.load(), rounds * static_cast<int>(std::size(sizes)));
  expect_path(c.stats(), tr::read_agent_stats(vj.cluster.node_job(1)).value());
}

// A large message's descriptor carries its fabric tag where a small one carries the sender's
// token: its confirmation must still reach the sender (it once carried the tag, and the sender
// timed out on a message that had arrived), mixed with small deposited ones.
TEST_P(LargeMessages, DepositedOnesAreConfirmedOnceInTheChannel) {
  virtual_job vj(2, config_for(GetParam()));
  auto sink = ch::channel::create("sink", big_sink(), {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  std::vector<std::byte> out;
  for (std::uint64_t i = 0; i < 30; ++i) {
    const std::size_t size = i % 3 == 0 ? 48 : 20000 + 33000 * i;
    ASSERT_EQ(rc.send(make_message(size, 2, i), 10s, tr::send_mode::deposited), status::ok) << "message " << i;
    ASSERT_EQ(sink.recv(out, ch::try_once), status::ok) << "deposited, but not in the channel";
    msg_info info;
    ASSERT_TRUE(verify_message(out, info));
    EXPECT_EQ(info.seq, i);
    EXPECT_EQ(out.size(), size);
  }
  expect_path(c.stats(), tr::read_agent_stats(vj.cluster.node_job(1)).value());
  // A closed target: the deposited sender learns it, and (read path) its payload is given back
  // unread, many times over the inbox heap's 64 MiB.
  sink.seal();
  const auto before = tr::read_agent_stats(vj.cluster.node_job(1)).value();
  for (std::uint64_t i = 0; i < 100; ++i)
    ASSERT_EQ(rc.send(make_message(1 << 20, 2, 100 + i), 10s, tr::send_mode::deposited), status::closed) << i;
  EXPECT_EQ(tr::read_agent_stats(vj.cluster.node_job(1)).value().large_read_received, before.large_read_received);
}

// Four nodes, two senders on each, all to one sink on node 0 (node 0's own senders through its
// agent too): small and large messages mixed, every message once, intact, in order per sender.
TEST_P(LargeMessages, FanInFromEveryNodeMixesSizesInOrder) {
  constexpr std::uint32_t nodes = 4, senders_per_node = 2;
  constexpr std::uint64_t per_sender = 240;
  const std::size_t sizes[] = {64, 20000, 64, 70000, 500, 300000, 64, 1 << 20};
  // Not a liveness test: 4 agents and 8 senders moving 1 MiB messages on 2 shared cores can starve
  // an agent past the tests' short peer_timeout under a sanitizer (once under tsan: a node
  // declared dead, its messages dropped).
  auto cfg = config_for(GetParam());
  cfg.peer_timeout = std::chrono::milliseconds(kSanitized ? 20000 : 5000);
  virtual_job vj(nodes, cfg);
  auto sink = ch::channel::create("sink", big_sink(32u << 20), {vj.cluster.node_job(0)}).value();
  child_guard guard;
  std::vector<pid_t> pids;
  for (std::uint32_t node = 0; node < nodes; ++node)
    for (std::uint32_t s = 0; s < senders_per_node; ++s) {
      const std::uint32_t id = node * senders_per_node + s;
      pids.push_back(guard.add(fork_child([&, node, id] {
        auto c = tr::client::attach(vj.cluster.node_job(node));
        if (!c) return 2;
        auto rc = c->open({0, "sink"}, {.routing = tr::route::via_agent});
        if (!rc) return 3;
        for (std::uint64_t i = 0; i < per_sender; ++i)
          if (rc->send(make_message(sizes[(i + id) % std::size(sizes)], id, i), 30s) != status::ok) return 4;
        return 0;
      })));
    }
  const std::uint32_t senders = nodes * senders_per_node;
  std::vector<std::uint64_t> next(senders, 0);
  std::vector<std::byte> out;
  for (std::uint64_t got = 0; got < senders * per_sender; ++got) {
    ASSERT_EQ(sink.recv(out, 30s), status::ok) << "after " << got << "\n" << vj.describe();
    msg_info info;
    ASSERT_TRUE(verify_message(out, info)) << "message " << got << " damaged";
    ASSERT_LT(info.producer, senders);
    ASSERT_EQ(out.size(), std::max(sizes[(info.seq + info.producer) % std::size(sizes)], std::size_t{64}));
    ASSERT_EQ(info.seq, next[info.producer]++) << "sender " << info.producer;
  }
  expect_children_ok(wait_children(pids, 60s), "sender");
  guard.clear();
  std::vector<std::byte> rest;
  EXPECT_EQ(sink.recv(rest, ch::try_once), status::empty) << "a message arrived twice";
  tr::agent_stats sent{}, read{};
  for (std::uint32_t node = 0; node < nodes; ++node) {
    const tr::agent_stats s = tr::read_agent_stats(vj.cluster.node_job(node)).value();
    sent.large_sent += s.large_sent;
    sent.large_read_sent += s.large_read_sent;
    read.large_read_received += s.large_read_received;
  }
  expect_path(sent, read);
}

// Zero copy end to end: the sender builds the message in place in its node's inbox
// (remote_channel::claim), the agents move it by read into the slot the receiver then reads in
// place (claim_recv). Abandoned claims send nothing.
TEST_P(LargeMessages, ClaimedMessagesGoInPlaceAndAbandonedOnesNot) {
  virtual_job vj(2, config_for(GetParam()));
  auto sink = ch::channel::create("sink", big_sink(), {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();
  const std::size_t sizes[] = {1 << 20, 64, 200000, 16 * 1024 + 8};
  std::uint64_t seq = 0;
  for (int r = 0; r < 4; ++r)
    for (std::size_t size : sizes) {
      tr::remote_claim claim;
      ASSERT_EQ(rc.claim(size, claim, 10s), status::ok);
      ASSERT_EQ(claim.data().size(), size);
      EXPECT_EQ(rc.claim(size, claim, 10s), status::invalid) << "an active claim is not overwritten";
      if (seq % 5 == 4) {  // every fifth is abandoned
        fill_message(claim.data(), 3, 1000 + seq);
        ASSERT_EQ(rc.abandon(claim), status::ok);
        EXPECT_FALSE(claim.active());
        ++seq;
        continue;
      }
      fill_message(claim.data(), 3, seq++);
      ASSERT_EQ(rc.commit(claim), status::ok);
      EXPECT_EQ(rc.commit(claim), status::invalid);
    }
  for (std::uint64_t i = 0; i < seq; ++i) {
    if (i % 5 == 4) continue;
    ch::recv_claim in;
    ASSERT_EQ(sink.claim_recv(in, 10s), status::ok) << i;
    msg_info info;
    EXPECT_TRUE(verify_message(in.data(), info));
    EXPECT_EQ(info.seq, i);
    EXPECT_EQ(in.data().size(), sizes[i % std::size(sizes)]);
    sink.release(in);
  }
  std::vector<std::byte> rest;
  EXPECT_EQ(sink.recv(rest, 200ms), status::timeout) << "an abandoned claim arrived";
  expect_path(c.stats(), tr::read_agent_stats(vj.cluster.node_job(1)).value());
  // A claim too large for the target, and one on a channel of this node opened direct.
  tr::remote_claim big;
  EXPECT_EQ(rc.claim(sink.max_message_bytes() + 1, big, 1s), status::too_large);
  auto local_sink = ch::channel::create("local", big_sink(), {vj.cluster.node_job(0)}).value();
  auto local = c.open({0, "local"}).value();
  ASSERT_TRUE(local.is_local());
  tr::remote_claim lc;
  ASSERT_EQ(local.claim(100000, lc, 1s), status::ok);
  fill_message(lc.data(), 4, 0);
  ASSERT_EQ(local.commit(lc), status::ok);
  std::vector<std::byte> got;
  ASSERT_EQ(local_sink.recv(got, 1s), status::ok);
  msg_info info;
  EXPECT_TRUE(verify_message(got, info));
}

INSTANTIATE_TEST_SUITE_P(Paths, LargeMessages, ::testing::Values(large_path::read, large_path::copy),
                         [](const auto& info) { return info.param == large_path::read ? "read" : "copy"; });

// A receiving node lost while its agent holds reads of this node's payloads: they go back to the
// sender's inbox heap (64 MiB) when the node is declared dead, so sends to other nodes go on
// past the heap's size instead of waiting forever for room.
TEST(LargeMessagesFaults, ReceiverLostWhileReadingGivesTheSenderHeapBack) {
  virtual_job vj(3, config_for(large_path::read));
  ch::channel_config tiny;
  tiny.capacity = 2;
  tiny.heap_bytes = 2u << 20;  // takes one 1 MiB message (and its neighbour's blocks) at a time
  auto stuck = ch::channel::create("sink", tiny, {vj.cluster.node_job(1)}).value();
  auto sink2 = ch::channel::create("sink", big_sink(8u << 20), {vj.cluster.node_job(2)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto to1 = c.open({1, "sink"}).value();
  auto to2 = c.open({2, "sink"}).value();
  // Nobody reads node 1's sink: its agent holds the source, node 0 keeps what it sent.
  std::uint64_t sent1 = 0;
  while (sent1 < 40 && to1.send(make_message(1 << 20, 1, sent1), 1s) == status::ok) ++sent1;
  ASSERT_GT(sent1, 4u);
  ASSERT_GT(c.stats().large_read_sent, 0u) << "the provider has no FI_RMA: this test needs the read path";
  ASSERT_TRUE(vj.cluster.signal_agent(1, SIGKILL));
  const auto killed_at = clock::now();
  while (c.peer(1) != tr::peer_state::dead && clock::now() - killed_at < 20s) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(c.peer(1), tr::peer_state::dead);
  // 96 MiB to node 2, more than the whole heap: only possible once node 1's part is back.
  constexpr std::uint64_t n = 96;
  std::atomic<bool> bad{false};
  std::thread receiver([&] {
    std::vector<std::byte> out;
    for (std::uint64_t i = 0; i < n; ++i) {
      msg_info info;
      if (sink2.recv(out, 20s) != status::ok || !verify_message(out, info) || info.seq != i) {
        bad = true;
        return;
      }
    }
  });
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(to2.send(make_message(1 << 20, 2, i), 20s), status::ok) << i;
  receiver.join();
  EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace chanpool::test
