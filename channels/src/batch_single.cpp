// The copying batch calls of a single side (send_many, recv_many), in the way of the copying
// single calls (channel.cpp, send_single / recv_single): a run's payloads are written into its
// slots while they are still EMPTY and the run is then claimed and published; a receive run is
// copied out while FULL and handed back with one store per slot. Each slot's first line is thus
// written in one burst, with at most one more store (the publish) after the other side may have
// read it. Crash repair is as for single calls: a producer killed before its claims leaves EMPTY
// slots, after them WRITING slots that name it; a receiver killed before its hand-back leaves
// the run FULL for the next holder of the lease.
#include <algorithm>
#include <cstring>

#include "chanpool/channels/channel.hpp"
#include "process.hpp"
#include "ring.hpp"
#include "wait_loop.hpp"

namespace chanpool::channels {

using namespace detail;

status channel::send_run_single(std::span<const std::span<const std::byte>> messages, std::size_t& sent,
                                std::uint64_t& blocker) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  sent = 0;
  if (!hold_lease(v.control->producer_lease)) return status::invalid;
  if (aref(v.control->closed).load(std::memory_order_relaxed)) return status::closed;
  auto& tail = v.control->tail;
  for (;;) {
    const std::uint64_t pos = aref(tail).load(std::memory_order_relaxed);
    std::uint64_t c = 0;
    if (!free_at(v, pos, c)) {
      if (send_blocked(v, pos, c, blocker)) return status::full;
      continue;
    }
    const std::uint32_t pid = current_pid();
    std::size_t n = 0;
    do {
      slot_header* s = v.slot(pos + n);
      const std::span<const std::byte> m = messages[n];
      if (!m.empty()) std::memcpy(v.inline_payload(s), m.data(), m.size());
      aref(s->length).store(static_cast<std::uint32_t>(m.size()), std::memory_order_relaxed);
      aref(s->flags).store(0, std::memory_order_relaxed);
      aref(s->ctrl).store(make_ctrl(pos + n, slot_writing, pid), std::memory_order_relaxed);
    } while (++n < messages.size() && free_at(v, pos + n, c));
    aref(tail).store(pos + n, std::memory_order_release);
    // As in send_once: the claims come before the seal check, a seal a receiver acted on is seen.
    if (aref(v.control->closed).load(std::memory_order_seq_cst) != open_state) {
      for (std::size_t i = 0; i < n; ++i) publish_abandoned(v, v.slot(pos + i), (pos + i) & ctrl_seq_mask);
      return status::closed;
    }
    for (std::size_t i = 0; i < n; ++i)
      aref(v.slot(pos + i)->ctrl).store(make_ctrl(pos + i, slot_full, 0), std::memory_order_release);
    publish_single_to_receivers(v, pos, n);
    sent = n;
    return status::ok;
  }
}

status channel::recv_run_single(std::span<std::byte> buffer, std::size_t& used, std::span<std::size_t> lengths,
                                std::size_t& received, std::uint64_t& blocker, bool& general) noexcept {
  const channel_view& v = *view_;
  blocker = 0;
  received = 0;
  if (!hold_lease(v.control->consumer_lease)) return status::invalid;
  auto& head = v.control->head;
  for (;;) {
    const std::uint64_t pos = aref(head).load(std::memory_order_relaxed);
    std::uint64_t c = aref(v.slot(pos)->ctrl).load(std::memory_order_seq_cst);
    if (ctrl_seq_diff(c, pos) != 0 || ctrl_state(c) != slot_full) {
      if (const status st = recv_blocked(v, pos, c, blocker); st != status::ok) return st;
      continue;
    }
    // Copy out FULL slots from pos on; stop before a heap message (left to the claiming path), an
    // abandoned or damaged slot (handed back alone below) or one that does not fit.
    std::size_t n = 0;
    bool skip = false;
    status st = status::ok;
    do {
      slot_header* s = v.slot(pos + n);
      const std::uint32_t len = aref(s->length).load(std::memory_order_relaxed);
      const std::uint32_t flags = aref(s->flags).load(std::memory_order_relaxed);
      if (flags & slot_flag_heap) {
        general = n == 0;
        break;
      }
      if ((flags & slot_flag_abandoned) || len > v.inline_capacity) {
        skip = n == 0;
        if (skip && !(flags & slot_flag_abandoned))
          aref(v.control->corrupted_messages).fetch_add(1, std::memory_order_relaxed);
        break;
      }
      if (len > buffer.size() - used) {
        if (n == 0) {
          lengths[0] = len;
          st = status::too_large;
        }
        break;
      }
      if (len) std::memcpy(buffer.data() + used, v.inline_payload(s), len);
      used += len;
      lengths[n] = len;
    } while (++n < lengths.size() && full_at(v, pos + n, c));
    const std::size_t handed = skip ? 1 : n;
    if (handed == 0) return general ? status::ok : st;
    // Slots first, then head: as in recv_single, a kill between them leaves head behind EMPTY slots.
    for (std::size_t i = 0; i < handed; ++i)
      aref(v.slot(pos + i)->ctrl).store(make_ctrl(pos + i + v.capacity, slot_empty, 0), std::memory_order_release);
    aref(head).store(pos + handed, std::memory_order_release);
    publish_single_to_senders(v, pos, handed);
    if (skip) continue;
    received = n;
    return status::ok;
  }
}

}  // namespace chanpool::channels
