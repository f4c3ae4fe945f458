// The outbound side of the agent driven directly: the credit window, sealed frames, the
// provider saying busy or refusing, a dead destination, and the flush rule. No libfabric calls.
#include <gtest/gtest.h>
#include <rdma/fi_errno.h>

#include <vector>

#include "outbound.hpp"

namespace cp = chanpool::transport::detail;
namespace w = chanpool::transport::wire;

namespace {

// A frame with `n` 8-byte messages, sealed into d.
cp::frame_buffer* seal_frame(cp::destination& d, std::uint32_t n) {
  cp::frame_buffer* fb = d.take_buffer_locked({});
  if (!fb) return nullptr;
  fb->reset();
  const std::byte payload[8]{};
  for (std::uint32_t i = 0; i < n; ++i) fb->append(w::message_header{8, 0, 0, 0, 1, i}, payload);
  d.seal_locked(fb);
  return fb;
}

struct recorder {
  std::vector<std::uint32_t> sequences;
  std::vector<cp::frame_buffer*> frames;
  ssize_t answer = 0;
  std::function<ssize_t(cp::frame_buffer&, std::uint32_t)> post() {
    return [this](cp::frame_buffer& fb, std::uint32_t seq) -> ssize_t {
      if (answer != 0) return answer;
      sequences.push_back(seq);
      frames.push_back(&fb);
      return 0;
    };
  }
};

}  // namespace

TEST(Outbound, FramesGoOutInSequenceWhileCreditLasts) {
  cp::destination d(1, /*window=*/2, /*ready_limit=*/2, 4096);
  std::lock_guard lock(d.mu);
  recorder r;
  for (int i = 0; i < 3; ++i) ASSERT_NE(seal_frame(d, 5), nullptr);
  const cp::pump_outcome out = d.pump_locked(r.post());
  EXPECT_EQ(out.frames, 2u);
  EXPECT_EQ(out.messages, 10u);
  EXPECT_EQ(r.sequences, (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(d.credits_locked(), 0u);
  EXPECT_EQ(d.ready_locked(), 1u);  // waits for credit, not lost
  EXPECT_FALSE(d.can_send_now_locked());

  d.add_credits_locked(1);
  EXPECT_EQ(d.pump_locked(r.post()).frames, 1u);
  EXPECT_EQ(r.sequences.back(), 2u);
  EXPECT_EQ(d.ready_locked(), 0u);
}

TEST(Outbound, CreditsNeverExceedTheWindow) {
  cp::destination d(1, 4, 2, 4096);
  std::lock_guard lock(d.mu);
  d.add_credits_locked(1000);  // a forged or duplicated credit frame
  EXPECT_EQ(d.credits_locked(), 4u);
  d.add_credits_locked(0xffffffffu);
  EXPECT_EQ(d.credits_locked(), 4u);
  EXPECT_TRUE(d.idle_pipe_locked());
}

TEST(Outbound, BuffersAreBoundedAndReused) {
  cp::destination d(1, 2, 1, 1024);
  std::lock_guard lock(d.mu);
  std::vector<cp::frame_buffer*> taken;
  int registered = 0;
  while (cp::frame_buffer* fb = d.take_buffer_locked([&](cp::frame_buffer&) { ++registered; })) taken.push_back(fb);
  EXPECT_EQ(taken.size(), 4u);  // window + ready_limit + 1: memory stays bounded
  EXPECT_EQ(registered, 4);
  d.release_locked(taken[0]);
  EXPECT_EQ(d.take_buffer_locked({}), taken[0]);  // a completed frame's buffer comes back
  EXPECT_EQ(registered, 4);
}

TEST(Outbound, ReadyFramesAreCappedSoTheSenderWaits) {
  cp::destination d(1, 0 + 1, 2, 1024);
  std::lock_guard lock(d.mu);
  EXPECT_TRUE(d.may_queue_locked());
  seal_frame(d, 1);
  seal_frame(d, 1);
  EXPECT_FALSE(d.may_queue_locked());
}

TEST(Outbound, ABusyProviderKeepsTheFrameForARetry) {
  cp::destination d(1, 4, 2, 4096);
  std::lock_guard lock(d.mu);
  recorder r;
  seal_frame(d, 3);
  r.answer = -FI_EAGAIN;
  cp::pump_outcome out = d.pump_locked(r.post());
  EXPECT_TRUE(out.busy);
  EXPECT_EQ(out.frames, 0u);
  EXPECT_EQ(d.ready_locked(), 1u);
  EXPECT_EQ(d.credits_locked(), 4u);  // nothing spent
  r.answer = 0;
  out = d.pump_locked(r.post());
  EXPECT_EQ(out.frames, 1u);
  EXPECT_EQ(r.sequences, (std::vector<std::uint32_t>{0}));  // the retry keeps its sequence
}

TEST(Outbound, ARefusedFrameIsReportedAndADeadPeerDropsWhatWaits) {
  cp::destination d(1, 4, 4, 4096);
  std::lock_guard lock(d.mu);
  recorder r;
  seal_frame(d, 3);
  seal_frame(d, 4);
  r.answer = -FI_ECONNREFUSED;
  const cp::pump_outcome out = d.pump_locked(r.post());
  EXPECT_EQ(out.refused, -FI_ECONNREFUSED);
  d.dead.store(true);
  EXPECT_EQ(d.drop_ready_locked(), 7u);  // every waiting message is counted
  EXPECT_EQ(d.ready_locked(), 0u);
  r.answer = 0;
  seal_frame(d, 1);
  EXPECT_EQ(d.pump_locked(r.post()).frames, 0u);  // nothing goes to a dead peer
}

TEST(Outbound, FrameBufferFitsAndPadsMessages) {
  cp::frame_buffer fb(0, sizeof(w::frame_header) + 2 * (sizeof(w::message_header) + 8));
  fb.reset();
  const std::byte five[5]{};
  EXPECT_TRUE(fb.fits(5));
  EXPECT_TRUE(fb.append(w::message_header{5, 0, 0, 0, 1, 1}, five));   // the first message
  EXPECT_EQ(fb.used, sizeof(w::frame_header) + sizeof(w::message_header) + 8);
  EXPECT_TRUE(fb.fits(8));
  EXPECT_FALSE(fb.append(w::message_header{5, 0, 0, 0, 1, 2}, five));
  EXPECT_FALSE(fb.fits(1));
  EXPECT_EQ(fb.count, 2u);
}

TEST(Outbound, FlushRuleFavoursLatencyWhenIdleAndBatchesWhenBusy) {
  // Inbox idle: an idle pipe goes at once; otherwise only past the deadline, with credit.
  EXPECT_TRUE(cp::should_flush_partial(true, false, true, true));
  EXPECT_FALSE(cp::should_flush_partial(true, false, true, false));
  EXPECT_TRUE(cp::should_flush_partial(true, true, true, false));
  EXPECT_FALSE(cp::should_flush_partial(true, true, false, false));
  // Inbox busy: keep filling until the deadline, and never without credit.
  EXPECT_FALSE(cp::should_flush_partial(false, false, true, true));
  EXPECT_TRUE(cp::should_flush_partial(false, true, true, false));
  EXPECT_FALSE(cp::should_flush_partial(false, true, false, true));
}
