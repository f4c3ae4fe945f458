// Regions and one-sided put/get between virtual nodes: every size class with checksums and
// offsets at both ends, descriptor violations, notification, many processes into one region,
// the owner's death, a lost node, many transfers in flight.
#include <sys/mman.h>

#include <dirent.h>

#include <numeric>

#include "chanpool/transport/rma.hpp"
#include "transport_test_util.hpp"

namespace chanpool::test {
namespace {

using tr::rma_errc;

void fill(std::span<std::byte> s, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
}
bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

// Segments of `job` whose name is a region's ("...rgn-").
int region_segments(const std::string& node_job) {
  const std::string prefix = shm_prefix(node_job) + "rgn-";
  int n = 0;
  if (DIR* dir = opendir("/dev/shm")) {
    while (dirent* e = readdir(dir))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) ++n;
    closedir(dir);
  }
  return n;
}

struct two_nodes {
  virtual_job vj{2};
  tr::client c0 = tr::client::attach(vj.cluster.node_job(0)).value();
  tr::client c1 = tr::client::attach(vj.cluster.node_job(1)).value();
};

TEST(Rma, PutAndGetEverySizeClassWithOffsetsArriveIntact) {
  two_nodes t;
  constexpr std::size_t bytes = (4u << 20) + 8192;
  auto a = tr::region::create(t.c0, bytes).value();
  auto b = tr::region::create(t.c1, bytes).value();
  EXPECT_EQ(b.descriptor().node, 1u);
  for (std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{4096}, std::size_t{65536 + 3},
                           std::size_t{1} << 20, std::size_t{4} << 20}) {
    const std::uint64_t src_off = 13, dst_off = 4099;
    fill(a.bytes().subspan(src_off, size), size);
    ASSERT_FALSE(t.c0.put(a, src_off, size, b.descriptor(), dst_off, 30s)) << size;
    ASSERT_TRUE(same(a.bytes().subspan(src_off, size), b.bytes().subspan(dst_off, size))) << "put of " << size;
    // Back again, into another place of a, by get.
    fill(b.bytes().subspan(dst_off, size), size + 1);
    const std::uint64_t back_off = 8191 - (size & 4095);
    ASSERT_FALSE(t.c0.get(b.descriptor(), dst_off, size, a, back_off, 30s)) << size;
    ASSERT_TRUE(same(b.bytes().subspan(dst_off, size), a.bytes().subspan(back_off, size))) << "get of " << size;
  }
  // Zero bytes is a valid no-op.
  EXPECT_FALSE(t.c0.put(a, 0, 0, b.descriptor(), bytes, 10s));
}

TEST(Rma, DescriptorsNeverReachOutsideTheirRangeOrRights) {
  two_nodes t;
  auto a = tr::region::create(t.c0, 1 << 16).value();
  auto b = tr::region::create(t.c1, 1 << 16).value();
  auto ro = tr::region::create(t.c1, 1 << 16, tr::rma_read).value();
  const tr::region_descriptor d = b.descriptor();

  // Checked before anything leaves the process.
  EXPECT_EQ(t.c0.put(a, 0, 4096, d, d.length - 100, 10s), rma_errc::out_of_range);
  EXPECT_EQ(t.c0.put(a, (1 << 16) - 10, 20, d, 0, 10s), rma_errc::out_of_range);
  EXPECT_EQ(t.c0.put(a, 0, 64, ro.descriptor(), 0, 10s), rma_errc::no_rights);
  EXPECT_EQ(t.c0.put(a, 0, 64, tr::region_descriptor{}, 0, 10s), rma_errc::invalid_descriptor);
  auto slice = tr::narrow(d, 1024, 1024, tr::rma_read).value();
  EXPECT_EQ(t.c0.put(a, 0, 64, slice, 0, 10s), rma_errc::no_rights);
  EXPECT_EQ(t.c0.get(slice, 1000, 100, a, 0, 10s), rma_errc::out_of_range);
  EXPECT_FALSE(t.c0.get(slice, 0, 1024, a, 0, 10s));
  EXPECT_TRUE(same(a.bytes().subspan(0, 1024), b.bytes().subspan(1024, 1024)));
  EXPECT_EQ(tr::narrow(slice, 0, 2048, tr::rma_read).error(), rma_errc::out_of_range);

  // Forged descriptors are refused by the region's own agent.
  tr::region_descriptor longer = d;
  longer.length = 1 << 20;
  EXPECT_EQ(t.c0.put(a, 0, 4096, longer, (1 << 16) - 100, 10s), rma_errc::out_of_range);
  tr::region_descriptor granted = ro.descriptor();
  granted.rights = tr::rma_read_write;
  EXPECT_EQ(t.c0.put(a, 0, 64, granted, 0, 10s), rma_errc::no_rights);
  tr::region_descriptor other_job = d;
  other_job.job_tag ^= 0x100;
  EXPECT_EQ(t.c0.put(a, 0, 64, other_job, 0, 10s), rma_errc::wrong_job);

  // A closed region is stale for old descriptors, also once its id is used again.
  ASSERT_FALSE(b.close());
  EXPECT_EQ(t.c0.put(a, 0, 64, d, 0, 10s), rma_errc::stale_region);
  auto again = tr::region::create(t.c1, 1 << 16).value();
  EXPECT_EQ(again.descriptor().region_id, d.region_id) << "the id was not reused: the test does not show generations";
  EXPECT_NE(again.descriptor().generation, d.generation);
  EXPECT_EQ(t.c0.put(a, 0, 64, d, 0, 10s), rma_errc::stale_region);
  EXPECT_FALSE(t.c0.put(a, 0, 64, again.descriptor(), 0, 10s));
  EXPECT_EQ(b.close(), rma_errc::region_closed);
  // A local region of another node is not this client's to use.
  EXPECT_EQ(t.c0.put(again, 0, 64, a.descriptor(), 0, 10s), rma_errc::not_local);
  // The agents dropped nothing and are still well.
  EXPECT_EQ(tr::read_agent_stats(t.vj.cluster.node_job(1)).value().dropped_malformed, 0u);
  EXPECT_EQ(t.c0.peer(1), tr::peer_state::alive);
}

TEST(Rma, ImpossibleRegionSizesAreRefusedAtOnce) {
  two_nodes t;
  EXPECT_EQ(tr::region::create(t.c0, 0).error(), errc::invalid_config);
  EXPECT_EQ(tr::region::create(t.c0, std::size_t{1} << 62).error(), errc::out_of_memory);
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(0)), 0);
}

TEST(Rma, AgentsWithoutRmaSayWhyAndStillCarryMessages) {
  tr::agent_config cfg = test_agent_config();
  cfg.rma = false;
  virtual_job vj(2, cfg);
  auto c = tr::client::attach(vj.cluster.node_job(0)).value();
  auto r = tr::region::create(c, 4096);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), rma_errc::rma_unsupported);
  EXPECT_NE(r.error().message().find("FI_RMA"), std::string::npos) << r.error().message();
  EXPECT_EQ(region_segments(vj.cluster.node_job(0)), 0);
  EXPECT_EQ(c.provider(), tr::choose_provider(""));
  auto sink = ch::channel::create("sink", {}, {vj.cluster.node_job(1)}).value();
  auto to = c.open({1, "sink"}).value();
  EXPECT_EQ(to.send(make_message(64, 1, 0), 10s, tr::send_mode::deposited), status::ok);
}

TEST(Rma, SameNodeTransfersWork) {
  two_nodes t;
  auto a = tr::region::create(t.c0, 1 << 16).value();
  auto b = tr::region::create(t.c0, 1 << 16).value();
  fill(a.bytes(), 5);
  EXPECT_FALSE(t.c0.put(a, 100, 5000, b.descriptor(), 7, 10s));
  EXPECT_TRUE(same(a.bytes().subspan(100, 5000), b.bytes().subspan(7, 5000)));
  EXPECT_FALSE(t.c0.get(b.descriptor(), 7, 5000, a, 20000, 10s));
  EXPECT_TRUE(same(a.bytes().subspan(100, 5000), a.bytes().subspan(20000, 5000)));
}

TEST(Rma, PutWithNotificationLandsAfterTheBytes) {
  two_nodes t;
  auto notes = ch::channel::create("notes", {}, {t.vj.cluster.node_job(1)}).value();
  auto to_notes = t.c0.open({1, "notes"}).value();
  auto a = tr::region::create(t.c0, 1 << 20).value();
  auto b = tr::region::create(t.c1, 1 << 20).value();
  for (std::uint64_t i = 0; i < 16; ++i) {
    const std::size_t off = i * 65536, len = 65536 - i;
    fill(a.bytes().subspan(off, len), i);
    auto op = t.c0.put_async(a, off, len, b.descriptor(), off, &to_notes, 1000 + i).value();
    std::vector<std::byte> buf(64);
    std::size_t got = 0;
    ASSERT_EQ(notes.recv(buf, got, 10s), status::ok);
    ASSERT_EQ(got, sizeof(tr::put_notification));
    tr::put_notification n;
    std::memcpy(&n, buf.data(), sizeof n);
    EXPECT_EQ(n.tag, 1000 + i);
    EXPECT_EQ(n.offset, off);
    EXPECT_EQ(n.length, len);
    EXPECT_EQ(n.source_node, 0u);
    EXPECT_EQ(n.region_id, b.descriptor().region_id);
    // The receiver of the notification finds the bytes, before the initiator hears back.
    EXPECT_TRUE(same(a.bytes().subspan(off, len), b.bytes().subspan(off, len))) << i;
    EXPECT_FALSE(op.wait(10s));
  }
  // A notification to a channel on the initiator's own node is refused.
  auto local_notes = ch::channel::create("here", {}, {t.vj.cluster.node_job(0)}).value();
  auto to_here = t.c0.open({0, "here"}).value();
  EXPECT_EQ(t.c0.put(a, 0, 8, b.descriptor(), 0, 10s, &to_here), rma_errc::invalid_descriptor);
}

TEST(Rma, ManyTransfersInFlightCompleteEachWithItsOutcome) {
  two_nodes t;
  constexpr std::size_t chunk = 16384, count = 96;
  auto a = tr::region::create(t.c0, chunk * count).value();
  auto b = tr::region::create(t.c1, chunk * count).value();
  fill(a.bytes(), 77);
  std::vector<tr::rma_op> ops;
  for (std::size_t i = 0; i < count; ++i) ops.push_back(t.c0.put_async(a, i * chunk, chunk, b.descriptor(), i * chunk).value());
  // One bad transfer in the middle of the window fails alone.
  auto bad = t.c0.put_async(a, 0, 64, tr::narrow(b.descriptor(), 0, 64, tr::rma_read).value(), 0);
  EXPECT_EQ(bad.error(), rma_errc::no_rights);
  // Waited for in reverse: replies read while waiting for one are kept for the others.
  for (std::size_t i = count; i-- > 0;) ASSERT_FALSE(ops[i].wait(30s)) << i;
  EXPECT_TRUE(same(a.bytes(), b.bytes()));
  // test() polls without blocking; a cancelled handle says so.
  auto op = t.c0.get_async(b.descriptor(), 0, chunk, a, 0).value();
  std::error_code ec;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!op.test(ec) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
  EXPECT_FALSE(ec);
  auto c = t.c0.get_async(b.descriptor(), 0, chunk, a, 0).value();
  c.cancel();
  EXPECT_EQ(c.wait(1s), rma_errc::cancelled);
}

// Every transfer leases a range of the owner's region until the provider is done with it. Were a
// lease never given back, the region would outlive its close (a retired region goes when its last
// lease does).
TEST(Rma, GetsGiveTheirLeasesBackSoClosedRegionsGo) {
  two_nodes t;
  {
    constexpr std::size_t chunk = 65536, count = 16;
    auto a = tr::region::create(t.c0, chunk * count).value();
    auto b = tr::region::create(t.c1, chunk * count).value();
    fill(b.bytes(), 5);
    std::vector<tr::rma_op> ops;
    for (std::size_t i = 0; i < count; ++i) ops.push_back(t.c0.get_async(b.descriptor(), i * chunk, chunk, a, i * chunk).value());
    for (auto& op : ops) ASSERT_FALSE(op.wait(30s));
    EXPECT_TRUE(same(a.bytes(), b.bytes()));
    // A get the owner refuses is answered without a grant.
    EXPECT_EQ(t.c0.get(tr::narrow(b.descriptor(), 0, 64, tr::rma_write).value(), 0, 64, a, 0, 10s), rma_errc::no_rights);
  }
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (region_segments(t.vj.cluster.node_job(0)) + region_segments(t.vj.cluster.node_job(1)) > 0 &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(1)), 0) << "the owner's region is still leased";
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(0)), 0);
}

TEST(Rma, ManyProcessesPutIntoOneRegionAtOnce) {
  two_nodes t;
  constexpr int procs = 4;
  constexpr std::size_t slice = 1 << 18, per = 16;
  auto target = tr::region::create(t.c1, procs * slice).value();
  const tr::region_descriptor d = target.descriptor();
  child_guard guard;
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p)
    pids.push_back(guard.add(fork_child([&, p] {
      auto c = tr::client::attach(t.vj.cluster.node_job(p % 2)).value();
      auto src = tr::region::create(c, slice).value();
      fill(src.bytes(), 100 + p);
      std::vector<tr::rma_op> ops;
      const std::size_t piece = slice / per;
      for (std::size_t i = 0; i < per; ++i) {
        auto op = c.put_async(src, i * piece, piece, d, p * slice + i * piece);
        if (!op) return 2;
        ops.push_back(std::move(*op));
      }
      for (auto& op : ops)
        if (op.wait(30s)) return 3;
      return 0;
    })));
  ASSERT_TRUE(expect_children_ok(wait_children(pids, 60s)));
  for (int p = 0; p < procs; ++p) {
    std::vector<std::byte> want(slice);
    fill(want, 100 + p);
    EXPECT_TRUE(same(want, target.bytes().subspan(p * slice, slice))) << "process " << p;
  }
  // The children's regions went with them: closed at exit (or reaped).
  const auto until = std::chrono::steady_clock::now() + 10s;
  while ((region_segments(t.vj.cluster.node_job(0)) + region_segments(t.vj.cluster.node_job(1))) > 1 &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(0)) + region_segments(t.vj.cluster.node_job(1)), 1);
}

TEST(Rma, KilledOwnersRegionIsClosedAndItsDescriptorsGoStale) {
  two_nodes t;
  auto a = tr::region::create(t.c0, 1 << 16).value();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  child_guard guard;
  const pid_t owner = guard.add(fork_child([&] {
    close(fds[0]);
    auto c = tr::client::attach(t.vj.cluster.node_job(1)).value();
    auto r = tr::region::create(c, 1 << 16).value();
    const tr::region_descriptor d = r.descriptor();
    if (write(fds[1], &d, sizeof d) != sizeof d) return 2;
    pause();  // killed here: no destructor runs
    return 0;
  }));
  close(fds[1]);
  tr::region_descriptor d{};
  ASSERT_EQ(read(fds[0], &d, sizeof d), static_cast<ssize_t>(sizeof d));
  close(fds[0]);
  ASSERT_FALSE(t.c0.put(a, 0, 1024, d, 0, 10s));
  ASSERT_EQ(region_segments(t.vj.cluster.node_job(1)), 1);
  kill(owner, SIGKILL);  // not reaped yet: a zombie owner counts as dead
  std::error_code ec;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!(ec = t.c0.put(a, 0, 1024, d, 0, 10s)) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ec, rma_errc::stale_region);
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(1)), 0);
  kill_and_reap(owner);
}

class RmaLostNode : public ::testing::TestWithParam<bool> {};

// Puts (the lost node reads) or gets (this node reads what the lost node granted).
TEST_P(RmaLostNode, FailsTransfersWithoutHanging) {
  const bool gets = GetParam();
  two_nodes t;
  auto a = tr::region::create(t.c0, 4 << 20).value();
  auto b = tr::region::create(t.c1, 4 << 20).value();
  std::vector<tr::rma_op> ops;
  for (int i = 0; i < 8; ++i)
    ops.push_back((gets ? t.c0.get_async(b.descriptor(), 0, 4 << 20, a, 0) : t.c0.put_async(a, 0, 4 << 20, b.descriptor(), 0)).value());
  ASSERT_TRUE(t.vj.cluster.signal_agent(1, SIGKILL));
  const auto start = std::chrono::steady_clock::now();
  int failed = 0;
  for (auto& op : ops) {
    const std::error_code ec = op.wait(20s);
    EXPECT_NE(ec, rma_errc::timed_out);
    if (ec) {
      EXPECT_EQ(ec, rma_errc::peer_dead);
      ++failed;
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, kSanitized ? 15s : 8s);
  // Once the node is known dead, a new transfer fails at once.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (t.c0.peer(1) != tr::peer_state::dead && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(t.c0.put(a, 0, 64, b.descriptor(), 0, 1s), rma_errc::peer_dead);
  EXPECT_EQ(t.c0.get(b.descriptor(), 0, 64, a, 0, 1s), rma_errc::peer_dead);
  std::printf("[   INFO   ] %d of 8 %s in flight failed with peer_dead\n", failed, gets ? "gets" : "puts");
  // What this node's provider was still doing for those transfers ends too, so the region can go
  // once closed.
  a = tr::region{};
  const auto gone = std::chrono::steady_clock::now() + 10s;
  while (region_segments(t.vj.cluster.node_job(0)) > 0 && std::chrono::steady_clock::now() < gone)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(region_segments(t.vj.cluster.node_job(0)), 0);
}

INSTANTIATE_TEST_SUITE_P(Rma, RmaLostNode, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Gets" : "Puts"; });

}  // namespace
}  // namespace chanpool::test
