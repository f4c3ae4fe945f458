// The Pool's API, one call at a time, on virtual nodes: results, ordering, errors, lifetime.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/pool/pool.hpp"
#include "pool_test_util.hpp"

namespace {

namespace pl = chanpool::pool;
using namespace std::chrono_literals;
using chanpool::test::test_pool_options;

int square(int x) { return x * x; }
CHANPOOL_TASK(square);

long add3(int a, long b, short c) { return a + b + c; }
CHANPOOL_TASK(add3);

std::string shout(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s + "!";
}
CHANPOOL_TASK(shout);

std::vector<int> histogram(std::vector<int> values) {
  std::vector<int> h(4, 0);
  for (int v : values) h.at(static_cast<std::size_t>(v) % 4)++;
  return h;
}
CHANPOOL_TASK(histogram);

int fail_on_seven(int x) {
  if (x == 7) throw std::runtime_error("seven is not allowed");
  return x;
}
CHANPOOL_TASK(fail_on_seven);

int throw_int(int) { throw 42; }
CHANPOOL_TASK(throw_int);

void nothing(int) {}
CHANPOOL_TASK(nothing);

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
CHANPOOL_TASK(sleep_ms);

int my_pid(int) { return static_cast<int>(::getpid()); }
CHANPOOL_TASK(my_pid);

std::pair<std::uint32_t, std::uint32_t> where_am_i(int) {
  const auto w = pl::current_worker();
  return w ? std::pair{w->node, w->worker} : std::pair{~0u, ~0u};
}
CHANPOOL_TASK(where_am_i);

int node_seed = 0;
void set_seed(int s) { node_seed = s; }
CHANPOOL_TASK(set_seed);
int read_seed(int) { return node_seed; }
CHANPOOL_TASK(read_seed);

int unregistered(int x) { return x; }

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(Pool, MapReturnsResultsInOrderOnOneNode) {
  pl::pool p(test_pool_options(1, 2));
  EXPECT_EQ(p.workers(), 2u);
  const auto r = p.map(square, iota(1000));
  ASSERT_EQ(r.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i * i);
}

TEST(Pool, MapAcrossNodesWithEveryChunkSize) {
  pl::pool p(test_pool_options(3, 2));
  for (std::size_t chunksize : {0u, 1u, 7u, 5000u}) {
    const auto r = p.map(square, iota(2000), chunksize);
    ASSERT_EQ(r.size(), 2000u);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(r[static_cast<std::size_t>(i)], i * i) << "chunksize " << chunksize;
  }
  // Work reached every node: results come back from workers with distinct pids on each.
  const auto pids = p.map(my_pid, iota(600), 1);
  EXPECT_GE(std::set<int>(pids.begin(), pids.end()).size(), 3u);
}

TEST(Pool, EmptyInputGivesEmptyResult) {
  pl::pool p(test_pool_options(1, 1));
  EXPECT_TRUE(p.map(square, std::vector<int>{}).empty());
  auto it = p.imap(square, std::vector<int>{});
  EXPECT_FALSE(it.next().has_value());
}

TEST(Pool, NonTrivialArgumentsAndResultsGoThroughCereal) {
  pl::pool p(test_pool_options(2, 1));
  const auto r = p.map(shout, std::vector<std::string>{"a", "bc", std::string(100000, 'x')});
  EXPECT_EQ(r[0], "A!");
  EXPECT_EQ(r[1], "BC!");
  EXPECT_EQ(r[2], std::string(100000, 'X') + "!");
  const auto h = p.apply(histogram, std::vector<int>{0, 1, 2, 3, 4, 5});
  EXPECT_EQ(h, (std::vector<int>{2, 2, 1, 1}));
}

TEST(Pool, StarmapUnpacksTuples) {
  pl::pool p(test_pool_options(2, 1));
  std::vector<std::tuple<int, long, short>> args;
  for (int i = 0; i < 100; ++i) args.emplace_back(i, 1000L * i, static_cast<short>(i % 7));
  const auto r = p.starmap(add3, args);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i + 1000L * i + i % 7);
  auto ar = p.starmap_async(add3, args, 3);
  EXPECT_EQ(ar.get(10s), r);
}

TEST(Pool, ApplyAndApplyAsync) {
  pl::pool p(test_pool_options(2, 1));
  EXPECT_EQ(p.apply(add3, 1, 2L, static_cast<short>(3)), 6);
  std::vector<pl::async_result<int>> rs;
  for (int i = 0; i < 50; ++i) rs.push_back(p.apply_async(square, i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rs[static_cast<std::size_t>(i)].get(), i * i);
  auto v = p.apply_async(nothing, 1);
  v.get();
  EXPECT_TRUE(v.ready());
  EXPECT_TRUE(v.successful());
}

TEST(Pool, ImapIsOrderedAndImapUnorderedIsComplete) {
  pl::pool p(test_pool_options(2, 2));
  std::vector<int> ordered;
  for (int v : p.imap(square, iota(300))) ordered.push_back(v);
  ASSERT_EQ(ordered.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(ordered[static_cast<std::size_t>(i)], i * i);

  // Item 0 sleeps: in imap_unordered it must not come first.
  std::vector<int> ms(20, 1);
  ms[0] = 300;
  std::vector<int> unordered;
  for (int v : p.imap_unordered(sleep_ms, ms)) unordered.push_back(v);
  ASSERT_EQ(unordered.size(), 20u);
  EXPECT_NE(unordered.front(), 300);
  EXPECT_EQ(std::multiset<int>(unordered.begin(), unordered.end()), std::multiset<int>(ms.begin(), ms.end()));
}

TEST(Pool, TaskExceptionReachesGetWithTaskNameAndMessage) {
  pl::pool p(test_pool_options(2, 1));
  try {
    p.map(fail_on_seven, iota(20), 3);
    FAIL() << "map should have thrown";
  } catch (const pl::task_error& e) {
    EXPECT_EQ(e.task(), "fail_on_seven");
    EXPECT_EQ(e.item(), 7u);
    EXPECT_EQ(e.message(), "seven is not allowed");
    EXPECT_NE(std::string(e.what()).find("fail_on_seven"), std::string::npos);
  }
  auto r = p.apply_async(throw_int, 1);
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(), pl::task_error);
  // imap raises at the failed item and goes on after it.
  auto it = p.imap(fail_on_seven, iota(10));
  for (int i = 0; i < 7; ++i) EXPECT_EQ(*it.next(), i);
  EXPECT_THROW(it.next(), pl::task_error);
  EXPECT_EQ(*it.next(), 8);
  // The pool still works.
  EXPECT_EQ(p.apply(square, 9), 81);
}

TEST(Pool, CallbacksRunOnceWithResultOrError) {
  pl::pool p(test_pool_options(1, 2));
  std::atomic<int> sum{-1};
  std::atomic<int> errors{0};
  auto r = p.map_async(square, iota(10), 0,
                       {.callback = [&](const std::vector<int>& v) { sum = std::accumulate(v.begin(), v.end(), 0); },
                        .error_callback = [&](std::exception_ptr) { ++errors; }});
  r.wait();
  EXPECT_EQ(sum.load(), 285);
  std::string message;
  auto e = p.apply_async_with(fail_on_seven, std::tuple{7},
                              {.callback = [&](const int&) { ++errors; },
                               .error_callback = [&](std::exception_ptr ep) {
                                 try {
                                   std::rethrow_exception(ep);
                                 } catch (const pl::task_error& te) {
                                   message = te.message();
                                 }
                               }});
  e.wait();
  EXPECT_EQ(message, "seven is not allowed");
  EXPECT_EQ(errors.load(), 0);
}

TEST(Pool, GetTimesOutAndTheResultStaysUsable) {
  pl::pool p(test_pool_options(1, 1));
  auto r = p.apply_async(sleep_ms, 400);
  EXPECT_THROW(r.get(20ms), pl::timeout_error);
  EXPECT_FALSE(r.ready());
  EXPECT_THROW(r.successful(), std::logic_error);
  EXPECT_EQ(r.get(30s), 400);
  auto it = p.imap(sleep_ms, std::vector<int>{300});
  EXPECT_THROW(it.next(10ms), pl::timeout_error);
  EXPECT_EQ(*it.next(), 300);
}

TEST(Pool, InitializerRunsInEveryWorker) {
  auto o = test_pool_options(2, 2);
  o.set_initializer(set_seed, 1234);
  pl::pool p(o);
  const auto r = p.map(read_seed, iota(40), 1);
  for (int v : r) EXPECT_EQ(v, 1234);
}

TEST(Pool, MaxTasksPerChildReplacesWorkers) {
  auto o = test_pool_options(1, 2);
  o.maxtasksperchild = 2;
  pl::pool p(o);
  const auto pids = p.map(my_pid, iota(20), 1);
  // 20 chunks, at most 2 per worker process: at least 10 distinct processes ran them.
  EXPECT_GE(std::set<int>(pids.begin(), pids.end()).size(), 10u);
  EXPECT_EQ(p.counters().workers_lost, 0u);
}

// The start-up warm-up's no-op chunks say nothing about a map of long items: until one of its
// chunks has come back, no node is sent more than its workers plus the configured prefetch.
TEST(Pool, FirstMapIsNotSentAheadOnTheWarmUpsEvidence) {
  constexpr std::uint32_t nodes = 4, workers = 2;
  pl::pool_options o = test_pool_options(nodes, workers);
  o.prefetch_per_worker = 1;
  pl::pool p(o);
  const std::uint64_t before = p.counters().chunks_sent;
  const std::vector<int> items(32, 400);  // ms each; chunksize 1
  auto r = p.map_async(sleep_ms, items, 1);
  // Wait for the first round to go out (one chunk per worker), then a little longer for more.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (p.counters().chunks_sent - before < nodes * workers && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);
  const std::uint64_t sent_early = p.counters().chunks_sent - before;
  EXPECT_GE(sent_early, nodes * workers) << "the first round did not go out within 5 s";
  EXPECT_LE(sent_early, nodes * workers * (1 + o.prefetch_per_worker))
      << "sent ahead before any result of this map came back";
  EXPECT_EQ(r.get(30s), items);
}

TEST(Pool, CurrentWorkerNamesTheNodeAndWorkerThatRunsTheTask) {
  EXPECT_FALSE(pl::current_worker().has_value()) << "the orchestrator is no worker";
  pl::pool p(test_pool_options(3, 2));
  std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
  for (const auto& w : p.map(where_am_i, std::vector<int>(60, 0), 1)) {
    EXPECT_LT(w.first, 3u);
    EXPECT_LT(w.second, 2u);
    seen.insert(w);
  }
  EXPECT_GE(seen.size(), 2u) << "60 items ran on one worker of six";
}

TEST(Pool, UnregisteredTaskIsRejectedAtOnce) {
  pl::pool p(test_pool_options(1, 1));
  EXPECT_THROW(p.map(unregistered, iota(3)), std::invalid_argument);
  EXPECT_THROW(p.apply_async(unregistered, 1), std::invalid_argument);
}

TEST(Pool, OversizedArgumentIsRejectedWithItsSize) {
  auto o = test_pool_options(1, 1);
  o.max_item_bytes = 1000;
  pl::pool p(o);
  try {
    p.map(shout, std::vector<std::string>{"ok", std::string(5000, 'x')});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("item 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_item_bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p.apply(square, 3), 9);
}

TEST(Pool, CloseThenJoinFinishesQueuedWork) {
  pl::pool p(test_pool_options(2, 1));
  auto r = p.map_async(sleep_ms, std::vector<int>(8, 20), 1);
  p.close();
  EXPECT_THROW(p.apply_async(square, 1), pl::pool_not_running);
  p.join();
  EXPECT_EQ(r.get(1s), std::vector<int>(8, 20));
}

TEST(Pool, JoinBeforeCloseIsAnError) {
  pl::pool p(test_pool_options(1, 1));
  EXPECT_THROW(p.join(), std::logic_error);
}

TEST(Pool, TerminateFailsPendingWorkAndReturnsPromptly) {
  pl::pool p(test_pool_options(2, 1));
  auto r = p.map_async(sleep_ms, std::vector<int>(8, 5000), 1);
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  p.terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_THROW(r.get(1s), pl::pool_not_running);
  EXPECT_THROW(p.apply_async(square, 1), pl::pool_not_running);
  p.join();  // allowed after terminate
}

TEST(Pool, DestructorTerminatesLikeWith) {
  pl::async_result<std::vector<int>> r;
  {
    pl::pool p(test_pool_options(1, 1));
    r = p.map_async(sleep_ms, std::vector<int>(4, 5000), 1);
  }
  EXPECT_THROW(r.get(1s), pl::pool_not_running);
}

// The kernel's parent-death signal follows the *thread* that forked a process: a Pool made by a
// thread that has since ended keeps its agents, supervisors and workers (they took that signal
// for the owner's death and stopped).
TEST(Pool, OutlivesTheThreadThatStartedIt) {
  if (chanpool::test::kThreadSanitizer)
    GTEST_SKIP() << "ThreadSanitizer does not let a child start threads after a fork from a multi-threaded process, "
                    "which starting from a second thread is";
  std::optional<pl::pool> p;
  std::thread([&] { p.emplace(test_pool_options(2, 2)); }).join();
  std::this_thread::sleep_for(200ms);  // what the ended thread's signal set off has happened
  const auto r = p->map_async(square, iota(200), 1).get(60s);
  ASSERT_EQ(r.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i * i);
}

TEST(Pool, ManyThreadsSubmitAtOnce) {
  pl::pool p(test_pool_options(2, 2));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        if (p.apply(square, t * 1000 + i) != (t * 1000 + i) * (t * 1000 + i)) ++wrong;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
