#include "process.hpp"

#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "layout.hpp"

namespace chanpool::channels::detail {
namespace {

void refresh_pid_after_fork() noexcept { cached_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed); }

}  // namespace

std::uint32_t init_current_pid() noexcept {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, &refresh_pid_after_fork);
    return true;
  }();
  (void)registered;
  refresh_pid_after_fork();
  return cached_pid.load(std::memory_order_relaxed);
}

bool read_process_stat(std::uint32_t pid, char& state, std::uint64_t& start_time) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return false;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Field 2 (comm) may hold spaces and parentheses: count fields after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ' || p[2] == '\0') return false;
  state = p[2];
  int field = 2;
  for (++p; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  unsigned long long start = 0;
  if (field != 22 || std::sscanf(p, "%llu", &start) != 1) return false;
  start_time = start;
  return true;
}

std::uint64_t process_start_time(std::uint32_t pid) noexcept {
  char state = 0;
  std::uint64_t start = 0;
  return read_process_stat(pid, state, start) ? start : 0;
}

namespace {

// A zombie whose threads have all exited. A thread-group leader that called pthread_exit() while
// other threads run shows state Z as well, but its "Threads:" count says they are still there.
bool all_threads_gone(std::uint32_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/status", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return true;  // gone meanwhile
  char line[256];
  long threads = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "Threads: %ld", &threads) == 1) break;
  std::fclose(f);
  return threads <= 1;
}

}  // namespace

bool process_alive_since(std::uint32_t pid, std::uint64_t start_time) noexcept {
  if (pid == 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  char state = 0;
  std::uint64_t now = 0;
  if (!read_process_stat(pid, state, now)) {
    // No /proc entry: gone since kill() (or no /proc at all: trust kill()).
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
  }
  // Dead but not reaped: its parent has not called waitpid() yet. It will never touch shared
  // memory again, so it must not hold anything up until it is reaped.
  if ((state == 'Z' || state == 'X') && all_threads_gone(pid)) return false;
  return start_time == 0 || now == start_time;  // another start time: the pid was reused
}

std::uint64_t current_start_time() noexcept {
  static std::atomic<std::uint64_t> cached{0};
  static std::atomic<std::uint32_t> cached_for{0};
  const std::uint32_t pid = current_pid();
  if (cached_for.load(std::memory_order_acquire) != pid) {
    cached.store(process_start_time(pid), std::memory_order_relaxed);
    cached_for.store(pid, std::memory_order_release);
  }
  return cached.load(std::memory_order_relaxed);
}

bool process_alive(std::uint32_t pid, const registry_entry* registry, std::uint32_t entries) noexcept {
  if (pid == 0) return false;
  // The start time the registry recorded for it guards against pid reuse.
  std::uint64_t recorded = 0;
  for (std::uint32_t i = 0; i < entries && recorded == 0; ++i) {
    auto* e = const_cast<registry_entry*>(&registry[i]);
    if (std::atomic_ref<std::uint32_t>(e->pid).load(std::memory_order_acquire) != pid) continue;
    recorded = std::atomic_ref<std::uint64_t>(e->start_time).load(std::memory_order_acquire);
  }
  return process_alive_since(pid, recorded);
}

std::uint32_t register_process(registry_entry* registry, std::uint32_t entries) noexcept {
  const std::uint32_t pid = current_pid();
  const std::uint64_t start = process_start_time(pid);
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t i = 0; i < entries; ++i) {
      std::atomic_ref<std::uint32_t> slot(registry[i].pid);
      std::uint32_t expected = slot.load(std::memory_order_relaxed);
      // Second pass: also take over entries whose process is gone.
      if (expected != 0 && !(pass == 1 && !process_alive(expected, registry, entries))) continue;
      if (slot.compare_exchange_strong(expected, pid, std::memory_order_acq_rel)) {
        std::atomic_ref<std::uint64_t>(registry[i].start_time).store(start, std::memory_order_release);
        return i;
      }
    }
  }
  return UINT32_MAX;
}

void deregister_process(registry_entry* registry, std::uint32_t entries, std::uint32_t index,
                        std::uint32_t pid) noexcept {
  if (index >= entries) return;
  std::atomic_ref<std::uint64_t>(registry[index].start_time).store(0, std::memory_order_relaxed);
  std::uint32_t expected = pid;
  std::atomic_ref<std::uint32_t>(registry[index].pid).compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

std::uint32_t count_live_processes(const registry_entry* registry, std::uint32_t entries) noexcept {
  std::uint32_t live = 0;
  for (std::uint32_t i = 0; i < entries; ++i) {
    const std::uint32_t pid =
        std::atomic_ref<std::uint32_t>(const_cast<registry_entry&>(registry[i]).pid).load(std::memory_order_acquire);
    if (pid != 0 && process_alive(pid, registry, entries)) ++live;
  }
  return live;
}

bool follow_parent_death(std::uint32_t parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, parent_death_signal);
  return !parent_gone(parent);  // it may have ended before the request
}

bool parent_gone(std::uint32_t parent) noexcept { return static_cast<std::uint32_t>(::getppid()) != parent; }

}  // namespace chanpool::channels::detail
