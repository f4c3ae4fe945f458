#include "process_watch.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "process.hpp"  // channels/src: read_process_stat

namespace chanpool::pool::detail {
namespace {

// A pidfd for `pid`, -1 where pidfds are refused, or -2 when `pid` is gone already (and reaped).
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return static_cast<int>(fd);
  if (errno == ESRCH) return -2;
#endif
  return -1;
}

}  // namespace

bool process_exited(pid_t pid) {
  char state = 0;
  std::uint64_t start_time = 0;
  if (pid <= 0 || !channels::detail::read_process_stat(static_cast<std::uint32_t>(pid), state, start_time)) return true;
  return state == 'Z' || state == 'X';
}

process_watch::~process_watch() {
  for (auto& [pid, e] : entries_)
    if (e.fd >= 0) ::close(e.fd);
}

void process_watch::refresh() {
  std::vector<pollfd> fds;
  std::vector<entry*> polled;
  for (auto& [pid, e] : entries_) {
    if (e.gone) continue;
    if (e.fd < 0) {
      e.gone = process_exited(pid);
      continue;
    }
    fds.push_back({e.fd, POLLIN, 0});
    polled.push_back(&e);
  }
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0) return;
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) polled[i]->gone = true;
}

bool process_watch::exited(pid_t pid) {
  if (pid <= 0) return true;
  auto [it, fresh] = entries_.try_emplace(pid);
  entry& e = it->second;
  if (fresh) {
    // First question about this pid: answer it now rather than at the next refresh.
    const int fd = open_pidfd(pid);
    if (fd >= 0) {
      e.fd = fd;
      pollfd p{fd, POLLIN, 0};
      e.gone = ::poll(&p, 1, 0) > 0;
    } else {
      e.gone = fd == -2 || process_exited(pid);
    }
  }
  return e.gone;
}

}  // namespace chanpool::pool::detail
