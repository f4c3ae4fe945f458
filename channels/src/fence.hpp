// Asymmetric fences for the single-producer / single-consumer fast paths.
//
// A publisher must not miss a waiter that is about to sleep: publish, then read the waiter count
// (store -> load) on one side; count, then re-check the ring on the other. The MPMC path pays a
// locked instruction for that on every message. A single side instead issues only a compiler
// barrier, and the rare side — a thread about to sleep, or seal() — pays with
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on every CPU that is
// running a registered process. (The pattern of Linux's membarrier(2) man page and liburcu.)
#pragma once

namespace chanpool::channels::detail {

// Fast side: call before reading a waiter count after a publish. A compiler barrier once this
// process is registered for expedited membarrier, else a full fence.
void fast_side_fence() noexcept;

// Slow side: call after incrementing a waiter count, before re-checking the ring.
void slow_side_fence() noexcept;

// A full fence (store -> load ordered), for MPMC batch publishes made with release stores.
void full_fence() noexcept;

}  // namespace chanpool::channels::detail
