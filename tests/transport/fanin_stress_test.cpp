// Exactly-once delivery under a many-to-one load: 10^6 messages (CHANPOOL_FANIN_MESSAGES) from
// 8 nodes into one channel, each message carrying its sender, sequence and a checksum.
#include "transport_test_util.hpp"
#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::test {
namespace {

TEST(FanInStress, MillionMessagesFromEightNodesExactlyOnce) {
  tr::write_diagnostics_to_stderr();  // the agents' reasons, in the log of a failed run
  const std::uint64_t total = env_u64("CHANPOOL_FANIN_MESSAGES", 1'000'000);
  constexpr std::uint32_t nodes = 8;
  const std::uint64_t per_sender = total / nodes;
  virtual_job vj(nodes);
  ch::channel_config cfg;
  cfg.capacity = 8192;
  cfg.single_producer = true;  // node 0's agent is the only writer
  auto sink = ch::channel::create("sink", cfg, {vj.cluster.node_job(0)}).value();
  child_guard guard;
  std::vector<pid_t> pids;
  for (std::uint32_t node = 0; node < nodes; ++node)
    pids.push_back(guard.add(fork_child([&, node] {
      auto c = tr::client::attach(vj.cluster.node_job(node));
      if (!c) return 2;
      auto rc = c->open({0, "sink"}, {.routing = tr::route::via_agent});
      if (!rc) return 3;
      std::vector<std::byte> m(64);
      for (std::uint64_t i = 0; i < per_sender; ++i) {
        fill_message(m, node, i);
        if (rc->send(m, 60s) != status::ok) return 4;
      }
      return 0;
    }, 600)));
  // One bit per (sender, sequence): a duplicate or a gap is caught, not only a reordering.
  std::vector<std::vector<bool>> seen(nodes, std::vector<bool>(per_sender, false));
  std::vector<std::uint64_t> next(nodes, 0);
  std::vector<std::byte> buf(256);
  std::uint64_t corrupt = 0, duplicate = 0, reordered = 0;
  for (std::uint64_t got = 0; got < nodes * per_sender; ++got) {
    std::size_t len = 0;
    ASSERT_EQ(sink.recv(buf, len, 60s), status::ok) << "after " << got << " of " << nodes * per_sender << "\n" << vj.describe();
    msg_info info;
    if (!verify_message({buf.data(), len}, info) || info.producer >= nodes || info.seq >= per_sender) {
      ++corrupt;
      continue;
    }
    if (seen[info.producer][info.seq]) ++duplicate;
    seen[info.producer][info.seq] = true;
    if (info.seq != next[info.producer]) ++reordered;
    next[info.producer] = info.seq + 1;
  }
  EXPECT_EQ(corrupt, 0u);
  EXPECT_EQ(duplicate, 0u);
  EXPECT_EQ(reordered, 0u);
  for (std::uint32_t n = 0; n < nodes; ++n)
    EXPECT_EQ(std::count(seen[n].begin(), seen[n].end(), true), static_cast<std::ptrdiff_t>(per_sender)) << "node " << n;
  expect_children_ok(wait_children(pids, 60s), "sender");
  guard.clear();
  std::size_t len = 0;
  EXPECT_EQ(sink.try_recv(buf, len), status::empty);
  auto stats = tr::read_agent_stats(vj.cluster.node_job(0)).value();
  EXPECT_EQ(stats.dropped_malformed + stats.dropped_unknown_channel + stats.dropped_undeliverable, 0u);
}

}  // namespace
}  // namespace chanpool::test
