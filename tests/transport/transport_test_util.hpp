// Helpers for the transport suites: a virtual cluster per test with short liveness timers, and
// cleanup of every node's segments afterwards.
#pragma once

#include "channels/test_util.hpp"

#include "chanpool/transport/agent.hpp"
#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"

namespace chanpool::test {

namespace tr = chanpool::transport;

// Agent settings for tests: liveness within about a second, so dead-peer tests stay short.
inline tr::agent_config test_agent_config() {
  tr::agent_config cfg;
  cfg.heartbeat_interval = std::chrono::milliseconds(100);
  cfg.peer_timeout = std::chrono::milliseconds(kSanitized ? 3000 : 1000);
  cfg.recv_buffer_bytes = 1 << 20;
  cfg.recv_buffers = 4;
  return cfg;
}

// A virtual cluster for one test; its nodes' segments are removed at the end.
struct virtual_job {
  explicit virtual_job(std::uint32_t nodes, tr::agent_config cfg = test_agent_config()) {
    tr::cluster_config cc;
    cc.nodes = nodes;
    std::string suffix = "v";  // not "v" + std::string: GCC 12 -Wrestrict false positive
    suffix += std::to_string(counter()++);
    cc.job = test_job(suffix);
    cc.agent = std::move(cfg);
    auto vc = tr::virtual_cluster::start(cc);
    if (!vc) {
      ADD_FAILURE() << "virtual cluster did not start: " << vc.error().message();
      std::abort();
    }
    cluster = std::move(*vc);
  }
  ~virtual_job() {
    const std::string job = cluster.job();
    const std::uint32_t n = cluster.nodes();
    cluster.stop();
    for (std::uint32_t k = 0; k < n; ++k) remove_job_segments(tr::virtual_node_job(job, k));
  }
  // One line per node: its peers' states and the agent's counters, for a failure message that
  // says whether a peer was declared dead, frames were dropped, or a window stalled.
  std::string describe() const {
    std::string out;
    for (std::uint32_t k = 0; k < cluster.nodes(); ++k) {
      const std::string nj = cluster.node_job(k);
      out += "node " + std::to_string(k) + ":";
      if (auto st = tr::read_agent_stats(nj)) {
        const tr::agent_stats& a = *st;
        out += " sent " + std::to_string(a.messages_sent) + " msgs/" + std::to_string(a.frames_sent) + " frames, delivered " +
               std::to_string(a.messages_delivered) + " msgs/" + std::to_string(a.frames_received) + " frames, stalls " +
               std::to_string(a.credit_stalls) + ", holds " + std::to_string(a.delivery_holds) + ", peers dead " +
               std::to_string(a.peers_dead) + ", declared dead by a peer " + std::to_string(a.declared_dead_by_peer) +
               ", dropped: peer dead " + std::to_string(a.dropped_peer_dead) + ", malformed " +
               std::to_string(a.dropped_malformed) + ", undeliverable " + std::to_string(a.dropped_undeliverable) +
               ", from dead " + std::to_string(a.dropped_from_dead);
      } else {
        out += " no stats: " + st.error().message();
      }
      out += "\n";
    }
    return out;
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  tr::virtual_cluster cluster;
};

}  // namespace chanpool::test
