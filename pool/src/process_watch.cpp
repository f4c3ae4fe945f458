#include "process_watch.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace chanpool::pool::detail {

bool process_exited(pid_t pid) {
  if (pid <= 0) return true;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (!f) return true;
  char line[512];
  const bool read = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!read) return true;
  // The state follows the command name, which may itself hold ')' and spaces: the last ')'.
  const char* paren = std::strrchr(line, ')');
  if (!paren || paren[1] != ' ' || paren[2] == '\0') return true;
  return paren[2] == 'Z' || paren[2] == 'X';
}

process_watch::~process_watch() {
  for (auto& [pid, e] : entries_)
    if (e.fd >= 0) ::close(e.fd);
}

process_watch::entry& process_watch::track(pid_t pid) {
  auto [it, fresh] = entries_.try_emplace(pid);
  if (!fresh) return it->second;
  entry& e = it->second;
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    e.fd = static_cast<int>(fd);
    order_.push_back(pid);
    return e;
  }
  if (errno == ESRCH) {  // gone already (and reaped)
    e.gone = true;
    return e;
  }
#endif
  order_.push_back(pid);  // no pidfd: /proc at each refresh
  return e;
}

void process_watch::refresh() {
  std::vector<pollfd> fds;
  std::vector<pid_t> polled;
  fds.reserve(order_.size());
  for (pid_t pid : order_) {
    entry& e = entries_[pid];
    if (e.gone) continue;
    if (e.fd < 0) {
      e.gone = process_exited(pid);
      continue;
    }
    fds.push_back({e.fd, POLLIN, 0});
    polled.push_back(pid);
  }
  if (fds.empty()) return;
  if (::poll(fds.data(), fds.size(), 0) <= 0) return;
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) entries_[polled[i]].gone = true;
}

bool process_watch::exited(pid_t pid) {
  if (pid <= 0) return true;
  const bool known = entries_.count(pid) != 0;
  entry& e = track(pid);
  if (!known && !e.gone) {
    // First question about this pid: answer it now rather than at the next refresh.
    if (e.fd < 0) {
      e.gone = process_exited(pid);
    } else {
      pollfd p{e.fd, POLLIN, 0};
      e.gone = ::poll(&p, 1, 0) > 0;
    }
  }
  return e.gone;
}

}  // namespace chanpool::pool::detail
