// The C API's batch calls (chanpool_channel_send_many, chanpool_channel_recv_many, and the
// zero-copy runs): results, partial counts and argument checks.
#include "chanpool/channels.h"

#include <cstring>
#include <string>
#include <vector>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

constexpr std::int64_t kLongNs = 5'000'000'000;

class CApiBatch : public channel_test {
 protected:
  void TearDown() override {
    chanpool_channel_close(h_);
    channel_test::TearDown();
  }
  void create(std::uint32_t capacity) {
    chanpool_channel_config_t config;
    chanpool_channel_config_init(&config);
    config.capacity = capacity;
    const int rc = chanpool_channel_create(unique_name().c_str(), job_.c_str(), &config, &h_);
    ASSERT_EQ(rc, CHANPOOL_OK) << chanpool_strerror(rc);
  }
  chanpool_channel_t* h_ = nullptr;
};

TEST_F(CApiBatch, SendManyRecvManyRoundTrip) {
  ASSERT_NO_FATAL_FAILURE(create(256));
  std::vector<std::vector<std::byte>> ms;
  for (std::size_t i = 0; i < 150; ++i) ms.push_back(pattern(i % 7 == 3 ? 3000 : i % 90, i));
  std::vector<const void*> data;
  std::vector<size_t> sizes;
  for (const auto& m : ms) {
    data.push_back(m.empty() ? nullptr : m.data());
    sizes.push_back(m.size());
  }
  size_t sent = 99;
  ASSERT_EQ(chanpool_channel_send_many(h_, data.data(), sizes.data(), ms.size(), &sent, kLongNs), CHANPOOL_OK);
  EXPECT_EQ(sent, ms.size());
  std::vector<unsigned char> buffer(1 << 20);
  std::vector<size_t> lengths(ms.size() + 5);
  size_t received = 0;
  ASSERT_EQ(chanpool_channel_recv_many(h_, buffer.data(), buffer.size(), lengths.data(), lengths.size(), &received,
                                       kLongNs),
            CHANPOOL_EMPTY)
      << "fewer queued than asked for";
  ASSERT_EQ(received, ms.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < ms.size(); ++i) {
    ASSERT_EQ(lengths[i], ms[i].size()) << i;
    if (lengths[i]) {
      EXPECT_EQ(std::memcmp(buffer.data() + at, ms[i].data(), lengths[i]), 0) << i;
    }
    at += lengths[i];
  }
}

TEST_F(CApiBatch, PartialResultsAndBadArguments) {
  ASSERT_NO_FATAL_FAILURE(create(4));
  const char* words[] = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff"};
  const void* data[6];
  size_t sizes[6];
  for (int i = 0; i < 6; ++i) {
    data[i] = words[i];
    sizes[i] = std::strlen(words[i]);
  }
  size_t sent = 0;
  EXPECT_EQ(chanpool_channel_send_many(h_, data, sizes, 6, &sent, CHANPOOL_TRY_ONCE), CHANPOOL_FULL);
  EXPECT_EQ(sent, 4u);
  EXPECT_EQ(chanpool_channel_send_many(h_, data, sizes, 6, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_send_many(h_, nullptr, sizes, 6, &sent, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  const void* holes[] = {nullptr};
  EXPECT_EQ(chanpool_channel_send_many(h_, holes, sizes, 1, &sent, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_send_many(nullptr, data, sizes, 6, &sent, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);

  char buffer[4];
  size_t lengths[6];
  size_t received = 9;
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, sizeof buffer, lengths, 6, &received, CHANPOOL_TRY_ONCE),
            CHANPOOL_TOO_LARGE)
      << "a + bb fit in 4 bytes, ccc does not";
  EXPECT_EQ(received, 2u);
  EXPECT_EQ(std::memcmp(buffer, "abb", 3), 0);
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, 2, lengths, 6, &received, CHANPOOL_TRY_ONCE), CHANPOOL_TOO_LARGE);
  EXPECT_EQ(received, 0u);
  EXPECT_EQ(lengths[0], 3u);
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, sizeof buffer, lengths, 1, &received, CHANPOOL_TRY_ONCE),
            CHANPOOL_OK);
  EXPECT_EQ(received, 1u);
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, sizeof buffer, lengths, 0, &received, CHANPOOL_TRY_ONCE),
            CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_recv_many(h_, nullptr, 4, lengths, 6, &received, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, sizeof buffer, lengths, 6, &received, 10'000'000),
            CHANPOOL_EMPTY)
      << "dddd is taken, then none is queued";
  EXPECT_EQ(received, 1u);
  EXPECT_EQ(chanpool_channel_recv_many(h_, buffer, sizeof buffer, lengths, 6, &received, 10'000'000),
            CHANPOOL_TIMEOUT);
  EXPECT_EQ(received, 0u);
}

// Zero-copy runs: slots filled in place and published in two commits, read in place in one run
// and released at once; the C struct follows what the run still holds.
TEST_F(CApiBatch, SendRunAndRecvRunInPlace) {
  ASSERT_NO_FATAL_FAILURE(create(64));
  chanpool_send_run_t run;
  ASSERT_EQ(chanpool_channel_claim_send_run(h_, 10, &run, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(run.count, 10u);
  ASSERT_EQ(run.slot_capacity, chanpool_channel_inline_capacity(h_));
  std::vector<std::vector<std::byte>> ms;
  for (std::size_t i = 0; i < 10; ++i) {
    ms.push_back(pattern(i * 7 % run.slot_capacity, static_cast<unsigned>(i)));
    if (!ms[i].empty()) std::memcpy(run.data[i], ms[i].data(), ms[i].size());
  }
  void* fifth = run.data[4];
  const size_t first_lengths[4] = {ms[0].size(), ms[1].size(), ms[2].size(), ms[3].size()};
  ASSERT_EQ(chanpool_channel_commit_run(h_, &run, first_lengths, 4), CHANPOOL_OK);
  ASSERT_EQ(run.count, 6u) << "the run keeps the six it did not publish";
  EXPECT_EQ(run.data[0], fifth);
  size_t rest[6];
  for (std::size_t i = 0; i < 6; ++i) rest[i] = ms[4 + i].size();
  ASSERT_EQ(chanpool_channel_commit_run(h_, &run, rest, 6), CHANPOOL_OK);
  EXPECT_EQ(run.count, 0u);
  EXPECT_EQ(chanpool_channel_commit_run(h_, &run, rest, 1), CHANPOOL_INVALID) << "nothing is held any more";

  chanpool_recv_run_t in;
  ASSERT_EQ(chanpool_channel_claim_recv_run(h_, CHANPOOL_MAX_RUN, &in, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(in.count, 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    ASSERT_EQ(in.size[i], ms[i].size()) << i;
    if (in.size[i]) {
      EXPECT_EQ(std::memcmp(in.data[i], ms[i].data(), in.size[i]), 0) << i;
    }
  }
  ASSERT_EQ(chanpool_channel_release_run(h_, &in), CHANPOOL_OK);
  EXPECT_EQ(in.count, 0u);
  EXPECT_EQ(chanpool_channel_release_run(h_, &in), CHANPOOL_INVALID) << "released already";
  EXPECT_EQ(chanpool_channel_claim_recv_run(h_, 4, &in, CHANPOOL_TRY_ONCE), CHANPOOL_EMPTY);
  chanpool_poll_info_t info;
  ASSERT_EQ(chanpool_channel_poll(h_, &info), CHANPOOL_OK);
  EXPECT_EQ(info.count, 0u) << "every slot is free again";
}

TEST_F(CApiBatch, RunArgumentChecksAndAbandon) {
  ASSERT_NO_FATAL_FAILURE(create(8));
  chanpool_send_run_t run;
  EXPECT_EQ(chanpool_channel_claim_send_run(h_, 0, &run, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(run.count, 0u);
  EXPECT_EQ(chanpool_channel_claim_send_run(h_, 4, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_send_run(nullptr, 4, &run, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_send_run(h_, 4, &run, -5), CHANPOOL_INVALID) << "a negative timeout";
  ASSERT_EQ(chanpool_channel_claim_send_run(h_, 100, &run, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(run.count, 8u) << "as many as are free, at most the ring";
  const size_t too_long[2] = {1, run.slot_capacity + 1};
  EXPECT_EQ(chanpool_channel_commit_run(h_, &run, too_long, 2), CHANPOOL_INVALID);
  EXPECT_EQ(run.count, 8u) << "nothing published, the run still held";
  EXPECT_EQ(chanpool_channel_commit_run(h_, &run, nullptr, 2), CHANPOOL_INVALID);
  const size_t nine[9] = {};
  EXPECT_EQ(chanpool_channel_commit_run(h_, &run, nine, 9), CHANPOOL_INVALID) << "more than the run holds";
  EXPECT_EQ(chanpool_channel_send(h_, "x", 1, CHANPOOL_TRY_ONCE), CHANPOOL_FULL);
  ASSERT_EQ(chanpool_channel_abandon_run(h_, &run), CHANPOOL_OK);
  EXPECT_EQ(run.count, 0u);
  EXPECT_EQ(chanpool_channel_abandon_run(h_, &run), CHANPOOL_INVALID);
  chanpool_recv_run_t in;
  EXPECT_EQ(chanpool_channel_claim_recv_run(h_, 8, &in, CHANPOOL_TRY_ONCE), CHANPOOL_EMPTY)
      << "abandoned slots carry no message";
  EXPECT_EQ(chanpool_channel_claim_recv_run(h_, 0, &in, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_release_run(h_, nullptr), CHANPOOL_INVALID);
  chanpool_channel_stats_t stats;
  ASSERT_EQ(chanpool_channel_stats(h_, &stats), CHANPOOL_OK);
  EXPECT_EQ(stats.lost_messages, 0u);
  EXPECT_EQ(chanpool_channel_send(h_, "x", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK) << "the slots are free again";
}

}  // namespace
}  // namespace chanpool::test
