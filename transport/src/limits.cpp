#include "chanpool/transport/limits.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace chanpool::transport {
namespace {

constexpr std::uint64_t MiB = 1ull << 20;
constexpr std::uint64_t unlimited = UINT64_MAX / 4;

// Per-node costs, measured on Debian 12 (libfabric 1.17, tcp;ofi_rxm) with 4 and 12 nodes and
// rounded up (docs/pool.md, "Limits"): an agent had 3 threads, 15 + 1 per node descriptors and
// a Pss of 12.3 MiB (it has 2 threads now); the starting process 5 + 1 per node descriptors. The check is meant to
// catch sizes far off, not to be exact.
constexpr std::uint64_t agent_tasks = 2;              // main and progress threads
constexpr std::uint64_t agent_files_base = 32;
constexpr std::uint64_t agent_files_per_peer = 2;     // a connection each way at most
constexpr std::uint64_t agent_memory = 16 * MiB;
constexpr std::uint64_t parent_files_base = 32;       // the caller's own, and libfabric's in it
constexpr std::uint64_t parent_files_per_node = 1;    // the socketpair to the agent
constexpr std::uint64_t inbox_slot_bytes = 128;       // agent.cpp: the inbox channel's slots

std::uint64_t read_u64_file(const char* path) noexcept {
  FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  unsigned long long v = 0;
  if (std::fscanf(f, "%llu", &v) != 1) v = 0;
  std::fclose(f);
  return v;
}

// Tasks (processes and threads) that exist now: /proc/loadavg's "running/total".
std::uint64_t tasks_running() noexcept {
  FILE* f = std::fopen("/proc/loadavg", "re");
  if (!f) return 0;
  double a, b, c;
  unsigned long long running = 0, total = 0;
  if (std::fscanf(f, "%lf %lf %lf %llu/%llu", &a, &b, &c, &running, &total) != 5) total = 0;
  std::fclose(f);
  return total;
}

std::uint64_t open_descriptors() noexcept {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  std::uint64_t n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

std::uint64_t mem_available() noexcept {
  FILE* f = std::fopen("/proc/meminfo", "re");
  if (!f) return unlimited;
  char line[256];
  unsigned long long kb = 0;
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f)) found = std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
  std::fclose(f);
  return found ? kb * 1024 : unlimited;
}

std::uint64_t soft_limit(int resource) noexcept {
  rlimit r{};
  if (::getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return unlimited;
  return r.rlim_cur;
}

std::uint64_t left(std::uint64_t limit, std::uint64_t used) noexcept { return limit > used ? limit - used : 0; }

std::string mib(std::uint64_t bytes) { return std::to_string((bytes + MiB - 1) / MiB) + " MiB"; }
std::string count(std::uint64_t n) { return n >= unlimited ? "no limit" : std::to_string(n); }

}  // namespace

resource_need operator+(const resource_need& a, const resource_need& b) noexcept {
  return {a.tasks + b.tasks, a.open_files + b.open_files, std::max(a.open_files_per_child, b.open_files_per_child),
          a.shm_bytes + b.shm_bytes, a.memory_bytes + b.memory_bytes};
}

host_capacity host_capacity::probe() noexcept {
  host_capacity h;
  std::uint64_t task_limit = soft_limit(RLIMIT_NPROC);
  if (const std::uint64_t pid_max = read_u64_file("/proc/sys/kernel/pid_max")) task_limit = std::min(task_limit, pid_max);
  if (const std::uint64_t threads = read_u64_file("/proc/sys/kernel/threads-max")) task_limit = std::min(task_limit, threads);
  h.tasks = left(task_limit, tasks_running());
  h.open_files_limit = soft_limit(RLIMIT_NOFILE);
  h.open_files = left(h.open_files_limit, open_descriptors());
  struct statvfs st{};
  h.shm_bytes = ::statvfs("/dev/shm", &st) == 0 ? std::uint64_t{st.f_bavail} * st.f_frsize : 0;
  h.memory_bytes = mem_available();
  return h;
}

std::error_code exceeded(const resource_need& need, const host_capacity& have) noexcept {
  if (need.tasks > have.tasks) return std::make_error_code(std::errc::resource_unavailable_try_again);
  if (need.open_files > have.open_files || need.open_files_per_child > have.open_files_limit)
    return std::make_error_code(std::errc::too_many_files_open);
  if (need.shm_bytes > have.shm_bytes) return std::make_error_code(std::errc::no_space_on_device);
  if (need.memory_bytes > have.memory_bytes) return std::make_error_code(std::errc::not_enough_memory);
  return {};
}

std::string describe_excess(const resource_need& need, const host_capacity& have) {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  if (need.tasks > have.tasks)
    add(std::to_string(need.tasks) + " processes and threads (this host has room for " + count(have.tasks) +
        " more: ulimit -u, kernel.pid_max, kernel.threads-max)");
  if (need.open_files > have.open_files)
    add(std::to_string(need.open_files) + " open files in this process (" + count(have.open_files) +
        " left under ulimit -n " + count(have.open_files_limit) + ")");
  if (need.open_files_per_child > have.open_files_limit)
    add(std::to_string(need.open_files_per_child) + " open files in each node agent (ulimit -n is " +
        count(have.open_files_limit) + ")");
  if (need.shm_bytes > have.shm_bytes) add(mib(need.shm_bytes) + " of /dev/shm (" + mib(have.shm_bytes) + " free)");
  if (need.memory_bytes > have.memory_bytes)
    add(mib(need.memory_bytes) + " of memory (" + mib(have.memory_bytes) + " available)");
  return out;
}

std::uint32_t largest_fitting(std::uint32_t upper, const std::function<resource_need(std::uint32_t)>& need,
                              const host_capacity& have) {
  std::uint32_t lo = 0, hi = upper;  // invariant: lo fits (0 trivially), everything above hi does not
  while (lo < hi) {
    const std::uint32_t mid = lo + (hi - lo + 1) / 2;
    if (!exceeded(need(mid), have))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

resource_need cluster_need(std::uint32_t nodes, const agent_config& agent) noexcept {
  resource_need n;
  n.tasks = nodes * agent_tasks;
  n.open_files = parent_files_base + nodes * parent_files_per_node;
  n.open_files_per_child = agent_files_base + std::uint64_t{nodes} * agent_files_per_peer;
  n.shm_bytes = std::uint64_t{nodes} * agent.inbox_capacity * inbox_slot_bytes;
  n.memory_bytes = nodes * agent_memory;
  return n;
}

std::error_code check_cluster_fits(const cluster_config& config, std::string* why) {
  const host_capacity have = host_capacity::probe();
  const resource_need need = cluster_need(config.nodes, config.agent);
  const std::error_code ec = exceeded(need, have);
  if (ec && why) {
    const std::uint32_t fits = largest_fitting(
        config.nodes, [&](std::uint32_t n) { return cluster_need(n, config.agent); }, have);
    *why = std::to_string(config.nodes) + " virtual nodes need about " + describe_excess(need, have) +
           "; the largest number of nodes that fits is " + std::to_string(fits);
  }
  return ec;
}

}  // namespace chanpool::transport
