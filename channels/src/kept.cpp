// What an RDMA-capable holder of a channel needs beyond send and receive: kept payloads (a heap
// message taken out of its ring slot so the slot can be freed while the bytes stay put), the
// heap's memory to register once, and whether two handles map the same segment.
//
// The message's blocks are re-tagged from "attached to slot i" to "held by this pid" before the
// slot forgets them (its heap flag is cleared), so at every instant exactly one owner names them:
// if the holder dies between the two steps, repair of its slot frees only blocks still tagged
// with the slot (none), and the sweep of dead pids' blocks frees the rest.
#include "chanpool/channels/channel.hpp"
#include "heap.hpp"
#include "process.hpp"
#include "ring.hpp"

namespace chanpool::channels {

using namespace detail;

status channel::keep(recv_run& run, std::size_t i, kept_payload& kept) noexcept {
  if (!view_ || i >= run.count_ || kept.active()) return status::invalid;
  const channel_view& v = *view_;
  const std::uint64_t pos = run.position_ + i;
  slot_header* s = v.slot(pos);
  const std::uint32_t flags = aref(s->flags).load(std::memory_order_relaxed);
  if (!(flags & slot_flag_heap)) return status::invalid;
  const std::uint32_t first = aref(s->heap_first()).load(std::memory_order_relaxed);
  const std::uint32_t count = aref(s->heap_count()).load(std::memory_order_relaxed);
  heap_retag(v, first, count, heap_owner_pid(current_pid()));
  aref(s->flags).store(flags & ~slot_flag_heap, std::memory_order_relaxed);
  kept.data_ = run.data_[i];
  kept.size_ = run.size_[i];
  kept.first_block_ = first;
  kept.block_count_ = count;
  return status::ok;
}

status channel::release(kept_payload& kept) noexcept {
  if (!view_ || !kept.active()) return status::invalid;
  heap_free(*view_, kept.first_block_, kept.block_count_);
  kept = kept_payload{};
  return status::ok;
}

bool channel::same_segment(const channel& other) const noexcept {
  if (!view_ || !other.view_) return false;
  const segment_header& a = *view_->header;
  const segment_header& b = *other.view_->header;
  return a.creator_pid == b.creator_pid && a.creator_start_time == b.creator_start_time &&
         a.created_unix_ns == b.created_unix_ns && a.total_bytes == b.total_bytes;
}

std::span<std::byte> channel::heap_memory() const noexcept {
  if (!view_ || view_->heap_blocks == 0) return {};
  return {view_->heap, static_cast<std::size_t>(view_->heap_bytes)};
}

}  // namespace chanpool::channels
