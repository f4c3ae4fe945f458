// latency_bench --hops: the analysis that follows each message through the agents' traces, on
// traces made up here (the real run is tools.latency_bench_hops_json), and the trace file reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "latency_hops.hpp"

namespace chanpool::tools {
namespace {

using transport::hop;
using transport::hop_record;

// Offsets of each stage after send(): inbox taken, frame posted, received, delivered, recv() returned.
struct path_offsets {
  std::uint64_t taken, posted, received, delivered, got;
};

// n one-way messages from `from` (node f) to `to` (node t), the i-th sent at base + i * 1 ms.
void add_direction(process_marks& from, process_marks& to, std::vector<hop_record>& from_trace,
                   std::vector<hop_record>& to_trace, std::uint32_t f, std::uint32_t t, std::uint64_t base, std::size_t n,
                   const path_offsets& o) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t s = base + i * 1'000'000;
    from.sent_ns.push_back(s);
    from_trace.push_back({s + o.taken, static_cast<std::uint32_t>(hop::inbox_taken), f});
    from_trace.push_back({s + o.posted, static_cast<std::uint32_t>(hop::frame_posted), f});
    to_trace.push_back({s + o.received, static_cast<std::uint32_t>(hop::frame_received), t});
    to_trace.push_back({s + o.delivered, static_cast<std::uint32_t>(hop::frame_delivered), t});
    to.received_ns.push_back(s + o.got);
  }
}

struct traced_run {
  process_marks p0, p1;
  std::vector<hop_record> t0, t1;
};

traced_run make_run(std::size_t n) {
  traced_run r;
  add_direction(r.p0, r.p1, r.t0, r.t1, 0, 1, 1'000, n, {10, 15, 100, 110, 130});
  add_direction(r.p1, r.p0, r.t1, r.t0, 1, 0, 500'000, n, {12, 17, 102, 112, 132});
  return r;
}

TEST(LatencyHops, FollowsEachMessageThroughBothDirections) {
  traced_run r = make_run(5);
  // The files are in no particular order: the analysis sorts each kind by time.
  std::mt19937 rng(7);
  std::shuffle(r.t0.begin(), r.t0.end(), rng);
  std::shuffle(r.t1.begin(), r.t1.end(), rng);
  hop_breakdown b;
  std::string error;
  ASSERT_TRUE(analyze_hops(r.p0, r.p1, r.t0, r.t1, 1, b, error)) << error;
  EXPECT_EQ(b.messages, 8u);  // 4 per direction after the first
  ASSERT_EQ(b.hops.size(), 6u);
  const std::int64_t medians[] = {10, 5, 85, 10, 20, 130};  // ping's and pong's: the lower middle
  const std::int64_t p99s[] = {12, 5, 85, 10, 20, 132};
  for (std::size_t k = 0; k < 6; ++k) {
    EXPECT_EQ(b.hops[k].median_ns, medians[k]) << b.hops[k].name;
    EXPECT_EQ(b.hops[k].p99_ns, p99s[k]) << b.hops[k].name;
  }
  EXPECT_EQ(b.hops.back().name, "one way");
}

TEST(LatencyHops, LeavesTheWarmUpOut) {
  traced_run r = make_run(4);
  // The first message of each direction was slow (a cold path): skipped, it does not show.
  r.p1.received_ns[0] += 1'000;
  r.p0.received_ns[0] += 1'000;
  hop_breakdown b;
  std::string error;
  ASSERT_TRUE(analyze_hops(r.p0, r.p1, r.t0, r.t1, 1, b, error)) << error;
  EXPECT_EQ(b.hops[4].p99_ns, 20);
  ASSERT_TRUE(analyze_hops(r.p0, r.p1, r.t0, r.t1, 0, b, error)) << error;
  EXPECT_EQ(b.hops[4].p99_ns, 1'020);
}

TEST(LatencyHops, RefusesTracesThatDoNotFollowTheMessagesOneToOne) {
  traced_run r = make_run(3);
  // Node 1 saw one frame fewer than node 0 sent messages: two went in one frame, or one went
  // point to point. Matching by position would then pair the wrong events.
  r.t1.erase(std::find_if(r.t1.begin(), r.t1.end(),
                          [](const hop_record& h) { return h.kind == static_cast<std::uint32_t>(hop::frame_received); }));
  hop_breakdown b;
  std::string error;
  EXPECT_FALSE(analyze_hops(r.p0, r.p1, r.t0, r.t1, 0, b, error));
  EXPECT_NE(error.find("node 0 -> node 1"), std::string::npos) << error;
  EXPECT_NE(error.find("frames received"), std::string::npos) << error;
}

TEST(LatencyHops, SaysSoWhenNothingIsLeftAfterTheWarmUp) {
  traced_run r = make_run(2);
  hop_breakdown b;
  std::string error;
  EXPECT_FALSE(analyze_hops(r.p0, r.p1, r.t0, r.t1, 2, b, error));
  EXPECT_NE(error.find("warm-up"), std::string::npos) << error;
}

std::string temp_path(const char* what) { return "/tmp/latency_hops_test." + std::to_string(::getpid()) + "." + what; }

TEST(LatencyHops, MarksSurviveTheFileBetweenTheProcesses) {
  process_marks m{{1, 2, 3}, {4, 5}};
  const std::string path = temp_path("marks");
  ASSERT_TRUE(write_marks(path, m));
  process_marks back;
  ASSERT_TRUE(read_marks(path, back));
  EXPECT_EQ(back.sent_ns, m.sent_ns);
  EXPECT_EQ(back.received_ns, m.received_ns);
  {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "short";
  }
  EXPECT_FALSE(read_marks(path, back));
  ::unlink(path.c_str());
  EXPECT_FALSE(read_marks(path, back));
}

TEST(HopTrace, ReadsWholeRecordsAndRefusesAPartialOne) {
  const std::string path = temp_path("trace");
  const hop_record records[2] = {{100, static_cast<std::uint32_t>(hop::inbox_taken), 3},
                                 {200, static_cast<std::uint32_t>(hop::frame_posted), 3}};
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(records), sizeof records);
  }
  auto got = transport::read_hop_trace(path);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[1].t_ns, 200u);
  EXPECT_EQ((*got)[1].node, 3u);
  {
    std::ofstream f(path, std::ios::binary | std::ios::app);
    f.write("x", 1);
  }
  auto partial = transport::read_hop_trace(path);
  ASSERT_FALSE(partial);
  EXPECT_EQ(partial.error(), make_error_code(errc::corrupted));
  ::unlink(path.c_str());
  EXPECT_FALSE(transport::read_hop_trace(path));
}

}  // namespace
}  // namespace chanpool::tools
