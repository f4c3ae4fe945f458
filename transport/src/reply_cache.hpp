// The reply channels ("reply-<pid>" in the node's job) that the agent writes confirmations and
// resolve answers into, opened on first use and kept by pid. One cache per agent thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/wire.hpp"

namespace chanpool::transport::detail {

class reply_cache {
 public:
  explicit reply_cache(std::string node_job) : job_(std::move(node_job)) {}
  // Writes one reply record (at most 56 bytes) for process pid; a process that is gone or stopped
  // reading loses its reply, the agent does not wait for it.
  void deliver(std::uint32_t pid, const void* record, std::size_t bytes, wire::reply_kind kind);
  void forget(std::uint32_t pid) { channels_.erase(pid); }

 private:
  std::string job_;
  std::unordered_map<std::uint32_t, channels::channel> channels_;
};

}  // namespace chanpool::transport::detail
