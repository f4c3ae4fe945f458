// Where a message's time goes inside the agents: each agent can note when it takes a small
// message from its inbox, posts the batch frame, sees a batch frame arrive and has delivered its
// messages, and write those times to a file when it stops (agent_config::hop_trace_file).
// latency_bench --hops reads the files of both agents and lays the times beside its own.
//
// Off by default; on, it costs one clock read per event on the agent's threads. Times are
// CLOCK_MONOTONIC (std::chrono::steady_clock) nanoseconds, comparable across the processes of one
// host, so virtual nodes can be traced; across hosts they are not comparable.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "chanpool/channels/error.hpp"

namespace chanpool::transport {

enum class hop : std::uint32_t {
  inbox_taken = 1,     // TX took a small data message from the inbox
  frame_posted = 2,    // a batch frame was handed to the provider (fi_send returned 0)
  frame_received = 3,  // RX read a batch frame's completion
  frame_delivered = 4, // RX delivered that frame's messages into their channels (or held them)
};

// One event in a trace file: the file is an array of these, in no particular order.
struct hop_record {
  std::uint64_t t_ns;   // steady_clock nanoseconds
  std::uint32_t kind;   // hop
  std::uint32_t node;   // the agent that noted it
};
static_assert(sizeof(hop_record) == 16, "hop_record is the trace file's format");
static_assert(std::is_trivially_copyable_v<hop_record>, "hop_record is written and read as bytes");

// The file the agent of `node` writes for agent_config::hop_trace_file = base.
inline std::string hop_trace_path(const std::string& base, std::uint32_t node) { return base + "." + std::to_string(node); }

// Reads a trace file an agent wrote: a system error if it cannot be read, errc::corrupted if
// its size is not a whole number of records.
result<std::vector<hop_record>> read_hop_trace(const std::string& path);

}  // namespace chanpool::transport
