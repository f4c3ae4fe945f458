// Cross-process tests with fork(): the segment is shared by name and by inherited handles.
#include <array>

#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

class ChannelProcess : public channel_test {};

#define ASSERT_OPEN(c) ASSERT_TRUE((c).is_open()) << "channel could not be created"

constexpr auto kChildDeadline = std::chrono::seconds(20);

TEST_F(ChannelProcess, ParentCreatesChildOpensAndSends) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 64});
  ASSERT_OPEN(c);
  const auto job = job_;
  constexpr std::uint64_t kCount = 1000;
  child_guard guard;
  pid_t pid = guard.add(fork_child([&] {
    auto r = channel::open(name, opts(job));
    if (!r) return 10;
    for (std::uint64_t i = 0; i < kCount; ++i) {
      auto m = make_message((i % 3 == 0) ? 6000 : 40 + i % 50, 3, i);  // inline and heap
      if (r->send(as_bytes(m), std::chrono::seconds(10)) != status::ok) return 11;
    }
    return 0;
  }));
  std::vector<std::byte> buf(8192);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    std::size_t len = 0;
    ASSERT_EQ(c.recv(buf, len, std::chrono::seconds(10)), status::ok) << "message " << i;
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info)) << "message " << i;
    EXPECT_EQ(info.producer, 3u);
    ASSERT_EQ(info.seq, i);
  }
  expect_children_ok({wait_child(pid, kChildDeadline)});
  std::size_t len = 0;
  EXPECT_EQ(c.try_recv(buf, len), status::empty);
  EXPECT_EQ(c.stats().lost_messages, 0u);
}

TEST_F(ChannelProcess, ChildCreatesParentOpens) {
  const auto name = unique_name();
  const auto job = job_;
  gate created, got, done;
  child_guard guard;
  pid_t pid = guard.add(fork_child([&] {
    auto r = channel::create(name, {.capacity = 16}, opts(job));
    if (!r) return 10;
    created.signal();
    // Wait for the parent's message, answer it, then wait until the parent has read the answer.
    std::array<std::byte, 64> buf{};
    std::size_t len = 0;
    if (r->recv(buf, len, std::chrono::seconds(10)) != status::ok) return 11;
    if (len != 5) return 12;
    got.signal();
    auto m = pattern(7, 1);
    if (r->send(as_bytes(m), std::chrono::seconds(10)) != status::ok) return 13;
    if (!done.wait(std::chrono::seconds(10))) return 14;
    return 0;
  }));
  ASSERT_TRUE(created.wait(10s)) << "child did not create the channel";
  auto r = channel::open(name, options());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->capacity(), 16u);
  auto m = pattern(5);
  ASSERT_EQ(r->send(as_bytes(m)), status::ok);
  // The child receives our message and answers.
  ASSERT_TRUE(got.wait(10s)) << "child did not receive the parent's message";
  std::array<std::byte, 64> buf{};
  std::size_t len = 0;
  ASSERT_EQ(r->recv(buf, len, std::chrono::seconds(10)), status::ok);
  EXPECT_EQ(len, 7u);
  done.signal();
  expect_children_ok({wait_child(pid, kChildDeadline)});
  EXPECT_GE(r->stats().attached_processes, 1u);
}

TEST_F(ChannelProcess, BlockingRecvWokenByChildSend) {
  const auto name = unique_name();
  channel c = make(name);
  ASSERT_OPEN(c);
  const auto job = job_;
  for (auto mode : {ch::wait_mode::adaptive, ch::wait_mode::idle}) {
    SCOPED_TRACE("wait_mode " + std::to_string(static_cast<int>(mode)));
    c.set_wait({.mode = mode});
    gate opened;
    child_guard guard;
    pid_t pid = guard.add(fork_child([&] {
      auto r = channel::open(name, opts(job));
      if (!r) return 10;
      opened.signal();
      std::this_thread::sleep_for(50ms);
      auto m = pattern(11);
      return r->send(as_bytes(m)) == status::ok ? 0 : 11;
    }));
    ASSERT_TRUE(opened.wait(10s));
    auto t0 = clock::now();
    std::array<std::byte, 64> buf{};
    std::size_t len = 0;
    status s = c.recv(buf, len, std::chrono::seconds(10));
    double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    EXPECT_EQ(s, status::ok);
    EXPECT_EQ(len, 11u);
    EXPECT_GE(ms, 30.0) << "returned before the child sent";
    EXPECT_LT(ms, 2000.0) << "blocked receiver woken late";
    std::printf("woken after %.1f ms\n", ms);
    expect_children_ok({wait_child(pid, kChildDeadline)});
  }
}

TEST_F(ChannelProcess, InheritedHandleWorksInChild) {
  const auto name = unique_name();
  channel c = make(name, {.capacity = 32});
  ASSERT_OPEN(c);
  constexpr std::uint64_t kCount = 500;
  child_guard guard;
  pid_t pid = guard.add(fork_child([&] {
    // Uses the handle opened by the parent before fork().
    for (std::uint64_t i = 0; i < kCount; ++i) {
      auto m = make_message((i % 10 == 0) ? 5000 : 64, 9, i);
      if (c.send(as_bytes(m), std::chrono::seconds(10)) != status::ok) return 11;
    }
    ch::send_claim sc;
    if (c.claim_send(30, sc, std::chrono::seconds(10)) != status::ok) return 12;
    auto last = make_message(30, 9, kCount);
    std::memcpy(sc.data().data(), last.data(), 30);
    if (c.commit(sc) != status::ok) return 13;
    return 0;
  }));
  std::vector<std::byte> buf(8192);
  for (std::uint64_t i = 0; i <= kCount; ++i) {
    std::size_t len = 0;
    ASSERT_EQ(c.recv(buf, len, std::chrono::seconds(10)), status::ok) << "message " << i;
    msg_info info;
    ASSERT_TRUE(verify_message({buf.data(), len}, info)) << "message " << i;
    ASSERT_EQ(info.seq, i);
  }
  expect_children_ok({wait_child(pid, kChildDeadline)});
  EXPECT_EQ(c.stats().lost_messages, 0u);
  EXPECT_EQ(c.repair(), 0u) << "a child that exited cleanly leaves nothing to repair";
}

TEST_F(ChannelProcess, ChildReceivesParentSends) {
  // Reverse direction, with the child blocking in recv before the parent sends.
  const auto name = unique_name();
  channel c = make(name, {.capacity = 8});
  ASSERT_OPEN(c);
  const auto job = job_;
  constexpr std::uint64_t kCount = 2000;
  child_guard guard;
  pid_t pid = guard.add(fork_child([&] {
    auto r = channel::open(name, opts(job));
    if (!r) return 10;
    std::vector<std::byte> buf(256);
    for (std::uint64_t i = 0; i < kCount; ++i) {
      std::size_t len = 0;
      if (r->recv(buf, len, std::chrono::seconds(10)) != status::ok) return 11;
      msg_info info;
      if (!verify_message({buf.data(), len}, info) || info.seq != i) return 12;
    }
    return 0;
  }));
  std::this_thread::sleep_for(20ms);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    auto m = make_message(24 + i % 100, 1, i);
    ASSERT_EQ(c.send(as_bytes(m), std::chrono::seconds(10)), status::ok) << i;
  }
  expect_children_ok({wait_child(pid, kChildDeadline)});
}

}  // namespace
}  // namespace chanpool::test
