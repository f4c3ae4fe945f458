// The orchestrator's watch over its agents and supervisors: exits seen by one poll, zombies
// counted as exited, pids that never existed too, and the /proc reading beside it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "process_watch.hpp"

namespace chanpool::test {
namespace {

using chanpool::pool::detail::process_exited;
using chanpool::pool::detail::process_watch;

pid_t sleeper() {
  const pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

// Polls until `done` or 5 s: a killed process becomes a zombie a moment after kill() returns.
template <class F>
bool within_5s(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(ProcessWatch, SeesALiveProcessAndThenItsExitAsAZombie) {
  const pid_t a = sleeper(), b = sleeper();
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  process_watch w;
  EXPECT_FALSE(w.exited(a));
  EXPECT_FALSE(w.exited(b));
  w.refresh();
  EXPECT_FALSE(w.exited(a));
  ASSERT_EQ(kill(a, SIGKILL), 0);  // not reaped: a zombie has exited all the same
  EXPECT_TRUE(within_5s([&] {
    w.refresh();
    return w.exited(a);
  }));
  EXPECT_FALSE(w.exited(b)) << "only the process that exited";
  EXPECT_TRUE(process_exited(a));
  EXPECT_FALSE(process_exited(b));
  kill(b, SIGKILL);
  waitpid(a, nullptr, 0);
  waitpid(b, nullptr, 0);
  w.refresh();
  EXPECT_TRUE(w.exited(b));  // and reaped
}

TEST(ProcessWatch, AnExitedProcessStaysExitedAfterItsPidIsReaped) {
  const pid_t a = sleeper();
  process_watch w;
  EXPECT_FALSE(w.exited(a));
  kill(a, SIGKILL);
  waitpid(a, nullptr, 0);
  w.refresh();
  EXPECT_TRUE(w.exited(a));
  w.refresh();
  EXPECT_TRUE(w.exited(a));
}

TEST(ProcessWatch, PidsThatAreNotProcessesHaveExited) {
  process_watch w;
  EXPECT_TRUE(w.exited(0));
  EXPECT_TRUE(w.exited(-1));
  // Above /proc/sys/kernel/pid_max (at most 2^22): never a process.
  EXPECT_TRUE(w.exited((1 << 22) + 7));
  EXPECT_TRUE(process_exited((1 << 22) + 7));
  EXPECT_FALSE(w.exited(getpid()));
  EXPECT_FALSE(process_exited(getpid()));
}

}  // namespace
}  // namespace chanpool::test
