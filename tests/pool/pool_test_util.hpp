// Helpers for the Pool suites: options with short liveness timers and a job name per pool.
#pragma once

#include <atomic>
#include <string>

#include "channels/test_util.hpp"
#include "chanpool/pool/pool.hpp"

namespace chanpool::test {

inline pool::pool_options test_pool_options(std::uint32_t nodes, std::uint32_t workers_per_node) {
  static std::atomic<int> pools{0};
  pool::pool_options o;
  o.nodes = nodes;
  o.workers_per_node = workers_per_node;
  o.pin = pool::pin_policy::never;  // tests share two cores with each other
  o.job = test_job("p" + std::to_string(pools++));
  o.agent.heartbeat_interval = std::chrono::milliseconds(100);
  o.agent.peer_timeout = std::chrono::milliseconds(kSanitized ? 3000 : 1000);
  o.agent.recv_buffer_bytes = 1 << 20;
  o.agent.recv_buffers = 4;
  return o;
}

}  // namespace chanpool::test
