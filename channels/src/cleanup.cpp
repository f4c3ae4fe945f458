#include "chanpool/channels/cleanup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "layout.hpp"
#include "process.hpp"
#include "segment.hpp"

namespace chanpool::channels {
namespace {

using namespace detail;

// Judges one /dev/shm entry "chanpool.<uid>.<job>.<name>" with a read-only mapping.
segment_record inspect(const std::string& shm_name) {
  segment_record r;
  r.shm_name = shm_name;
  const std::size_t job_start = shm_name.find('.', std::strlen("chanpool.")) + 1;
  const std::size_t name_start = shm_name.find('.', job_start);
  r.job = shm_name.substr(job_start, name_start - job_start);
  r.channel_name = name_start == std::string::npos ? "" : shm_name.substr(name_start + 1);
  const int fd = ::shm_open(("/" + shm_name).c_str(), O_RDONLY, 0);
  if (fd < 0) {
    r.problem = std::strerror(errno);
    return r;
  }
  struct stat st {};
  ::fstat(fd, &st);
  r.bytes = static_cast<std::uint64_t>(st.st_size);
  void* addr = r.bytes ? ::mmap(nullptr, r.bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (addr == MAP_FAILED) {
    r.problem = "empty or unmappable segment";
    r.stale = true;  // nobody can be using a segment that has no header
    return r;
  }
  auto* base = static_cast<std::byte*>(addr);
  channel_view view;
  const std::error_code ec = validate_header(base, r.bytes, view);
  const auto* h = reinterpret_cast<const segment_header*>(base);
  r.creator_pid = h->creator_pid;
  const bool creator_alive = h->creator_pid != 0 && process_alive(h->creator_pid, nullptr, 0) &&
                             (h->creator_start_time == 0 || process_start_time(h->creator_pid) == h->creator_start_time);
  // A node agent's shared state (transport/src/node_state.hpp) is not a channel but shares the
  // header prefix (magic, version, creator pid and start time at the same offsets): judged by
  // its owner like any segment, and not reported as a problem.
  constexpr std::uint64_t agent_state_magic = 0x3130545344'4F4E43ull;  // "CNODST01"
  if (ec && h->magic == agent_state_magic) {
    r.live_processes = creator_alive ? 1 : 0;
  } else if (ec) {
    r.problem = ec.message();
    r.live_processes = creator_alive ? 1 : 0;
  } else {
    r.live_processes = count_live_processes(view.registry, view.registry_entries);
    if (creator_alive) {
      // The creator may have closed its handle (deregistered) and still be alive: count it once.
      bool registered = false;
      for (std::uint32_t i = 0; i < view.registry_entries; ++i)
        registered |= std::atomic_ref<std::uint32_t>(view.registry[i].pid).load(std::memory_order_relaxed) == h->creator_pid;
      if (!registered) ++r.live_processes;
    }
  }
  r.stale = r.live_processes == 0;
  ::munmap(addr, r.bytes);
  return r;
}

}  // namespace

std::vector<segment_record> list_segments(const std::string& job) {
  std::vector<segment_record> out;
  const std::string prefix = "chanpool." + std::to_string(::getuid()) + "." + (job.empty() ? "" : job + ".");
  DIR* dir = ::opendir("/dev/shm");
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    const std::string entry = e->d_name;
    if (entry.rfind(prefix, 0) == 0) out.push_back(inspect(entry));
  }
  ::closedir(dir);
  return out;
}

std::vector<segment_record> cleanup_stale(const cleanup_options& options, std::error_code& error) {
  error.clear();
  std::vector<segment_record> removed;
  for (auto& r : list_segments(options.job)) {
    if (!r.stale) continue;
    if (!options.dry_run) {
      if (auto ec = unlink_segment(r.shm_name); ec && ec != errc::not_found) {
        error = ec;
        continue;
      }
    }
    removed.push_back(std::move(r));
  }
  return removed;
}

}  // namespace chanpool::channels
