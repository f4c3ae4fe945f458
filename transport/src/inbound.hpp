// The inbound side of a node agent: per source node, batch frames put back in sequence, messages
// delivered into this node's channels, what a full channel held back, and the credits and acks
// owed to the source. No libfabric calls: a large message's transfer is started through a
// hook, so the rules are tested directly (tests/transport/inbound_test.cpp).
//
// Thread: the agent's progress thread alone calls every method (its inbound half).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/wire.hpp"
#include "node_state.hpp"

namespace chanpool::transport::detail {

// A large message being received into the target channel's claimed slot (or discarded).
struct large_delivery {
  std::uint32_t source = 0;
  std::uint32_t channel_id = 0;
  std::uint16_t flags = 0;
  std::uint32_t src_pid = 0;
  std::uint64_t token = 0;
  bool remote_read = false;    // read from the source's memory; the source is told when done
  channels::send_claim claim;  // inactive: the message is received only to be dropped
};

// What is left of a source's batch when a target channel was full: delivered in order before
// anything newer from that source.
struct pending_fragment {
  std::vector<std::byte> messages;
  std::size_t offset = 0;
  bool returns_credit = false;  // the last fragment of a batch: its credit is owed once done
};

struct source_state {
  std::deque<pending_fragment> pending;
  // Large transfers in progress from this source. They do not hold the source back: each has
  // claimed its slot, so the channel's order is the source's order whenever they complete.
  std::uint32_t large_in_progress = 0;
  std::uint32_t credits_owed = 0;
  std::vector<wire::ack_record> acks;
  std::vector<std::uint64_t> reads_done;  // tags of remote_read messages done with (large_done)
  std::uint64_t last_heard_ns = 0;
  std::uint64_t told_dead_ns = 0;  // when it was last told that this node declared it dead
  bool hello_seen = false;
  std::uint32_t next_sequence = 0;                               // batch frame expected next
  std::map<std::uint32_t, std::vector<std::byte>> early;         // batches that overtook it
};

// What the agent owes a source now: acks always, credits in batches (see take_owed()).
struct owed_to_source {
  std::vector<wire::ack_record> acks;
  std::vector<std::uint64_t> reads_done;
  std::uint32_t credits = 0;
};

class inbound {
 public:
  // Starts the transfer of a large message into `ch` (claiming its slot): a tagged receive, or
  // for remote_read a read of `where` from the source's memory. Returns false when the channel
  // is full now (the source waits and it is tried again), true when the transfer was started or
  // the message was dealt with otherwise (acked, counted, and for remote_read read_done()).
  using start_large_fn = std::function<bool(std::uint32_t source, const wire::message_header&,
                                            const wire::large_source& where, channels::channel&)>;

  // window: the credit window of a source; early batches beyond about four windows are malformed.
  inbound(std::uint32_t node_count, std::uint32_t window, node_counters& counters, start_large_fn start_large);

  enum class batch_verdict : std::uint8_t { accepted, held_early, malformed };
  // A batch frame from s with this sequence number; [body, end) are its messages.
  batch_verdict on_batch(std::uint32_t s, std::uint32_t sequence, const std::byte* body, const std::byte* end,
                         std::size_t frame_bytes);
  // Delivers s's held-back messages in order; stops at the first that cannot go yet.
  void drain_pending(std::uint32_t s);
  // The transfer of `d` finished (ok) or failed: commit or abandon, ack, go on with its source.
  void finish_large(large_delivery& d, bool ok);
  // The hook started the transfer of `d` into its claimed slot. Messages after it go on being
  // delivered (into later slots: a receiver of the channel still gets them in order), so several
  // transfers of one source overlap.
  void large_started(const large_delivery& d);
  // Records a deposited message's outcome for its sender's ack.
  void ack(std::uint32_t s, const wire::message_header& m, status st);
  // A remote_read message of s is done with (read, or dropped): its sender may free the bytes.
  void read_done(std::uint32_t s, std::uint64_t tag) { sources_[s].reads_done.push_back(tag); }
  // Acks go out at once (a deposited sender waits for them). Credits go in batches of a quarter
  // window while completions keep coming, and all of them when the CQ runs dry (all = true).
  owed_to_source take_owed(std::uint32_t s, bool all);

  // Opens the channel named by a resolve request, or finds it open already. A channel created
  // again under the same name is picked up, but a mapping that a large transfer is writing into
  // is never unmapped under it. Returns its id, or the error.
  result<std::uint32_t> resolve(const std::string& name, const std::string& node_job);
  channels::channel* target(std::uint32_t id) noexcept;

  source_state& source(std::uint32_t s) noexcept { return sources_[s]; }
  bool has_pending(std::uint32_t s) const noexcept { return !sources_[s].pending.empty(); }
  bool any_pending() const noexcept;
  std::uint32_t node_count() const noexcept { return static_cast<std::uint32_t>(sources_.size()); }

 private:
  void accept_batch(std::uint32_t s, const std::byte* body, const std::byte* end, std::size_t frame_bytes);
  // Delivers from [p, end) until a message cannot go now. Returns the position reached (end
  // when all went), or nullptr for a malformed batch.
  const std::byte* deliver(std::uint32_t s, const std::byte* p, const std::byte* end);
  std::size_t run_length(const std::byte* p, const std::byte* end, std::uint32_t channel_id, std::size_t inline_bytes,
                         const std::byte*& run_end);
  const std::byte* deliver_run(std::uint32_t s, const std::byte* p, std::size_t count, channels::channel& ch,
                               std::uint64_t& delivered);

  struct target_entry {
    std::string name;
    channels::channel ch;
    // A channel created again under the name while a large message is being read into ch's
    // claimed slot: ch stays mapped until that transfer is done, then this replaces it.
    channels::channel next;
    std::uint32_t large_in_progress = 0;  // transfers writing into ch's claimed slots
  };
  bool awaits_large_into(std::uint32_t channel_id) const noexcept;

  std::uint32_t window_;
  node_counters& counters_;
  start_large_fn start_large_;
  std::vector<source_state> sources_;
  std::vector<target_entry> targets_;                         // by channel id
  std::unordered_map<std::string, std::uint32_t> target_ids_;
};

}  // namespace chanpool::transport::detail
