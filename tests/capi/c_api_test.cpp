// The C API (chanpool/channels.h): every function, its results and its error paths, and that C
// handles interoperate with C++ ones on the same channel.
#include "chanpool/channels.h"

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

constexpr std::int64_t kLongNs = 5'000'000'000;  // "forever" for a test: a hang fails instead

// Every code the header defines.
constexpr std::array kStatusCodes{CHANPOOL_OK,     CHANPOOL_FULL,      CHANPOOL_EMPTY,    CHANPOOL_TIMEOUT,
                                  CHANPOOL_CLOSED, CHANPOOL_PEER_DEAD, CHANPOOL_TOO_LARGE, CHANPOOL_INVALID};
constexpr std::array kSetupCodes{CHANPOOL_E_INVALID_NAME,    CHANPOOL_E_INVALID_CONFIG,  CHANPOOL_E_NOT_FOUND,
                                 CHANPOOL_E_ALREADY_EXISTS,  CHANPOOL_E_PERMISSION_DENIED,
                                 CHANPOOL_E_VERSION_MISMATCH, CHANPOOL_E_LAYOUT_MISMATCH, CHANPOOL_E_CORRUPTED,
                                 CHANPOOL_E_NOT_READY,       CHANPOOL_E_OUT_OF_MEMORY,   CHANPOOL_E_PEER_UNREACHABLE,
                                 CHANPOOL_E_TIMED_OUT};
constexpr std::array kOtherCodes{CHANPOOL_E_SYSTEM, CHANPOOL_E_NO_MEMORY, CHANPOOL_E_INTERNAL};

// Closes a C handle at scope exit, even after a failed assertion.
struct handle {
  chanpool_channel_t* ch = nullptr;
  handle() = default;
  handle(const handle&) = delete;
  handle& operator=(const handle&) = delete;
  ~handle() { chanpool_channel_close(ch); }
  chanpool_channel_t** out() { return &ch; }
  operator chanpool_channel_t*() const { return ch; }
};

struct poll_set_handle {
  chanpool_poll_set_t* set = nullptr;
  ~poll_set_handle() { chanpool_poll_set_destroy(set); }
  operator chanpool_poll_set_t*() const { return set; }
};

class CApi : public channel_test {
 protected:
  // Creates `name` in this test's job through the C API, or fails the test.
  void create(handle& h, const std::string& name, const chanpool_channel_config_t* config = nullptr) {
    const int rc = chanpool_channel_create(name.c_str(), job_.c_str(), config, h.out());
    ASSERT_EQ(rc, CHANPOOL_OK) << chanpool_strerror(rc);
    ASSERT_NE(h.ch, nullptr);
  }
  void open(handle& h, const std::string& name) {
    const int rc = chanpool_channel_open(name.c_str(), job_.c_str(), h.out());
    ASSERT_EQ(rc, CHANPOOL_OK) << chanpool_strerror(rc);
    ASSERT_NE(h.ch, nullptr);
  }
  // Writes a segment file by hand, as a foreign or broken creator would leave it.
  void write_segment(const std::string& name, const std::vector<unsigned char>& bytes) {
    std::string shm = "/";  // built step by step: GCC 12 warns (-Wrestrict) on "/" + std::string
    shm += shm_prefix(job_);
    shm += name;
    const int fd = shm_open(shm.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
};

// ---- codes ----------------------------------------------------------------------------------

TEST(CApiCodes, StrerrorDescribesEveryCode) {
  std::set<std::string> seen;
  auto check = [&](int code) {
    const char* s = chanpool_strerror(code);
    ASSERT_NE(s, nullptr) << code;
    EXPECT_GT(std::strlen(s), 0u) << code;
    EXPECT_STRNE(s, "unknown chanpool code") << code;
    EXPECT_TRUE(seen.insert(s).second) << "two codes share the description: " << s;
  };
  for (int c : kStatusCodes) check(c);
  for (int c : kSetupCodes) check(c);
  for (int c : kOtherCodes) check(c);
  // Status descriptions start with the C++ name; setup errors are the C++ category's messages.
  for (int c : kStatusCodes) {
    const std::string name(to_string(static_cast<status>(c)));
    EXPECT_EQ(std::string(chanpool_strerror(c)).rfind(name + ":", 0), 0u) << chanpool_strerror(c);
  }
  for (int c : kSetupCodes) EXPECT_EQ(chanpool_strerror(c), make_error_code(static_cast<errc>(-c)).message());
  // Every errc the C++ category knows has its C code (catches an errc added without one).
  for (int e = 1; e < 100; ++e) {
    const std::string message = make_error_code(static_cast<errc>(e)).message();
    if (message.rfind("unknown chanpool error", 0) == 0) continue;
    EXPECT_EQ(chanpool_strerror(-e), message) << "errc " << e << " has no CHANPOOL_E_* code";
  }
  // The same pointer every time: it is static storage the caller may keep.
  EXPECT_EQ(chanpool_strerror(CHANPOOL_E_NOT_FOUND), chanpool_strerror(CHANPOOL_E_NOT_FOUND));
  for (int c : {8, 99, -13, -99, -103, 1 << 30, -(1 << 30)}) EXPECT_STREQ(chanpool_strerror(c), "unknown chanpool code") << c;
}

TEST(CApiCodes, ConfigInitGivesTheCppDefaults) {
  chanpool_channel_config_t c;
  std::memset(&c, 0xab, sizeof c);
  chanpool_channel_config_init(&c);
  const ch::channel_config d;
  EXPECT_EQ(c.capacity, d.capacity);
  EXPECT_EQ(c.slot_bytes, d.slot_bytes);
  EXPECT_EQ(c.heap_bytes, d.heap_bytes);
  EXPECT_EQ(c.heap_block_bytes, d.heap_block_bytes);
  EXPECT_EQ(c.single_producer, d.single_producer);
  EXPECT_EQ(c.single_consumer, d.single_consumer);
  chanpool_channel_config_init(nullptr);  // ignored

  chanpool_wait_config_t w;
  std::memset(&w, 0xab, sizeof w);
  chanpool_wait_config_init(&w);
  const ch::wait_config dw;
  EXPECT_EQ(w.mode, CHANPOOL_WAIT_ADAPTIVE);
  EXPECT_EQ(w.spin_ns, dw.spin_for.count());
  EXPECT_EQ(w.liveness_check_ns, dw.liveness_check.count());
  chanpool_wait_config_init(nullptr);
}

// ---- create / open / close / unlink ---------------------------------------------------------

TEST_F(CApi, CreateOpenCloseUnlink) {
  const auto name = unique_name();
  handle a, b;
  create(a, name);
  open(b, name);
  EXPECT_EQ(access(shm_path(job_, name).c_str(), F_OK), 0);

  chanpool_channel_t* again = reinterpret_cast<chanpool_channel_t*>(&a);  // must be overwritten
  EXPECT_EQ(chanpool_channel_create(name.c_str(), job_.c_str(), nullptr, &again), CHANPOOL_E_ALREADY_EXISTS);
  EXPECT_EQ(again, nullptr) << "*out is NULL on failure";

  chanpool_channel_close(b.ch);  // closing does not remove the name
  b.ch = nullptr;
  chanpool_channel_close(nullptr);
  open(b, name);

  EXPECT_EQ(chanpool_channel_unlink(name.c_str(), job_.c_str()), CHANPOOL_OK);
  EXPECT_NE(access(shm_path(job_, name).c_str(), F_OK), 0);
  EXPECT_EQ(chanpool_channel_unlink(name.c_str(), job_.c_str()), CHANPOOL_E_NOT_FOUND);
  // Open handles keep working after the unlink.
  EXPECT_EQ(chanpool_channel_send(a, "x", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  char c = 0;
  size_t len = 0;
  EXPECT_EQ(chanpool_channel_recv(b, &c, 1, &len, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(c, 'x');
}

TEST_F(CApi, OpenOfAMissingNameIsNotFound) {
  chanpool_channel_t* h = reinterpret_cast<chanpool_channel_t*>(this);
  EXPECT_EQ(chanpool_channel_open("no_such_channel", job_.c_str(), &h), CHANPOOL_E_NOT_FOUND);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(chanpool_channel_open(unique_name().c_str(), "no_such_job", &h), CHANPOOL_E_NOT_FOUND);
}

TEST_F(CApi, BadNamesJobsConfigsAndArguments) {
  chanpool_channel_t* h = nullptr;
  const std::string too_long(101, 'n');
  for (const char* bad : {"", "has space", "slash/", "dot.", too_long.c_str()}) {
    EXPECT_EQ(chanpool_channel_create(bad, job_.c_str(), nullptr, &h), CHANPOOL_E_INVALID_NAME) << bad;
    EXPECT_EQ(chanpool_channel_open(bad, job_.c_str(), &h), CHANPOOL_E_INVALID_NAME) << bad;
    EXPECT_EQ(chanpool_channel_unlink(bad, job_.c_str()), CHANPOOL_E_INVALID_NAME) << bad;
  }
  EXPECT_EQ(chanpool_channel_create("ok", "bad job", nullptr, &h), CHANPOOL_E_INVALID_NAME);
  EXPECT_EQ(chanpool_channel_open("ok", "bad job", &h), CHANPOOL_E_INVALID_NAME);
  EXPECT_EQ(chanpool_channel_unlink("ok", "bad job"), CHANPOOL_E_INVALID_NAME);

  chanpool_channel_config_t config;
  for (int field = 0; field < 3; ++field) {
    chanpool_channel_config_init(&config);
    if (field == 0) config.capacity = 3;             // not a power of two
    if (field == 1) config.slot_bytes = 100;         // not a multiple of 64
    if (field == 2) config.heap_block_bytes = 1000;  // not a power of two
    EXPECT_EQ(chanpool_channel_create(unique_name().c_str(), job_.c_str(), &config, &h), CHANPOOL_E_INVALID_CONFIG)
        << field;
    EXPECT_EQ(h, nullptr);
  }

  EXPECT_EQ(chanpool_channel_create(nullptr, job_.c_str(), nullptr, &h), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_create("ok", job_.c_str(), nullptr, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_open(nullptr, job_.c_str(), &h), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_open("ok", job_.c_str(), nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_unlink(nullptr, job_.c_str()), CHANPOOL_INVALID);
}

TEST_F(CApi, NullJobMeansTheEnvironmentsJob) {
  const auto name = unique_name();
  const char* before = std::getenv("CHANPOOL_JOB");
  const std::string saved = before ? before : "";
  setenv("CHANPOOL_JOB", job_.c_str(), 1);
  handle a, b;
  EXPECT_EQ(chanpool_channel_create(name.c_str(), nullptr, nullptr, a.out()), CHANPOOL_OK);
  EXPECT_EQ(chanpool_channel_open(name.c_str(), "", b.out()), CHANPOOL_OK) << "empty job = NULL";
  if (before) {
    setenv("CHANPOOL_JOB", saved.c_str(), 1);
  } else {
    unsetenv("CHANPOOL_JOB");
  }
  EXPECT_EQ(access(shm_path(job_, name).c_str(), F_OK), 0) << "created in $CHANPOOL_JOB";
}

TEST_F(CApi, DamagedSegmentsAreReportedNotMapped) {
  const auto garbage = unique_name(), tiny = unique_name(), empty = unique_name();
  write_segment(garbage, std::vector<unsigned char>(8192, 0xff));  // not a header: corrupted
  write_segment(tiny, std::vector<unsigned char>(100, 0));         // shorter than a header
  write_segment(empty, std::vector<unsigned char>(8192, 0));       // a creator that never finished
  chanpool_channel_t* h = nullptr;
  EXPECT_EQ(chanpool_channel_open(garbage.c_str(), job_.c_str(), &h), CHANPOOL_E_CORRUPTED);
  EXPECT_EQ(chanpool_channel_open(tiny.c_str(), job_.c_str(), &h), CHANPOOL_E_LAYOUT_MISMATCH);
  EXPECT_EQ(chanpool_channel_open(empty.c_str(), job_.c_str(), &h), CHANPOOL_E_NOT_READY);  // after ~1 s
  EXPECT_EQ(h, nullptr);
}

TEST_F(CApi, CHandlesTalkToCppHandles) {
  const auto name = unique_name();
  handle c;
  create(c, name);
  auto cpp = ch::channel::open(name, options());
  ASSERT_TRUE(cpp) << cpp.error().message();
  EXPECT_EQ(chanpool_channel_send(c, "from C", 6, kLongNs), CHANPOOL_OK);
  std::vector<std::byte> got;
  ASSERT_EQ(cpp->recv(got, std::chrono::seconds(5)), status::ok);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()), "from C");
  const auto m = pattern(5000);  // a heap message the other way
  ASSERT_EQ(cpp->send(as_bytes(m)), status::ok);
  std::vector<unsigned char> buf(8000);
  size_t len = 0;
  ASSERT_EQ(chanpool_channel_recv(c, buf.data(), buf.size(), &len, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(len, m.size());
  EXPECT_EQ(std::memcmp(buf.data(), m.data(), len), 0);
}

// ---- configuration and state ----------------------------------------------------------------

TEST_F(CApi, GetConfigSizesPollAndStats) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.capacity = 8;
  config.slot_bytes = 256;
  config.heap_bytes = 64 * 1024;
  config.heap_block_bytes = 1024;
  handle h;
  create(h, unique_name(), &config);

  chanpool_channel_config_t got;
  ASSERT_EQ(chanpool_channel_get_config(h, &got), CHANPOOL_OK);
  EXPECT_EQ(got.capacity, 8u);
  EXPECT_EQ(got.slot_bytes, 256u);
  EXPECT_EQ(got.heap_bytes, 64u * 1024);
  EXPECT_EQ(got.heap_block_bytes, 1024u);
  EXPECT_FALSE(got.single_producer);
  EXPECT_FALSE(got.single_consumer);
  EXPECT_EQ(chanpool_channel_inline_capacity(h), 256u - 16);
  EXPECT_EQ(chanpool_channel_max_message_bytes(h), 64u * 1024);

  chanpool_poll_info_t info;
  ASSERT_EQ(chanpool_channel_poll(h, &info), CHANPOOL_OK);
  EXPECT_FALSE(info.readable);
  EXPECT_TRUE(info.writable);
  EXPECT_FALSE(info.closed);
  EXPECT_EQ(info.count, 0u);
  EXPECT_EQ(info.capacity, 8u);
  EXPECT_EQ(info.blocked_receivers, 0u);
  EXPECT_EQ(info.blocked_senders, 0u);
  ASSERT_EQ(chanpool_channel_send(h, "ab", 2, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_channel_poll(h, &info), CHANPOOL_OK);
  EXPECT_TRUE(info.readable);
  EXPECT_EQ(info.count, 1u);

  chanpool_channel_stats_t stats;
  std::memset(&stats, 0xab, sizeof stats);
  ASSERT_EQ(chanpool_channel_stats(h, &stats), CHANPOOL_OK);
  EXPECT_EQ(stats.lost_messages, 0u);
  EXPECT_EQ(stats.repaired_slots, 0u);
  EXPECT_EQ(stats.reclaimed_heap_blocks, 0u);
  EXPECT_EQ(stats.corrupted_messages, 0u);
  EXPECT_EQ(stats.attached_processes, 1u);
  EXPECT_EQ(chanpool_channel_repair(h), 0u) << "nothing to repair";

  // NULL handles and outputs.
  EXPECT_EQ(chanpool_channel_get_config(nullptr, &got), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_get_config(h, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_poll(nullptr, &info), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_poll(h, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_stats(nullptr, &stats), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_stats(h, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_repair(nullptr), 0u);
  EXPECT_EQ(chanpool_channel_inline_capacity(nullptr), 0u);
  EXPECT_EQ(chanpool_channel_max_message_bytes(nullptr), 0u);
}

TEST_F(CApi, SetWait) {
  handle h;
  create(h, unique_name());
  chanpool_wait_config_t w;
  chanpool_wait_config_init(&w);
  w.mode = CHANPOOL_WAIT_IDLE;
  ASSERT_EQ(chanpool_channel_set_wait(h, &w), CHANPOOL_OK);
  char c;
  const auto t0 = clock::now();
  EXPECT_EQ(chanpool_channel_recv(h, &c, 1, nullptr, 20'000'000), CHANPOOL_TIMEOUT);
  EXPECT_GE(clock::now() - t0, 20ms);
  w.mode = CHANPOOL_WAIT_SPIN;
  EXPECT_EQ(chanpool_channel_set_wait(h, &w), CHANPOOL_OK);
  EXPECT_EQ(chanpool_channel_recv(h, &c, 1, nullptr, 1'000'000), CHANPOOL_TIMEOUT);

  EXPECT_EQ(chanpool_channel_set_wait(nullptr, &w), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_set_wait(h, nullptr), CHANPOOL_INVALID);
  for (int mode : {-1, 3}) {
    chanpool_wait_config_init(&w);
    w.mode = mode;
    EXPECT_EQ(chanpool_channel_set_wait(h, &w), CHANPOOL_INVALID) << mode;
  }
  chanpool_wait_config_init(&w);
  w.spin_ns = -1;
  EXPECT_EQ(chanpool_channel_set_wait(h, &w), CHANPOOL_INVALID);
  chanpool_wait_config_init(&w);
  w.liveness_check_ns = -1;
  EXPECT_EQ(chanpool_channel_set_wait(h, &w), CHANPOOL_INVALID);
}

// ---- send / recv ------------------------------------------------------------------------------

TEST_F(CApi, SendRecvInlineAndHeap) {
  handle h;
  create(h, unique_name());
  for (std::size_t size : {0u, 1u, 96u, 97u, 4096u, 100000u}) {
    const auto m = pattern(size, static_cast<unsigned>(size));
    ASSERT_EQ(chanpool_channel_send(h, size ? m.data() : nullptr, size, kLongNs), CHANPOOL_OK) << size;
    std::vector<unsigned char> buf(size + 1);
    size_t len = 12345;
    ASSERT_EQ(chanpool_channel_recv(h, buf.data(), buf.size(), &len, kLongNs), CHANPOOL_OK) << size;
    ASSERT_EQ(len, size);
    if (size != 0) {  // m.data() is NULL at 0, and memcmp must not see NULL
      EXPECT_EQ(std::memcmp(buf.data(), m.data(), size), 0) << size;
    }
  }
  // A zero-length message into no buffer at all, and a NULL length.
  ASSERT_EQ(chanpool_channel_send(h, nullptr, 0, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(chanpool_channel_recv(h, nullptr, 0, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
}

TEST_F(CApi, EmptyFullTimeoutAndBadTimeouts) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.capacity = 2;
  handle h;
  create(h, unique_name(), &config);
  char c = 0;
  size_t len = 99;
  EXPECT_EQ(chanpool_channel_recv(h, &c, 1, &len, CHANPOOL_TRY_ONCE), CHANPOOL_EMPTY);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(chanpool_channel_recv(h, &c, 1, &len, 1'000'000), CHANPOOL_TIMEOUT);
  EXPECT_EQ(chanpool_channel_send(h, "a", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(chanpool_channel_send(h, "b", 1, CHANPOOL_FOREVER), CHANPOOL_OK);  // room: returns at once
  EXPECT_EQ(chanpool_channel_send(h, "c", 1, CHANPOOL_TRY_ONCE), CHANPOOL_FULL);
  EXPECT_EQ(chanpool_channel_send(h, "c", 1, 1'000'000), CHANPOOL_TIMEOUT);
  for (std::int64_t bad : {std::int64_t{-2}, std::int64_t{INT64_MIN}}) {
    EXPECT_EQ(chanpool_channel_send(h, "c", 1, bad), CHANPOOL_INVALID);
    EXPECT_EQ(chanpool_channel_recv(h, &c, 1, &len, bad), CHANPOOL_INVALID);
  }
  EXPECT_EQ(chanpool_channel_recv(h, &c, 1, &len, CHANPOOL_FOREVER), CHANPOOL_OK);
  EXPECT_EQ(c, 'a');
}

TEST_F(CApi, TooLargeLeavesTheMessageQueued) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.heap_bytes = 64 * 1024;
  handle h;
  create(h, unique_name(), &config);
  const std::size_t max = chanpool_channel_max_message_bytes(h);
  std::vector<unsigned char> big(max + 1, 7);
  EXPECT_EQ(chanpool_channel_send(h, big.data(), big.size(), CHANPOOL_TRY_ONCE), CHANPOOL_TOO_LARGE);
  EXPECT_EQ(chanpool_channel_send(h, big.data(), max, CHANPOOL_TRY_ONCE), CHANPOOL_OK) << "the maximum fits";

  std::vector<unsigned char> small(16);
  size_t len = 0;
  EXPECT_EQ(chanpool_channel_recv(h, small.data(), small.size(), &len, CHANPOOL_TRY_ONCE), CHANPOOL_TOO_LARGE);
  EXPECT_EQ(len, max) << "reports the size needed";
  len = 0;
  EXPECT_EQ(chanpool_channel_recv(h, nullptr, 0, &len, CHANPOOL_TRY_ONCE), CHANPOOL_TOO_LARGE) << "peek";
  EXPECT_EQ(len, max);
  EXPECT_EQ(chanpool_channel_recv(h, small.data(), small.size(), nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_TOO_LARGE);
  std::vector<unsigned char> buf(len);
  ASSERT_EQ(chanpool_channel_recv(h, buf.data(), buf.size(), &len, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(len, max);
  EXPECT_EQ(std::memcmp(buf.data(), big.data(), max), 0);
}

TEST_F(CApi, SendRecvRejectNullArguments) {
  handle h;
  create(h, unique_name());
  char c;
  EXPECT_EQ(chanpool_channel_send(nullptr, "a", 1, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_send(h, nullptr, 1, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_recv(nullptr, &c, 1, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_recv(h, nullptr, 1, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_seal(nullptr), CHANPOOL_INVALID);
}

TEST_F(CApi, SealClosesSendsAndDrainsReceives) {
  handle a, b;
  const auto name = unique_name();
  create(a, name);
  open(b, name);
  ASSERT_EQ(chanpool_channel_send(a, "q", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_channel_seal(b), CHANPOOL_OK);  // any handle may seal
  EXPECT_EQ(chanpool_channel_send(a, "r", 1, CHANPOOL_TRY_ONCE), CHANPOOL_CLOSED);
  chanpool_poll_info_t info;
  ASSERT_EQ(chanpool_channel_poll(a, &info), CHANPOOL_OK);
  EXPECT_TRUE(info.closed);
  EXPECT_TRUE(info.readable) << "sealed counts as readable";
  char c = 0;
  EXPECT_EQ(chanpool_channel_recv(b, &c, 1, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_OK) << "queued messages drain";
  EXPECT_EQ(c, 'q');
  EXPECT_EQ(chanpool_channel_recv(b, &c, 1, nullptr, CHANPOOL_FOREVER), CHANPOOL_CLOSED);
  chanpool_recv_claim_t claim;
  EXPECT_EQ(chanpool_channel_claim_recv(b, &claim, CHANPOOL_TRY_ONCE), CHANPOOL_CLOSED);
  chanpool_send_claim_t sclaim;
  EXPECT_EQ(chanpool_channel_claim_send(a, 1, &sclaim, CHANPOOL_TRY_ONCE), CHANPOOL_CLOSED);
}

TEST_F(CApi, SingleProducerLeaseIsEnforced) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.single_producer = true;
  const auto name = unique_name();
  handle a, b;
  create(a, name, &config);
  open(b, name);
  chanpool_channel_config_t got;
  ASSERT_EQ(chanpool_channel_get_config(b, &got), CHANPOOL_OK);
  EXPECT_TRUE(got.single_producer);
  EXPECT_EQ(chanpool_channel_send(a, "1", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(chanpool_channel_send(b, "2", 1, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID) << "a holds the lease";
  chanpool_channel_close(a.ch);  // frees it
  a.ch = nullptr;
  EXPECT_EQ(chanpool_channel_send(b, "2", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
}

// ---- zero copy --------------------------------------------------------------------------------

TEST_F(CApi, ClaimSendCommitAndAbandon) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.heap_bytes = 64 * 1024;
  handle h;
  create(h, unique_name(), &config);

  for (std::size_t size : {10u, 5000u}) {  // inline and heap
    chanpool_send_claim_t claim;
    std::memset(&claim, 0x5a, sizeof claim);  // output only: garbage in it does not matter
    ASSERT_EQ(chanpool_channel_claim_send(h, size, &claim, kLongNs), CHANPOOL_OK);
    ASSERT_NE(claim.data, nullptr);
    ASSERT_EQ(claim.size, size);
    std::memset(claim.data, 'z', size);
    EXPECT_EQ(chanpool_channel_commit(h, &claim, size + 1), CHANPOOL_INVALID) << "more than claimed";
    EXPECT_NE(claim.data, nullptr) << "a failed commit keeps the claim";
    ASSERT_EQ(chanpool_channel_commit(h, &claim, 3), CHANPOOL_OK) << "commit a prefix";
    EXPECT_EQ(claim.data, nullptr);
    EXPECT_EQ(claim.size, 0u);
    EXPECT_EQ(chanpool_channel_commit(h, &claim, SIZE_MAX), CHANPOOL_INVALID) << "twice";
    std::vector<unsigned char> buf(size);
    size_t len = 0;
    ASSERT_EQ(chanpool_channel_recv(h, buf.data(), buf.size(), &len, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
    EXPECT_EQ(len, 3u);
    EXPECT_EQ(std::string(buf.begin(), buf.begin() + 3), "zzz");
  }

  chanpool_send_claim_t whole;
  ASSERT_EQ(chanpool_channel_claim_send(h, 4, &whole, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  std::memcpy(whole.data, "full", 4);
  ASSERT_EQ(chanpool_channel_commit(h, &whole, SIZE_MAX), CHANPOOL_OK) << "SIZE_MAX = all of it";
  chanpool_send_claim_t dropped;
  ASSERT_EQ(chanpool_channel_claim_send(h, 8, &dropped, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_channel_abandon(h, &dropped), CHANPOOL_OK);
  EXPECT_EQ(dropped.data, nullptr);
  EXPECT_EQ(chanpool_channel_abandon(h, &dropped), CHANPOOL_INVALID) << "twice";
  char buf[8];
  size_t len = 0;
  ASSERT_EQ(chanpool_channel_recv(h, buf, sizeof buf, &len, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(std::string(buf, len), "full");
  EXPECT_EQ(chanpool_channel_recv(h, buf, sizeof buf, &len, CHANPOOL_TRY_ONCE), CHANPOOL_EMPTY)
      << "the abandoned slot is skipped";
  chanpool_channel_stats_t stats;
  ASSERT_EQ(chanpool_channel_stats(h, &stats), CHANPOOL_OK);
  EXPECT_EQ(stats.lost_messages, 0u) << "abandoning is not losing";

  chanpool_send_claim_t claim;
  std::memset(&claim, 0x5a, sizeof claim);
  EXPECT_EQ(chanpool_channel_claim_send(h, chanpool_channel_max_message_bytes(h) + 1, &claim, CHANPOOL_TRY_ONCE),
            CHANPOOL_TOO_LARGE);
  EXPECT_EQ(claim.data, nullptr) << "zeroed on failure";
  EXPECT_EQ(claim.size, 0u);
  EXPECT_EQ(chanpool_channel_commit(h, &claim, SIZE_MAX), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_abandon(h, &claim), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_send(nullptr, 1, &claim, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_send(h, 1, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_send(h, 1, &claim, -5), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_commit(nullptr, &claim, 1), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_commit(h, nullptr, 1), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_abandon(nullptr, &claim), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_abandon(h, nullptr), CHANPOOL_INVALID);
}

TEST_F(CApi, ClaimSendWaitsForRoom) {
  chanpool_channel_config_t config;
  chanpool_channel_config_init(&config);
  config.capacity = 2;
  handle h;
  create(h, unique_name(), &config);
  ASSERT_EQ(chanpool_channel_send(h, "1", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_channel_send(h, "2", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  chanpool_send_claim_t claim;
  EXPECT_EQ(chanpool_channel_claim_send(h, 1, &claim, CHANPOOL_TRY_ONCE), CHANPOOL_FULL);
  EXPECT_EQ(chanpool_channel_claim_send(h, 1, &claim, 1'000'000), CHANPOOL_TIMEOUT);
  EXPECT_EQ(claim.data, nullptr);
}

TEST_F(CApi, ClaimRecvAndRelease) {
  handle h;
  create(h, unique_name());
  chanpool_recv_claim_t claim;
  std::memset(&claim, 0x5a, sizeof claim);
  EXPECT_EQ(chanpool_channel_claim_recv(h, &claim, CHANPOOL_TRY_ONCE), CHANPOOL_EMPTY);
  EXPECT_EQ(claim.data, nullptr) << "zeroed on failure";
  EXPECT_EQ(chanpool_channel_claim_recv(h, &claim, 1'000'000), CHANPOOL_TIMEOUT);
  EXPECT_EQ(chanpool_channel_release(h, &claim), CHANPOOL_INVALID) << "nothing claimed";

  const auto big = pattern(3000, 3);
  ASSERT_EQ(chanpool_channel_send(h, "hello", 5, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_channel_send(h, big.data(), big.size(), CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  std::memset(&claim, 0x5a, sizeof claim);  // output only
  ASSERT_EQ(chanpool_channel_claim_recv(h, &claim, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(claim.size, 5u);
  EXPECT_EQ(std::memcmp(claim.data, "hello", 5), 0);
  ASSERT_EQ(chanpool_channel_release(h, &claim), CHANPOOL_OK);
  EXPECT_EQ(claim.data, nullptr);
  EXPECT_EQ(chanpool_channel_release(h, &claim), CHANPOOL_INVALID) << "twice";
  ASSERT_EQ(chanpool_channel_claim_recv(h, &claim, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(claim.size, big.size());
  EXPECT_EQ(std::memcmp(claim.data, big.data(), big.size()), 0);
  ASSERT_EQ(chanpool_channel_release(h, &claim), CHANPOOL_OK);

  EXPECT_EQ(chanpool_channel_claim_recv(nullptr, &claim, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_recv(h, nullptr, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_claim_recv(h, &claim, -7), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_release(nullptr, &claim), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_channel_release(h, nullptr), CHANPOOL_INVALID);
}

// A process that dies holding a claim: repair() takes the slot back and the stats count it.
TEST_F(CApi, RepairAfterAClaimHolderDies) {
  const auto name = unique_name();
  handle h;
  create(h, name);
  gate claimed;
  const std::string job = job_;
  child_guard guard;
  const pid_t pid = guard.add(fork_child([&] {
    chanpool_channel_t* c = nullptr;
    if (chanpool_channel_open(name.c_str(), job.c_str(), &c) != CHANPOOL_OK) return 1;
    chanpool_send_claim_t claim;
    if (chanpool_channel_claim_send(c, 8, &claim, CHANPOOL_TRY_ONCE) != CHANPOOL_OK) return 2;
    claimed.signal();
    pause();  // killed here, holding the claim
    return 3;
  }));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(claimed.wait(10s)) << "child never claimed";
  kill_and_reap(pid);
  guard.clear();

  EXPECT_EQ(chanpool_channel_repair(h), 1u);
  chanpool_channel_stats_t stats;
  ASSERT_EQ(chanpool_channel_stats(h, &stats), CHANPOOL_OK);
  EXPECT_EQ(stats.lost_messages, 1u);
  EXPECT_EQ(stats.repaired_slots, 1u);
  EXPECT_EQ(stats.attached_processes, 1u);
  ASSERT_EQ(chanpool_channel_send(h, "after", 5, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  char buf[8];
  size_t len = 0;
  ASSERT_EQ(chanpool_channel_recv(h, buf, sizeof buf, &len, kLongNs), CHANPOOL_OK);
  EXPECT_EQ(std::string(buf, len), "after");
}

// ---- poll sets --------------------------------------------------------------------------------

TEST_F(CApi, PollSetReportsReadyChannels) {
  handle a, b;
  create(a, unique_name());
  create(b, unique_name());
  poll_set_handle ps;
  ASSERT_EQ(chanpool_poll_set_create(&ps.set), CHANPOOL_OK);
  ASSERT_NE(ps.set, nullptr);

  chanpool_poll_event_t ready[4];
  size_t count = 99;
  EXPECT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, CHANPOOL_TRY_ONCE), CHANPOOL_INVALID) << "empty set";
  EXPECT_EQ(count, 0u);

  size_t ia = 9, ib = 9, ic = 9;
  ASSERT_EQ(chanpool_poll_set_add(ps, a, CHANPOOL_READABLE, &ia), CHANPOOL_OK);
  ASSERT_EQ(chanpool_poll_set_add(ps, b, CHANPOOL_READABLE, &ib), CHANPOOL_OK);
  EXPECT_EQ(ia, 0u);
  EXPECT_EQ(ib, 1u);
  EXPECT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, CHANPOOL_TRY_ONCE), CHANPOOL_TIMEOUT) << "nothing ready";
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, 1'000'000), CHANPOOL_TIMEOUT);

  ASSERT_EQ(chanpool_channel_send(b, "x", 1, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  ASSERT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(ready[0].index, 1u);
  EXPECT_EQ(ready[0].events, CHANPOOL_READABLE);

  // Writable interest; and fewer slots than ready channels (level-triggered: nothing is lost).
  ASSERT_EQ(chanpool_poll_set_add(ps, a, CHANPOOL_READABLE | CHANPOOL_WRITABLE, &ic), CHANPOOL_OK);
  EXPECT_EQ(ic, 2u);
  ASSERT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, kLongNs), CHANPOOL_OK);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(ready[0].index, 1u);
  EXPECT_EQ(ready[1].index, 2u);
  EXPECT_EQ(ready[1].events, CHANPOOL_WRITABLE);
  ASSERT_EQ(chanpool_poll_set_wait(ps, ready, 1, &count, kLongNs), CHANPOOL_OK);
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(chanpool_poll_set_wait(ps, nullptr, 0, nullptr, kLongNs), CHANPOOL_OK) << "no room, no count";

  EXPECT_EQ(chanpool_poll_set_set_spin(ps, 0), CHANPOOL_OK);
  EXPECT_EQ(chanpool_poll_set_set_spin(ps, 1000), CHANPOOL_OK);
  EXPECT_EQ(chanpool_poll_set_set_spin(ps, -1), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_set_spin(nullptr, 0), CHANPOOL_INVALID);

  EXPECT_EQ(chanpool_poll_set_create(nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_add(nullptr, a, CHANPOOL_READABLE, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_add(ps, nullptr, CHANPOOL_READABLE, nullptr), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_add(ps, a, 0, nullptr), CHANPOOL_INVALID) << "no events";
  EXPECT_EQ(chanpool_poll_set_add(ps, a, 4, nullptr), CHANPOOL_INVALID) << "unknown event bit";
  EXPECT_EQ(chanpool_poll_set_wait(nullptr, ready, 4, &count, 0), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_wait(ps, nullptr, 4, &count, 0), CHANPOOL_INVALID);
  EXPECT_EQ(chanpool_poll_set_wait(ps, ready, 4, &count, -3), CHANPOOL_INVALID);
  chanpool_poll_set_destroy(nullptr);
}

TEST_F(CApi, PollSetWakesOnASendFromAnotherThread) {
  handle a, b;
  const auto name = unique_name();
  create(a, name);
  open(b, name);
  poll_set_handle ps;
  ASSERT_EQ(chanpool_poll_set_create(&ps.set), CHANPOOL_OK);
  ASSERT_EQ(chanpool_poll_set_add(ps, a, CHANPOOL_READABLE, nullptr), CHANPOOL_OK);
  std::thread sender([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(chanpool_channel_send(b, "wake", 4, CHANPOOL_FOREVER), CHANPOOL_OK);
  });
  chanpool_poll_event_t ev;
  size_t count = 0;
  EXPECT_EQ(chanpool_poll_set_wait(ps, &ev, 1, &count, CHANPOOL_FOREVER), CHANPOOL_OK);
  sender.join();
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(ev.index, 0u);
  char buf[8];
  size_t len = 0;
  EXPECT_EQ(chanpool_channel_recv(a, buf, sizeof buf, &len, CHANPOOL_TRY_ONCE), CHANPOOL_OK);
  EXPECT_EQ(std::string(buf, len), "wake");
}

}  // namespace
}  // namespace chanpool::test
