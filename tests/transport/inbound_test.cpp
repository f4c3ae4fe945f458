// The inbound side of the agent driven directly, with real channels in a test job: batches out
// of order, duplicated and missing sequences, a full target channel, malformed batches, acks,
// and when credits go back. No libfabric calls.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "inbound.hpp"

namespace cp = chanpool::transport::detail;
namespace w = chanpool::transport::wire;
using chanpool::status;
using chanpool::channels::channel;

namespace {

// A batch body: messages of one byte each (value = their token), for channel `id`.
std::vector<std::byte> batch(std::uint32_t id, std::initializer_list<std::uint64_t> tokens, std::uint16_t flags = 0) {
  std::vector<std::byte> out;
  for (std::uint64_t t : tokens) {
    const w::message_header m{1, id, flags, 0, 42, t};
    const std::size_t at = out.size();
    out.resize(at + sizeof m + 8);
    std::memcpy(out.data() + at, &m, sizeof m);
    out[at + sizeof m] = static_cast<std::byte>(t);
  }
  return out;
}

class Inbound : public ::testing::Test {
 protected:
  void SetUp() override {
    job = "inbound-test-" + std::to_string(::getpid());
    chanpool::channels::channel_config cfg;
    cfg.capacity = 4;
    cfg.slot_bytes = 64;
    cfg.heap_bytes = 0;
    auto ch = channel::create("sink", cfg, {job});
    ASSERT_TRUE(ch) << ch.error().message();
    sink = std::move(*ch);
    auto id = in.resolve("sink", job);
    ASSERT_TRUE(id);
    sink_id = *id;
  }
  void TearDown() override { channel::unlink("sink", {job}); }

  cp::inbound::batch_verdict arrive(std::uint32_t seq, const std::vector<std::byte>& body, std::uint32_t source = 1) {
    return in.on_batch(source, seq, body.data(), body.data() + body.size(), body.size() + sizeof(w::frame_header));
  }
  // The tokens in the sink, in order.
  std::vector<int> drain() {
    std::vector<int> got;
    std::byte buf[64];
    std::size_t len = 0;
    while (sink.try_recv({buf, sizeof buf}, len) == status::ok) got.push_back(static_cast<int>(buf[0]));
    return got;
  }

  std::string job;
  cp::node_counters counters{};
  cp::inbound in{3, /*window=*/8, counters, [](std::uint32_t, const w::message_header&, const w::large_source&, channel&) { return true; }};
  channel sink;
  std::uint32_t sink_id = 0;
  cp::inbound* li_ptr = nullptr;  // for a hook that needs the inbound it belongs to
};

}  // namespace

TEST_F(Inbound, OutOfOrderBatchesAreDeliveredInSequence) {
  EXPECT_EQ(arrive(2, batch(sink_id, {5, 6})), cp::inbound::batch_verdict::held_early);
  EXPECT_EQ(arrive(1, batch(sink_id, {3, 4})), cp::inbound::batch_verdict::held_early);
  EXPECT_TRUE(drain().empty());  // nothing before sequence 0
  EXPECT_EQ(arrive(0, batch(sink_id, {1, 2})), cp::inbound::batch_verdict::accepted);
  EXPECT_EQ(drain(), (std::vector<int>{1, 2, 3, 4}));  // the sink holds 4: the rest waits
  in.drain_pending(1);
  EXPECT_EQ(drain(), (std::vector<int>{5, 6}));
  EXPECT_EQ(in.source(1).next_sequence, 3u);
  EXPECT_EQ(cp::relaxed_load(counters.frames_received), 3u);
}

TEST_F(Inbound, DuplicateAndFarAheadSequencesAreMalformed) {
  EXPECT_EQ(arrive(0, batch(sink_id, {1})), cp::inbound::batch_verdict::accepted);
  EXPECT_EQ(arrive(0, batch(sink_id, {1})), cp::inbound::batch_verdict::malformed);  // already delivered
  EXPECT_EQ(arrive(3, batch(sink_id, {4})), cp::inbound::batch_verdict::held_early);
  EXPECT_EQ(arrive(3, batch(sink_id, {4})), cp::inbound::batch_verdict::malformed);  // held twice
  EXPECT_EQ(arrive(1 + 4 * 8 + 5, batch(sink_id, {9})), cp::inbound::batch_verdict::malformed);  // beyond any window
  EXPECT_EQ(drain(), (std::vector<int>{1}));
}

TEST_F(Inbound, AMissingSequenceHoldsLaterOnesWithoutLoss) {
  for (std::uint32_t seq = 1; seq <= 3; ++seq) arrive(seq, batch(sink_id, {static_cast<std::uint64_t>(seq)}));
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(in.take_owed(1, true).credits, 0u);  // no credit for what is not delivered
  arrive(0, batch(sink_id, {0}));
  EXPECT_EQ(drain(), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(in.take_owed(1, true).credits, 4u);
}

TEST_F(Inbound, AFullChannelHoldsOnlyThatSourceAndItsCreditWaits) {
  arrive(0, batch(sink_id, {1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(in.has_pending(1));
  EXPECT_EQ(cp::relaxed_load(counters.delivery_holds), 1u);
  EXPECT_EQ(in.take_owed(1, true).credits, 0u);  // the credit waits until all of it is in
  EXPECT_EQ(drain(), (std::vector<int>{1, 2, 3, 4}));
  arrive(1, batch(sink_id, {7}));  // behind the held fragment, not ahead of it
  in.drain_pending(1);
  EXPECT_EQ(drain(), (std::vector<int>{5, 6, 7}));
  EXPECT_FALSE(in.has_pending(1));
  EXPECT_EQ(in.take_owed(1, true).credits, 2u);
  EXPECT_EQ(cp::relaxed_load(counters.messages_delivered), 7u);
}

TEST_F(Inbound, CreditsGoBackInQuarterWindowsUnlessAllAreAskedFor) {
  arrive(0, batch(sink_id, {1}));
  EXPECT_EQ(in.take_owed(1, false).credits, 0u);  // 1 < 8 / 4
  drain();
  arrive(1, batch(sink_id, {2}));
  EXPECT_EQ(in.take_owed(1, false).credits, 2u);
  drain();
  arrive(2, batch(sink_id, {3}));
  EXPECT_EQ(in.take_owed(1, true).credits, 1u);
}

TEST_F(Inbound, DepositedMessagesAreAckedWithTheirOutcome) {
  arrive(0, batch(sink_id, {1, 2}, w::deposited));
  arrive(1, batch(sink_id + 7, {3}, w::deposited));  // a channel id never given out
  const cp::owed_to_source owed = in.take_owed(1, true);
  ASSERT_EQ(owed.acks.size(), 3u);
  EXPECT_EQ(owed.acks[0].status, static_cast<std::uint8_t>(status::ok));
  EXPECT_EQ(owed.acks[1].token, 2u);
  EXPECT_EQ(owed.acks[2].status, static_cast<std::uint8_t>(status::invalid));
  EXPECT_EQ(cp::relaxed_load(counters.dropped_unknown_channel), 1u);
  EXPECT_TRUE(in.take_owed(1, true).acks.empty());
}

TEST_F(Inbound, AMalformedBatchIsCountedAndItsCreditStillReturns) {
  std::vector<std::byte> body = batch(sink_id, {1, 2});
  w::message_header m{};
  std::memcpy(&m, body.data() + sizeof m + 8, sizeof m);
  m.length = 4096;  // claims more than the frame holds
  std::memcpy(body.data() + sizeof m + 8, &m, sizeof m);
  EXPECT_EQ(arrive(0, body), cp::inbound::batch_verdict::accepted);
  EXPECT_EQ(drain(), (std::vector<int>{1}));  // what came before the bad header is delivered
  EXPECT_EQ(cp::relaxed_load(counters.dropped_malformed), 1u);
  EXPECT_EQ(in.take_owed(1, true).credits, 1u);  // the sender's window does not shrink
  std::vector<std::byte> truncated(10);
  arrive(1, truncated);
  EXPECT_EQ(cp::relaxed_load(counters.dropped_malformed), 2u);
}

TEST_F(Inbound, SourcesAreIndependent) {
  arrive(0, batch(sink_id, {1, 2, 3, 4, 5}), 1);  // fills the sink, holds source 1
  arrive(0, batch(sink_id, {9}), 2);
  EXPECT_TRUE(in.has_pending(2));                 // same full channel: source 2 waits too
  EXPECT_EQ(in.source(2).next_sequence, 1u);      // but its sequence moved on
  EXPECT_EQ(arrive(1, batch(sink_id, {10}), 2), cp::inbound::batch_verdict::accepted);
  EXPECT_EQ(in.source(1).next_sequence, 1u);
}

// Large transfers of one source overlap: each claims its slot in order and the messages behind
// them are delivered into later slots, so the channel's receiver still sees the source's order
// whichever transfer finishes first. The batch's credit does not wait for the transfers.
TEST_F(Inbound, LargeMessagesOverlapAndTheChannelKeepsTheirOrder) {
  cp::large_delivery pending[2];
  int started = 0;
  cp::inbound li{3, 8, counters, [&](std::uint32_t s, const w::message_header& m, const w::large_source&, channel& ch) {
                   cp::large_delivery& d = pending[started++];
                   EXPECT_EQ(ch.claim_send(m.length, d.claim, chanpool::channels::try_once), status::ok);
                   d.source = s;
                   d.channel_id = m.channel_id;
                   li_ptr->large_started(d);
                   return true;
                 }};
  li_ptr = &li;
  ASSERT_TRUE(li.resolve("sink", job));
  auto append_large = [&](std::vector<std::byte>& body, std::uint64_t tag) {
    const w::message_header large{3, sink_id, w::large, 0, 42, tag};
    const std::size_t at = body.size();
    body.resize(at + sizeof large);
    std::memcpy(body.data() + at, &large, sizeof large);
  };
  std::vector<std::byte> body = batch(sink_id, {1});
  append_large(body, 77);
  append_large(body, 78);
  const std::vector<std::byte> after = batch(sink_id, {2});
  body.insert(body.end(), after.begin(), after.end());
  li.on_batch(1, 0, body.data(), body.data() + body.size(), body.size());
  EXPECT_EQ(started, 2) << "the second transfer starts while the first is in progress";
  EXPECT_EQ(li.source(1).large_in_progress, 2u);
  EXPECT_EQ(li.take_owed(1, true).credits, 1u) << "every message of the batch has its slot";
  EXPECT_EQ(drain(), (std::vector<int>{1}));  // the rest waits behind the first transfer's slot
  pending[1].claim.data()[0] = std::byte{51};
  li.finish_large(pending[1], true);          // the second finishes first
  EXPECT_TRUE(drain().empty());
  pending[0].claim.data()[0] = std::byte{50};
  li.finish_large(pending[0], true);
  EXPECT_EQ(drain(), (std::vector<int>{50, 51, 2}));
  EXPECT_EQ(li.source(1).large_in_progress, 0u);
}

// Every sender resolves its target: a channel already open stays mapped. One created again under
// the same name is picked up, but only once no large message is being written into the old
// mapping's claimed slot (unmapping it then crashed the agent in a fan-in of large messages).
TEST_F(Inbound, ResolvingAgainNeverUnmapsASlotBeingWritten) {
  cp::large_delivery pending_large;
  cp::inbound li{3, 8, counters, [&](std::uint32_t s, const w::message_header& m, const w::large_source&, channel& ch) {
                   EXPECT_EQ(ch.claim_send(m.length, pending_large.claim, chanpool::channels::try_once), status::ok);
                   pending_large.source = s;
                   pending_large.channel_id = m.channel_id;
                   li_ptr->large_started(pending_large);
                   return true;
                 }};
  li_ptr = &li;
  const std::uint32_t id = li.resolve("sink", job).value();
  channel* first = li.target(id);
  EXPECT_EQ(li.resolve("sink", job).value(), id);
  EXPECT_TRUE(li.target(id)->same_segment(sink)) << "the same segment, still mapped";
  const w::message_header large{3, id, w::large, 0, 42, 77};
  std::vector<std::byte> body(sizeof large);
  std::memcpy(body.data(), &large, sizeof large);
  li.on_batch(1, 0, body.data(), body.data() + body.size(), body.size());
  ASSERT_TRUE(pending_large.claim.active());
  // The name is re-created while the transfer writes into the old segment.
  channel::unlink("sink", {job});
  chanpool::channels::channel_config cfg;
  cfg.capacity = 4;
  cfg.slot_bytes = 64;
  cfg.heap_bytes = 0;
  channel fresh = channel::create("sink", cfg, {job}).value();
  EXPECT_EQ(li.resolve("sink", job).value(), id);
  EXPECT_EQ(li.target(id), first);
  EXPECT_TRUE(li.target(id)->same_segment(sink)) << "replaced while a transfer writes into it";
  pending_large.claim.data()[0] = std::byte{50};
  li.finish_large(pending_large, true);
  std::byte b[64];
  std::size_t len = 0;
  EXPECT_EQ(sink.try_recv({b, sizeof b}, len), status::ok) << "the transfer landed in the channel it claimed";
  EXPECT_TRUE(li.target(id)->same_segment(fresh)) << "the new channel is picked up once the transfer is done";
}

// A remote_read message carries where its bytes are; the hook gets it, the source waits for the
// read, and the source is told (large_done) once the message is in, or dropped for an unknown
// channel, so its memory never stays held.
TEST_F(Inbound, ARemoteReadMessageNamesItsSourceAndIsReportedDone) {
  cp::large_delivery pending_large;
  w::large_source seen{};
  cp::inbound li{3, 8, counters, [&](std::uint32_t s, const w::message_header& m, const w::large_source& where, channel& ch) {
                   seen = where;
                   EXPECT_EQ(ch.claim_send(m.length, pending_large.claim, chanpool::channels::try_once), status::ok);
                   pending_large.source = s;
                   pending_large.channel_id = m.channel_id;
                   pending_large.token = m.token;
                   pending_large.remote_read = true;
                   li_ptr->large_started(pending_large);
                   return true;
                 }};
  li_ptr = &li;
  ASSERT_TRUE(li.resolve("sink", job));
  auto append_read = [](std::vector<std::byte>& body, std::uint32_t channel_id, std::uint64_t tag, w::large_source where) {
    const w::message_header m{3, channel_id, static_cast<std::uint16_t>(w::large | w::remote_read), 0, 42, tag};
    const std::size_t at = body.size();
    body.resize(at + sizeof m + sizeof where);
    std::memcpy(body.data() + at, &m, sizeof m);
    std::memcpy(body.data() + at + sizeof m, &where, sizeof where);
  };
  std::vector<std::byte> body;
  append_read(body, sink_id + 100, 91, {0x1000, 7});  // no such channel: dropped, reported done
  append_read(body, sink_id, 92, {0xabc000, 0x55});
  const std::vector<std::byte> after = batch(sink_id, {2});
  body.insert(body.end(), after.begin(), after.end());
  EXPECT_EQ(li.on_batch(1, 0, body.data(), body.data() + body.size(), body.size()), cp::inbound::batch_verdict::accepted);
  EXPECT_EQ(seen.address, 0xabc000u);
  EXPECT_EQ(seen.key, 0x55u);
  EXPECT_EQ(cp::relaxed_load(counters.dropped_unknown_channel), 1u);
  EXPECT_TRUE(drain().empty());  // 2 is in, behind the read's slot
  cp::owed_to_source owed = li.take_owed(1, true);
  EXPECT_EQ(owed.reads_done, (std::vector<std::uint64_t>{91}));
  EXPECT_EQ(owed.credits, 1u);
  pending_large.claim.data()[0] = std::byte{60};
  li.finish_large(pending_large, true);
  EXPECT_EQ(drain(), (std::vector<int>{60, 2}));
  owed = li.take_owed(1, true);
  EXPECT_EQ(owed.reads_done, (std::vector<std::uint64_t>{92}));
}
