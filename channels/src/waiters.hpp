// Per-process accounting of the threads that sleep on a channel (waiter_record in layout.hpp).
//
// The totals in control_block (recv_waiters, send_waiters, poll_waiters) decide how publishers
// wake sleepers and what poll() reports. A process killed in its sleep never takes itself off
// them; its record says how much it put in, so whoever finds it dead can take that off: repair()
// always, waiters and poll() every scan_interval, and a publisher whose futex_wake found nobody
// asleep (evidence that the total counts the dead) every evidence_scan_interval.
#pragma once

#include <chrono>
#include <cstdint>

namespace chanpool::channels::detail {

struct channel_view;

enum class waiter_side : std::uint8_t { receiver, sender, poller };

inline constexpr std::uint32_t no_waiter_record = UINT32_MAX;
inline constexpr std::chrono::nanoseconds scan_interval = std::chrono::seconds(1);
inline constexpr std::chrono::nanoseconds evidence_scan_interval = std::chrono::milliseconds(10);

// Counts one more waiter of the calling process on `side`: its record, then the total. Returns
// the record for waiter_leave(), or no_waiter_record when every record is taken by a live
// process (then nothing is counted: the sleeper relies on the armed bit and its capped nap).
std::uint32_t waiter_enter(const channel_view& v, waiter_side side) noexcept;
void waiter_leave(const channel_view& v, waiter_side side, std::uint32_t record) noexcept;

// Takes the waits of dead processes off the totals and frees their records. Returns how many
// waits it took off. Costs a liveness check (a kill() and a /proc read) per record in use.
std::uint32_t reap_dead_waiters(const channel_view& v) noexcept;
// The same, unless any process scanned less than `interval` ago (a time stamp in the segment);
// costs a clock read and a load when it does not scan.
std::uint32_t reap_dead_waiters_every(const channel_view& v, std::chrono::nanoseconds interval) noexcept;

}  // namespace chanpool::channels::detail
