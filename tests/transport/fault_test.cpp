// Faults the transport must survive: a SIGKILLed agent, forged and malformed frames, a slow
// receiver (flow control with bounded memory).
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/wire.hpp"
#include "transport_test_util.hpp"

namespace chanpool::test {
namespace {

namespace w = chanpool::transport::wire;

// Private resident memory: what an agent buffers. Shared segments (the inbox and target
// channels, bounded by their configured size) are RssShmem and not counted.
std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8));
  return 0;
}

TEST(Faults, KilledAgentIsReportedAndSurvivorsKeepWorking) {
  virtual_job vj(3);
  auto sink1 = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto sink2 = ch::channel::create("sink", {}, {vj.cluster.node_job(2)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto to1 = c.open({1, "sink"}).value();
  auto to2 = c.open({2, "sink"}).value();
  ASSERT_EQ(to2.send(make_message(64, 1, 0), 10s, tr::send_mode::deposited), status::ok);

  ASSERT_TRUE(vj.cluster.signal_agent(2, SIGKILL));
  const auto killed_at = clock::now();
  status st = status::ok;
  std::uint64_t seq = 1;
  while (clock::now() - killed_at < 20s) {
    st = to2.send(make_message(64, 1, seq++), 1s);
    if (st == status::peer_dead) break;
    std::this_thread::sleep_for(5ms);
  }
  const auto detected_after = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - killed_at);
  EXPECT_EQ(st, status::peer_dead);
  // Bounded: peer_timeout (1 s here; 3 s sanitized) plus a heartbeat and scheduling slack.
  EXPECT_LT(detected_after, kSanitized ? 10s : 5s);
  EXPECT_EQ(c.peer(2), tr::peer_state::dead);
  std::printf("[   INFO   ] dead agent reported after %lld ms\n", static_cast<long long>(detected_after.count()));

  // Node 0 -> node 1 still works, deposited and buffered.
  EXPECT_EQ(to1.send(make_message(64, 2, 0), 10s, tr::send_mode::deposited), status::ok);
  for (std::uint64_t i = 1; i < 1000; ++i) ASSERT_EQ(to1.send(make_message(64, 2, i), 10s), status::ok);
  std::vector<std::byte> out;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(sink1.recv(out, 10s), status::ok) << i;
    msg_info info;
    ASSERT_TRUE(verify_message(out, info));
    EXPECT_EQ(info.seq, i);
  }
  // A new open of the dead node fails clearly instead of hanging.
  auto again = c.open({2, "sink"}, {.resolve_timeout = 5s});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::peer_unreachable);
}

// Forges frames from outside the job (own endpoint) and checks each is dropped and counted,
// and that the agent still delivers real traffic afterwards.
TEST(Faults, MalformedAndWrongKeyFramesAreDroppedAndCounted) {
  virtual_job vj(2);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto rc = c.open({1, "sink"}).value();  // channel id 0 on node 1

  tr::endpoint_config ec;
  auto ep = tr::fabric_endpoint::open(ec).value();
  auto addr = tr::read_agent_address(vj.cluster.node_job(1)).value();
  const std::uint64_t target = ep.insert_peer(addr).value();

  auto send_raw = [&](std::vector<std::byte> frame) {
    ssize_t rc2;
    while ((rc2 = fi_send(ep.ep(), frame.data(), frame.size(), nullptr, target, nullptr)) == -FI_EAGAIN) {
      fi_cq_data_entry e;
      fi_cq_read(ep.cq(), &e, 1);
    }
    ASSERT_EQ(rc2, 0) << fi_strerror(static_cast<int>(-rc2));
    // Wait for the send completion so the frame has left before the next check.
    fi_cq_data_entry e;
    const auto until = clock::now() + 10s;
    while (clock::now() < until) {
      const ssize_t n = fi_cq_read(ep.cq(), &e, 1);
      if (n == 1) return;
      if (n == -FI_EAVAIL) {
        fi_cq_err_entry err{};
        fi_cq_readerr(ep.cq(), &err, 0);
        FAIL() << "send error " << err.err;
      }
    }
    FAIL() << "no send completion";
  };
  // Forged frames claim to come from node 1 itself: node 0's real batch sequence stays intact.
  std::uint32_t next_batch = 0;
  auto header = [&](w::frame_kind kind, std::size_t bytes, std::uint32_t count, std::uint64_t key) {
    w::frame_header h{w::frame_magic, w::protocol_version, static_cast<std::uint16_t>(kind), key, 1,
                      static_cast<std::uint32_t>(bytes), count, 0};
    if (kind == w::frame_kind::batch && key == vj.cluster.job_key()) h.sequence = next_batch++;
    return h;
  };
  auto frame_of = [](const w::frame_header& h, std::span<const std::byte> body = {}) {
    std::vector<std::byte> f(sizeof h + body.size());
    std::memcpy(f.data(), &h, sizeof h);
    if (!body.empty()) std::memcpy(f.data() + sizeof h, body.data(), body.size());
    return f;
  };
  const std::uint64_t key = vj.cluster.job_key();
  // A batch body with one message for channel `id` of `length` bytes (declared), `actual` sent.
  auto batch_body = [](std::uint32_t id, std::uint32_t length, std::size_t actual) {
    std::vector<std::byte> b(sizeof(w::message_header) + actual);
    w::message_header m{length, id, 0, 0, 1, 0};
    std::memcpy(b.data(), &m, sizeof m);
    return b;
  };
  auto wait_for = [&](auto&& pred) {
    const auto until = clock::now() + 10s;
    while (clock::now() < until) {
      if (pred(tr::read_agent_stats(vj.cluster.node_job(1)).value())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  };
  const auto before = tr::read_agent_stats(vj.cluster.node_job(1)).value();

  // 1. Wrong key.
  auto body = batch_body(0, 8, 8);
  send_raw(frame_of(header(w::frame_kind::batch, sizeof(w::frame_header) + body.size(), 1, key ^ 1), body));
  EXPECT_TRUE(wait_for([&](const tr::agent_stats& s) { return s.dropped_bad_key == before.dropped_bad_key + 1; }));
  // 2. Bad magic, 3. length field disagreeing with the frame, 4. a runt, 5. unknown kind.
  auto bad_magic = header(w::frame_kind::heartbeat, sizeof(w::frame_header), 0, key);
  bad_magic.magic = 0xdeadbeef;
  send_raw(frame_of(bad_magic));
  send_raw(frame_of(header(w::frame_kind::heartbeat, 4096, 0, key)));
  send_raw(std::vector<std::byte>(7, std::byte{0x43}));
  send_raw(frame_of(header(static_cast<w::frame_kind>(99), sizeof(w::frame_header), 0, key)));
  // 6. A batch whose message claims more bytes than the frame holds.
  body = batch_body(0, 1000, 16);
  send_raw(frame_of(header(w::frame_kind::batch, sizeof(w::frame_header) + body.size(), 1, key), body));
  EXPECT_TRUE(wait_for([&](const tr::agent_stats& s) { return s.dropped_malformed == before.dropped_malformed + 5; }))
      << "malformed " << tr::read_agent_stats(vj.cluster.node_job(1)).value().dropped_malformed - before.dropped_malformed;
  // 7. A well-formed batch for a channel id the agent never gave out.
  body = batch_body(77, 8, 8);
  send_raw(frame_of(header(w::frame_kind::batch, sizeof(w::frame_header) + body.size(), 1, key), body));
  EXPECT_TRUE(wait_for([&](const tr::agent_stats& s) {
    return s.dropped_unknown_channel == before.dropped_unknown_channel + 1;
  }));
  std::size_t len = 0;
  std::vector<std::byte> buf(256);
  EXPECT_EQ(sink.try_recv(buf, len), status::empty) << "a forged message was delivered";

  // The agent still works.
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_EQ(rc.send(make_message(64, 9, i), 10s), status::ok);
  for (std::uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(sink.recv(buf, len, 10s), status::ok);
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info));
    EXPECT_EQ(info.seq, i);
  }
  ep.close();
}

// A receiver much slower than the sender: nothing is lost, order holds, the sender meets
// back-pressure (full) instead of the agents buffering without bound. 4 KiB messages make
// unbounded buffering visible: the whole stream is over 100 MB, the agents may grow by a
// window's worth.
TEST(Faults, SlowReceiverBackpressureNoLossBoundedMemory) {
  virtual_job vj(2);
  ch::channel_config cfg;
  cfg.capacity = 64;
  auto sink = ch::channel::create("sink", cfg, {vj.cluster.node_job(1)}).value();
  const std::uint64_t n = kSanitized ? 10000 : 30000;
  constexpr std::size_t size = 4096;
  const std::uint64_t rss_before = std::max(rss_kib(vj.cluster.agent_pid(0)), rss_kib(vj.cluster.agent_pid(1)));
  shared_object<std::uint64_t> fulls;
  child_guard guard;
  const pid_t sender = guard.add(fork_child([&] {
    auto c = tr::client::attach(vj.cluster.node_job(0));
    if (!c) return 2;
    auto rc = c->open({1, "sink"});
    if (!rc) return 3;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto m = make_message(size, 1, i);
      status st;
      while ((st = rc->try_send(m)) == status::full) {
        std::atomic_ref<std::uint64_t>(*fulls).fetch_add(1, std::memory_order_relaxed);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      if (st != status::ok) return 4;
    }
    return 0;
  }));
  std::vector<std::byte> buf(size);
  std::uint64_t max_rss = 0;
  // First nobody reads: the stream is several times what the pipeline holds, so the sender must
  // meet back-pressure (full) while the agents stay bounded. Then drain, slowly.
  const auto until = clock::now() + 60s;
  while (std::atomic_ref<std::uint64_t>(*fulls).load(std::memory_order_relaxed) == 0 && clock::now() < until) {
    std::this_thread::sleep_for(5ms);
    max_rss = std::max({max_rss, rss_kib(vj.cluster.agent_pid(0)), rss_kib(vj.cluster.agent_pid(1))});
  }
  ASSERT_GT(*fulls, 0u) << "the sender never met back-pressure";
  for (std::uint64_t i = 0; i < n; ++i) {
    std::size_t len = 0;
    ASSERT_EQ(sink.recv(buf, len, 30s), status::ok) << i;
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info));
    ASSERT_EQ(info.seq, i);
    if (i % 2000 == 0) {
      std::this_thread::sleep_for(20ms);  // slow: the pipeline fills up behind us
      max_rss = std::max({max_rss, rss_kib(vj.cluster.agent_pid(0)), rss_kib(vj.cluster.agent_pid(1))});
    }
  }
  expect_children_ok({wait_child(sender, 60s)}, "sender");
  guard.clear();
  // Bounded: a window of frames per peer, the held-back rest of a batch, the receive buffers;
  // not the stream (n * 4 KiB). Not judged under a sanitizer: its shadow memory is private and
  // grows with every shared page the agent touches (ThreadSanitizer: several times the inbox).
  const std::uint64_t growth = max_rss > rss_before ? max_rss - rss_before : 0;
  const std::uint64_t stream_kib = n * size / 1024;
  if (!kSanitized) {
    EXPECT_LT(growth, stream_kib / 3) << "agent private RSS grew by " << growth << " KiB";
  }
  std::printf("[   INFO   ] sender saw full %llu times; agent private RSS grew by %llu KiB (stream %llu KiB)\n",
              static_cast<unsigned long long>(*fulls), static_cast<unsigned long long>(growth),
              static_cast<unsigned long long>(stream_kib));
  auto stats = tr::read_agent_stats(vj.cluster.node_job(0)).value();
  EXPECT_GT(stats.credit_stalls, 0u);
  // The receiving side says why: its target channel (64 slots, unread at first) was full.
  auto receiving = tr::read_agent_stats(vj.cluster.node_job(1)).value();
  EXPECT_GT(receiving.delivery_holds, 0u);
  EXPECT_EQ(stats.delivery_holds, 0u) << "nothing was delivered on the sending node";
}

}  // namespace
}  // namespace chanpool::test

namespace chanpool::test {
namespace {

// A node stopped for longer than peer_timeout is declared dead and stays dead: a frame from it
// afterwards is dropped and counted and it is told so; when it resumes it marks every peer dead
// itself (it leaves), and sends from it fail with peer_dead instead of being delivered.
TEST(Faults, StoppedNodeIsDeclaredDeadAndItsLateFramesAreDropped) {
  const tr::agent_config cfg = test_agent_config();
  virtual_job vj(3, cfg);
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(0)}).value();
  auto on0 = tr::client::attach(vj.cluster.node_job(0)).value();
  auto on2 = tr::client::attach(vj.cluster.node_job(2)).value();
  auto from2 = on2.open({0, "sink"}).value();
  ASSERT_EQ(from2.send(make_message(64, 2, 0), 10s, tr::send_mode::deposited), status::ok);
  std::vector<std::byte> out;
  ASSERT_EQ(sink.recv(out, 10s), status::ok);

  ASSERT_TRUE(vj.cluster.signal_agent(2, SIGSTOP));
  const auto wait_until = [](auto&& pred, std::chrono::milliseconds limit) {
    const auto until = clock::now() + limit;
    while (clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  };
  const auto timeout = cfg.peer_timeout;
  EXPECT_TRUE(wait_until([&] { return on0.peer(2) == tr::peer_state::dead; }, timeout * 3));

  // A frame from node 2 now (forged with the job's key from an endpoint of our own, as a late
  // heartbeat of node 2 would look): dropped, counted, and node 2 stays dead.
  auto ep = tr::fabric_endpoint::open(tr::endpoint_config{}).value();
  const std::uint64_t target = ep.insert_peer(tr::read_agent_address(vj.cluster.node_job(0)).value()).value();
  w::frame_header h{w::frame_magic, w::protocol_version, static_cast<std::uint16_t>(w::frame_kind::heartbeat),
                    vj.cluster.job_key(), 2, static_cast<std::uint32_t>(sizeof h), 0, 0};
  const auto before = tr::read_agent_stats(vj.cluster.node_job(0)).value().dropped_from_dead;
  ssize_t rc;
  while ((rc = fi_send(ep.ep(), &h, sizeof h, nullptr, target, nullptr)) == -FI_EAGAIN) {
    fi_cq_data_entry e;
    fi_cq_read(ep.cq(), &e, 1);
  }
  ASSERT_EQ(rc, 0);
  EXPECT_TRUE(wait_until(
      [&] {
        fi_cq_data_entry e;
        fi_cq_read(ep.cq(), &e, 1);
        return tr::read_agent_stats(vj.cluster.node_job(0)).value().dropped_from_dead > before;
      },
      5s));
  EXPECT_EQ(on0.peer(2), tr::peer_state::dead);

  // Node 2 resumes: it was stopped for longer than peer_timeout, so it leaves; node 0 told it
  // that it was declared dead; nothing it sends reaches node 0.
  ASSERT_TRUE(vj.cluster.signal_agent(2, SIGCONT));
  EXPECT_TRUE(wait_until([&] { return on2.peer(0) == tr::peer_state::dead && on2.peer(1) == tr::peer_state::dead; },
                         5s));
  EXPECT_TRUE(wait_until([&] { return tr::read_agent_stats(vj.cluster.node_job(2)).value().declared_dead_by_peer > 0; },
                         5s));
  EXPECT_EQ(from2.send(make_message(64, 2, 1), 2s, tr::send_mode::deposited), status::peer_dead);
  EXPECT_EQ(sink.recv(out, 1s), status::timeout) << "a message from the dead node was delivered";
  EXPECT_EQ(on0.peer(2), tr::peer_state::dead);
  ep.close();
}

}  // namespace
}  // namespace chanpool::test

namespace chanpool::test {
namespace {

// connect() past its timeout returns an error, names the nodes it did not hear from in
// failure_reason(), and prints nothing: the lines go to the diagnostic handler.
TEST(Faults, ConnectTimeoutNamesTheMissingNodesWithoutPrinting) {
  const std::string job_a = test_job("conn-a"), job_b = test_job("conn-b");
  tr::agent_config cfg = test_agent_config();
  auto a = tr::agent::create(0, 2, job_a, cfg);
  ASSERT_TRUE(a) << a.error().message();
  auto b = tr::agent::create(1, 2, job_b, cfg);  // created, never connected: it never says hello
  ASSERT_TRUE(b) << b.error().message();
  std::vector<std::string> lines;
  tr::set_diagnostic_handler([&](std::string_view l) { lines.emplace_back(l); });
  const std::error_code ec = (*a)->connect({(*a)->address(), (*b)->address()}, tr::make_job_key(),
                                           std::chrono::milliseconds(300));
  tr::set_diagnostic_handler({});
  EXPECT_TRUE(ec);
  EXPECT_NE((*a)->failure_reason().find("node(s) 1"), std::string::npos) << (*a)->failure_reason();
  EXPECT_FALSE((*a)->failure());  // not a failure of a running agent
  (*a)->stop();
  (*b)->stop();
}

}  // namespace
}  // namespace chanpool::test

namespace chanpool::test {
namespace {

// The kernel's parent-death signal follows the *thread* that forked a process: a cluster started
// by a thread that has since ended (a runtime's setup thread) must keep its agents. They took
// that signal for their parent's death and stopped, leaving a cluster whose every send failed.
TEST(Faults, VirtualClusterOutlivesTheThreadThatStartedIt) {
  if (kThreadSanitizer)
    GTEST_SKIP() << "ThreadSanitizer does not let a child start threads after a fork from a multi-threaded process, "
                    "which starting from a second thread is";
  std::optional<virtual_job> vj;
  std::thread([&] { vj.emplace(2); }).join();
  std::this_thread::sleep_for(200ms);  // what the ended thread's signal set off has happened
  auto sink = ch::channel::create("sink", {}, {vj->cluster.node_job(1)}).value();
  auto c = tr::client::attach(vj->cluster.node_job(0), 5s);
  ASSERT_TRUE(c) << "node 0's agent is gone: " << c.error().message();
  auto to1 = c->open({1, "sink"}, {.resolve_timeout = 10s});
  ASSERT_TRUE(to1) << to1.error().message();
  ASSERT_EQ(to1->send(make_message(64, 1, 0), 10s, tr::send_mode::deposited), status::ok);
  std::vector<std::byte> out;
  EXPECT_EQ(sink.recv(out, 10s), status::ok);
}

}  // namespace
}  // namespace chanpool::test

namespace chanpool::test {
namespace {

std::vector<std::string> segment_names(const std::string& job) {
  std::vector<std::string> names;
  for (const auto& r : ch::list_segments(job)) names.push_back(r.channel_name);
  return names;
}

// Under a launcher the agent runs in the user's rank. A rank killed with SIGKILL cannot remove its
// node's segments; its node keeper does, with whatever else the node's processes made there.
TEST(Faults, NodeKeeperRemovesAKilledProcesssSegments) {
  const std::string job = test_job("keeper-kill");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    tr::agent_config cfg = test_agent_config();
    cfg.node_keeper = true;
    auto a = tr::agent::create(0, 1, job, cfg);
    auto extra = ch::channel::create("made-by-the-rank", {}, {job});
    const char ok = a && extra ? 'R' : 'F';
    (void)::write(ready[1], &ok, 1);
    for (;;) ::pause();  // killed here, the agent's threads running
  }
  ::close(ready[1]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(ok, 'R') << "the child could not create its agent";
  ASSERT_FALSE(segment_names(job).empty());
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ::waitpid(child, nullptr, 0);
  const auto until = clock::now() + 15s;
  while (!segment_names(job).empty() && clock::now() < until) std::this_thread::sleep_for(50ms);
  const auto left = segment_names(job);
  EXPECT_TRUE(left.empty()) << left.size() << " segments left, the first " << (left.empty() ? "" : left.front());
  remove_job_segments(job);
}

// An agent destroyed in order ends its keeper, which removes nothing and leaves no process.
TEST(Faults, NodeKeeperLeavesWithTheAgent) {
  const std::string job = test_job("keeper-order");
  tr::agent_config cfg = test_agent_config();
  cfg.node_keeper = true;
  {
    auto a = tr::agent::create(0, 1, job, cfg);
    ASSERT_TRUE(a) << a.error().message();
    auto keep = ch::channel::create("kept-by-its-owner", {}, {job});
    ASSERT_TRUE(keep);
    a->reset();  // stops the agent and ends (and reaps) the keeper
    EXPECT_EQ(segment_names(job), std::vector<std::string>{"kept-by-its-owner"});
  }
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child process is left";
  remove_job_segments(job);
}

}  // namespace
}  // namespace chanpool::test
