// The doorbell that wakes a sleeping agent, and its protocol with the inbox (doorbell.hpp),
// without libfabric: rings reach the socket across processes, one ring per sleep however many
// senders publish, and a sender that publishes while the agent is awake does not ring.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "channels/test_util.hpp"
#include "doorbell.hpp"
#include "fence.hpp"

namespace chanpool::test {
namespace {

namespace td = chanpool::transport::detail;

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

TEST(Doorbell, ARingFromAnotherProcessWakesThePoller) {
  const std::string job = test_job("db");
  auto bell = td::doorbell::open(job);
  ASSERT_TRUE(bell) << bell.error().message();
  EXPECT_FALSE(readable_within(bell->fd(), 0));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    td::doorbell_ringer(job).ring();
    ::_exit(0);
  }
  EXPECT_TRUE(readable_within(bell->fd(), 5000));
  EXPECT_EQ(bell->drain(), 1u);
  EXPECT_FALSE(readable_within(bell->fd(), 0));
  int st = 0;
  ::waitpid(child, &st, 0);
}

TEST(Doorbell, OneNodeJobOneDoorbell) {
  const std::string job = test_job("db");
  auto first = td::doorbell::open(job);
  ASSERT_TRUE(first);
  auto second = td::doorbell::open(job);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::error_code(EADDRINUSE, std::generic_category()));
  // Another node job has its own.
  EXPECT_TRUE(td::doorbell::open(job + "-n1"));
  // Gone with its owner: the name is free again.
  first = td::doorbell{};
  EXPECT_TRUE(td::doorbell::open(job));
}

TEST(Doorbell, LongJobNamesStayDistinctAndFit) {
  const std::string a(300, 'a');
  std::string b = a;
  b.back() = 'b';
  const auto x = td::make_doorbell_address(a), y = td::make_doorbell_address(b);
  EXPECT_LE(static_cast<std::size_t>(x.length), sizeof(sockaddr_un));
  EXPECT_NE(std::string(x.addr.sun_path + 1, x.length - 1 - offsetof(sockaddr_un, sun_path)),
            std::string(y.addr.sun_path + 1, y.length - 1 - offsetof(sockaddr_un, sun_path)));
}

TEST(Doorbell, RingingNobodyIsHarmless) {
  td::doorbell_ringer ringer(test_job("db-none"));
  ringer.ring();  // no agent: ECONNREFUSED, ignored
  ringer.ring();
  SUCCEED();
}

TEST(Doorbell, OnlyTheSenderThatFindsTheAgentAsleepRings) {
  std::uint32_t asleep = 0;
  EXPECT_FALSE(td::should_ring(asleep));  // awake: it will find the record itself
  asleep = 1;
  EXPECT_TRUE(td::should_ring(asleep));  // this sender turns it to 0 and rings
  EXPECT_EQ(asleep, 0u);
  EXPECT_FALSE(td::should_ring(asleep));  // the next one does not
}

// Many senders publish while the agent goes to sleep and wakes: no publication is left unseen
// by a sleeping agent (a lost wake-up would leave it asleep with a record waiting), and a sleep
// is rung at most once.
TEST(Doorbell, NoWakeUpIsLostBetweenPublishAndSleep) {
  const std::string job = test_job("db");
  auto bell = td::doorbell::open(job);
  ASSERT_TRUE(bell);
  std::uint32_t asleep = 0;
  std::atomic<std::uint64_t> published{0};
  constexpr int senders = 3, per_sender = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < senders; ++t)
    threads.emplace_back([&] {
      td::doorbell_ringer ringer(job);
      for (int i = 0; i < per_sender; ++i) {
        published.fetch_add(1, std::memory_order_release);  // the inbox record
        if (td::should_ring(asleep)) ringer.ring();
        if (i % 64 == 0) std::this_thread::yield();
      }
    });
  std::uint64_t seen = 0;
  std::uint32_t arms = 0, rings = 0;
  while (seen < std::uint64_t{senders} * per_sender) {
    seen = published.load(std::memory_order_acquire);  // drain the "inbox"
    std::atomic_ref<std::uint32_t> word(asleep);
    word.store(1, std::memory_order_relaxed);
    ++arms;
    chanpool::channels::detail::full_fence();
    if (published.load(std::memory_order_relaxed) != seen) {
      word.store(0, std::memory_order_relaxed);
      continue;
    }
    if (seen == std::uint64_t{senders} * per_sender) break;
    // A lost wake-up shows as a sleep that lasts the whole timeout with a record waiting.
    const bool woke = readable_within(bell->fd(), 2000);
    word.store(0, std::memory_order_relaxed);
    ASSERT_TRUE(woke || published.load() == seen) << "slept with a record published and no ring";
    rings += bell->drain();
  }
  for (auto& t : threads) t.join();
  rings += bell->drain();
  EXPECT_LE(rings, arms);  // at most one ring each time the agent armed the word
}

}  // namespace
}  // namespace chanpool::test
