#include "reply_cache.hpp"

#include <cstring>

#include "node_state.hpp"

namespace chanpool::transport::detail {

void reply_cache::deliver(std::uint32_t pid, const void* record, std::size_t bytes, wire::reply_kind kind) {
  std::byte buf[64];
  wire::reply_envelope env{static_cast<std::uint32_t>(kind), 0};
  if (bytes > sizeof buf - sizeof env) return;
  std::memcpy(buf, &env, sizeof env);
  std::memcpy(buf + sizeof env, record, bytes);
  auto it = channels_.find(pid);
  if (it == channels_.end()) {
    auto opened = channels::channel::open(reply_channel_name(pid), {job_});
    if (!opened) return;  // the process is gone: nobody to tell
    it = channels_.emplace(pid, std::move(*opened)).first;
  }
  // A reply channel is drained by a process that waits for exactly this: a short wait is
  // enough; a process that stopped reading loses its confirmation, not the agent's progress.
  const status st = it->second.send({buf, sizeof env + bytes}, std::chrono::milliseconds(10));
  if (st == status::closed || st == status::invalid) channels_.erase(it);
}

}  // namespace chanpool::transport::detail
