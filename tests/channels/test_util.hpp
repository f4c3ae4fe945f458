// Helpers shared by the channel test suites: unique names, forked children with deadlines,
// shared-memory result areas, pipe gates, and a self-checking message format.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <functional>
#include <new>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "chanpool/channels/channel.hpp"
#include "chanpool/channels/cleanup.hpp"
#include "chanpool/channels/error.hpp"
#include "chanpool/channels/poll_set.hpp"
#include "chanpool/channels/status.hpp"

// Lets gtest print status values in assertion failures.
namespace chanpool {
inline void PrintTo(status s, std::ostream* os) { *os << to_string(s); }
}  // namespace chanpool

namespace chanpool::test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
namespace ch = chanpool::channels;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// ThreadSanitizer ends a child that starts threads after a fork from a multi-threaded process
// (die_after_fork): tests that need such a fork skip under it.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// ---- environment ------------------------------------------------------------------------------

inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v, &end, 10);
  if (end == v) return fallback;
  return x;
}

// Seed for randomised tests: $CHANPOOL_TEST_SEED or the clock. Printed so a failure can be replayed.
inline std::uint64_t test_seed() {
  std::uint64_t seed = env_u64("CHANPOOL_TEST_SEED", 0);
  if (seed == 0) seed = static_cast<std::uint64_t>(clock::now().time_since_epoch().count()) ^ getpid();
  std::printf("[   SEED   ] CHANPOOL_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

// ---- names ------------------------------------------------------------------------------------

// The job of this test process: unique per process so parallel ctest runs never collide.
inline std::string test_job(const std::string& suffix = {}) {
  std::string job = "t";  // built step by step: GCC 12 warns (-Wrestrict) on "t" + std::string
  job += std::to_string(getpid());
  job += suffix;
  return job;
}

inline ch::open_options opts(const std::string& job = test_job()) { return ch::open_options{.job = job}; }

// "/dev/shm/chanpool.<uid>.<job>." prefix (no trailing name) for a job.
inline std::string shm_prefix(const std::string& job) {
  return "chanpool." + std::to_string(getuid()) + "." + job + ".";
}

inline std::string shm_path(const std::string& job, const std::string& name) {
  return "/dev/shm/" + shm_prefix(job) + name;
}

// Removes every segment of `job` under /dev/shm (test teardown; the job is unique to this process).
inline void remove_job_segments(const std::string& job) {
  const std::string prefix = shm_prefix(job);
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return;
  std::vector<std::string> doomed;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n.compare(0, prefix.size(), prefix) == 0) doomed.push_back(n);
  }
  closedir(dir);
  for (auto& n : doomed) shm_unlink(("/" + n).c_str());
}

// ---- children ---------------------------------------------------------------------------------

// Forks a child that runs `fn` and _exit()s with its return value (99 if it threw). The child
// dies with the parent (PR_SET_PDEATHSIG) and by alarm() after `alarm_s`, so a hung child
// can never outlive a failed test.
inline pid_t fork_child(const std::function<int()>& fn, unsigned alarm_s = 300) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(98);
    signal(SIGALRM, SIG_DFL);
    alarm(alarm_s);
    int rc = 99;
    try {
      rc = fn();
    } catch (...) {
      rc = 99;
    }
    _exit(rc);
  }
  return pid;
}

struct child_exit {
  pid_t pid = -1;
  bool reaped = false;
  bool exited = false;    // normal exit
  int code = -1;          // exit code when exited
  int signal = 0;         // terminating signal otherwise
  bool timed_out = false; // still running at the deadline, killed by us
  bool ok() const { return exited && code == 0 && !timed_out; }
  std::string describe() const {
    std::string s = "child " + std::to_string(pid) + ": ";
    if (timed_out) return s + "TIMED OUT (killed at deadline)";
    if (!reaped) return s + "not reaped";
    if (exited) return s + "exit code " + std::to_string(code);
    return s + "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
};

inline void decode_status(child_exit& c, int st) {
  c.reaped = true;
  if (WIFEXITED(st)) {
    c.exited = true;
    c.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    c.signal = WTERMSIG(st);
  }
}

// Waits for all `pids` until `deadline` from now. Children still running then are SIGKILLed,
// reaped and reported timed_out. Never blocks past the deadline (plus the reaping).
inline std::vector<child_exit> wait_children(const std::vector<pid_t>& pids,
                                             std::chrono::milliseconds deadline) {
  std::vector<child_exit> out(pids.size());
  for (std::size_t i = 0; i < pids.size(); ++i) out[i].pid = pids[i];
  const auto end = clock::now() + deadline;
  auto nap = 100us;
  for (;;) {
    bool all = true;
    for (auto& c : out) {
      if (c.reaped || c.pid <= 0) continue;
      int st = 0;
      pid_t r = waitpid(c.pid, &st, WNOHANG);
      if (r == c.pid) {
        decode_status(c, st);
      } else if (r < 0 && errno == ECHILD) {
        c.reaped = true;  // not ours / already reaped
      } else {
        all = false;
      }
    }
    if (all) return out;
    if (clock::now() >= end) break;
    std::this_thread::sleep_for(nap);
    if (nap < 5ms) nap *= 2;
  }
  for (auto& c : out) {
    if (c.reaped || c.pid <= 0) continue;
    kill(c.pid, SIGKILL);
    int st = 0;
    waitpid(c.pid, &st, 0);
    c.reaped = true;
    c.timed_out = true;
  }
  return out;
}

inline child_exit wait_child(pid_t pid, std::chrono::milliseconds deadline) {
  return wait_children({pid}, deadline).front();
}

// ADD_FAILUREs for each child that did not exit 0. Returns true when all did.
inline bool expect_children_ok(const std::vector<child_exit>& exits, const char* what = "child") {
  bool all = true;
  for (auto& c : exits) {
    if (!c.ok()) {
      ADD_FAILURE() << what << ": " << c.describe();
      all = false;
    }
  }
  return all;
}

// SIGKILLs `pid` and reaps it (bounded: SIGKILL cannot be ignored).
inline void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

// Kills and reaps children on scope exit unless released: no stray processes after a failure.
class child_guard {
 public:
  child_guard() = default;
  child_guard(const child_guard&) = delete;
  child_guard& operator=(const child_guard&) = delete;
  ~child_guard() {
    for (pid_t p : pids_) {
      if (p > 0 && waitpid(p, nullptr, WNOHANG) == 0) kill_and_reap(p);
    }
  }
  pid_t add(pid_t p) {
    pids_.push_back(p);
    return p;
  }
  void clear() { pids_.clear(); }

 private:
  std::vector<pid_t> pids_;
};

// ---- pipe gate: one-byte signals between processes, with timeouts ------------------------------

class gate {
 public:
  gate() {
    if (pipe(fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  ~gate() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    if (fds_[1] >= 0) ::close(fds_[1]);
  }
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;

  void signal(std::size_t n = 1) {
    for (std::size_t i = 0; i < n; ++i) {
      char c = 1;
      while (::write(fds_[1], &c, 1) < 0 && errno == EINTR) {
      }
    }
  }
  // Waits for one signal; false on timeout.
  bool wait(std::chrono::milliseconds t) {
    const auto end = clock::now() + t;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now()).count();
      if (left < 0) left = 0;
      pollfd p{fds_[0], POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) {
        char c;
        ssize_t n = ::read(fds_[0], &c, 1);
        if (n == 1) return true;
        if (n == 0) return false;  // writers gone
      } else if (r == 0) {
        return false;
      } else if (errno != EINTR) {
        return false;
      }
    }
  }

 private:
  int fds_[2] = {-1, -1};
};

// ---- shared memory for results (anonymous MAP_SHARED, created before fork) -----------------------

template <class T>
class shared_array {
 public:
  explicit shared_array(std::size_t n) : n_(n) {
    bytes_ = std::max<std::size_t>(n * sizeof(T), 1);
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    for (std::size_t i = 0; i < n; ++i) new (&data_[i]) T();
  }
  ~shared_array() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  shared_array(const shared_array&) = delete;
  shared_array& operator=(const shared_array&) = delete;
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* data() { return data_; }
  std::size_t size() const { return n_; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
};

template <class T>
class shared_object {
 public:
  shared_object() : arr_(1) {}
  T* operator->() { return &arr_[0]; }
  T& operator*() { return arr_[0]; }

 private:
  shared_array<T> arr_;
};

// ---- message format ---------------------------------------------------------------------------
// [0,4) producer id u32 | [4,8) total size u32 | [8,16) sequence u64 | [16,24) checksum u64 |
// [24,size) payload, a deterministic pattern of (id, seq). The checksum covers id, seq and payload.

inline constexpr std::size_t kMsgHeader = 24;

struct msg_info {
  std::uint32_t producer = 0;
  std::uint64_t seq = 0;
};

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline std::uint64_t msg_checksum(std::uint32_t id, std::uint64_t seq, const std::byte* payload,
                                  std::size_t n) {
  std::uint64_t h = mix64((static_cast<std::uint64_t>(id) << 32) ^ 0x9e3779b97f4a7c15ULL) ^ mix64(seq + n);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, payload + i, 8);
    h = mix64(h ^ w) + i;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, payload + i, n - i);
  return mix64(h ^ tail ^ (n << 56));
}

// Fills `buf` (size >= kMsgHeader) as message (id, seq).
inline void fill_message(std::span<std::byte> buf, std::uint32_t id, std::uint64_t seq) {
  const std::size_t n = buf.size();
  std::byte* p = buf.data();
  std::uint32_t size32 = static_cast<std::uint32_t>(n);
  std::memcpy(p, &id, 4);
  std::memcpy(p + 4, &size32, 4);
  std::memcpy(p + 8, &seq, 8);
  std::byte* payload = p + kMsgHeader;
  const std::size_t pn = n - kMsgHeader;
  std::uint64_t x = mix64(seq ^ (static_cast<std::uint64_t>(id) << 40));
  std::size_t i = 0;
  for (; i + 8 <= pn; i += 8) {
    std::memcpy(payload + i, &x, 8);
    x += 0x9e3779b97f4a7c15ULL;
  }
  std::memcpy(payload + i, &x, pn - i);
  std::uint64_t sum = msg_checksum(id, seq, payload, pn);
  std::memcpy(p + 16, &sum, 8);
}

// Checks a received message; fills `info` and returns true when intact.
inline bool verify_message(std::span<const std::byte> buf, msg_info& info) {
  if (buf.size() < kMsgHeader) return false;
  const std::byte* p = buf.data();
  std::uint32_t id, size32;
  std::uint64_t seq, sum;
  std::memcpy(&id, p, 4);
  std::memcpy(&size32, p + 4, 4);
  std::memcpy(&seq, p + 8, 8);
  std::memcpy(&sum, p + 16, 8);
  if (size32 != buf.size()) return false;
  if (msg_checksum(id, seq, p + kMsgHeader, buf.size() - kMsgHeader) != sum) return false;
  info.producer = id;
  info.seq = seq;
  return true;
}

inline std::vector<std::byte> make_message(std::size_t size, std::uint32_t id, std::uint64_t seq) {
  std::vector<std::byte> v(std::max(size, kMsgHeader));
  fill_message(v, id, seq);
  return v;
}

// Simple byte pattern for small/odd sizes (where the 24-byte header does not fit).
inline std::vector<std::byte> pattern(std::size_t n, unsigned salt = 0) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + salt * 7 + (i >> 8)) & 0xff);
  return v;
}

inline std::span<const std::byte> as_bytes(const std::vector<std::byte>& v) { return {v.data(), v.size()}; }

// ---- fixture ----------------------------------------------------------------------------------

// Gives each test a unique job (per process) and unique channel names, and removes every segment
// of its jobs in TearDown, even after a failed assertion.
class channel_test : public ::testing::Test {
 protected:
  void SetUp() override { jobs_.push_back(job_); }
  void TearDown() override {
    for (auto& j : jobs_) remove_job_segments(j);
  }

  // A fresh channel name, unique within this process.
  std::string unique_name(const std::string& stem = "c") {
    static std::atomic<unsigned> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string base = info ? info->name() : "x";
    std::string clean;
    for (char c : base) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
        clean.push_back(c);
    }
    if (clean.size() > 24) clean.resize(24);
    return stem + "_" + clean + "_" + std::to_string(counter.fetch_add(1));
  }

  // Registers another job to be cleaned in TearDown.
  std::string extra_job(const std::string& suffix) {
    std::string j = test_job(suffix);
    jobs_.push_back(j);
    return j;
  }

  ch::open_options options() const { return opts(job_); }

  // Creates a channel or fails the test.
  ch::channel make(const std::string& name, const ch::channel_config& cfg = {}) {
    auto r = ch::channel::create(name, cfg, options());
    if (!r) {
      ADD_FAILURE() << "create(" << name << ") failed: " << r.error().message();
      return {};
    }
    return std::move(r).value();
  }

  std::string job_ = test_job();
  std::vector<std::string> jobs_;
};

}  // namespace chanpool::test
