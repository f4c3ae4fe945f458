// Which processes of this host have exited, for the orchestrator's liveness check of its agents
// and supervisors: one pidfd per process (it becomes readable when the process exits, zombie or
// reaped, and names that process even after its pid is used again), all of them polled in one
// system call. Where pidfds are refused (Linux before 5.3, a seccomp filter), /proc/<pid>/stat
// says whether a pid has exited.
//
// Not threadsafe: the scheduler thread owns its watch (start-up code checks one pid at a time with
// process_exited()).
#pragma once

#include <sys/types.h>

#include <unordered_map>

namespace chanpool::pool::detail {

// True once `pid` has exited (gone, or a zombie not yet reaped by its parent); by /proc/<pid>/stat.
bool process_exited(pid_t pid);

class process_watch {
 public:
  process_watch() = default;
  process_watch(const process_watch&) = delete;
  process_watch& operator=(const process_watch&) = delete;
  ~process_watch();

  // Looks again at every process asked about so far, in one poll. Call before a round of exited().
  void refresh();
  // True if `pid` had exited at the last refresh(), or (a pid not watched yet) has exited now.
  bool exited(pid_t pid);

 private:
  struct entry {
    int fd = -1;  // pidfd, or -1: use /proc
    bool gone = false;
  };

  std::unordered_map<pid_t, entry> entries_;
};

}  // namespace chanpool::pool::detail
