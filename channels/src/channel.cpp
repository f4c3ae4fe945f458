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
// past a slot that is already claimed.
#include "chanpool/channels/channel.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "fence.hpp"
#include "futex.hpp"
#include "heap.hpp"
#include "layout.hpp"
#include "process.hpp"
#include "segment.hpp"
#include "waiters.hpp"

namespace chanpool::channels {
namespace {

using namespace detail;
using clock = std::chrono::steady_clock;

template <class T>
std::atomic_ref<T> aref(T& x) noexcept {
  return std::atomic_ref<T>(x);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

std::uint32_t blocks_for(const channel_view& v, std::size_t bytes) noexcept {
  return static_cast<std::uint32_t>((bytes + v.heap_block_bytes - 1) >> v.heap_block_shift);
}

// The futex words data_seq and space_seq are | epoch (31 bits) | armed (bit 0) |. A waiter sets
// `armed` before its last check and sleeps on the armed value. A publisher that finds it set
// moves the epoch (which also ends sleeps that have not started yet) and wakes one sleeper.
// With one sleeper it also clears `armed`, so the publishes that follow, until the sleeper has
// woken and re-armed, cost no system call: a burst into a channel whose receiver is still being
// scheduled pays one wake, not one per message. With several sleepers it stays armed, so every
// publish wakes the next one, as a plain counter would. poll_set waiters sleep on unarmed
// snapshots of the word: while any wait, every publish moves the epoch and wakes them all.
//
// Callers have just published either with a seq_cst RMW, which orders the publish before these
// loads (pairs with the waiter's seq_cst arming), or with a release store followed by
// fast_side_fence() (pairs with slow_side_fence() after arming).
//
// The counts include processes killed in their sleep until someone takes them off (waiters.hpp).
// A wake that finds nobody asleep while the counts say several sleep is the sign of that: it
// triggers a (rate-limited) scan, so the dead stop costing a futex_wake per publish.
void notify(const channel_view& v, std::uint32_t& word, std::uint32_t& waiters) noexcept {
  if (aref(v.control->poll_waiters).load(std::memory_order_seq_cst) != 0) {
    aref(word).fetch_add(futex_epoch_step, std::memory_order_seq_cst);
    if (futex_wake(&word, INT_MAX) == 0) reap_dead_waiters_every(v, evidence_scan_interval);
    return;
  }
  std::uint32_t w = aref(word).load(std::memory_order_seq_cst);
  while (w & futex_armed) {
    if (aref(waiters).load(std::memory_order_seq_cst) > 1) {
      aref(word).fetch_add(futex_epoch_step, std::memory_order_seq_cst);
      if (futex_wake(&word, 1) == 0) reap_dead_waiters_every(v, evidence_scan_interval);
      return;
    }
    if (aref(word).compare_exchange_weak(w, (w + futex_epoch_step) & ~futex_armed, std::memory_order_seq_cst,
                                         std::memory_order_seq_cst)) {
      futex_wake(&word, 1);
      return;
    }
  }
}

void notify_receivers(const channel_view& v) noexcept { notify(v, v.control->data_seq, v.control->recv_waiters); }
void notify_senders(const channel_view& v) noexcept { notify(v, v.control->space_seq, v.control->send_waiters); }

// Moves `index` past the slot serving sequence `seq40`, if it still points at it.
void help_past(std::uint64_t& index, std::uint64_t seq40) noexcept {
  std::uint64_t at = aref(index).load(std::memory_order_relaxed);
  if ((at & ctrl_seq_mask) == seq40) aref(index).compare_exchange_strong(at, at + 1, std::memory_order_relaxed);
}

std::uint64_t ctrl_seq40(std::uint64_t c) noexcept { return c >> ctrl_seq_shift; }

// A slot serves at most one lap ahead of the index that points at it (released: pos + capacity).
// Further ahead, with the index still at `pos` (not a stale read), is damage from someone who
// wrote over the segment: helping the index on one step at a time would take up to 2^40 steps.
bool damaged_index(const channel_view& v, std::uint64_t& index, std::uint64_t pos) noexcept {
  if (aref(index).load(std::memory_order_relaxed) != pos) return false;
  aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
  return true;
}

// Publishes an abandoned (empty) message in a slot the caller holds as WRITING.
void publish_abandoned(const channel_view& v, slot_header* s, std::uint64_t seq40) noexcept {
  aref(s->flags).store(slot_flag_abandoned, std::memory_order_relaxed);
  aref(s->length).store(0, std::memory_order_relaxed);
  aref(s->ctrl).exchange(make_ctrl(seq40, slot_full, 0), std::memory_order_seq_cst);
  notify_receivers(v);
}

// Returns a slot the caller holds as READING to the next lap.
void release_slot(const channel_view& v, slot_header* s, std::uint64_t seq40) noexcept {
  aref(s->ctrl).exchange(make_ctrl(seq40 + v.capacity, slot_empty, 0), std::memory_order_seq_cst);
  notify_senders(v);
}

thread_local std::uint32_t try_probe_countdown = 0;
// Set by send_once when the heap, not the ring, was full: only then is a scan of every slot for
// a dead holder of heap blocks worth its O(capacity) cost.
thread_local bool heap_starved = false;

std::atomic<std::uint32_t> next_lease_token{1};
constexpr std::uint32_t try_probe_every = 4096;  // try-once calls blocked by the same kind of slot

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

bool channel::hold_lease(std::uint64_t& lease) noexcept {
  const std::uint64_t mine = (std::uint64_t{current_pid()} << 32) | lease_token_;
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

status channel::send_once(std::size_t bytes, send_claim& claim, std::uint64_t& blocker) noexcept {
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
          aref(s->heap_first).store(static_cast<std::uint32_t>(claim.first_block_), std::memory_order_relaxed);
          aref(s->heap_count).store(claim.block_count_, std::memory_order_relaxed);
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
    if (diff > static_cast<std::int64_t>(v.capacity) && damaged_index(v, tail, pos)) return status::full;
    if (diff >= 0) {
      // Slot already claimed for `pos` (or beyond): the claimer has not moved tail yet. Help.
      std::uint64_t at = pos;
      aref(tail).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
      continue;
    }
    // The slot still serves the previous lap: the ring is full unless tail moved meanwhile.
    if (aref(tail).load(std::memory_order_relaxed) != pos) continue;
    if (ctrl_pid(c) != 0) blocker = c;
    return status::full;
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
  const channel_view& v = *view_;
  slot_header* s = v.slot(claim.position_);
  aref(s->length).store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  if (v.single_producer) {
    aref(s->ctrl).store(make_ctrl(claim.position_, slot_full, 0), std::memory_order_release);
    fast_side_fence();
  } else {
    aref(s->ctrl).exchange(make_ctrl(claim.position_, slot_full, 0), std::memory_order_seq_cst);
  }
  claim = send_claim{};
  notify_receivers(v);
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

status channel::send(std::span<const std::byte> message, timeout t) noexcept {
  send_claim claim;
  const status st = claim_send(message.size(), claim, t);
  if (st != status::ok) return st;
  if (!message.empty()) std::memcpy(claim.data_, message.data(), message.size());
  return commit(claim);
}

// --- receive -------------------------------------------------------------------------------------

status channel::recv_once(recv_claim& claim, std::size_t limit, std::size_t& length, std::uint64_t& blocker) noexcept {
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
      const std::uint32_t first = on_heap ? aref(s->heap_first).load(std::memory_order_relaxed) : 0;
      const std::uint32_t count = on_heap ? aref(s->heap_count).load(std::memory_order_relaxed) : 0;
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
    if (diff == 0 && ctrl_state(c) == slot_reading) {
      std::uint64_t at = pos;
      aref(head).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
      continue;
    }
    if (diff > static_cast<std::int64_t>(v.capacity) && damaged_index(v, head, pos)) return status::empty;
    if (diff > 0) {
      // Position `pos` was consumed and its slot recycled: head is behind. Help it on.
      std::uint64_t at = pos;
      aref(head).compare_exchange_strong(at, pos + 1, std::memory_order_relaxed);
      continue;
    }
    if (aref(head).load(std::memory_order_relaxed) != pos) continue;
    if (diff == 0 && ctrl_state(c) == slot_writing) {
      blocker = c;  // a send is in progress; its holder may have died
      return status::empty;
    }
    // seq_cst: pairs with the claim + closed check in send_once (no message slips past a seal).
    if (aref(v.control->closed).load(std::memory_order_seq_cst) == sealed) return status::closed;
    return status::empty;
  }
}

status channel::claim_recv(recv_claim& claim, timeout t) noexcept {
  if (!view_ || claim.active()) return status::invalid;
  std::size_t length = 0;
  return wait_until_done([&](std::uint64_t& blocker) { return recv_once(claim, SIZE_MAX, length, blocker); }, false, t);
}

status channel::release(recv_claim& claim) noexcept {
  if (!view_ || !claim.active()) return status::invalid;
  const channel_view& v = *view_;
  slot_header* s = v.slot(claim.position_);
  if (aref(s->flags).load(std::memory_order_relaxed) & slot_flag_heap)
    heap_free(v, aref(s->heap_first).load(std::memory_order_relaxed), aref(s->heap_count).load(std::memory_order_relaxed));
  if (v.single_consumer) {
    aref(s->ctrl).store(make_ctrl(claim.position_ + v.capacity, slot_empty, 0), std::memory_order_release);
    fast_side_fence();
    notify_senders(v);
  } else {
    release_slot(v, s, claim.position_ & ctrl_seq_mask);
  }
  claim = recv_claim{};
  return status::ok;
}

status channel::recv(std::span<std::byte> buffer, std::size_t& length, timeout t) noexcept {
  if (!view_) return status::invalid;
  recv_claim claim;
  const status st = wait_until_done(
      [&](std::uint64_t& blocker) { return recv_once(claim, buffer.size(), length, blocker); }, false, t);
  if (st != status::ok) return st;
  if (claim.size_) std::memcpy(buffer.data(), claim.data_, claim.size_);
  length = claim.size_;
  return release(claim);
}

status channel::recv(std::vector<std::byte>& out, timeout t) {
  recv_claim claim;
  const status st = claim_recv(claim, t);
  if (st != status::ok) return st;
  out.assign(claim.data().begin(), claim.data().end());
  return release(claim);
}

// --- waiting -------------------------------------------------------------------------------------

template <class Once>
status channel::wait_until_done(Once&& once, bool sender, timeout t) noexcept {
  std::uint64_t blocker = 0;
  status st = once(blocker);
  if (st != status::full && st != status::empty) return st;
  if (t <= timeout::zero()) {
    // Busy try-once loops must not spin forever behind a dead holder: probe now and then.
    if (blocker != 0 && ++try_probe_countdown % try_probe_every == 0 && repair_if_dead(blocker)) st = once(blocker);
    return st;
  }
  const channel_view& v = *view_;
  const auto start = clock::now();
  const auto deadline = t == forever || t > std::chrono::hours(24 * 365) ? clock::time_point::max() : start + t;
  std::uint64_t watched = blocker;
  auto watched_since = start;
  // Probes a holder that has blocked us for liveness_check. Returns true if it repaired.
  auto probe = [&](clock::time_point now) {
    if (blocker != watched) {
      watched = blocker;
      watched_since = now;
      return false;
    }
    if (now - watched_since < wait_.liveness_check) return false;
    watched_since = now;
    if (blocker != 0) return repair_if_dead(blocker);
    if (sender && heap_starved) {
      // The heap may be held by a dead sender's slot anywhere in the ring, or by blocks it never
      // attached. Rare and rate-limited, so scan everything.
      const auto reclaimed = aref(v.control->reclaimed_heap_blocks).load(std::memory_order_relaxed);
      return repair() != 0 || aref(v.control->reclaimed_heap_blocks).load(std::memory_order_relaxed) != reclaimed;
    }
    return false;
  };

  if (wait_.mode != wait_mode::idle) {
    const auto spin_end = wait_.mode == wait_mode::spin ? deadline : start + wait_.spin_for;
    for (std::uint32_t round = 0;; ++round) {
      for (int i = 0; i < 32; ++i) {
        cpu_relax();
        st = once(blocker);
        if (st != status::full && st != status::empty) return st;
      }
      const auto now = clock::now();
      if (probe(now)) continue;
      if (now >= deadline) return status::timeout;
      if (now >= spin_end) break;
      if (wait_.mode == wait_mode::spin && now - start > wait_.spin_for) sched_yield();  // share an oversubscribed core
    }
  }

  std::uint32_t& word = sender ? v.control->space_seq : v.control->data_seq;
  const bool single_publisher = sender ? v.single_consumer : v.single_producer;
  const waiter_side side = sender ? waiter_side::sender : waiter_side::receiver;
  // Counted in this process's waiter record, so that a kill in the sleep below is undone.
  const std::uint32_t record = waiter_enter(v, side);
  for (;;) {
    // Arm, then check, then sleep on the armed value (see notify()). A single publisher on the
    // other side reads the word without a fence of its own: pay for both sides here.
    const std::uint32_t seen = aref(word).fetch_or(futex_armed, std::memory_order_seq_cst) | futex_armed;
    if (single_publisher) slow_side_fence();
    st = once(blocker);
    if (st != status::full && st != status::empty) break;
    const auto now = clock::now();
    if (probe(now)) continue;
    if (now >= deadline) {
      st = status::timeout;
      break;
    }
    reap_dead_waiters_every(v, scan_interval);  // others killed in their sleep
    // Capped so that a holder that died without waking us is still probed.
    const auto nap = std::min<clock::duration>(deadline - now, wait_.liveness_check);
    futex_wait(&word, seen, std::chrono::duration_cast<std::chrono::nanoseconds>(nap));
  }
  waiter_leave(v, side, record);
  return st;
}

// --- crash repair --------------------------------------------------------------------------------

bool channel::repair_if_dead(std::uint64_t blocker) noexcept {
  const channel_view& v = *view_;
  const std::uint32_t dead = ctrl_pid(blocker);
  const std::uint64_t state = ctrl_state(blocker);
  if (dead == 0 || (state != slot_writing && state != slot_reading)) return false;
  if (process_alive(dead, v.registry, v.registry_entries)) return false;
  const std::uint64_t seq40 = ctrl_seq40(blocker);
  slot_header* s = v.slot(seq40);
  const std::uint32_t me = current_pid();
  std::uint64_t expected = blocker;
  // Take the slot over in the same state, stamped with our pid: exactly one repairer wins.
  if (!aref(s->ctrl).compare_exchange_strong(expected, make_ctrl(seq40, state, me), std::memory_order_acquire,
                                             std::memory_order_relaxed))
    return false;
  const std::uint32_t slot_tag = heap_owner_slot(v.slot_index(seq40));
  const std::uint32_t flags = aref(s->flags).load(std::memory_order_relaxed);
  std::uint32_t freed = 0;
  if (flags & slot_flag_heap)
    freed = heap_free_if_owned(v, aref(s->heap_first).load(std::memory_order_relaxed),
                               aref(s->heap_count).load(std::memory_order_relaxed), slot_tag,
                               state == slot_writing ? heap_owner_pid(dead) : slot_tag);
  if (freed) aref(v.control->reclaimed_heap_blocks).fetch_add(freed, std::memory_order_relaxed);
  aref(v.control->lost_messages).fetch_add(1, std::memory_order_relaxed);
  aref(v.control->repaired_slots).fetch_add(1, std::memory_order_relaxed);
  if (state == slot_writing) {
    // A dead sender: the slot may be anywhere in the ring, so turn it into an abandoned message
    // that receivers skip in order. Its blocks not yet attached to the slot carry its pid.
    if (v.heap_blocks) heap_reclaim_dead(v, dead);
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
    if (ctrl_pid(c) != 0 && repair_if_dead(c)) ++repaired;
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
