// The Pool under faults: workers and node agents killed mid-task, tasks that always kill their
// worker. Never a hang, never a result delivered twice.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/pool/pool.hpp"
#include "chanpool/workload/work_items.hpp"
#include "pool_test_util.hpp"

namespace {

namespace pl = chanpool::pool;
using namespace std::chrono_literals;
using chanpool::test::test_pool_options;

// Kills its own worker the first time it runs (the marker file makes "first" cross-process).
int die_once(std::string marker) {
  if (marker.empty()) return 0;
  const int fd = ::open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) {
    ::close(fd);
    ::raise(SIGKILL);
  }
  return static_cast<int>(marker.size());
}
CHANPOOL_TASK(die_once);

int always_die(int) {
  ::raise(SIGKILL);
  return 0;
}
CHANPOOL_TASK(always_die);

// Writes its pid to `file`, then sleeps: the test kills it mid-task.
int report_and_sleep(std::string file, int ms) {
  {
    std::ofstream out(file, std::ios::app);
    out << ::getpid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
CHANPOOL_TASK(report_and_sleep);

int sleep_seconds(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
  return static_cast<int>(s * 1e6);
}
CHANPOOL_TASK(sleep_seconds);

std::string temp_path(const std::string& what) {
  return "/dev/shm/chanpool-test-" + std::to_string(::getpid()) + "-" + what;
}

TEST(PoolFaults, WorkerThatDiesMidTaskHasItsChunkRerunOnce) {
  pl::pool p(test_pool_options(2, 2));
  const std::string marker = temp_path("die-once");
  std::remove(marker.c_str());
  std::vector<std::string> args(30, "");
  args[11] = marker;
  const auto r = p.map(die_once, args, 1);
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], static_cast<int>(args[i].size()));
  const auto c = p.counters();
  EXPECT_EQ(c.workers_lost, 1u);
  EXPECT_EQ(c.chunks_rerun, 1u);
  std::remove(marker.c_str());
}

TEST(PoolFaults, WorkerKilledFromOutsideMidTaskCompletesTheMapExactlyOnce) {
  pl::pool p(test_pool_options(2, 2));
  const std::string file = temp_path("pids");
  std::remove(file.c_str());
  std::vector<std::tuple<std::string, int>> args;
  for (int i = 0; i < 12; ++i) args.emplace_back(file, 300);
  auto r = p.starmap_async(report_and_sleep, args, 1);
  int victim = 0;
  for (int i = 0; i < 500 && victim == 0; ++i) {
    std::ifstream in(file);
    in >> victim;
    if (victim == 0) std::this_thread::sleep_for(5ms);
  }
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  const auto values = r.get(60s);
  EXPECT_EQ(values, std::vector<int>(12, 300));
  EXPECT_EQ(p.counters().workers_lost, 1u);
  EXPECT_GE(p.counters().chunks_rerun, 1u);
  std::remove(file.c_str());
}

TEST(PoolFaults, TaskThatAlwaysKillsItsWorkerFailsWithWorkerLost) {
  auto o = test_pool_options(1, 2);
  o.max_task_retries = 2;
  pl::pool p(o);
  auto r = p.apply_async(always_die, 1);
  try {
    r.get(60s);
    FAIL() << "expected worker_lost";
  } catch (const pl::worker_lost& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("always_die"), std::string::npos) << what;
    EXPECT_NE(what.find("signal 9"), std::string::npos) << what;
    EXPECT_NE(what.find("3 runs"), std::string::npos) << what;
  }
  EXPECT_EQ(p.counters().workers_lost, 3u);
  // Replacements took over: the pool still works.
  EXPECT_EQ(p.apply(sleep_seconds, 0.001), 1000);
}

TEST(PoolFaults, KilledNodeAgentIsReportedAndItsWorkRunsElsewhere) {
  pl::pool p(test_pool_options(3, 2));
  std::vector<double> items(24, 0.1);
  auto r = p.map_async(sleep_seconds, items, 1);
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(::kill(p.info().agent_pids.at(2), SIGKILL), 0);
  const auto values = r.get(60s);
  EXPECT_EQ(values, std::vector<int>(24, 100000));
  EXPECT_EQ(p.counters().nodes_lost, 1u);
  // The survivors go on.
  EXPECT_EQ(p.map(sleep_seconds, std::vector<double>(6, 0.001), 1), std::vector<int>(6, 1000));
}

TEST(PoolFaults, EveryNodeLostFailsInsteadOfHanging) {
  pl::pool p(test_pool_options(2, 1));
  auto r = p.map_async(sleep_seconds, std::vector<double>(4, 2.0), 1);
  std::this_thread::sleep_for(50ms);
  for (int pid : p.info().supervisor_pids) ::kill(pid, SIGKILL);
  EXPECT_THROW(r.get(60s), pl::worker_lost);
}

// A CI-sized imbalanced map: on 4 nodes x 4 workers it completes, in order.
TEST(PoolFaults, ImbalancedMapOnFourNodesOfFourWorkers) {
  pl::pool p(test_pool_options(4, 4));
  const auto items = chanpool::workload::work_items(7, 16 * 4, 0.01, 8.0);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = p.map(sleep_seconds, items);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.size(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(r[i], static_cast<int>(items[i] * 1e6));
  std::printf("4x4 imbalanced map of %zu items: %.3f s\n", items.size(), seconds);
}

}  // namespace
