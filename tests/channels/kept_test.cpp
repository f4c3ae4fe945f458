// Kept payloads (channel::keep): a heap message taken out of its ring slot outlives the slot's
// release, holds its heap blocks until released, and goes back to the heap if its holder dies.
#include "channels/test_util.hpp"

namespace chanpool::test {
namespace {

using ch::channel;

// Parameter: true = single producer and single consumer, false = MPMC.
class ChannelKept : public channel_test, public ::testing::WithParamInterface<bool> {
 protected:
  // A 64 KiB heap of 4 KiB blocks: a 40 KiB message takes 10 of its 16 blocks, so a second one
  // fits only once the first is given back.
  ch::channel_config config() const {
    ch::channel_config c;
    c.capacity = 16;
    c.slot_bytes = 128;
    c.heap_bytes = 64u << 10;
    c.heap_block_bytes = 4096;
    c.single_producer = GetParam();
    c.single_consumer = GetParam();
    return c;
  }
};

constexpr std::size_t big = 40u << 10;

TEST_P(ChannelKept, OutlivesTheRunAndHoldsTheHeapUntilReleased) {
  channel c = make(unique_name(), config());
  ASSERT_TRUE(c.is_open());
  const auto small = pattern(32, 1), large = pattern(big, 2);
  ASSERT_EQ(c.send(small, 1s), status::ok);
  ASSERT_EQ(c.send(large, 1s), status::ok);
  ch::recv_run run;
  ASSERT_EQ(c.claim_recv_run(ch::max_run, run, 1s), status::ok);
  ASSERT_EQ(run.size(), 2u);
  ch::kept_payload kept;
  EXPECT_EQ(c.keep(run, 0, kept), status::invalid) << "an inline message has no heap blocks to keep";
  EXPECT_EQ(c.keep(run, 2, kept), status::invalid) << "outside the run";
  ASSERT_EQ(c.keep(run, 1, kept), status::ok);
  ch::kept_payload twice = kept;
  EXPECT_EQ(c.keep(run, 1, twice), status::invalid) << "an active kept_payload is not overwritten";
  ASSERT_EQ(c.release(run), status::ok);

  // The ring slot is free, the bytes are where they were, inside heap_memory().
  ASSERT_TRUE(kept.active());
  ASSERT_EQ(kept.data().size(), big);
  EXPECT_TRUE(std::equal(large.begin(), large.end(), kept.data().begin()));
  const std::span<std::byte> heap = c.heap_memory();
  EXPECT_GE(kept.data().data(), heap.data());
  EXPECT_LE(kept.data().data() + kept.data().size(), heap.data() + heap.size());
  EXPECT_EQ(c.poll().count, 0u);

  // Its 10 blocks are still taken: a second 40 KiB message does not fit the heap until release.
  EXPECT_EQ(c.send(large, ch::try_once), status::full);
  ASSERT_EQ(c.release(kept), status::ok);
  EXPECT_FALSE(kept.active());
  EXPECT_EQ(c.release(kept), status::invalid);
  ASSERT_EQ(c.send(large, 1s), status::ok);
  std::vector<std::byte> got;
  ASSERT_EQ(c.recv(got, 1s), status::ok);
  EXPECT_EQ(got, large);
}

TEST_P(ChannelKept, HolderKilledGivesTheBlocksBack) {
  const std::string name = unique_name();
  channel c = make(name, config());
  ASSERT_TRUE(c.is_open());
  c.set_wait({.mode = ch::wait_mode::adaptive, .spin_for = std::chrono::microseconds(20), .liveness_check = 10ms});
  const auto large = pattern(big, 3);
  ASSERT_EQ(c.send(large, 1s), status::ok);
  child_guard guard;
  gate ready;
  const ch::open_options o = options();
  const pid_t child = guard.add(fork_child([&]() -> int {
    auto r = channel::open(name, o);
    if (!r) return 10;
    ch::recv_run run;
    ch::kept_payload kept;
    if (r->claim_recv_run(ch::max_run, run, 5s) != status::ok) return 11;
    if (r->keep(run, 0, kept) != status::ok) return 12;
    if (r->release(run) != status::ok) return 13;
    r->close();  // a closed handle (and so a released lease) still leaves the blocks with the pid
    ready.signal();
    for (;;) pause();
  }));
  ASSERT_TRUE(ready.wait(10s)) << "child did not keep its payload";
  EXPECT_EQ(c.send(large, ch::try_once), status::full) << "the live holder's blocks are not taken from it";
  kill_and_reap(child);
  guard.clear();
  // The allocation that fails sweeps the dead pid's blocks and then succeeds.
  EXPECT_EQ(c.send(large, 1s), status::ok);
  EXPECT_GE(c.stats().reclaimed_heap_blocks, 10u);
  std::vector<std::byte> got;
  ASSERT_EQ(c.recv(got, 1s), status::ok);
  EXPECT_EQ(got, large);
}

INSTANTIATE_TEST_SUITE_P(Modes, ChannelKept, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("single") : std::string("mpmc"); });

}  // namespace
}  // namespace chanpool::test
