// The agent's side of the hop trace (chanpool/transport/hop_trace.hpp): one log per agent thread,
// so noting an event touches nothing another thread writes. The agent holds a pointer to each,
// null unless tracing: an untraced event costs one load and a branch.
#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "chanpool/transport/hop_trace.hpp"

namespace chanpool::transport::detail {

std::uint64_t now_ns() noexcept;

class hop_log {
 public:
  hop_log(std::uint32_t node, std::size_t capacity) : node_(node) { records_.reserve(capacity); }
  // Events past the capacity are not kept: a trace is for a bounded run (latency_bench --hops).
  void note(hop kind) noexcept {
    if (records_.size() < records_.capacity()) records_.push_back({now_ns(), static_cast<std::uint32_t>(kind), node_});
  }
  const std::vector<hop_record>& records() const noexcept { return records_; }

 private:
  std::uint32_t node_;
  std::vector<hop_record> records_;
};

// Writes the logs' records to `path` (replacing it). Called once the threads have stopped.
std::error_code write_hop_trace(const std::string& path, const std::vector<const hop_log*>& logs);

}  // namespace chanpool::transport::detail
