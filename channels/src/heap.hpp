// Lock-free block heap for side-loaded payloads.
//
// The heap is heap_blocks fixed-size blocks with one 32-bit owner word each (layout.hpp):
// 0 = free, heap_owner_pid(p) while process p builds a message, heap_owner_slot(i) once the
// message is attached to ring slot i. A message takes a contiguous run of blocks, claimed
// block by block with CAS and rolled back on conflict. Because every block names its owner, a
// process that dies holding blocks cannot leak them: a dead pid's blocks are swept, a dead
// slot holder's blocks are freed by whoever repairs the slot. No lock is ever held.
#pragma once

#include <cstdint>

namespace chanpool::channels::detail {

struct channel_view;

// Claims `count` contiguous blocks tagged `owner`; returns the first, or -1 if no run is free.
// Threadsafe, lock-free.
std::int64_t heap_allocate(const channel_view& v, std::uint32_t count, std::uint32_t owner) noexcept;

// Re-tags blocks the caller owns. Threadsafe for disjoint runs.
void heap_retag(const channel_view& v, std::uint32_t first, std::uint32_t count, std::uint32_t owner) noexcept;

// Frees blocks the caller owns (release: later owners see the caller's reads as done).
void heap_free(const channel_view& v, std::uint32_t first, std::uint32_t count) noexcept;

// Frees only the blocks still tagged `owner_a` or `owner_b`; returns how many. For repair, where
// part of the run may already have been freed and handed to someone else.
std::uint32_t heap_free_if_owned(const channel_view& v, std::uint32_t first, std::uint32_t count,
                                 std::uint32_t owner_a, std::uint32_t owner_b) noexcept;

// Frees every block tagged with the pid of a dead process (or only `pid`, when non-zero and
// dead). O(heap_blocks); called on allocation failure paths and by repair. Returns blocks freed.
std::uint32_t heap_reclaim_dead(const channel_view& v, std::uint32_t pid = 0) noexcept;

}  // namespace chanpool::channels::detail
