// The Pool's message decoders (pool/src/wire_decode.hpp) on forged input: counts that the bytes
// cannot hold are refused at once, without allocating for them or answering them one by one.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>

#include "pool/src/wire_decode.hpp"

namespace {

namespace w = chanpool::pool::wire;
using item_bytes = chanpool::pool::detail::job::item_bytes;

std::string results_body(std::initializer_list<std::string> items) {
  std::string body;
  for (const auto& it : items) {
    w::item_record rec;
    rec.length = static_cast<std::uint32_t>(it.size());
    w::append_pod(body, rec);
    body += it;
  }
  return body;
}

TEST(PoolWireDecode, ResultsSplitIntoTheirRecords) {
  w::result_header h;
  h.first_item = 7;
  h.item_count = 2;
  const std::string body = results_body({"ab", "cde"});
  std::vector<item_bytes> items;
  ASSERT_TRUE(w::decode_result_items(h, body, items));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].index, 7u);
  EXPECT_EQ(body.substr(items[1].offset, items[1].length), "cde");
}

// A forged count of 2^32-1 items once made the engine reserve 2^32-1 records (about 96 GiB)
// before it looked at the body: std::length_error or bad_alloc on the scheduler thread.
TEST(PoolWireDecode, ForgedResultCountIsRefusedWithoutAllocating) {
  w::result_header h;
  h.item_count = UINT32_MAX;
  const std::string body = results_body({"x"});
  std::vector<item_bytes> items;
  EXPECT_FALSE(w::decode_result_items(h, body, items));
  EXPECT_TRUE(items.empty());
  EXPECT_LT(items.capacity(), 1024u);
}

TEST(PoolWireDecode, ResultBodyWithTrailingBytesIsRefused) {
  w::result_header h;
  h.item_count = 1;
  std::vector<item_bytes> items;
  EXPECT_FALSE(w::decode_result_items(h, results_body({"x"}) + "junk", items));
}

TEST(PoolWireDecode, ResultHeaderChecksMagicVersionAndNode) {
  w::result_header h;
  h.node = 3;
  std::string msg;
  w::append_pod(msg, h);
  EXPECT_TRUE(w::decode_result_header(msg, 4));
  EXPECT_FALSE(w::decode_result_header(msg, 3)) << "node 3 of a 3-node pool";
  EXPECT_FALSE(w::decode_result_header(msg.substr(0, 10), 4)) << "short";
  msg[0] ^= 1;
  EXPECT_FALSE(w::decode_result_header(msg, 4)) << "bad magic";
}

// A task message claiming 2^32-1 items in a few bytes: a worker once answered each of them with
// an error record (billions of records); it is now dropped as malformed.
TEST(PoolWireDecode, ForgedTaskCountIsImplausible) {
  EXPECT_FALSE(w::plausible_item_count(UINT32_MAX, 12));
  EXPECT_TRUE(w::plausible_item_count(3, 12));
  std::vector<std::string_view> args;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(w::decode_task_items(UINT32_MAX, std::string(12, '\0'), args));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST(PoolWireDecode, TaskItemsSplitExactly) {
  std::string payload;
  for (std::string a : {"one", "", "three"}) {
    const auto len = static_cast<std::uint32_t>(a.size());
    w::append_pod(payload, len);
    payload += a;
  }
  std::vector<std::string_view> args;
  ASSERT_TRUE(w::decode_task_items(3, payload, args));
  EXPECT_EQ(args[2], "three");
  EXPECT_FALSE(w::decode_task_items(2, payload, args)) << "bytes left over";
  EXPECT_FALSE(w::decode_task_items(4, payload, args)) << "a record missing";
}

TEST(PoolWireDecode, TaskHeaderRefusesUnknownKinds) {
  w::task_header h;
  std::string msg;
  w::append_pod(msg, h);
  EXPECT_TRUE(w::decode_task_header(msg));
  msg[6] = 9;  // kind
  EXPECT_FALSE(w::decode_task_header(msg));
}

}  // namespace
