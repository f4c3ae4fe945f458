// latency_bench --transport fabric --bandwidth: osu_bw-style bandwidth between two virtual nodes.
//
// For each size and kind the initiator keeps a window of W operations in flight: it issues W,
// waits until all W completed (for messages: until the receiver's ack of the window arrived),
// and repeats. Time runs at the initiator from the first operation of the first timed window to
// the last completion of the last one. Kinds:
//   direct send, direct write, direct read  bare endpoints (latency_bandwidth_direct.cpp)
//   agent message, agent put, agent get     through the node agents (latency_bandwidth_agent.cpp)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace chanpool::tools {

// Sizes and windows the bandwidth mode accepts.
inline constexpr std::size_t bandwidth_max_size = 4u << 20;
// W x size is capped here (the window shrinks for large sizes): bounded memory at both ends and
// in the receiving channel, and a window that a slow machine moves in a fraction of a second.
inline constexpr std::size_t bandwidth_max_window_bytes = 16u << 20;
inline constexpr std::uint32_t bandwidth_max_window = 128;  // below the 256 outcomes a client queues
inline constexpr const char* bandwidth_default_sizes = "4096,65536,262144,1048576,4194304";
inline constexpr std::uint64_t bandwidth_warm_up_windows = 2;
// Without --iterations: as many timed windows as fit in this, judged from the last warm-up window.
inline constexpr std::chrono::milliseconds bandwidth_target_time{200};
inline constexpr std::uint64_t bandwidth_max_auto_windows = 10000;

struct fabric_bandwidth_options {
  std::vector<std::size_t> sizes;
  std::uint32_t window = 64;
  std::uint64_t windows = 0;   // timed windows per size and kind; 0: about bandwidth_target_time
  std::string mode = "both";   // direct, agent or both
  std::string provider;        // empty: $FI_PROVIDER, else tcp;ofi_rxm
  double agent_spin_us = 0;
  double receiver_spin_us = 0;
  bool pin = true;
  bool json = false;
};

// The operations in flight for `size`: the requested window, capped so W x size stays within
// bandwidth_max_window_bytes (at least 1).
std::uint32_t window_for(std::size_t size, std::uint32_t requested);

struct bandwidth_row {
  std::size_t size = 0;
  std::string kind;            // "direct send", ..., "agent get"
  bool supported = true;       // false: the provider has no FI_RMA (the rma kinds)
  double mb_per_s = 0;         // 10^6 bytes per second
  std::uint32_t window = 0;
  std::uint64_t windows = 0;   // timed windows ("iterations")
};

// What one run of a family of kinds tells the report.
struct bandwidth_part {
  std::string fabric;          // the endpoint's summary
  std::string notes;           // e.g. how a direct write's completion is made "visible at target"
  std::vector<bandwidth_row> rows;
};

// Warm-up, choice of the count, timed windows. `window()` runs one window to its completion;
// `announce(n)` tells the peer how many timed windows follow (called once, between the two).
// Returns the row with window, windows and MB/s filled in.
bandwidth_row measure_windows(std::size_t size, const std::string& kind, std::uint32_t window, std::uint64_t fixed,
                              const std::function<void()>& run_window,
                              const std::function<void(std::uint64_t)>& announce);

bandwidth_part run_direct_bandwidth(const fabric_bandwidth_options& options);
bandwidth_part run_agent_bandwidth(const fabric_bandwidth_options& options);

int run_fabric_bandwidth(const fabric_bandwidth_options& options);

}  // namespace chanpool::tools
