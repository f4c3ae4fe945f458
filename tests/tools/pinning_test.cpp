// tools/common/pinning.hpp: a scoped pin gives the thread its CPU set back, so that processes a
// tool forks after measuring are not confined to the measuring core.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pinning.hpp"

namespace {

cpu_set_t current_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  return set;
}

TEST(ScopedPin, PinsForTheScopeAndRestoresAfter) {
  const cpu_set_t before = current_cpus();
  if (CPU_COUNT(&before) < 2) GTEST_SKIP() << "one CPU: nothing to narrow";
  {
    const chanpool::tools::scoped_pin pin(true, 0);
    ASSERT_TRUE(pin.why().empty()) << pin.why();
    const cpu_set_t during = current_cpus();
    EXPECT_EQ(CPU_COUNT(&during), 1);
    // A child forked now inherits the single CPU (what the restore is for afterwards).
    const pid_t child = ::fork();
    if (child == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      ::sched_getaffinity(0, sizeof set, &set);
      ::_exit(CPU_COUNT(&set) == 1 ? 0 : 1);
    }
    int st = 0;
    ::waitpid(child, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  const cpu_set_t after = current_cpus();
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << CPU_COUNT(&after) << " CPUs after, " << CPU_COUNT(&before) << " before";
}

TEST(ScopedPin, OffLeavesTheCpusAlone) {
  const cpu_set_t before = current_cpus();
  { const chanpool::tools::scoped_pin pin(false, 0); }
  const cpu_set_t after = current_cpus();
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
}

}  // namespace
