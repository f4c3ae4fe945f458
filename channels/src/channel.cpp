// The ring: a bounded MPMC queue of slots with per-slot control words (layout.hpp).
//
// Send:  claim  CAS slot ctrl (pos, EMPTY) -> (pos, WRITING, pid), then help tail to pos + 1
//        fill   payload inline or in heap blocks
//        commit exchange ctrl -> (pos, FULL)
// Recv:  claim  CAS slot ctrl (pos, FULL) -> (pos, READING, pid), then help head to pos + 1
//        read   in place
//        release exchange ctrl -> (pos + capacity, EMPTY)
// Claiming the slot (not the index) makes the claim and the owner stamp one atomic step, so a
// holder that dies is always named in the slot. head/tail are hints that anyone may advance
// past a slot that is already claimed. A single side's copying calls (send_single, recv_single)
// fill before the claim and read before the release: see their comments.
#include "chanpool/channels/channel.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "heap.hpp"
#include "process.hpp"
#include "ring.hpp"
#include "wait_loop.hpp"

namespace chanpool::channels {
namespace {

using namespace detail;

std::atomic<std::uint32_t> next_lease_token{1};

}  // namespace

// --- lifetime ------------------------------------------------------------------------------------

channel::channel(channel&& other) noexcept { *this = std::move(other); }

channel& channel::operator=(channel&& other) noexcept {
  if (this != &other) {
    close();
    segment_ = std::exchange(other.segment_, nullptr);
    view_ = std::exchange(other.view_, nullptr);
    name_ = std::move(other.name_);
    wait_ = other.wait_;
    registry_slot_ = std::exchange(other.registry_slot_, UINT32_MAX);
    registered_pid_ = std::exchange(other.registered_pid_, 0);
    lease_token_ = std::exchange(other.lease_token_, 0);
    paid_sleeps_[0] = std::exchange(other.paid_sleeps_[0], 0);
    paid_sleeps_[1] = std::exchange(other.paid_sleeps_[1], 0);
  }
  return *this;
}

channel::~channel() { close(); }

void channel::attach(detail::segment* seg, std::string_view name) noexcept {
  segment_ = seg;
  view_ = &seg->view;
  name_ = std::string(name);
  registered_pid_ = current_pid();
  registry_slot_ = register_process(view_->registry, view_->registry_entries);
  lease_token_ = next_lease_token.fetch_add(1, std::memory_order_relaxed);
}

bool channel::take_lease(std::uint64_t& lease, std::uint64_t mine) noexcept {
  std::uint64_t holder = aref(lease).load(std::memory_order_acquire);
  while (holder != mine) {
    if (holder != 0 && process_alive(static_cast<std::uint32_t>(holder >> 32), view_->registry, view_->registry_entries))
      return false;
    // Free, or its holder died: take it. acquire: see everything the previous holder did.
    if (aref(lease).compare_exchange_weak(holder, mine, std::memory_order_acq_rel, std::memory_order_acquire)) break;
  }
  return true;
}

result<channel> channel::create(std::string_view name, const channel_config& config, const open_options& options) {
  std::string shm;
  if (auto ec = shm_name_for(name, options, shm)) return ec;
  segment* seg = nullptr;
  if (auto ec = create_segment(shm, effective_job(options), name, config, seg)) return ec;
  channel ch;
  ch.attach(seg, name);
  return ch;
}

result<channel> channel::open(std::string_view name, const open_options& options) {
  std::string shm;
  if (auto ec = shm_name_for(name, options, shm)) return ec;
  segment* seg = nullptr;
  if (auto ec = open_segment(shm, seg)) return ec;
  channel ch;
  ch.attach(seg, name);
  return ch;
}

std::error_code channel::unlink(std::string_view name, const open_options& options) {
  std::string shm;
  if (auto ec = shm_name_for(name, options, shm)) return ec;
  return unlink_segment(shm);
}

result<std::string> channel::segment_name(std::string_view name, const open_options& options) {
  std::string shm;
  if (auto ec = shm_name_for(name, options, shm)) return ec;
  return "/" + shm;
}

void channel::close() noexcept {
  if (!segment_) return;
  // A forked child holds a copy of the parent's handle but not the parent's registry entry.
  const std::uint64_t mine = (std::uint64_t{current_pid()} << 32) | lease_token_;
  for (std::uint64_t* lease : {&view_->control->producer_lease, &view_->control->consumer_lease}) {
    std::uint64_t expected = mine;
    aref(*lease).compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed);
  }
  if (registered_pid_ == current_pid()) deregister_process(view_->registry, view_->registry_entries, registry_slot_, registered_pid_);
  delete segment_;
  segment_ = nullptr;
  view_ = nullptr;
  registry_slot_ = UINT32_MAX;
}

std::size_t channel::inline_capacity() const noexcept { return view_ ? view_->inline_capacity : 0; }
std::size_t channel::max_message_bytes() const noexcept {
  return view_ ? std::max<std::uint64_t>(view_->inline_capacity, view_->heap_bytes) : 0;
}
std::uint32_t channel::capacity() const noexcept { return view_ ? view_->capacity : 0; }
channel_config channel::config() const noexcept {
  if (!view_) return {};
  return {view_->capacity, view_->slot_bytes, view_->heap_bytes, view_->heap_block_bytes, view_->single_producer,
          view_->single_consumer};
}

// --- send ----------------------------------------------------------------------------------------

// Inline into the copying calls and claim_send(): a message's whole fast path is one function, so
// a sender keeps few stores in flight besides the slot's own (stack frames would fill the store
// buffer while the slot's line is on its way from the receiver).
[[gnu::always_inline]] inline status channel::send_once(std::size_t bytes, send_claim& claim,
                                                        std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  const bool single = v.single_producer;
  if (single && !hold_lease(v.control->producer_lease)) return status::invalid;
  if (aref(v.control->closed).load(std::memory_order_relaxed)) return status::closed;
  const std::uint32_t pid = current_pid();
  const bool on_heap = bytes > v.inline_capacity;
  if (on_heap && claim.first_block_ < 0) {
    const std::int64_t first = heap_allocate(v, blocks_for(v, bytes), heap_owner_pid(pid));
    if (first < 0) {
      heap_starved = true;
      return status::full;
    }
    claim.first_block_ = first;
    claim.block_count_ = blocks_for(v, bytes);
  }
  auto& tail = v.control->tail;
  for (;;) {
    const std::uint64_t pos = aref(tail).load(std::memory_order_relaxed);
    slot_header* s = v.slot(pos);
    __builtin_prefetch(s, 1, 3);  // claim needs the line exclusive: one transfer, not two
    const std::uint64_t c = aref(s->ctrl).load(std::memory_order_acquire);
    const std::int64_t diff = ctrl_seq_diff(c, pos);
    if (diff == 0 && ctrl_state(c) == slot_empty) {
      bool claimed = true;
      if (single) {
        // The lease makes us the only writer of EMPTY slots: plain stores, no locked instruction.
        aref(s->ctrl).store(make_ctrl(pos, slot_writing, pid), std::memory_order_relaxed);
        aref(tail).store(pos + 1, std::memory_order_release);
      } else {
        std::uint64_t expected = c;
        claimed = aref(s->ctrl).compare_exchange_weak(expected, make_ctrl(pos, slot_writing, pid),
                                                      std::memory_order_seq_cst, std::memory_order_relaxed);
        if (claimed) {
          std::uint64_t at = pos;
          aref(tail).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
        }
      }
      if (claimed) {
        // A seal() that a receiver acted on is seen here: by the seq_cst claim + load (MPMC), or
        // by seal()'s asymmetric fence between `sealing` and `sealed` (single producer).
        if (aref(v.control->closed).load(std::memory_order_seq_cst) != open_state) {
          publish_abandoned(v, s, pos & ctrl_seq_mask);
          return status::closed;
        }
        if (on_heap) {
          heap_retag(v, static_cast<std::uint32_t>(claim.first_block_), claim.block_count_,
                     heap_owner_slot(v.slot_index(pos)));
          aref(s->flags).store(slot_flag_heap, std::memory_order_relaxed);
          aref(s->heap_first()).store(static_cast<std::uint32_t>(claim.first_block_), std::memory_order_relaxed);
          aref(s->heap_count()).store(claim.block_count_, std::memory_order_relaxed);
          claim.data_ = v.block_address(static_cast<std::uint32_t>(claim.first_block_));
        } else {
          aref(s->flags).store(0, std::memory_order_relaxed);
          claim.data_ = v.inline_payload(s);
        }
        claim.size_ = bytes;
        claim.position_ = pos;
        return status::ok;
      }
      continue;
    }
    if (send_blocked(v, pos, c, blocker)) return status::full;
  }
}

status channel::claim_send(std::size_t bytes, send_claim& claim, timeout t) noexcept {
  if (!view_ || claim.active()) return status::invalid;
  if (bytes > max_message_bytes()) return status::too_large;
  claim = send_claim{};
  heap_starved = false;
  const status st = wait_until_done([&](std::uint64_t& blocker) { return send_once(bytes, claim, blocker); }, true, t);
  if (st != status::ok && claim.first_block_ >= 0) {
    heap_free(*view_, static_cast<std::uint32_t>(claim.first_block_), claim.block_count_);
    claim = send_claim{};
  }
  return st;
}

status channel::commit(send_claim& claim, std::size_t bytes) noexcept {
  if (!view_ || !claim.active()) return status::invalid;
  if (bytes == SIZE_MAX) bytes = claim.size_;
  if (bytes > claim.size_) return status::invalid;
  return publish(claim, bytes);
}

[[gnu::always_inline]] inline status channel::publish(send_claim& claim, std::size_t bytes) noexcept {
  const channel_view& v = *view_;
  slot_header* s = v.slot(claim.position_);
  aref(s->length).store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  if (v.single_producer) {
    aref(s->ctrl).store(make_ctrl(claim.position_, slot_full, 0), std::memory_order_release);
    publish_single_to_receivers(v, claim.position_);
  } else {
    aref(s->ctrl).exchange(make_ctrl(claim.position_, slot_full, 0), std::memory_order_seq_cst);
    notify_receivers(v);
  }
  claim = send_claim{};
  return status::ok;
}

status channel::abandon(send_claim& claim) noexcept {
  if (!view_ || !claim.active()) return status::invalid;
  const channel_view& v = *view_;
  if (claim.first_block_ >= 0) heap_free(v, static_cast<std::uint32_t>(claim.first_block_), claim.block_count_);
  publish_abandoned(v, v.slot(claim.position_), claim.position_ & ctrl_seq_mask);
  claim = send_claim{};
  return status::ok;
}

// A single producer's copy of an inline message: the payload goes into the slot before the claim,
// so that the slot's first line is written in one burst (payload, claim, publish). A receiver
// polling that line takes it back after each of its reads, and every store there between two
// reads would cost another line transfer. The slot is EMPTY for this lap while the payload is
// written: no receiver reads it, and a producer killed before its claim leaves nothing behind.
// The claim (WRITING, stamped with the pid) still comes before the seal check, as in send_once.
[[gnu::always_inline]] inline status channel::send_single(std::span<const std::byte> message,
                                                          std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  if (!hold_lease(v.control->producer_lease)) return status::invalid;
  if (aref(v.control->closed).load(std::memory_order_relaxed)) return status::closed;
  auto& tail = v.control->tail;
  for (;;) {
    const std::uint64_t pos = aref(tail).load(std::memory_order_relaxed);
    slot_header* s = v.slot(pos);
    const std::uint64_t c = aref(s->ctrl).load(std::memory_order_acquire);
    if (ctrl_seq_diff(c, pos) == 0 && ctrl_state(c) == slot_empty) {
      if (!message.empty()) std::memcpy(v.inline_payload(s), message.data(), message.size());
      aref(s->length).store(static_cast<std::uint32_t>(message.size()), std::memory_order_relaxed);
      aref(s->flags).store(0, std::memory_order_relaxed);
      aref(s->ctrl).store(make_ctrl(pos, slot_writing, current_pid()), std::memory_order_relaxed);
      aref(tail).store(pos + 1, std::memory_order_release);
      if (aref(v.control->closed).load(std::memory_order_seq_cst) != open_state) {
        publish_abandoned(v, s, pos & ctrl_seq_mask);
        return status::closed;
      }
      aref(s->ctrl).store(make_ctrl(pos, slot_full, 0), std::memory_order_release);
      publish_single_to_receivers(v, pos);
      return status::ok;
    }
    if (send_blocked(v, pos, c, blocker)) return status::full;
  }
}

status channel::send(std::span<const std::byte> message, timeout t) noexcept {
  if (view_ && message.size() <= view_->inline_capacity && view_->single_producer) {
    std::uint64_t blocker = 0;
    const status st = send_single(message, blocker);
    if (st != status::full) return st;
    heap_starved = false;
    return wait_until_done([&](std::uint64_t& b) { return send_single(message, b); }, true, t);
  }
  send_claim claim;  // after the single path, which needs no claim (its stores would be wasted there)
  if (view_ && message.size() <= view_->inline_capacity) {
    // One attempt inline; a full ring (or any wait) goes through claim_send() below.
    std::uint64_t blocker = 0;
    const status st = send_once(message.size(), claim, blocker);
    if (st == status::ok) {
      if (!message.empty()) std::memcpy(claim.data_, message.data(), message.size());
      return publish(claim, message.size());
    }
    if (st != status::full) return st;
  }
  const status st = claim_send(message.size(), claim, t);
  if (st != status::ok) return st;
  if (!message.empty()) std::memcpy(claim.data_, message.data(), message.size());
  return commit(claim);
}

// --- receive -------------------------------------------------------------------------------------

// Inline for the same reason as send_once.
[[gnu::always_inline]] inline status channel::recv_once(recv_claim& claim, std::size_t limit, std::size_t& length,
                                                        std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  const bool single = v.single_consumer;
  if (single && !hold_lease(v.control->consumer_lease)) return status::invalid;
  const std::uint32_t pid = current_pid();
  auto& head = v.control->head;
  for (;;) {
    const std::uint64_t pos = aref(head).load(std::memory_order_relaxed);
    slot_header* s = v.slot(pos);
    __builtin_prefetch(s, 1, 3);
    const std::uint64_t c = aref(s->ctrl).load(std::memory_order_seq_cst);
    const std::int64_t diff = ctrl_seq_diff(c, pos);
    if (diff == 0 && ctrl_state(c) == slot_full) {
      // Peek the length before claiming, so a too-small buffer leaves the message queued.
      // Valid only if ctrl is unchanged after the read (the slot cannot be rewritten without it).
      // acquire: the re-check of ctrl below cannot move before these reads.
      const std::uint32_t len = aref(s->length).load(std::memory_order_acquire);
      const std::uint32_t flags = aref(s->flags).load(std::memory_order_acquire);
      if (aref(s->ctrl).load(std::memory_order_relaxed) != c) continue;
      if (len > limit && !(flags & slot_flag_abandoned)) {
        length = len;
        return status::too_large;
      }
      if (single) {
        // The lease makes us the only claimer of FULL slots: plain stores.
        aref(s->ctrl).store(make_ctrl(pos, slot_reading, pid), std::memory_order_relaxed);
        aref(head).store(pos + 1, std::memory_order_release);
      } else {
        std::uint64_t expected = c;
        if (!aref(s->ctrl).compare_exchange_weak(expected, make_ctrl(pos, slot_reading, pid),
                                                 std::memory_order_acquire, std::memory_order_relaxed))
          continue;
        std::uint64_t at = pos;
        aref(head).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
      }
      const std::uint64_t seq40 = pos & ctrl_seq_mask;
      if (flags & slot_flag_abandoned) {
        release_slot(v, s, seq40);
        continue;
      }
      const bool on_heap = flags & slot_flag_heap;
      const std::uint32_t first = on_heap ? aref(s->heap_first()).load(std::memory_order_relaxed) : 0;
      const std::uint32_t count = on_heap ? aref(s->heap_count()).load(std::memory_order_relaxed) : 0;
      const bool sound = on_heap ? (first < v.heap_blocks && count <= v.heap_blocks - first &&
                                    std::uint64_t{count} << v.heap_block_shift >= len)
                                 : len <= v.inline_capacity;
      if (!sound) {
        // Damaged slot (someone wrote over the segment): drop it, never read out of bounds.
        aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
        release_slot(v, s, seq40);
        continue;
      }
      claim.data_ = on_heap ? v.block_address(first) : v.inline_payload(s);
      claim.size_ = len;
      claim.position_ = pos;
      length = len;
      return status::ok;
    }
    if (const status st = recv_blocked(v, pos, c, blocker); st != status::ok) return st;
  }
}

status channel::claim_recv(recv_claim& claim, timeout t) noexcept {
  if (!view_ || claim.active()) return status::invalid;
  std::size_t length = 0;
  return wait_until_done([&](std::uint64_t& blocker) { return recv_once(claim, SIZE_MAX, length, blocker); }, false, t);
}

status channel::release(recv_claim& claim) noexcept {
  if (!view_ || !claim.active()) return status::invalid;
  return give_back(claim);
}

[[gnu::always_inline]] inline status channel::give_back(recv_claim& claim) noexcept {
  const channel_view& v = *view_;
  slot_header* s = v.slot(claim.position_);
  if (aref(s->flags).load(std::memory_order_relaxed) & slot_flag_heap)
    heap_free(v, aref(s->heap_first()).load(std::memory_order_relaxed), aref(s->heap_count()).load(std::memory_order_relaxed));
  if (v.single_consumer) {
    aref(s->ctrl).store(make_ctrl(claim.position_ + v.capacity, slot_empty, 0), std::memory_order_release);
    publish_single_to_senders(v, claim.position_);
  } else {
    release_slot(v, s, claim.position_ & ctrl_seq_mask);
  }
  claim = recv_claim{};
  return status::ok;
}

// A single consumer's copy of an inline message: copied out while the slot is FULL (only the
// lease's holder takes FULL slots, so it cannot change under the copy), then handed back to the
// producer in one store, as in the bare ring: no READING stamp, so the producer polling the slot
// on a full ring sees one store, not two. A receiver killed before that store leaves the message
// FULL for the next holder of the lease (the copy it made never reached its caller). A heap
// message sets `general` and is left for the claiming path (its blocks are freed under a claim).
[[gnu::always_inline]] inline status channel::recv_single(std::span<std::byte> buffer, std::size_t& length,
                                                          std::uint64_t& blocker, bool& general) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  if (!hold_lease(v.control->consumer_lease)) return status::invalid;
  auto& head = v.control->head;
  for (;;) {
    const std::uint64_t pos = aref(head).load(std::memory_order_relaxed);
    slot_header* s = v.slot(pos);
    const std::uint64_t c = aref(s->ctrl).load(std::memory_order_seq_cst);
    if (ctrl_seq_diff(c, pos) == 0 && ctrl_state(c) == slot_full) {
      const std::uint32_t len = aref(s->length).load(std::memory_order_relaxed);
      const std::uint32_t flags = aref(s->flags).load(std::memory_order_relaxed);
      if (flags & slot_flag_heap) {
        general = true;
        return status::ok;
      }
      const bool abandoned = flags & slot_flag_abandoned;
      if (!abandoned && len > buffer.size()) {
        length = len;
        return status::too_large;
      }
      const bool sound = len <= v.inline_capacity;
      if (!abandoned && sound && len) std::memcpy(buffer.data(), v.inline_payload(s), len);
      // The slot first: a receiver killed between the two stores leaves head behind an EMPTY
      // slot of the next lap, which the next receiver steps over (recv_blocked); the other order
      // would leave head past a FULL slot that nobody would ever take.
      aref(s->ctrl).store(make_ctrl(pos + v.capacity, slot_empty, 0), std::memory_order_release);
      aref(head).store(pos + 1, std::memory_order_release);
      publish_single_to_senders(v, pos);
      if (abandoned) continue;
      if (!sound) {
        // Damaged slot (someone wrote over the segment): dropped, never read out of bounds.
        aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      length = len;
      return status::ok;
    }
    if (const status st = recv_blocked(v, pos, c, blocker); st != status::ok) return st;
  }
}

status channel::recv(std::span<std::byte> buffer, std::size_t& length, timeout t) noexcept {
  if (!view_) return status::invalid;
  if (view_->single_consumer) {
    std::uint64_t blocker = 0;
    bool general = false;
    status st = recv_single(buffer, length, blocker, general);
    if (st == status::empty)
      st = wait_until_done([&](std::uint64_t& b) { return recv_single(buffer, length, b, general); }, false, t);
    if (!general) return st;
  }
  recv_claim claim;
  std::uint64_t blocker = 0;
  status st = recv_once(claim, buffer.size(), length, blocker);  // one attempt inline, then the waits
  if (st == status::empty)
    st = wait_until_done([&](std::uint64_t& b) { return recv_once(claim, buffer.size(), length, b); }, false, t);
  if (st != status::ok) return st;
  if (claim.size_) std::memcpy(buffer.data(), claim.data_, claim.size_);
  length = claim.size_;
  return give_back(claim);
}

status channel::recv(std::vector<std::byte>& out, timeout t) {
  recv_claim claim;
  const status st = claim_recv(claim, t);
  if (st != status::ok) return st;
  out.assign(claim.data().begin(), claim.data().end());
  return release(claim);
}


namespace {

// Takes over the slot whose control word is `c`, held by the dead process `dead`, and repairs it:
// its message is dropped and counted lost. Returns false if another repairer won.
bool repair_dead_slot(const channel_view& v, std::uint64_t c, std::uint32_t dead, bool reclaim_heap) noexcept {
  const std::uint64_t state = ctrl_state(c);
  const std::uint64_t seq40 = ctrl_seq40(c);
  slot_header* s = v.slot(seq40);
  std::uint64_t expected = c;
  // Take the slot over in the same state, stamped with our pid: exactly one repairer wins.
  if (!aref(s->ctrl).compare_exchange_strong(expected, make_ctrl(seq40, state, current_pid()),
                                             std::memory_order_acquire, std::memory_order_relaxed))
    return false;
  const std::uint32_t slot_tag = heap_owner_slot(v.slot_index(seq40));
  const std::uint32_t flags = aref(s->flags).load(std::memory_order_relaxed);
  std::uint32_t freed = 0;
  if (flags & slot_flag_heap)
    freed = heap_free_if_owned(v, aref(s->heap_first()).load(std::memory_order_relaxed),
                               aref(s->heap_count()).load(std::memory_order_relaxed), slot_tag,
                               state == slot_writing ? heap_owner_pid(dead) : slot_tag);
  if (freed) aref(v.control->reclaimed_heap_blocks).fetch_add(freed, std::memory_order_relaxed);
  aref(v.control->lost_messages).fetch_add(1, std::memory_order_relaxed);
  aref(v.control->repaired_slots).fetch_add(1, std::memory_order_relaxed);
  if (state == slot_writing) {
    // A dead sender: the slot may be anywhere in the ring, so turn it into an abandoned message
    // that receivers skip in order. Its blocks not yet attached to the slot carry its pid.
    if (reclaim_heap && v.heap_blocks) heap_reclaim_dead(v, dead);
    help_past(v.control->tail, seq40);
    aref(s->flags).store(0, std::memory_order_relaxed);
    publish_abandoned(v, s, seq40);
  } else {
    // A dead receiver: finish its release. Head must be past the slot before it is recycled.
    help_past(v.control->head, seq40);
    release_slot(v, s, seq40);
  }
  return true;
}

bool held_by_dead(std::uint64_t c, std::uint32_t dead) noexcept {
  const std::uint64_t state = ctrl_state(c);
  return ctrl_pid(c) == dead && (state == slot_writing || state == slot_reading);
}

// Repairs the slot observed as `blocker` if its holder is dead, and the slots after it that the
// same dead process holds in the same lap: a batch claim (claim_send_run / claim_recv_run)
// holds consecutive slots, and they are repaired now, not one liveness check each. Returns the
// number of slots this call repaired.
std::size_t repair_dead_run(const channel_view& v, std::uint64_t blocker) noexcept {
  const std::uint32_t dead = ctrl_pid(blocker);
  if (dead == 0 || !held_by_dead(blocker, dead)) return 0;
  if (process_alive(dead, v.registry, v.registry_entries)) return 0;
  if (!repair_dead_slot(v, blocker, dead, true)) return 0;
  std::size_t repaired = 1;
  const std::uint64_t seq40 = ctrl_seq40(blocker);
  for (std::uint64_t next = seq40 + 1; next != seq40 + v.capacity; ++next) {
    const std::uint64_t c = aref(v.slot(next)->ctrl).load(std::memory_order_acquire);
    if (!held_by_dead(c, dead) || ctrl_seq_diff(c, next) != 0 || ctrl_state(c) != ctrl_state(blocker)) break;
    if (!repair_dead_slot(v, c, dead, false)) break;
    ++repaired;
  }
  return repaired;
}

}  // namespace

bool channel::repair_if_dead(std::uint64_t blocker) noexcept { return repair_dead_run(*view_, blocker) != 0; }

bool channel::repair_ends() noexcept {
  const channel_view& v = *view_;
  bool repaired = false;
  for (std::uint64_t* index : {&v.control->head, &v.control->tail}) {
    const std::uint64_t at = aref(*index).load(std::memory_order_relaxed);
    const std::uint64_t c = aref(v.slot(at)->ctrl).load(std::memory_order_acquire);
    if (ctrl_pid(c) != 0 && repair_if_dead(c)) repaired = true;
  }
  return repaired;
}

std::size_t channel::repair() noexcept {
  if (!view_) return 0;
  const channel_view& v = *view_;
  std::size_t repaired = 0;
  for (std::uint64_t i = 0; i < v.capacity; ++i) {
    const std::uint64_t c = aref(v.slot(i)->ctrl).load(std::memory_order_acquire);
    if (ctrl_pid(c) != 0) repaired += repair_dead_run(v, c);
  }
  if (v.heap_blocks) heap_reclaim_dead(v);
  return repaired + reap_dead_waiters(v);
}

// --- state ---------------------------------------------------------------------------------------

poll_info channel::poll() const noexcept {
  poll_info info;
  if (!view_) return info;
  const channel_view& v = *view_;
  const std::uint64_t head = aref(v.control->head).load(std::memory_order_acquire);
  const std::uint64_t tail = aref(v.control->tail).load(std::memory_order_acquire);
  const std::uint64_t hc = aref(v.slot(head)->ctrl).load(std::memory_order_acquire);
  const std::uint64_t tc = aref(v.slot(tail)->ctrl).load(std::memory_order_acquire);
  info.closed = aref(v.control->closed).load(std::memory_order_acquire) == sealed;
  info.readable = (ctrl_seq_diff(hc, head) == 0 && ctrl_state(hc) == slot_full) || info.closed;
  info.writable = !info.closed && ctrl_seq_diff(tc, tail) == 0 && ctrl_state(tc) == slot_empty;
  info.count = tail > head ? tail - head : 0;
  info.capacity = v.capacity;
  // Counts that include processes killed in their sleep are corrected here at most once a second.
  if ((aref(v.control->recv_waiters).load(std::memory_order_relaxed) |
       aref(v.control->send_waiters).load(std::memory_order_relaxed) |
       aref(v.control->poll_waiters).load(std::memory_order_relaxed)) != 0)
    reap_dead_waiters_every(v, scan_interval);
  const std::uint32_t pollers = aref(v.control->poll_waiters).load(std::memory_order_relaxed);
  info.blocked_receivers = aref(v.control->recv_waiters).load(std::memory_order_relaxed) + pollers;
  info.blocked_senders = aref(v.control->send_waiters).load(std::memory_order_relaxed);
  return info;
}

channel_stats channel::stats() const noexcept {
  channel_stats st;
  if (!view_) return st;
  const channel_view& v = *view_;
  st.lost_messages = aref(v.control->lost_messages).load(std::memory_order_relaxed);
  st.repaired_slots = aref(v.control->repaired_slots).load(std::memory_order_relaxed);
  st.reclaimed_heap_blocks = aref(v.control->reclaimed_heap_blocks).load(std::memory_order_relaxed);
  st.corrupted_messages = aref(v.control->corrupted_messages).load(std::memory_order_relaxed);
  st.attached_processes = count_live_processes(v.registry, v.registry_entries);
  return st;
}

void channel::seal() noexcept {
  if (!view_) return;
  const channel_view& v = *view_;
  aref(v.control->closed).store(sealing, std::memory_order_seq_cst);
  // Make every single-producer claim already made visible before receivers may act on the seal.
  if (v.single_producer) slow_side_fence();
  aref(v.control->closed).store(sealed, std::memory_order_seq_cst);
  for (std::uint32_t* word : {&v.control->data_seq, &v.control->space_seq}) {
    aref(*word).fetch_add(futex_epoch_step, std::memory_order_seq_cst);
    futex_wake(word, INT_MAX);
  }
}

}  // namespace chanpool::channels
