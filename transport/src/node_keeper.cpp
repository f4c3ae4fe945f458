#include "node_keeper.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <thread>

#include "chanpool/channels/channel.hpp"
#include "chanpool/channels/cleanup.hpp"
#include "node_state.hpp"
#include "process.hpp"  // channels/src: following the parent

namespace chanpool::transport::detail {
namespace {

namespace ch = chanpool::channels;
using steady = std::chrono::steady_clock;

// How long the keeper goes on removing what the node's other processes still held when the rank
// ended: they see the agent gone and leave within a liveness check or two.
constexpr auto removal_window = std::chrono::seconds(10);

// Leaves the launcher's file descriptors alone: Open MPI counts a rank as ended only once the
// pipes of its standard streams are closed, which a keeper holding them would delay.
void drop_inherited_files() {
  const int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd)
    if (null >= 0) ::dup2(null, fd);
  ::close_range(3, ~0u, 0);
}

// After the rank's end: removes the node's segments that no live process uses, until none is
// left or the window closes.
[[noreturn]] void remove_what_is_left(const std::string& node_job) {
  const auto until = steady::now() + removal_window;
  for (;;) {
    std::error_code ec;
    (void)ch::cleanup_stale({.job = node_job}, ec);
    if (ch::list_segments(node_job).empty() || steady::now() >= until) ::_exit(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

[[noreturn]] void keep(const std::string& node_job, pid_t rank, const std::string& state_path) {
  // Its own process group: a launcher ending the job signals the rank's group, not the keeper.
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "cp-keeper");
  drop_inherited_files();
  // SIGTERM only wakes it, like the parent-death signal: a launcher ending the job signals every
  // process of it (srun: the keeper too, then SIGKILL after KillWait), and ~agent sends it after
  // removing the node state. Either way the checks below say whether to clean up or just leave.
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, ch::detail::parent_death_signal);
  sigaddset(&wake, SIGTERM);
  ::sigprocmask(SIG_SETMASK, &wake, nullptr);  // everything else at its default
  if (!ch::detail::follow_parent_death(static_cast<std::uint32_t>(rank))) remove_what_is_left(node_job);
  for (;;) {
    // Woken by a signal above, or every 200 ms to see whether the agent left in order.
    const timespec wait{0, 200'000'000};
    (void)::sigtimedwait(&wake, nullptr, &wait);
    if (ch::detail::parent_gone(static_cast<std::uint32_t>(rank))) remove_what_is_left(node_job);
    struct stat st {};
    if (::stat(state_path.c_str(), &st) != 0 && errno == ENOENT) ::_exit(0);  // destroyed in order
  }
}

}  // namespace

result<pid_t> start_node_keeper(const std::string& node_job) noexcept {
  try {
    auto name = ch::channel::segment_name(node_state_name, {.job = node_job});
    if (!name) return name.error();
    const std::string state_path = "/dev/shm/" + *name;
    const pid_t rank = ::getpid();
    // Blocked across the fork so the keeper cannot be ended by them before it handles them.
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, ch::detail::parent_death_signal);
    sigaddset(&block, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &block, &old);
    const pid_t pid = ::fork();
    if (pid == 0) keep(node_job, rank, state_path);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return std::error_code(fork_errno, std::generic_category());
    return pid;
  } catch (...) {
    return errc::out_of_memory;
  }
}

}  // namespace chanpool::transport::detail
