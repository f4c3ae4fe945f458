// Asymmetric fences for the single-producer / single-consumer fast paths, with a mode switch for
// channels whose waiters sleep often.
//
// A publisher must not miss a waiter that is about to sleep: publish, then read the futex word
// (store -> load) on one side; arm the word, then re-check the ring on the other. The MPMC path
// pays a locked instruction for that on every message. A single side instead issues only a
// compiler barrier, and the rare side — a thread about to sleep, or seal() — pays with
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on every CPU that is
// running a registered process. (The pattern of Linux's membarrier(2) man page and liburcu.)
//
// That is the right trade while sleeping is rare. Where the waiter sleeps on every message (a
// request/response exchange, a lightly loaded queue), each sleep is an interrupt to every other
// CPU running a chanpool process — on a virtual machine about 11 µs of the sleeper's time and a
// VM exit on each CPU hit, in the middle of the work the sleeper waits for. So the word carries a
// mode (layout.hpp, futex_fence_*): a waiter that keeps sleeping switches the word to "the
// publisher fences" (one membarrier confirms the switch), after which sleepers only arm and
// publishers pay a full fence per publish; a publisher that keeps finding nobody asleep switches
// it back. Why each step is safe is written beside the code in fence.cpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "layout.hpp"
#include "process.hpp"

namespace chanpool::channels::detail {

// The process's membarrier registration: the pid it was attempted for (a forked child has its
// own mm to register) and whether it succeeded. Per process, on first use (fence.cpp).
inline std::atomic<std::uint32_t> membarrier_registered_for{0};
inline std::atomic<bool> membarrier_registered_ok{false};

// Whether this process registered for membarrier: then a single side's publisher may skip its
// fence while the word is not in the publisher-fences mode (the inline check in publish_single(),
// ring.hpp, on every message of a single-side channel).
inline bool membarrier_ready() noexcept {
  return membarrier_registered_for.load(std::memory_order_acquire) == current_pid() &&
         membarrier_registered_ok.load(std::memory_order_relaxed);
}

// Publisher side, single producer or single consumer: call after the release stores that
// published the positions [first, first + count) and before reading the waiter state of `word`
// (notify()). Only the one holder of the side's lease calls it. publish_single() calls it when
// its inline check finds the process unregistered, the mode on, or somebody waiting.
void publish_side_fence(std::uint32_t& word, std::uint64_t first, std::size_t count) noexcept;

// Sleeper side, for waits whose publisher is single: call right after arming `word` with a
// seq_cst read-modify-write that returned `armed` (the armed bit included), before re-checking
// the ring. `paid_sleeps` counts this handle's sleeps that paid a membarrier (every few of them
// try the switch to publisher fences). Returns the word's value to sleep on. Any number of
// waiters may call it at once.
std::uint32_t sleep_side_fence(std::uint32_t& word, std::uint32_t armed, std::uint32_t& paid_sleeps) noexcept;

// Slow side without a mode (poll_set waits, seal()): a full fence and a membarrier.
void slow_side_fence() noexcept;

// A full fence (store -> load ordered), for MPMC batch publishes made with release stores.
void full_fence() noexcept;

}  // namespace chanpool::channels::detail
