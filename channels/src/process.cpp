#include "process.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "layout.hpp"

namespace chanpool::channels::detail {
namespace {

std::atomic<std::uint32_t> cached_pid{0};

void refresh_pid_after_fork() noexcept { cached_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed); }

std::uint32_t init_pid() noexcept {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, &refresh_pid_after_fork);
    return true;
  }();
  (void)registered;
  refresh_pid_after_fork();
  return cached_pid.load(std::memory_order_relaxed);
}

}  // namespace

std::uint32_t current_pid() noexcept {
  const std::uint32_t pid = cached_pid.load(std::memory_order_relaxed);
  return pid != 0 ? pid : init_pid();
}

std::uint64_t process_start_time(std::uint32_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Field 2 (comm) may hold spaces and parentheses: count fields after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  int field = 2;
  for (++p; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  unsigned long long start = 0;
  if (field != 22 || std::sscanf(p, "%llu", &start) != 1) return 0;
  return start;
}

namespace {
// A zombie has exited (it can no longer touch shared memory) but keeps its pid until reaped:
// its state in /proc/<pid>/stat is 'Z' (or 'X' while being reaped).
bool exited(std::uint32_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return false;
  char buf[512];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}
}  // namespace

bool process_alive(std::uint32_t pid, const registry_entry* registry, std::uint32_t entries) noexcept {
  if (pid == 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (exited(pid)) return false;
  // The pid exists; make sure it is still the process that registered (pid reuse).
  for (std::uint32_t i = 0; i < entries; ++i) {
    auto* e = const_cast<registry_entry*>(&registry[i]);
    if (std::atomic_ref<std::uint32_t>(e->pid).load(std::memory_order_acquire) != pid) continue;
    const std::uint64_t recorded = std::atomic_ref<std::uint64_t>(e->start_time).load(std::memory_order_acquire);
    if (recorded == 0) continue;
    const std::uint64_t now = process_start_time(pid);
    if (now != 0 && now != recorded) return false;
    return now != 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
  }
  return true;
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

}  // namespace chanpool::channels::detail
