// Unit tests: one per channel operation and error, poll_set, and cleanup.
#include <algorithm>
#include <array>
#include <future>
#include <set>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;
using ch::channel_config;

class ChannelUnit : public channel_test {};
class PollSet : public channel_test {};
class Cleanup : public channel_test {};

#define ASSERT_OPEN(c) ASSERT_TRUE((c).is_open()) << "channel could not be created"

constexpr auto kLong = std::chrono::seconds(5);  // "forever" for a test: a hang fails instead

// Receives one message into a vector through the span API (buffer of max_message_bytes()).
status recv_into(channel& c, std::vector<std::byte>& out, ch::timeout t = kLong) {
  out.resize(std::max<std::size_t>(c.max_message_bytes(), 1));
  std::size_t len = 0;
  status s = c.recv(out, len, t);
  out.resize(s == status::ok ? len : 0);
  return s;
}

double ms_since(clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
}

// ---- create / open / close / unlink ------------------------------------------------------------

TEST_F(ChannelUnit, CreateOpenCloseUnlink) {
  const auto name = unique_name();
  auto created = channel::create(name, {}, options());
  ASSERT_TRUE(created) << created.error().message();
  channel a = std::move(created).value();
  EXPECT_TRUE(a.is_open());
  EXPECT_EQ(a.name(), name);
  EXPECT_EQ(a.capacity(), 1024u);

  auto opened = channel::open(name, options());
  ASSERT_TRUE(opened) << opened.error().message();
  channel b = std::move(opened).value();
  EXPECT_TRUE(b.is_open());
  EXPECT_EQ(b.capacity(), a.capacity());
  EXPECT_EQ(b.inline_capacity(), a.inline_capacity());
  EXPECT_EQ(b.max_message_bytes(), a.max_message_bytes());
  auto ca = a.config(), cb = b.config();
  EXPECT_EQ(ca.capacity, cb.capacity);
  EXPECT_EQ(ca.slot_bytes, cb.slot_bytes);
  EXPECT_EQ(ca.heap_bytes, cb.heap_bytes);
  EXPECT_EQ(ca.heap_block_bytes, cb.heap_block_bytes);
  EXPECT_EQ(a.inline_capacity() + 16, ca.slot_bytes) << "slot_bytes includes a 16-byte header";

  // The two handles share the segment.
  auto m = pattern(10);
  EXPECT_EQ(a.send(as_bytes(m)), status::ok);
  std::array<std::byte, 64> buf{};
  std::size_t len = 0;
  EXPECT_EQ(b.try_recv(buf, len), status::ok);
  EXPECT_EQ(len, 10u);
  EXPECT_TRUE(std::equal(m.begin(), m.end(), buf.begin()));

  b.close();
  EXPECT_FALSE(b.is_open());
  b.close();  // idempotent
  EXPECT_FALSE(b.is_open());
  EXPECT_EQ(b.try_send(as_bytes(m)), status::invalid) << "a closed handle rejects operations";

  EXPECT_FALSE(channel::unlink(name, options()));
  EXPECT_NE(access(shm_path(job_, name).c_str(), F_OK), 0) << "unlink removes /dev/shm entry";
  auto again = channel::open(name, options());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::not_found);

  // A handle that was open before unlink keeps working.
  EXPECT_EQ(a.send(as_bytes(m)), status::ok);
  EXPECT_EQ(a.try_recv(buf, len), status::ok);
  EXPECT_EQ(len, 10u);

  // The name can be created again: a fresh, empty segment.
  auto fresh = channel::create(name, {}, options());
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_EQ(fresh->try_recv(buf, len), status::empty);
}

TEST_F(ChannelUnit, MoveTransfersHandle) {
  const auto name = unique_name();
  channel a = make(name);
  ASSERT_OPEN(a);
  channel b(std::move(a));
  EXPECT_TRUE(b.is_open());
  EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified by is_open
  channel c;
  c = std::move(b);
  EXPECT_TRUE(c.is_open());
  auto m = pattern(5);
  EXPECT_EQ(c.send(as_bytes(m)), status::ok);
}

TEST_F(ChannelUnit, CreateTwiceAlreadyExists) {
  const auto name = unique_name();
  channel a = make(name);
  ASSERT_OPEN(a);
  auto second = channel::create(name, {}, options());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::already_exists) << second.error().message();
  EXPECT_FALSE(second.error().message().empty());
  // Same name in another job is a different channel.
  auto other = channel::create(name, {}, opts(extra_job("o")));
  EXPECT_TRUE(other) << other.error().message();
}

TEST_F(ChannelUnit, OpenMissingNotFound) {
  auto r = channel::open(unique_name("missing"), options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::not_found) << r.error().message();
  EXPECT_FALSE(r.error().message().empty());
  EXPECT_THROW((void)std::move(r).value(), std::system_error);
}

TEST_F(ChannelUnit, UnlinkMissingNotFound) {
  auto ec = channel::unlink(unique_name("missing"), options());
  EXPECT_EQ(ec, errc::not_found) << ec.message();
}

TEST_F(ChannelUnit, InvalidNames) {
  const std::vector<std::string> bad = {"", "a/b", "a.b", "has space", std::string(200, 'x'), "tab\t", "/lead"};
  for (const auto& n : bad) {
    SCOPED_TRACE("name='" + n + "'");
    auto c = channel::create(n, {}, options());
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), errc::invalid_name) << c.error().message();
    auto o = channel::open(n, options());
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error(), errc::invalid_name) << o.error().message();
    EXPECT_EQ(channel::unlink(n, options()), errc::invalid_name);
    auto s = channel::segment_name(n, options());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), errc::invalid_name);
  }
  // Valid character set: [A-Za-z0-9_-].
  auto ok = channel::segment_name("Abc_09-z", options());
  EXPECT_TRUE(ok) << ok.error().message();
  // Bad job names are rejected too.
  for (const std::string j : {"a.b", "a/b", "sp ace"}) {
    SCOPED_TRACE("job='" + j + "'");
    auto c = channel::create("fine", {}, ch::open_options{.job = j});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), errc::invalid_name) << c.error().message();
  }
}

TEST_F(ChannelUnit, InvalidConfig) {
  struct bad_case {
    const char* what;
    channel_config cfg;
  };
  std::vector<bad_case> cases = {
      {"capacity 1000 (not a power of two)", {.capacity = 1000}},
      {"capacity 1 (< 2)", {.capacity = 1}},
      {"capacity 0", {.capacity = 0}},
      {"capacity 2^25 (> 2^24)", {.capacity = 1u << 25}},
      {"slot_bytes 100 (not a multiple of 64)", {.slot_bytes = 100}},
      {"slot_bytes 0", {.slot_bytes = 0}},
      {"heap_block_bytes 1000 (not a power of two)", {.heap_block_bytes = 1000}},
      {"heap_block_bytes 32 (< 64)", {.heap_block_bytes = 32}},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = channel::create(unique_name(), c.cfg, options());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_config) << r.error().message();
    EXPECT_FALSE(r.error().message().empty());
  }
  // Edge values that are valid.
  auto small = channel::create(unique_name(), {.capacity = 2, .slot_bytes = 64, .heap_bytes = 0}, options());
  EXPECT_TRUE(small) << small.error().message();
}

TEST_F(ChannelUnit, SegmentNameFormatAndMode) {
  const auto name = unique_name();
  auto sn = channel::segment_name(name, options());
  ASSERT_TRUE(sn) << sn.error().message();
  EXPECT_EQ(*sn, "/chanpool." + std::to_string(getuid()) + "." + job_ + "." + name);

  // Default job: $CHANPOOL_JOB, else "default". (The caller's value is restored below.)
  const char* prior = std::getenv("CHANPOOL_JOB");
  const std::optional<std::string> saved = prior ? std::optional<std::string>(prior) : std::nullopt;
  unsetenv("CHANPOOL_JOB");
  auto d = channel::segment_name(name);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, "/chanpool." + std::to_string(getuid()) + ".default." + name);
  setenv("CHANPOOL_JOB", "envjob", 1);
  auto e = channel::segment_name(name);
  if (saved) {
    setenv("CHANPOOL_JOB", saved->c_str(), 1);
  } else {
    unsetenv("CHANPOOL_JOB");
  }
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, "/chanpool." + std::to_string(getuid()) + ".envjob." + name);

  const mode_t old = umask(0);  // the library must not rely on umask for 0600
  channel c = make(name);
  umask(old);
  ASSERT_OPEN(c);
  struct stat st{};
  ASSERT_EQ(stat(("/dev/shm" + *sn).c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, getuid());
  EXPECT_GT(st.st_size, 0);
}

// Opens the channel's /dev/shm file with plain POSIX.
int open_raw(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR);
  return fd;
}

TEST_F(ChannelUnit, CorruptedMagicRejected) {
  const auto name = unique_name();
  { channel c = make(name); ASSERT_OPEN(c); }
  int fd = open_raw(shm_path(job_, name));
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const char junk[8] = {'g', 'a', 'r', 'b', 'a', 'g', 'e', '!'};
  ASSERT_EQ(pwrite(fd, junk, 8, 0), 8);
  ::close(fd);

  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "open accepted a segment with overwritten magic";
  EXPECT_TRUE(r.error() == errc::corrupted || r.error() == errc::version_mismatch)
      << "got " << r.error().message();
  EXPECT_FALSE(r.error().message().empty());
  std::printf("corrupted magic -> '%s'\n", r.error().message().c_str());
}

TEST_F(ChannelUnit, CorruptedConfigRejected) {
  // A distinctive heap size so its bytes can be found in the header.
  const std::uint64_t heap = 2748ull * 4096;  // 0xABC000
  const auto name = unique_name();
  { channel c = make(name, {.capacity = 512, .slot_bytes = 192, .heap_bytes = heap}); ASSERT_OPEN(c); }
  int fd = open_raw(shm_path(job_, name));
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::vector<unsigned char> head(4096);
  ssize_t n = pread(fd, head.data(), head.size(), 0);
  ASSERT_GT(n, 0);
  std::optional<std::size_t> at;
  for (std::size_t off = 0; off + 8 <= static_cast<std::size_t>(n); off += 4) {
    std::uint64_t v;
    std::memcpy(&v, head.data() + off, 8);
    if (v == heap) {
      at = off;
      break;
    }
  }
  if (!at) {
    ::close(fd);
    GTEST_SKIP() << "heap_bytes not stored verbatim in the first 4 KiB; cannot target the config area";
  }
  std::uint64_t flipped = heap ^ (1ull << 12);  // still a plausible multiple of the block size
  ASSERT_EQ(pwrite(fd, &flipped, 8, static_cast<off_t>(*at)), 8);
  ::close(fd);

  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "open accepted a header whose config was modified at offset " << *at;
  EXPECT_TRUE(r.error() == errc::corrupted || r.error() == errc::layout_mismatch) << "got " << r.error().message();
  EXPECT_FALSE(r.error().message().empty());
  std::printf("corrupted config (offset %zu) -> '%s'\n", *at, r.error().message().c_str());
}

TEST_F(ChannelUnit, FlippedHeaderByteRejected) {
  // Flip one byte at a few offsets inside the first 64 bytes (magic/version/config area): open
  // must never succeed silently with a different shape, and must never crash.
  const auto name = unique_name();
  { channel c = make(name, {.capacity = 64}); ASSERT_OPEN(c); }
  const auto path = shm_path(job_, name);
  for (off_t off : {0, 3, 8, 12, 16, 24}) {
    SCOPED_TRACE("offset " + std::to_string(off));
    int fd = open_raw(path);
    ASSERT_GE(fd, 0);
    unsigned char b = 0;
    ASSERT_EQ(pread(fd, &b, 1, off), 1);
    unsigned char x = b ^ 0x5a;
    ASSERT_EQ(pwrite(fd, &x, 1, off), 1);
    auto r = channel::open(name, options());
    if (r) {
      // Accepting it is only fine if the byte was not part of anything validated: the shape must
      // then be exactly what was created.
      EXPECT_EQ(r->capacity(), 64u);
    } else {
      EXPECT_TRUE(r.error() == errc::corrupted || r.error() == errc::version_mismatch ||
                  r.error() == errc::layout_mismatch)
          << "got " << r.error().message();
    }
    ASSERT_EQ(pwrite(fd, &b, 1, off), 1);  // restore
    ::close(fd);
  }
  auto ok = channel::open(name, options());
  EXPECT_TRUE(ok) << "restored header must open again: " << ok.error().message();
}

TEST_F(ChannelUnit, TruncatedSegmentRejected) {
  const auto name = unique_name();
  { channel c = make(name, {.capacity = 64}); ASSERT_OPEN(c); }
  int fd = open_raw(shm_path(job_, name));
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 100), 0);
  ::close(fd);
  auto r = channel::open(name, options());
  ASSERT_FALSE(r) << "open accepted a 100-byte segment";
  EXPECT_TRUE(r.error() == errc::layout_mismatch || r.error() == errc::corrupted) << "got " << r.error().message();
  EXPECT_FALSE(r.error().message().empty());
  std::printf("truncated -> '%s'\n", r.error().message().c_str());
}

TEST_F(ChannelUnit, ErrorCategory) {
  for (int e = static_cast<int>(errc::invalid_name); e <= static_cast<int>(errc::out_of_memory); ++e) {
    std::error_code ec = static_cast<errc>(e);
    EXPECT_EQ(&ec.category(), &chanpool_category());
    EXPECT_FALSE(ec.message().empty()) << e;
    EXPECT_TRUE(ec);
  }
  EXPECT_NE(std::string(chanpool_category().name()), "");
  std::error_code a = errc::not_found, b = errc::corrupted;
  EXPECT_NE(a.message(), b.message());
}

TEST_F(ChannelUnit, EmptyHandleIsInvalid) {
  channel c;
  EXPECT_FALSE(c.is_open());
  auto m = pattern(4);
  std::array<std::byte, 16> buf{};
  std::size_t len = 0;
  EXPECT_EQ(c.send(as_bytes(m)), status::invalid);
  EXPECT_EQ(c.try_recv(buf, len), status::invalid);
  EXPECT_EQ(c.recv(buf, len, 1ms), status::invalid);
  ch::send_claim sc;
  EXPECT_EQ(c.claim_send(4, sc, ch::try_once), status::invalid);
  ch::recv_claim rc;
  EXPECT_EQ(c.claim_recv(rc, ch::try_once), status::invalid);
  EXPECT_EQ(c.repair(), 0u);
  c.seal();   // no crash
  c.close();  // no crash
}

// ---- send / recv ----------------------------------------------------------------------------

TEST_F(ChannelUnit, RoundTripSizes) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  const std::size_t inl = c.inline_capacity();
  const std::size_t max = c.max_message_bytes();
  ASSERT_GT(inl, 0u);
  ASSERT_GE(max, std::size_t{1} << 20) << "default 16 MiB heap should allow 1 MiB messages";
  std::printf("inline_capacity=%zu max_message_bytes=%zu\n", inl, max);
  std::vector<std::size_t> sizes = {0, 1, inl - 1, inl, inl + 1, 4096, 4097, std::size_t{1} << 20, max};
  unsigned salt = 0;
  for (std::size_t n : sizes) {
    SCOPED_TRACE("size " + std::to_string(n));
    auto m = pattern(n, ++salt);
    ASSERT_EQ(c.send(as_bytes(m), kLong), status::ok);
    std::vector<std::byte> got;
    ASSERT_EQ(recv_into(c, got), status::ok);
    ASSERT_EQ(got.size(), n);
    EXPECT_TRUE(got == m) << "payload differs";
    // Same size through the vector API.
    ASSERT_EQ(c.send(as_bytes(m), kLong), status::ok);
    std::vector<std::byte> v(3);
    ASSERT_EQ(c.recv(v, kLong), status::ok);
    EXPECT_TRUE(v == m);
  }
  auto big = pattern(max + 1);
  EXPECT_EQ(c.send(as_bytes(big), ch::try_once), status::too_large);
  EXPECT_EQ(c.send(as_bytes(big)), status::too_large) << "too_large must not block";
  ch::send_claim sc;
  EXPECT_EQ(c.claim_send(max + 1, sc, ch::try_once), status::too_large);
  EXPECT_FALSE(sc.active());
  std::array<std::byte, 8> buf{};
  std::size_t len = 0;
  EXPECT_EQ(c.try_recv(buf, len), status::empty) << "rejected sends leave nothing behind";
}

TEST_F(ChannelUnit, HeaplessChannelIsInlineOnly) {
  channel c = make(unique_name(), {.capacity = 8, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_OPEN(c);
  EXPECT_EQ(c.max_message_bytes(), c.inline_capacity());
  auto fits = pattern(c.inline_capacity());
  EXPECT_EQ(c.try_send(as_bytes(fits)), status::ok);
  auto over = pattern(c.inline_capacity() + 1);
  EXPECT_EQ(c.try_send(as_bytes(over)), status::too_large);
  std::vector<std::byte> got;
  EXPECT_EQ(recv_into(c, got), status::ok);
  EXPECT_TRUE(got == fits);
}

TEST_F(ChannelUnit, RecvIntoTooSmallBufferKeepsMessage) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  for (std::size_t n : {std::size_t{100}, std::size_t{5000}}) {  // inline and heap
    SCOPED_TRACE("size " + std::to_string(n));
    auto m = pattern(n, 3);
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    std::array<std::byte, 10> small{};
    std::size_t len = 0;
    EXPECT_EQ(c.try_recv(small, len), status::too_large);
    EXPECT_EQ(len, n);
    len = 0;
    EXPECT_EQ(c.recv(small, len, 10ms), status::too_large) << "too_large must not wait";
    EXPECT_EQ(len, n);
    EXPECT_EQ(c.poll().count, 1u);
    std::vector<std::byte> big(n + 10);
    EXPECT_EQ(c.try_recv(big, len), status::ok);
    ASSERT_EQ(len, n);
    EXPECT_TRUE(std::equal(m.begin(), m.end(), big.begin()));
    EXPECT_EQ(c.try_recv(big, len), status::empty);
  }
}

TEST_F(ChannelUnit, TryRecvOnEmpty) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  std::array<std::byte, 16> buf{};
  std::size_t len = 123;
  EXPECT_EQ(c.try_recv(buf, len), status::empty);
  ch::recv_claim rc;
  EXPECT_EQ(c.claim_recv(rc, ch::try_once), status::empty);
  EXPECT_FALSE(rc.active());
  std::vector<std::byte> v;
  EXPECT_EQ(c.recv(v, ch::try_once), status::empty);
}

TEST_F(ChannelUnit, TrySendOnFull) {
  channel c = make(unique_name(), {.capacity = 4});
  ASSERT_OPEN(c);
  auto m = pattern(8);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(c.try_send(as_bytes(m)), status::ok) << i;
  EXPECT_EQ(c.try_send(as_bytes(m)), status::full);
  ch::send_claim sc;
  EXPECT_EQ(c.claim_send(8, sc, ch::try_once), status::full);
  EXPECT_FALSE(sc.active());
  std::array<std::byte, 16> buf{};
  std::size_t len = 0;
  EXPECT_EQ(c.try_recv(buf, len), status::ok);
  EXPECT_EQ(c.try_send(as_bytes(m)), status::ok) << "one slot freed";
  EXPECT_EQ(c.try_send(as_bytes(m)), status::full);
}

TEST_F(ChannelUnit, RecvTimeoutOnEmpty) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  for (auto mode : {ch::wait_mode::adaptive, ch::wait_mode::spin, ch::wait_mode::idle}) {
    SCOPED_TRACE("wait_mode " + std::to_string(static_cast<int>(mode)));
    c.set_wait({.mode = mode});
    std::array<std::byte, 16> buf{};
    std::size_t len = 0;
    auto t0 = clock::now();
    EXPECT_EQ(c.recv(buf, len, 20ms), status::timeout);
    double ms = ms_since(t0);
    EXPECT_GE(ms, 19.0);
    EXPECT_LT(ms, 2000.0);
    ch::recv_claim rc;
    t0 = clock::now();
    EXPECT_EQ(c.claim_recv(rc, 20ms), status::timeout);
    EXPECT_GE(ms_since(t0), 19.0);
  }
}

TEST_F(ChannelUnit, SendTimeoutOnFull) {
  channel c = make(unique_name(), {.capacity = 4});
  ASSERT_OPEN(c);
  auto m = pattern(8);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(c.try_send(as_bytes(m)), status::ok);
  auto t0 = clock::now();
  EXPECT_EQ(c.send(as_bytes(m), 20ms), status::timeout);
  double ms = ms_since(t0);
  EXPECT_GE(ms, 19.0);
  EXPECT_LT(ms, 2000.0);
}

TEST_F(ChannelUnit, FifoSingleProducer) {
  channel c = make(unique_name(), {.capacity = 64});
  ASSERT_OPEN(c);
  constexpr std::uint64_t kCount = 10000;
  auto consumer = std::async(std::launch::async, [&]() -> std::string {
    std::vector<std::byte> buf(256);
    for (std::uint64_t i = 0; i < kCount; ++i) {
      std::size_t len = 0;
      status s = c.recv(buf, len, kLong);
      if (s != status::ok) return "recv #" + std::to_string(i) + ": " + std::string(to_string(s));
      msg_info info;
      if (!verify_message({buf.data(), len}, info)) return "bad checksum at #" + std::to_string(i);
      if (info.seq != i) return "expected seq " + std::to_string(i) + " got " + std::to_string(info.seq);
    }
    return {};
  });
  for (std::uint64_t i = 0; i < kCount; ++i) {
    auto m = make_message(24 + (i % 64), 7, i);
    ASSERT_EQ(c.send(as_bytes(m), kLong), status::ok) << i;
  }
  ASSERT_EQ(consumer.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(consumer.get(), "");
}

// ---- zero-copy --------------------------------------------------------------------------------

TEST_F(ChannelUnit, ClaimSendCommit) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  for (std::size_t n : {std::size_t{64}, c.inline_capacity(), std::size_t{10000}}) {
    SCOPED_TRACE("claim " + std::to_string(n));
    ch::send_claim sc;
    ASSERT_EQ(c.claim_send(n, sc, kLong), status::ok);
    ASSERT_TRUE(sc.active());
    ASSERT_EQ(sc.data().size(), n);
    auto m = pattern(n, 9);
    std::memcpy(sc.data().data(), m.data(), n);
    EXPECT_EQ(c.poll().count, 1u) << "a held send claim counts (a message being sent)";
    ASSERT_EQ(c.commit(sc), status::ok);
    EXPECT_FALSE(sc.active());
    EXPECT_EQ(c.commit(sc), status::invalid) << "double commit";
    std::vector<std::byte> got;
    ASSERT_EQ(recv_into(c, got), status::ok);
    EXPECT_TRUE(got == m);

    // Commit fewer bytes than claimed.
    ASSERT_EQ(c.claim_send(n, sc, kLong), status::ok);
    std::memcpy(sc.data().data(), m.data(), n);
    ASSERT_EQ(c.commit(sc, n / 2), status::ok);
    ASSERT_EQ(recv_into(c, got), status::ok);
    ASSERT_EQ(got.size(), n / 2);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), m.begin()));
  }
  ch::send_claim empty;
  EXPECT_EQ(c.commit(empty), status::invalid);
  EXPECT_EQ(c.abandon(empty), status::invalid);
}

TEST_F(ChannelUnit, ClaimRecvRelease) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  for (std::size_t n : {std::size_t{0}, std::size_t{50}, std::size_t{20000}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    auto m = pattern(n, 4);
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    ch::recv_claim rc;
    ASSERT_EQ(c.claim_recv(rc, kLong), status::ok);
    ASSERT_TRUE(rc.active() || n == 0);
    ASSERT_EQ(rc.data().size(), n);
    EXPECT_TRUE(std::equal(m.begin(), m.end(), rc.data().begin()));
    EXPECT_EQ(c.poll().count, 0u) << "poll().count excludes messages claimed by a receiver";
    std::array<std::byte, 8> buf{};
    std::size_t len = 0;
    EXPECT_EQ(c.try_recv(buf, len), status::empty) << "a claimed message is not delivered twice";
    ASSERT_EQ(c.release(rc), status::ok);
    EXPECT_FALSE(rc.active());
    EXPECT_EQ(c.release(rc), status::invalid) << "double release";
    EXPECT_EQ(c.poll().count, 0u);
  }
}

TEST_F(ChannelUnit, AbandonedClaimIsSkipped) {
  channel c = make(unique_name(), {.capacity = 8});
  ASSERT_OPEN(c);
  for (std::size_t n : {std::size_t{40}, std::size_t{9000}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    ch::send_claim sc;
    ASSERT_EQ(c.claim_send(n, sc, kLong), status::ok);
    std::memset(sc.data().data(), 0xee, n);
    ASSERT_EQ(c.abandon(sc), status::ok);
    EXPECT_FALSE(sc.active());
    EXPECT_EQ(c.abandon(sc), status::invalid);
    std::array<std::byte, 64> buf{};
    std::size_t len = 0;
    EXPECT_EQ(c.try_recv(buf, len), status::empty) << "receiver must never see an abandoned claim";
    auto next = pattern(12, 1);
    ASSERT_EQ(c.send(as_bytes(next)), status::ok);
    ASSERT_EQ(c.recv(buf, len, kLong), status::ok);
    ASSERT_EQ(len, 12u);
    EXPECT_TRUE(std::equal(next.begin(), next.end(), buf.begin()));
  }
  // Abandon while a receiver already waits behind the claim: it gets the next message.
  ch::send_claim sc;
  ASSERT_EQ(c.claim_send(16, sc, kLong), status::ok);
  auto waiter = std::async(std::launch::async, [&] {
    std::array<std::byte, 64> buf{};
    std::size_t len = 0;
    status s = c.recv(buf, len, kLong);
    return std::make_pair(s, len);
  });
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(c.abandon(sc), status::ok);
  auto next = pattern(33, 2);
  ASSERT_EQ(c.send(as_bytes(next)), status::ok);
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  auto [s, len] = waiter.get();
  EXPECT_EQ(s, status::ok);
  EXPECT_EQ(len, 33u);
  EXPECT_EQ(c.stats().lost_messages, 0u) << "abandoned claims are not lost messages";
}

TEST_F(ChannelUnit, HeapExhaustionByClaims) {
  channel c = make(unique_name(), {.capacity = 16, .slot_bytes = 128, .heap_bytes = 64 << 10, .heap_block_bytes = 4096});
  ASSERT_OPEN(c);
  EXPECT_LE(c.max_message_bytes(), std::size_t{64} << 10);
  constexpr std::size_t k16 = 16 << 10;
  std::vector<ch::send_claim> claims(8);
  std::size_t held = 0;
  status last = status::ok;
  for (; held < claims.size(); ++held) {
    last = c.claim_send(k16, claims[held], ch::try_once);
    if (last != status::ok) break;
  }
  EXPECT_EQ(last, status::full) << "heap exhaustion reports full";
  EXPECT_GE(held, 2u);
  EXPECT_LE(held, 4u);
  EXPECT_EQ(c.poll().count, held);
  // Small messages still fit inline.
  auto small = pattern(16);
  EXPECT_EQ(c.try_send(as_bytes(small)), status::ok);
  // A bounded wait for heap space times out rather than hangs.
  ch::send_claim extra;
  EXPECT_EQ(c.claim_send(k16, extra, 20ms), status::timeout);
  ASSERT_EQ(c.abandon(claims[0]), status::ok);
  EXPECT_EQ(c.claim_send(k16, extra, ch::try_once), status::ok) << "freed heap space is reusable";
  EXPECT_EQ(c.abandon(extra), status::ok);
  for (std::size_t i = 1; i < held; ++i) EXPECT_EQ(c.abandon(claims[i]), status::ok);
  // All heap free again: the largest message fits.
  ch::send_claim whole;
  EXPECT_EQ(c.claim_send(c.max_message_bytes(), whole, ch::try_once), status::ok);
  EXPECT_EQ(c.abandon(whole), status::ok);
}

// While few messages are in flight, heap messages reuse the blocks at the heap's low end (warm in
// the caches, faulted in once) instead of walking the whole heap; a backlog beyond that window
// still finds room anywhere, and once it drains the low end is used again.
TEST_F(ChannelUnit, HeapMessagesReuseWarmBlocksWhileFewAreInFlight) {
  channel c = make(unique_name(), {.capacity = 1024, .slot_bytes = 128, .heap_bytes = 16 << 20, .heap_block_bytes = 4096});
  ASSERT_OPEN(c);
  const std::byte* heap = c.heap_memory().data();
  constexpr std::size_t size = 8192, warm = 256 << 10;
  auto m = pattern(size, 3);
  std::vector<std::byte> got;
  std::size_t highest = 0;
  for (int i = 0; i < 2000; ++i) {  // 16 MiB through the heap, one or two messages at a time
    ch::send_claim sc;
    ASSERT_EQ(c.claim_send(size, sc, ch::try_once), status::ok);
    highest = std::max<std::size_t>(highest, static_cast<std::size_t>(sc.data().data() - heap));
    std::memcpy(sc.data().data(), m.data(), size);
    ASSERT_EQ(c.commit(sc), status::ok);
    if (i % 2 == 1) {
      ASSERT_EQ(recv_into(c, got), status::ok);
      ASSERT_EQ(recv_into(c, got), status::ok);
      ASSERT_TRUE(got == m);
    }
  }
  EXPECT_LT(highest, warm) << "messages walked the heap";
  // A backlog of 8 MiB: past the window, into the rest of the heap.
  for (int i = 0; i < 1024; ++i) ASSERT_EQ(c.try_send(as_bytes(m)), status::ok) << i;
  for (int i = 0; i < 1024; ++i) {
    ASSERT_EQ(recv_into(c, got), status::ok);
    ASSERT_TRUE(got == m);
  }
  ch::send_claim sc;
  ASSERT_EQ(c.claim_send(size, sc, ch::try_once), status::ok);
  EXPECT_LT(static_cast<std::size_t>(sc.data().data() - heap), warm) << "the low end is used again once drained";
  EXPECT_EQ(c.abandon(sc), status::ok);
}

// Windows of messages larger than the low end: they cycle through the memory the first window
// used instead of walking the whole heap (whose untouched pages cost a fault each on first use).
TEST_F(ChannelUnit, HeapWindowsStayInMemoryUsedBefore) {
  channel c = make(unique_name(), {.capacity = 1024, .slot_bytes = 128, .heap_bytes = 32 << 20, .heap_block_bytes = 4096});
  ASSERT_OPEN(c);
  const std::byte* heap = c.heap_memory().data();
  constexpr std::size_t size = 64 << 10, in_flight = 64;  // 4 MiB per window
  std::vector<std::vector<std::byte>> sent;
  std::vector<std::byte> got;
  std::size_t highest = 0;
  for (int w = 0; w < 24; ++w) {  // 96 MiB through a 32 MiB heap
    for (std::size_t i = 0; i < in_flight; ++i) {
      auto m = pattern(size, static_cast<int>(w * in_flight + i));
      ch::send_claim sc;
      ASSERT_EQ(c.claim_send(size, sc, ch::try_once), status::ok) << w << " " << i;
      highest = std::max<std::size_t>(highest, static_cast<std::size_t>(sc.data().data() - heap) + size);
      std::memcpy(sc.data().data(), m.data(), size);
      ASSERT_EQ(c.commit(sc), status::ok);
      sent.push_back(std::move(m));
    }
    for (auto& m : sent) {
      ASSERT_EQ(recv_into(c, got), status::ok);
      ASSERT_TRUE(got == m);
    }
    sent.clear();
  }
  // One window plus the low end and a message of slack, not the whole heap.
  EXPECT_LE(highest, in_flight * size + (256 << 10) + size) << "windows walked the heap";
}

TEST_F(ChannelUnit, HeapExhaustionByQueuedMessages) {
  channel c = make(unique_name(), {.capacity = 16, .slot_bytes = 128, .heap_bytes = 64 << 10, .heap_block_bytes = 4096});
  ASSERT_OPEN(c);
  auto m = pattern(16 << 10, 5);
  int sent = 0;
  status s;
  while ((s = c.try_send(as_bytes(m))) == status::ok) ++sent;
  EXPECT_EQ(s, status::full);
  EXPECT_GE(sent, 2);
  EXPECT_LE(sent, 4);
  // Unreceived messages hold heap space; receiving (or releasing a claim) frees it.
  ch::recv_claim rc;
  ASSERT_EQ(c.claim_recv(rc, kLong), status::ok);
  EXPECT_EQ(c.try_send(as_bytes(m)), status::full) << "space is held until release()";
  ASSERT_EQ(c.release(rc), status::ok);
  EXPECT_EQ(c.try_send(as_bytes(m)), status::ok);
  std::vector<std::byte> got;
  for (int i = 0; i < sent; ++i) {
    ASSERT_EQ(recv_into(c, got), status::ok);
    EXPECT_TRUE(got == m);
  }
}

// ---- seal -------------------------------------------------------------------------------------

TEST_F(ChannelUnit, SealRejectsSendsAndDrains) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  auto other = channel::open(c.name(), options());
  ASSERT_TRUE(other);
  for (int i = 0; i < 3; ++i) {
    auto m = make_message(40, 1, i);
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  }
  c.seal();
  auto m = pattern(8);
  EXPECT_EQ(c.send(as_bytes(m)), status::closed);
  EXPECT_EQ(c.try_send(as_bytes(m)), status::closed);
  EXPECT_EQ(other->try_send(as_bytes(m)), status::closed) << "seal is in the segment, not the handle";
  ch::send_claim sc;
  EXPECT_EQ(c.claim_send(8, sc, ch::try_once), status::closed);
  EXPECT_TRUE(c.poll().closed);
  std::vector<std::byte> buf(64);
  for (std::uint64_t i = 0; i < 3; ++i) {
    std::size_t len = 0;
    ASSERT_EQ(other->recv(buf, len, kLong), status::ok) << "queued messages drain after seal";
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info));
    EXPECT_EQ(info.seq, i);
  }
  std::size_t len = 0;
  EXPECT_EQ(other->try_recv(buf, len), status::closed);
  EXPECT_EQ(other->recv(buf, len, kLong), status::closed) << "drained+sealed returns closed at once";
  ch::recv_claim rc;
  EXPECT_EQ(c.claim_recv(rc, ch::try_once), status::closed);
}

TEST_F(ChannelUnit, SealWakesBlockedReceiver) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  c.set_wait({.mode = ch::wait_mode::idle});
  auto t0 = clock::now();
  auto waiter = std::async(std::launch::async, [&] {
    std::array<std::byte, 16> buf{};
    std::size_t len = 0;
    return c.recv(buf, len, std::chrono::seconds(30));
  });
  std::this_thread::sleep_for(30ms);
  c.seal();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready) << "blocked receiver not woken by seal";
  EXPECT_EQ(waiter.get(), status::closed);
  EXPECT_LT(ms_since(t0), 5000.0);
}

TEST_F(ChannelUnit, SealWakesBlockedSender) {
  channel c = make(unique_name(), {.capacity = 2});
  ASSERT_OPEN(c);
  auto m = pattern(8);
  ASSERT_EQ(c.try_send(as_bytes(m)), status::ok);
  ASSERT_EQ(c.try_send(as_bytes(m)), status::ok);
  auto waiter = std::async(std::launch::async, [&] { return c.send(as_bytes(m), std::chrono::seconds(30)); });
  std::this_thread::sleep_for(30ms);
  c.seal();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready) << "blocked sender not woken by seal";
  EXPECT_EQ(waiter.get(), status::closed);
}

// ---- state ------------------------------------------------------------------------------------

TEST_F(ChannelUnit, PollInfo) {
  channel c = make(unique_name(), {.capacity = 8});
  ASSERT_OPEN(c);
  auto p = c.poll();
  EXPECT_FALSE(p.readable);
  EXPECT_TRUE(p.writable);
  EXPECT_FALSE(p.closed);
  EXPECT_EQ(p.count, 0u);
  EXPECT_EQ(p.capacity, 8u);
  EXPECT_EQ(p.blocked_receivers, 0u);
  EXPECT_EQ(p.blocked_senders, 0u);
  auto m = pattern(8);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.try_send(as_bytes(m)), status::ok);
  p = c.poll();
  EXPECT_TRUE(p.readable);
  EXPECT_TRUE(p.writable);
  EXPECT_EQ(p.count, 3u);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.try_send(as_bytes(m)), status::ok);
  p = c.poll();
  EXPECT_TRUE(p.readable);
  EXPECT_FALSE(p.writable);
  EXPECT_EQ(p.count, 8u);
  std::array<std::byte, 16> buf{};
  std::size_t len = 0;
  for (int i = 0; i < 8; ++i) ASSERT_EQ(c.try_recv(buf, len), status::ok);
  p = c.poll();
  EXPECT_FALSE(p.readable);
  EXPECT_TRUE(p.writable);
  EXPECT_EQ(p.count, 0u);
  c.seal();
  p = c.poll();
  EXPECT_TRUE(p.closed);
  EXPECT_TRUE(p.readable) << "sealed counts as readable (recv reports closed)";
}

TEST_F(ChannelUnit, PollCountsBlockedReceivers) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  c.set_wait({.mode = ch::wait_mode::idle});
  auto waiter = std::async(std::launch::async, [&] {
    std::array<std::byte, 16> buf{};
    std::size_t len = 0;
    return c.recv(buf, len, std::chrono::seconds(10));
  });
  std::uint32_t seen = 0;
  for (auto end = clock::now() + 3s; clock::now() < end && seen == 0;) {
    seen = c.poll().blocked_receivers;
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(seen, 1u);
  auto m = pattern(4);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiter.get(), status::ok);
  EXPECT_EQ(c.poll().blocked_receivers, 0u);
}

// Starts `count` threads, each with its own handle on `name` that sleeps at once when it waits
// and trusts a slot holder for 30 s: a missed wake-up then shows as a 30 s sleep, which the
// callers' 10 s bound catches. Each thread returns what `call(handle)` returned.
template <class Call>
std::vector<std::future<status>> start_sleepers(const std::string& name, const ch::open_options& o, int count,
                                                Call call) {
  std::vector<std::future<status>> threads;
  for (int i = 0; i < count; ++i)
    threads.push_back(std::async(std::launch::async, [name, o, call] {
      auto mine = channel::open(name, o);
      if (!mine) return status::invalid;
      mine->set_wait({.mode = ch::wait_mode::idle, .liveness_check = 30s});
      return call(*mine);
    }));
  return threads;
}

// Waits up to 5 s for `count` callers blocked on `c` (poll().blocked_receivers or _senders).
template <class Count>
bool wait_for_blocked(channel& c, std::uint32_t count, Count blocked) {
  for (auto end = clock::now() + 5s; clock::now() < end;) {
    if (blocked(c.poll()) >= count) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// A publisher that finds one sleeper clears the armed bit so that the messages behind it cost no
// futex_wake; with several sleepers it must not, or the second and later ones sleep on.
TEST_F(ChannelUnit, BurstToSeveralSleepingReceiversWakesEachOfThem) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_OPEN(c);
  constexpr int kReceivers = 4;
  auto receivers = start_sleepers(name, options(), kReceivers, [](channel& mine) {
    std::array<std::byte, 16> buf{};
    std::size_t len = 0;
    return mine.recv(buf, len, 20s);
  });
  ASSERT_TRUE(wait_for_blocked(c, kReceivers, [](const ch::poll_info& p) { return p.blocked_receivers; }));
  const auto m = pattern(8);
  for (int i = 0; i < kReceivers; ++i) ASSERT_EQ(c.send(as_bytes(m)), status::ok);  // a burst
  for (auto& r : receivers) {
    ASSERT_EQ(r.wait_for(10s), std::future_status::ready) << "a receiver was not woken";
    EXPECT_EQ(r.get(), status::ok);
  }
}

TEST_F(ChannelUnit, ReleasesWakeEachSenderSleepingOnAFullChannel) {
  const auto name = unique_name();
  channel_config cfg;
  cfg.capacity = 2;
  cfg.heap_bytes = 0;
  channel c = make(name, cfg);
  ASSERT_OPEN(c);
  const auto m = pattern(8);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  constexpr int kSenders = 4;
  auto senders = start_sleepers(name, options(), kSenders, [m](channel& mine) { return mine.send(as_bytes(m), 20s); });
  ASSERT_TRUE(wait_for_blocked(c, kSenders, [](const ch::poll_info& p) { return p.blocked_senders; }));
  std::vector<std::byte> got;
  for (int i = 0; i < kSenders + 2; ++i) ASSERT_EQ(recv_into(c, got), status::ok) << "message " << i;
  for (auto& s : senders) {
    ASSERT_EQ(s.wait_for(10s), std::future_status::ready) << "a sender was not woken";
    EXPECT_EQ(s.get(), status::ok);
  }
}

TEST_F(ChannelUnit, StatsInitiallyZero) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  auto s = c.stats();
  EXPECT_EQ(s.lost_messages, 0u);
  EXPECT_EQ(s.repaired_slots, 0u);
  EXPECT_EQ(s.reclaimed_heap_blocks, 0u);
  EXPECT_EQ(s.corrupted_messages, 0u);
  EXPECT_GE(s.attached_processes, 1u);
  EXPECT_EQ(c.repair(), 0u) << "nothing to repair on a healthy channel";
  // Traffic does not change the fault counters.
  auto m = pattern(5000);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  std::vector<std::byte> got;
  for (int i = 0; i < 10; ++i) ASSERT_EQ(recv_into(c, got), status::ok);
  s = c.stats();
  EXPECT_EQ(s.lost_messages, 0u);
  EXPECT_EQ(s.repaired_slots, 0u);
  EXPECT_EQ(s.reclaimed_heap_blocks, 0u);
  EXPECT_EQ(s.corrupted_messages, 0u);
}

TEST_F(ChannelUnit, RecvVectorResizes) {
  channel c = make(unique_name());
  ASSERT_OPEN(c);
  for (std::size_t n : {std::size_t{300}, std::size_t{0}, std::size_t{70000}, std::size_t{7}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    auto m = pattern(n, 8);
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    std::vector<std::byte> out(1234, std::byte{0x11});
    ASSERT_EQ(c.recv(out, kLong), status::ok);
    EXPECT_EQ(out.size(), n);
    EXPECT_TRUE(out == m);
  }
  std::vector<std::byte> out;
  EXPECT_EQ(c.recv(out, 5ms), status::timeout);
}

// 4 producer threads x 4 consumer threads; zero lost, zero duplicated, per-producer order
// holds within each consumer.
TEST_F(ChannelUnit, MpmcThreads) {
  channel c = make(unique_name(), {.capacity = 256});
  ASSERT_OPEN(c);
  constexpr int kProducers = 4, kConsumers = 4;
  const std::uint64_t per = kSanitized ? 20000 : 50000;
  const std::uint64_t total = per * kProducers;
  std::vector<std::atomic<std::uint8_t>> seen(total);
  std::atomic<std::uint64_t> received{0}, dups{0}, bad{0}, disorder{0}, errors{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      std::vector<std::byte> m;
      for (std::uint64_t i = 0; i < per; ++i) {
        m = make_message(24 + (i % 72), static_cast<std::uint32_t>(p), i);
        if (c.send(as_bytes(m), std::chrono::seconds(20)) != status::ok) {
          errors.fetch_add(1);
          return;
        }
      }
    });
  }
  for (int k = 0; k < kConsumers; ++k) {
    threads.emplace_back([&] {
      std::vector<std::byte> buf(256);
      std::array<std::int64_t, kProducers> last;
      last.fill(-1);
      auto idle_since = clock::now();
      while (received.load() < total) {
        std::size_t len = 0;
        status s = c.recv(buf, len, 10ms);
        if (s == status::timeout) {
          if (clock::now() - idle_since > 20s) {
            errors.fetch_add(1);
            return;
          }
          continue;
        }
        if (s != status::ok) {
          errors.fetch_add(1);
          return;
        }
        idle_since = clock::now();
        msg_info info;
        if (!verify_message({buf.data(), len}, info) || info.producer >= kProducers || info.seq >= per) {
          bad.fetch_add(1);
        } else {
          if (seen[info.producer * per + info.seq].exchange(1) != 0) dups.fetch_add(1);
          if (static_cast<std::int64_t>(info.seq) <= last[info.producer]) disorder.fetch_add(1);
          last[info.producer] = static_cast<std::int64_t>(info.seq);
        }
        received.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(dups.load(), 0u);
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(disorder.load(), 0u);
  std::uint64_t missing = 0;
  for (auto& s : seen) missing += s.load() == 0;
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(c.poll().count, 0u);
}

// ---- poll_set ---------------------------------------------------------------------------------

TEST_F(PollSet, EmptySetIsInvalid) {
  ch::poll_set ps;
  std::vector<ch::poll_event> ready;
  EXPECT_EQ(ps.wait(ready, 1ms), status::invalid);
}

TEST_F(PollSet, TimeoutThenWakeOnSecondChannel) {
  channel a = make(unique_name("a")), b = make(unique_name("b"));
  ASSERT_OPEN(a);
  ASSERT_OPEN(b);
  ch::poll_set ps;
  EXPECT_EQ(ps.add(a, ch::readable), 0u);
  EXPECT_EQ(ps.add(b, ch::readable), 1u);
  EXPECT_EQ(ps.size(), 2u);
  std::vector<ch::poll_event> ready;
  auto t0 = clock::now();
  EXPECT_EQ(ps.wait(ready, 20ms), status::timeout);
  EXPECT_GE(ms_since(t0), 19.0);

  std::thread sender([&] {
    std::this_thread::sleep_for(20ms);
    auto m = pattern(9);
    (void)b.send(as_bytes(m));
  });
  t0 = clock::now();
  status s = ps.wait(ready, 5s);
  double ms = ms_since(t0);
  sender.join();
  ASSERT_EQ(s, status::ok);
  EXPECT_LT(ms, 3000.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].index, 1u);
  EXPECT_EQ(ready[0].events & ch::readable, unsigned{ch::readable});
  std::array<std::byte, 16> buf{};
  std::size_t len = 0;
  EXPECT_EQ(b.try_recv(buf, len), status::ok);
  EXPECT_EQ(ps.wait(ready, ch::try_once), status::timeout);
}

TEST_F(PollSet, WritableReadyAtOnce) {
  channel a = make(unique_name("a"), {.capacity = 2});
  ASSERT_OPEN(a);
  ch::poll_set ps;
  ps.add(a, ch::writable);
  std::vector<ch::poll_event> ready;
  auto t0 = clock::now();
  ASSERT_EQ(ps.wait(ready, 5s), status::ok);
  EXPECT_LT(ms_since(t0), 100.0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].index, 0u);
  EXPECT_EQ(ready[0].events, unsigned{ch::writable});
  // Full: not writable until a receive frees a slot.
  auto m = pattern(4);
  ASSERT_EQ(a.try_send(as_bytes(m)), status::ok);
  ASSERT_EQ(a.try_send(as_bytes(m)), status::ok);
  EXPECT_EQ(ps.wait(ready, 10ms), status::timeout);
  std::thread rx([&] {
    std::this_thread::sleep_for(20ms);
    std::array<std::byte, 8> buf{};
    std::size_t len = 0;
    (void)a.try_recv(buf, len);
  });
  status s = ps.wait(ready, 5s);
  rx.join();
  EXPECT_EQ(s, status::ok);
}

TEST_F(PollSet, ReadableAndWritableTogether) {
  channel a = make(unique_name("a"));
  ASSERT_OPEN(a);
  ch::poll_set ps;
  ps.add(a, ch::readable | ch::writable);
  auto m = pattern(4);
  ASSERT_EQ(a.try_send(as_bytes(m)), status::ok);
  std::vector<ch::poll_event> ready;
  ASSERT_EQ(ps.wait(ready, ch::try_once), status::ok);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].events, unsigned{ch::readable | ch::writable});
}

TEST_F(PollSet, SealedIsReadable) {
  channel a = make(unique_name("a"));
  ASSERT_OPEN(a);
  ch::poll_set ps;
  ps.add(a, ch::readable);
  std::thread sealer([&] {
    std::this_thread::sleep_for(20ms);
    a.seal();
  });
  std::vector<ch::poll_event> ready;
  status s = ps.wait(ready, 5s);
  sealer.join();
  ASSERT_EQ(s, status::ok) << "seal must wake a poll_set waiter";
  ASSERT_EQ(ready.size(), 1u);
  std::array<std::byte, 8> buf{};
  std::size_t len = 0;
  EXPECT_EQ(a.try_recv(buf, len), status::closed);
}

// A sender thread sends one message per round at a slightly varying moment; the poller must be
// woken every time (a missed wake-up shows as a 5 s timeout instead of a hang).
TEST_F(PollSet, NoMissedWakeups) {
  channel a = make(unique_name("a")), b = make(unique_name("b"));
  ASSERT_OPEN(a);
  ASSERT_OPEN(b);
  ch::poll_set ps;
  ps.add(a, ch::readable);
  ps.add(b, ch::readable);
  ps.set_spin(std::chrono::nanoseconds(0));  // go to sleep at once: the racy path
  constexpr int kRounds = 2000;
  std::atomic<int> round{-1};
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::minstd_rand rng(42);
    auto m = pattern(8);
    for (int r = 0; r < kRounds && !stop.load(); ++r) {
      while (round.load(std::memory_order_acquire) < r) {
        if (stop.load()) return;
        std::this_thread::yield();
      }
      // Vary the moment of the send relative to the poller's check-then-sleep.
      unsigned spin = rng() % 4000;
      for (unsigned i = 0; i < spin; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
      if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      channel& target = (r % 2) ? b : a;
      if (target.send(as_bytes(m), 5s) != status::ok) return;
    }
  });
  int missed = 0, wrong = 0;
  std::vector<ch::poll_event> ready;
  const auto deadline = clock::now() + 60s;
  int r = 0;
  for (; r < kRounds && clock::now() < deadline; ++r) {
    round.store(r, std::memory_order_release);
    status s = ps.wait(ready, 5s);
    if (s != status::ok) {
      ++missed;
      break;
    }
    channel& target = (r % 2) ? b : a;
    if (ready.size() != 1 || ready[0].index != static_cast<std::size_t>(r % 2)) ++wrong;
    std::array<std::byte, 16> buf{};
    std::size_t len = 0;
    if (target.recv(buf, len, 5s) != status::ok) {
      ++missed;
      break;
    }
  }
  stop.store(true);
  sender.join();
  EXPECT_EQ(missed, 0) << "poll_set missed a wake-up in round " << r;
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(r, kRounds) << "test-level deadline hit";
}

// ---- cleanup ----------------------------------------------------------------------------------

const ch::segment_record* find_record(const std::vector<ch::segment_record>& v, const std::string& name) {
  for (auto& r : v)
    if (r.channel_name == name) return &r;
  return nullptr;
}

TEST_F(Cleanup, ListShowsLiveChannel) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_OPEN(c);
  auto list = ch::list_segments(job_);
  const auto* r = find_record(list, name);
  ASSERT_NE(r, nullptr) << "created channel missing from list_segments(" << job_ << ")";
  EXPECT_EQ(r->job, job_);
  EXPECT_EQ(r->shm_name, shm_prefix(job_) + name);
  EXPECT_GE(r->live_processes, 1u);
  EXPECT_FALSE(r->stale);
  EXPECT_EQ(r->creator_pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_GT(r->bytes, 0u);
  EXPECT_TRUE(r->problem.empty()) << r->problem;
  for (auto& rec : list) EXPECT_EQ(rec.job, job_) << "job filter";
  // Live channels survive cleanup.
  std::error_code ec;
  auto removed = ch::cleanup_stale({.job = job_}, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(find_record(removed, name), nullptr);
  EXPECT_EQ(access(shm_path(job_, name).c_str(), F_OK), 0);
}

// Creates `name` in `job` from a child that _exit()s without closing or unlinking.
bool create_in_dead_child(const std::string& job, const std::string& name) {
  pid_t pid = fork_child([&] {
    auto r = channel::create(name, {.capacity = 16}, opts(job));
    if (!r) return 1;
    auto m = pattern(8);
    (void)r->send(as_bytes(m));
    _exit(0);  // no close, no unlink, no destructors
  }, 30);
  auto e = wait_child(pid, 20s);
  if (!e.ok()) ADD_FAILURE() << e.describe();
  return e.ok();
}

TEST_F(Cleanup, StaleFromDeadChildIsRemoved) {
  const std::string job = extra_job("s");
  const auto dead = unique_name("dead"), live = unique_name("live");
  channel keep = channel::create(live, {}, opts(job)).value();
  ASSERT_TRUE(create_in_dead_child(job, dead));
  ASSERT_EQ(access(shm_path(job, dead).c_str(), F_OK), 0);

  auto list = ch::list_segments(job);
  const auto* r = find_record(list, dead);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->stale);
  EXPECT_EQ(r->live_processes, 0u);
  const auto* l = find_record(list, live);
  ASSERT_NE(l, nullptr);
  EXPECT_FALSE(l->stale);

  std::error_code ec;
  auto would = ch::cleanup_stale({.job = job, .dry_run = true}, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_EQ(would.size(), 1u);
  EXPECT_EQ(would[0].channel_name, dead);
  EXPECT_EQ(access(shm_path(job, dead).c_str(), F_OK), 0) << "dry_run removed the segment";

  auto removed = ch::cleanup_stale({.job = job}, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].channel_name, dead);
  EXPECT_NE(access(shm_path(job, dead).c_str(), F_OK), 0) << "stale segment still present";
  auto o = channel::open(dead, opts(job));
  EXPECT_FALSE(o);
  EXPECT_EQ(access(shm_path(job, live).c_str(), F_OK), 0) << "live segment removed";
  // Repeated cleanup finds nothing.
  EXPECT_TRUE(ch::cleanup_stale({.job = job}, ec).empty());
}

TEST_F(Cleanup, JobFilterLeavesOtherJobsAlone) {
  const std::string j1 = extra_job("a"), j2 = extra_job("b");
  const auto n1 = unique_name("x"), n2 = unique_name("y");
  ASSERT_TRUE(create_in_dead_child(j1, n1));
  ASSERT_TRUE(create_in_dead_child(j2, n2));
  std::error_code ec;
  auto removed = ch::cleanup_stale({.job = j1}, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].job, j1);
  EXPECT_NE(access(shm_path(j1, n1).c_str(), F_OK), 0);
  EXPECT_EQ(access(shm_path(j2, n2).c_str(), F_OK), 0) << "cleanup of job " << j1 << " touched job " << j2;
  auto l2 = ch::list_segments(j2);
  ASSERT_EQ(l2.size(), 1u);
  EXPECT_TRUE(l2[0].stale);
  removed = ch::cleanup_stale({.job = j2}, ec);
  EXPECT_EQ(removed.size(), 1u);
  EXPECT_NE(access(shm_path(j2, n2).c_str(), F_OK), 0);
}

}  // namespace
}  // namespace chanpool::test
