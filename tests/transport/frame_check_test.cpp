// Frames from the fabric checked before the agent acts on them: every malformed shape of each
// frame kind is refused, and a well-formed frame of another job is told apart (bad_key).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "frame_check.hpp"

namespace cp = chanpool::transport::detail;
namespace w = chanpool::transport::wire;

namespace {

constexpr std::uint64_t key = 0x1234'5678'9abc'def0ull;

std::vector<std::byte> frame(w::frame_kind kind, const void* body, std::size_t body_bytes, std::uint32_t count = 0) {
  std::vector<std::byte> out(sizeof(w::frame_header) + body_bytes);
  w::frame_header h{w::frame_magic, w::protocol_version, static_cast<std::uint16_t>(kind), key, 1,
                    static_cast<std::uint32_t>(out.size()), count, 0};
  std::memcpy(out.data(), &h, sizeof h);
  if (body_bytes) std::memcpy(out.data() + sizeof h, body, body_bytes);
  return out;
}

cp::frame_verdict check(const std::vector<std::byte>& f, cp::frame_view& v, std::size_t len = SIZE_MAX) {
  return cp::check_frame(f.data(), len == SIZE_MAX ? f.size() : len, /*node_count=*/4, key, v);
}

template <class Field>
void patch(std::vector<std::byte>& f, std::size_t offset, Field value) {
  std::memcpy(f.data() + offset, &value, sizeof value);
}

}  // namespace

TEST(FrameCheck, HeaderFaultsAreMalformedAndAnotherJobsKeyIsBadKey) {
  cp::frame_view v;
  auto good = frame(w::frame_kind::heartbeat, nullptr, 0);
  EXPECT_EQ(check(good, v), cp::frame_verdict::ok);
  EXPECT_EQ(check(good, v, sizeof(w::frame_header) - 1), cp::frame_verdict::malformed);  // short
  auto f = good;
  patch(f, offsetof(w::frame_header, magic), std::uint32_t{0x0badf00d});
  EXPECT_EQ(check(f, v), cp::frame_verdict::malformed);
  f = good;
  patch(f, offsetof(w::frame_header, version), std::uint16_t{w::protocol_version + 1});
  EXPECT_EQ(check(f, v), cp::frame_verdict::malformed);
  f = good;
  patch(f, offsetof(w::frame_header, bytes), std::uint32_t{4096});  // claims more than arrived
  EXPECT_EQ(check(f, v), cp::frame_verdict::malformed);
  f = good;
  patch(f, offsetof(w::frame_header, src_node), std::uint32_t{4});  // outside the job
  EXPECT_EQ(check(f, v), cp::frame_verdict::malformed);
  f = good;
  patch(f, offsetof(w::frame_header, job_key), key + 1);
  EXPECT_EQ(check(f, v), cp::frame_verdict::bad_key);
}

TEST(FrameCheck, ResolveNeedsItsNameExactly) {
  const std::string name = "sink";
  std::vector<std::byte> body(sizeof(w::resolve_request) + name.size());
  w::resolve_request req{7, static_cast<std::uint32_t>(name.size()), 99};
  std::memcpy(body.data(), &req, sizeof req);
  std::memcpy(body.data() + sizeof req, name.data(), name.size());
  cp::frame_view v;
  auto f = frame(w::frame_kind::resolve, body.data(), body.size(), 1);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  w::resolve_request got;
  std::string_view got_name;
  ASSERT_TRUE(cp::decode_resolve(v, got, got_name));
  EXPECT_EQ(got_name, "sink");
  EXPECT_EQ(got.token, 99u);

  req.name_bytes = 5000;  // a name longer than the frame
  std::memcpy(body.data(), &req, sizeof req);
  f = frame(w::frame_kind::resolve, body.data(), body.size(), 1);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::decode_resolve(v, got, got_name));
  f = frame(w::frame_kind::resolve, body.data(), sizeof req - 1, 1);  // shorter than its header
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::decode_resolve(v, got, got_name));
}

TEST(FrameCheck, ResolveReplyHasOneSize) {
  w::resolve_reply rep{7, 0, 99, 3, 0, 0};
  std::byte body[sizeof rep + 1]{};
  std::memcpy(body, &rep, sizeof rep);
  cp::frame_view v;
  w::resolve_reply got;
  auto f = frame(w::frame_kind::resolve_reply, body, sizeof rep, 1);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  ASSERT_TRUE(cp::decode_resolve_reply(v, got));
  EXPECT_EQ(got.channel_id, 3u);
  f = frame(w::frame_kind::resolve_reply, body, sizeof rep + 1, 1);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::decode_resolve_reply(v, got));
  f = frame(w::frame_kind::resolve_reply, body, sizeof rep - 1, 1);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::decode_resolve_reply(v, got));
}

TEST(FrameCheck, AcksMustMatchTheirCount) {
  w::ack_record acks[2] = {{7, 0, 0, {}, 1}, {7, 0, 0, {}, 2}};
  cp::frame_view v;
  auto f = frame(w::frame_kind::ack, acks, sizeof acks, 2);
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  ASSERT_TRUE(cp::check_acks(v));
  EXPECT_EQ(cp::ack_at(v, 1).token, 2u);
  f = frame(w::frame_kind::ack, acks, sizeof acks, 3);  // a count beyond the body
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::check_acks(v));
  f = frame(w::frame_kind::ack, acks, sizeof acks, 0xffffffffu);  // a count that would overflow 32 bits
  ASSERT_EQ(check(f, v), cp::frame_verdict::ok);
  EXPECT_FALSE(cp::check_acks(v));
}

TEST(FrameCheck, BatchMessagesCannotReachPastTheFrame) {
  std::vector<std::byte> body(sizeof(w::message_header) + 8);
  w::message_header m{5, 0, 0, 0, 7, 1};
  std::memcpy(body.data(), &m, sizeof m);
  w::message_header got;
  std::size_t inline_bytes = 0;
  const std::byte* end = body.data() + body.size();
  EXPECT_EQ(cp::next_message(body.data(), end, got, inline_bytes), cp::batch_step::message);
  EXPECT_EQ(inline_bytes, 8u);
  EXPECT_EQ(cp::next_message(end, end, got, inline_bytes), cp::batch_step::end);
  m.length = 9;  // padded to 16: past the end
  std::memcpy(body.data(), &m, sizeof m);
  EXPECT_EQ(cp::next_message(body.data(), end, got, inline_bytes), cp::batch_step::malformed);
  EXPECT_EQ(cp::next_message(body.data(), body.data() + sizeof m - 1, got, inline_bytes), cp::batch_step::malformed);
  m.length = 1u << 30;
  m.flags = w::large;  // a large message's payload comes apart: only its header is in the frame
  std::memcpy(body.data(), &m, sizeof m);
  EXPECT_EQ(cp::next_message(body.data(), end, got, inline_bytes), cp::batch_step::message);
  EXPECT_EQ(inline_bytes, 0u);
  // remote_read: its large_source (16 bytes) follows the header, and must be there.
  m.flags = w::large | w::remote_read;
  std::memcpy(body.data(), &m, sizeof m);
  EXPECT_EQ(cp::next_message(body.data(), end, got, inline_bytes), cp::batch_step::malformed);
  std::vector<std::byte> with_source(sizeof m + sizeof(w::large_source));
  std::memcpy(with_source.data(), &m, sizeof m);
  EXPECT_EQ(cp::next_message(with_source.data(), with_source.data() + with_source.size(), got, inline_bytes),
            cp::batch_step::message);
  EXPECT_EQ(inline_bytes, sizeof(w::large_source));
}

TEST(FrameCheck, LargeDoneBodyIsExactlyCountTags) {
  std::vector<std::byte> frame(sizeof(w::frame_header) + 2 * sizeof(std::uint64_t));
  cp::frame_view f;
  f.header.count = 2;
  f.body = frame.data() + sizeof(w::frame_header);
  f.body_bytes = 2 * sizeof(std::uint64_t);
  const std::uint64_t tags[2] = {5, 0x1234567890ull};
  std::memcpy(frame.data() + sizeof(w::frame_header), tags, sizeof tags);
  EXPECT_TRUE(cp::check_large_done(f));
  EXPECT_EQ(cp::large_done_tag(f, 1), tags[1]);
  f.header.count = 3;
  EXPECT_FALSE(cp::check_large_done(f));
  f.header.count = 1;
  EXPECT_FALSE(cp::check_large_done(f));
}
