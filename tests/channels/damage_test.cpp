// Segments that someone wrote over: every call returns quickly, nothing is read out of bounds,
// and an older layout is refused with a clear error. (The fuzz target fuzz_channel_segment
// explores the same ground at random; these are the cases it found, kept as regressions.)
#include <chrono>
#include <cstdint>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

class ChannelDamage : public channel_test {
 protected:
  // Offsets in segment_header (channels/src/layout.hpp).
  static constexpr off_t version_offset = 8;
  static constexpr off_t ring_offset_field = 96;

  std::uint64_t read_u64(const std::string& name, off_t at) {
    const int fd = ::open(shm_path(job_, name).c_str(), O_RDONLY | O_CLOEXEC);
    std::uint64_t v = 0;
    if (fd >= 0 && pread(fd, &v, sizeof v, at) != sizeof v) v = 0;
    if (fd >= 0) ::close(fd);
    return v;
  }
  bool write_bytes(const std::string& name, off_t at, const void* p, std::size_t n) {
    const int fd = ::open(shm_path(job_, name).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = pwrite(fd, p, n, at) == static_cast<ssize_t>(n);
    ::close(fd);
    return ok;
  }
  // Makes slot 0 claim to serve a position 2^38 ahead of the indexes (which are at 0).
  bool push_slot0_far_ahead(const std::string& name) {
    const std::uint64_t ring = read_u64(name, ring_offset_field);
    const std::uint64_t ctrl = (std::uint64_t{1} << 38) << 24;  // sequence 2^38, state empty, pid 0
    return ring != 0 && write_bytes(name, static_cast<off_t>(ring), &ctrl, sizeof ctrl);
  }
};

TEST_F(ChannelDamage, SlotFarAheadOfTheTailDoesNotHangASend) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 8, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  ASSERT_TRUE(push_slot0_far_ahead(name));
  const auto m = pattern(16);
  const auto t0 = clock::now();
  EXPECT_EQ(c.try_send(as_bytes(m)), status::full);
  EXPECT_EQ(c.send(as_bytes(m), 20ms), status::timeout);
  EXPECT_LT(clock::now() - t0, 2s) << "a send walked the tail on one step at a time";
  EXPECT_GE(c.stats().corrupted_messages, 1u);
}

TEST_F(ChannelDamage, SlotFarAheadOfTheHeadDoesNotHangARecv) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 8, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  ASSERT_TRUE(push_slot0_far_ahead(name));
  std::vector<std::byte> got;
  const auto t0 = clock::now();
  EXPECT_EQ(c.recv(got, ch::try_once), status::empty);
  EXPECT_EQ(c.recv(got, 20ms), status::timeout);
  EXPECT_LT(clock::now() - t0, 2s) << "a recv walked the head on one step at a time";
  EXPECT_GE(c.stats().corrupted_messages, 1u);
}

TEST_F(ChannelDamage, OlderLayoutVersionIsRefusedClearly) {
  const auto name = unique_name();
  { channel c = make(name); ASSERT_TRUE(c.is_open()); }
  const std::uint32_t old_version = 2;  // before per-process waiter records
  ASSERT_TRUE(write_bytes(name, version_offset, &old_version, sizeof old_version));
  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "a version 2 segment was opened";
  EXPECT_EQ(r.error(), errc::version_mismatch);
  EXPECT_NE(r.error().message().find("incompatible chanpool version"), std::string::npos) << r.error().message();
}

TEST_F(ChannelDamage, Layout3SegmentWith32ByteSlotHeadersIsRefused) {
  const auto name = unique_name();
  { channel c = make(name); ASSERT_TRUE(c.is_open()); }
  const std::uint32_t old_version = 3;  // 32-byte slot headers: its slots would be misread
  ASSERT_TRUE(write_bytes(name, version_offset, &old_version, sizeof old_version));
  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "a version 3 segment was opened";
  EXPECT_EQ(r.error(), errc::version_mismatch);
  EXPECT_NE(r.error().message().find("unlink it and recreate it"), std::string::npos) << r.error().message();
}

TEST_F(ChannelDamage, Layout4SegmentWithoutFenceModeIsRefused) {
  const auto name = unique_name();
  { channel c = make(name); ASSERT_TRUE(c.is_open()); }
  const std::uint32_t old_version = 4;  // futex epoch in steps of 2: its fence-mode bits would be misread
  ASSERT_TRUE(write_bytes(name, version_offset, &old_version, sizeof old_version));
  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "a version 4 segment was opened";
  EXPECT_EQ(r.error(), errc::version_mismatch);
}

}  // namespace
}  // namespace chanpool::test
