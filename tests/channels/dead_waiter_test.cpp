// Processes killed while asleep in a channel, and killed slot holders that nobody has reaped yet.
//
// A process SIGKILLed while it sleeps in recv(), send() or poll_set::wait() never runs the code
// that takes it off the channel's waiter count: the channel must take it off by itself (repair(),
// the next waiter that looks, a publisher whose wake-ups find nobody), or poll() lies for ever and
// every later publish pays a futex_wake for a sleeper that no longer exists. A killed process
// that its parent has not reaped yet (a zombie) is dead too: it must not wedge the channel until
// the parent calls waitpid().
#include <array>
#include <future>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

class ChannelDeadWaiters : public channel_test {
 protected:
  static ch::wait_config sleepy() {
    // Sleep at once; a long liveness check, so that only the mechanisms under test act.
    return {.mode = ch::wait_mode::idle, .spin_for = {}, .liveness_check = 30s};
  }

  // Forks `n` children that open `name` and run `body` on it (which should block for ever).
  std::vector<pid_t> fork_sleepers(child_guard& guard, const std::string& name, int n,
                                   const std::function<void(channel&)>& body) {
    std::vector<pid_t> pids;
    const auto o = options();
    for (int i = 0; i < n; ++i)
      pids.push_back(guard.add(fork_child([&]() -> int {
        auto r = channel::open(name, o);
        if (!r) return 10;
        r->set_wait(sleepy());
        body(*r);
        return 11;  // the body returned: it was meant to sleep until killed
      })));
    return pids;
  }

  template <class Count>
  static bool wait_until(channel& c, Count count, std::uint32_t want, std::chrono::milliseconds t = 5s) {
    for (auto end = clock::now() + t; clock::now() < end;) {
      if (count(c.poll()) == want) return true;
      std::this_thread::sleep_for(1ms);
    }
    return count(c.poll()) == want;
  }
};

constexpr auto receivers = [](const ch::poll_info& p) { return p.blocked_receivers; };
constexpr auto senders = [](const ch::poll_info& p) { return p.blocked_senders; };

void sleep_in_recv(channel& c) {
  std::array<std::byte, 64> buf{};
  std::size_t len = 0;
  (void)c.recv(buf, len, ch::forever);
}

// repair() takes killed sleeping receivers off the count and says it did.
TEST_F(ChannelDeadWaiters, KilledSleepingReceiversAreTakenOffByRepair) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_TRUE(c.is_open());
  child_guard guard;
  auto pids = fork_sleepers(guard, name, 2, sleep_in_recv);
  ASSERT_TRUE(wait_until(c, receivers, 2)) << "the two receivers never slept";
  for (pid_t p : pids) kill_and_reap(p);
  EXPECT_GE(c.repair(), 2u) << "repair() did not take the two dead sleepers off";
  EXPECT_EQ(c.poll().blocked_receivers, 0u) << "dead receivers still counted as sleeping";
  EXPECT_EQ(c.repair(), 0u) << "a second repair() has nothing left to do";
  // The channel works normally afterwards.
  const auto m = pattern(16);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  std::vector<std::byte> got;
  EXPECT_EQ(c.recv(got, ch::try_once), status::ok);
}

// Without anyone calling repair(): a publisher whose wake-ups find no sleeper takes the dead off
// the count within a few milliseconds, so later publishes stop paying for futex_wake.
TEST_F(ChannelDeadWaiters, KilledSleepingReceiversAreTakenOffByPublishers) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 64, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  child_guard guard;
  auto pids = fork_sleepers(guard, name, 2, sleep_in_recv);
  ASSERT_TRUE(wait_until(c, receivers, 2)) << "the two receivers never slept";
  for (pid_t p : pids) kill_and_reap(p);
  const auto m = pattern(16);
  std::vector<std::byte> got;
  bool fixed = false;
  for (auto end = clock::now() + 2s; clock::now() < end && !fixed;) {
    // A receiver that spins (never sleeps) and a sender: the only sleepers are the dead ones.
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
    ASSERT_EQ(c.recv(got, ch::try_once), status::ok);
    fixed = c.poll().blocked_receivers == 0;
    std::this_thread::sleep_for(100us);
  }
  EXPECT_TRUE(fixed) << "two dead receivers still counted after 2 s of traffic: " << c.poll().blocked_receivers;
}

// The same for senders asleep on a full channel.
TEST_F(ChannelDeadWaiters, KilledSleepingSendersAreTakenOff) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 2, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  const auto m = pattern(16);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  child_guard guard;
  auto pids = fork_sleepers(guard, name, 2, [m](channel& mine) { (void)mine.send(as_bytes(m), ch::forever); });
  ASSERT_TRUE(wait_until(c, senders, 2)) << "the two senders never slept";
  for (pid_t p : pids) kill_and_reap(p);
  EXPECT_GE(c.repair(), 2u);
  EXPECT_EQ(c.poll().blocked_senders, 0u) << "dead senders still counted as sleeping";
  // A live sender that sleeps afterwards is counted, woken and uncounted as usual.
  auto live = std::async(std::launch::async, [&] {
    auto mine = channel::open(name, options());
    if (!mine) return status::invalid;
    mine->set_wait(sleepy());
    return mine->send(as_bytes(m), 10s);
  });
  ASSERT_TRUE(wait_until(c, senders, 1)) << "a live sleeping sender is not counted";
  std::vector<std::byte> got;
  ASSERT_EQ(c.recv(got, ch::try_once), status::ok);
  ASSERT_EQ(live.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(live.get(), status::ok);
  EXPECT_TRUE(wait_until(c, senders, 0));
}

// A poll_set waiter killed in its sleep is taken off too (it counts as a blocked receiver).
TEST_F(ChannelDeadWaiters, KilledPollSetWaiterIsTakenOff) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_TRUE(c.is_open());
  child_guard guard;
  auto pids = fork_sleepers(guard, name, 1, [](channel& mine) {
    ch::poll_set set;
    set.add(mine, ch::readable);
    std::vector<ch::poll_event> ready;
    (void)set.wait(ready, ch::forever);
  });
  ASSERT_TRUE(wait_until(c, receivers, 1)) << "the poll_set waiter never slept";
  kill_and_reap(pids[0]);
  EXPECT_GE(c.repair(), 1u);
  EXPECT_EQ(c.poll().blocked_receivers, 0u) << "dead poll_set waiter still counted";
}

// A process's record survives its waits: a receiver that sleeps, wakes with a message and sleeps
// again many times leaves the count at exactly the number of live sleepers.
TEST_F(ChannelDeadWaiters, RepeatedSleepsBalanceTheCount) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_TRUE(c.is_open());
  auto rx = std::async(std::launch::async, [&] {
    auto mine = channel::open(name, options());
    if (!mine) return -1;
    mine->set_wait(sleepy());
    std::vector<std::byte> got;
    int n = 0;
    while (mine->recv(got, 10s) == status::ok && !got.empty()) ++n;
    return n;
  });
  const auto m = pattern(16);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(wait_until(c, receivers, 1)) << "round " << i;
    ASSERT_EQ(c.send(as_bytes(m)), status::ok);
  }
  ASSERT_TRUE(wait_until(c, receivers, 1));
  ASSERT_EQ(c.send({}), status::ok);  // an empty message ends the loop
  ASSERT_EQ(rx.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(rx.get(), 50);
  EXPECT_EQ(c.poll().blocked_receivers, 0u);
  EXPECT_EQ(c.repair(), 0u) << "a live process's waits are not repairs";
}

// ---------------------------------------------------------------------------------------------

class ChannelZombie : public ChannelDeadWaiters {};

char proc_state(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return '?';
  char buf[512] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  return p && p[1] == ' ' ? p[2] : '?';
}

long proc_threads(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return -1;
  char line[256];
  long threads = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "Threads: %ld", &threads) == 1) break;
  std::fclose(f);
  return threads;
}

// SIGKILLs `pid` and waits until it is a zombie, without reaping it. The leader shows Z as soon
// as it has exited; other threads (a sanitizer's, say) may take a moment more: wait for them too.
bool kill_to_zombie(pid_t pid) {
  kill(pid, SIGKILL);
  for (auto end = clock::now() + 5s; clock::now() < end;) {
    if (proc_state(pid) == 'Z' && proc_threads(pid) <= 1) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// Forks a child that takes a send claim (never committed) and parks; returns once it holds it.
pid_t fork_send_claim_holder(child_guard& guard, const std::string& name, const ch::open_options& o) {
  gate claimed;
  pid_t pid = guard.add(fork_child([&]() -> int {
    auto r = channel::open(name, o);
    if (!r) return 10;
    ch::send_claim sc;
    if (r->claim_send(40, sc, 5s) != status::ok) return 11;
    claimed.signal();
    for (;;) pause();
  }));
  return claimed.wait(10s) ? pid : -1;
}

TEST_F(ChannelZombie, UnreapedSlotHolderDoesNotWedgeTheChannel) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 16, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  c.set_wait({.mode = ch::wait_mode::adaptive, .spin_for = 20us, .liveness_check = 10ms});
  child_guard guard;
  const pid_t holder = fork_send_claim_holder(guard, name, options());
  ASSERT_GT(holder, 0) << "the child did not take its claim";
  auto m = make_message(60, 3, 7);
  ASSERT_EQ(c.send(as_bytes(m)), status::ok);  // queued behind the claim
  ASSERT_TRUE(kill_to_zombie(holder)) << "the killed child never showed as a zombie";
  std::vector<std::byte> got;
  const auto t0 = clock::now();
  const status st = c.recv(got, 2s);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
  EXPECT_EQ(st, status::ok) << "the message behind a zombie's claim did not arrive (zombie counted as alive)";
  EXPECT_LT(waited, 1500ms) << "the recv should not wait for its 2 s timeout";
  msg_info info;
  if (st == status::ok) {
    EXPECT_TRUE(verify_message(got, info));
    EXPECT_EQ(info.producer, 3u);
  }
  EXPECT_EQ(c.stats().lost_messages, 1u);
  EXPECT_EQ(proc_state(holder), 'Z') << "the test meant to run while the holder is unreaped";
  kill_and_reap(holder);
}

TEST_F(ChannelZombie, RepairTreatsAZombieAsDead) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 16, .slot_bytes = 128, .heap_bytes = 0});
  ASSERT_TRUE(c.is_open());
  child_guard guard;
  const pid_t holder = fork_send_claim_holder(guard, name, options());
  ASSERT_GT(holder, 0);
  EXPECT_EQ(c.repair(), 0u) << "repair() must not touch a live holder";
  ASSERT_TRUE(kill_to_zombie(holder));
  EXPECT_EQ(c.repair(), 1u) << "repair() left a zombie's claim in place";
  EXPECT_EQ(c.stats().attached_processes, 1u) << "a zombie still counted as attached";
  kill_and_reap(holder);
}

}  // namespace
}  // namespace chanpool::test
