// The C API's batch calls (chanpool_channel_send_many, chanpool_channel_recv_many): results,
// partial counts and argument checks.
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

}  // namespace
}  // namespace chanpool::test
