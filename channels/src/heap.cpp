#include "heap.hpp"

#include <algorithm>
#include <atomic>

#include "process.hpp"
#include "segment.hpp"

namespace chanpool::channels::detail {
namespace {

std::atomic_ref<std::uint32_t> owner_word(const channel_view& v, std::uint32_t block) noexcept {
  return std::atomic_ref<std::uint32_t>(v.heap_owner[block]);
}

// First-fit over [lo, hi) for a run of `count` blocks that lies wholly inside the range.
std::int64_t allocate_in(const channel_view& v, std::uint32_t lo, std::uint32_t hi, std::uint32_t count,
                         std::uint32_t owner) noexcept {
  std::uint64_t b = lo;
  while (b + count <= hi) {
    std::uint32_t free_run = 0;
    while (free_run < count && owner_word(v, static_cast<std::uint32_t>(b + free_run)).load(std::memory_order_relaxed) == 0)
      ++free_run;
    if (free_run < count) {
      b += free_run + 1;
      continue;
    }
    std::uint32_t taken = 0;
    for (; taken < count; ++taken) {
      std::uint32_t expected = 0;
      // acquire: pairs with the release in heap_free, so the last reader is done with the block.
      if (!owner_word(v, static_cast<std::uint32_t>(b + taken))
               .compare_exchange_strong(expected, owner, std::memory_order_acquire, std::memory_order_relaxed))
        break;
    }
    if (taken == count) return static_cast<std::int64_t>(b);
    for (std::uint32_t r = 0; r < taken; ++r) owner_word(v, static_cast<std::uint32_t>(b + r)).store(0, std::memory_order_release);
    b += taken + 1;
  }
  return -1;
}

}  // namespace

// Where a message's blocks come from. First the low end of the heap, a window of about 256 KiB:
// while few messages are in flight (the common case: a receiver keeping up) they reuse the same
// blocks, which stay in the caches and, after their first use, cost no page fault. Past it,
// next-fit from the cursor over the part of the heap that has held messages before (below
// heap_used_top), which suits a backlog (FIFO frees) and keeps a steady window of messages in
// memory it has touched. Only when that part has no room does a message go higher, into memory
// never used before: on its first use a page fault per page (12-17 us each on a VM measured here),
// which a whole-heap cycle paid on every lap of the first pass through a large heap.
std::int64_t heap_allocate(const channel_view& v, std::uint32_t count, std::uint32_t owner) noexcept {
  if (count == 0 || count > v.heap_blocks) return -1;
  constexpr std::uint64_t warm_window_bytes = 256u << 10;
  constexpr std::uint32_t warm_window_max_blocks = 1024;  // bounds the scan with small blocks
  const std::uint32_t window = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      v.heap_blocks,
      std::max<std::uint64_t>(std::uint64_t{count} * 2,
                              std::min<std::uint64_t>(warm_window_max_blocks, warm_window_bytes >> v.heap_block_shift))));
  if (const std::int64_t warm = allocate_in(v, 0, window, count, owner); warm >= 0) return warm;
  // Both words are hints shared by every allocator (relaxed, racy by design): a stale value costs
  // a longer scan or a touch of fresh memory, never a wrong allocation (the owner words decide).
  std::atomic_ref<std::uint32_t> used_top(v.control->heap_used_top);
  std::atomic_ref<std::uint32_t> cursor(v.control->heap_cursor);
  const std::uint32_t top = std::clamp(used_top.load(std::memory_order_relaxed), window, v.heap_blocks);
  std::uint32_t start = cursor.load(std::memory_order_relaxed);
  if (start < window || start >= top) start = window;
  std::int64_t first = allocate_in(v, start, top, count, owner);
  if (first < 0) first = allocate_in(v, 0, std::min<std::uint64_t>(top, std::uint64_t{start} + count), count, owner);
  if (first < 0) {
    // Above what was used (a run may begin just below `top`). With the two scans before, every
    // run of the heap has been looked at once.
    first = allocate_in(v, top > count ? top - count : 0, v.heap_blocks, count, owner);
    if (first >= 0) {
      const auto end = static_cast<std::uint32_t>(first + count);
      std::uint32_t seen = used_top.load(std::memory_order_relaxed);
      while (seen < end && !used_top.compare_exchange_weak(seen, end, std::memory_order_relaxed)) {
      }
    }
  }
  if (first >= 0) cursor.store(static_cast<std::uint32_t>(first + count), std::memory_order_relaxed);
  return first;
}

void heap_retag(const channel_view& v, std::uint32_t first, std::uint32_t count, std::uint32_t owner) noexcept {
  for (std::uint32_t i = 0; i < count; ++i) owner_word(v, first + i).store(owner, std::memory_order_relaxed);
}

void heap_free(const channel_view& v, std::uint32_t first, std::uint32_t count) noexcept {
  for (std::uint32_t i = 0; i < count; ++i) owner_word(v, first + i).store(0, std::memory_order_release);
}

std::uint32_t heap_free_if_owned(const channel_view& v, std::uint32_t first, std::uint32_t count,
                                 std::uint32_t owner_a, std::uint32_t owner_b) noexcept {
  if (first >= v.heap_blocks || count > v.heap_blocks - first) return 0;  // fields from a damaged slot
  std::uint32_t freed = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto word = owner_word(v, first + i);
    std::uint32_t seen = word.load(std::memory_order_relaxed);
    if ((seen == owner_a || seen == owner_b) && seen != 0 &&
        word.compare_exchange_strong(seen, 0, std::memory_order_release, std::memory_order_relaxed))
      ++freed;
  }
  return freed;
}

std::uint32_t heap_reclaim_dead(const channel_view& v, std::uint32_t pid) noexcept {
  std::uint32_t freed = 0;
  // Most sweeps meet one or two distinct pids; remember the last verdict to avoid re-probing.
  std::uint32_t last_pid = 0;
  bool last_dead = false;
  for (std::uint32_t b = 0; b < v.heap_blocks; ++b) {
    auto word = owner_word(v, b);
    std::uint32_t seen = word.load(std::memory_order_relaxed);
    if ((seen & heap_owner_pid_bit) == 0) continue;
    const std::uint32_t holder = seen & ~heap_owner_pid_bit;
    if (pid != 0 && holder != pid) continue;
    if (holder != last_pid) {
      last_pid = holder;
      last_dead = !process_alive(holder, v.registry, v.registry_entries);
    }
    if (last_dead && word.compare_exchange_strong(seen, 0, std::memory_order_release, std::memory_order_relaxed)) ++freed;
  }
  if (freed)
    std::atomic_ref<std::uint64_t>(v.control->reclaimed_heap_blocks).fetch_add(freed, std::memory_order_relaxed);
  return freed;
}

}  // namespace chanpool::channels::detail
