// What a client and its remote channels share: the node's state, the inbox, the reply channel.
// client.cpp (channels, resolve, acks) and client_rma.cpp (regions, transfers) use it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/wire.hpp"
#include "doorbell.hpp"
#include "futex.hpp"  // channels/src: shared (not private) futex
#include "node_state.hpp"

namespace chanpool::transport::detail {

using channels::channel;
using clock_type = std::chrono::steady_clock;
namespace w = wire;

// Blocking calls look up from the channel this often to check that the agents are alive.
inline constexpr auto liveness_slice = std::chrono::milliseconds(50);

struct client_state {
  explicit client_state(std::string job) : node_job(std::move(job)), bell(node_job) {}

  std::string node_job;
  detail::node_state_mapping state;
  channel inbox;
  doorbell_ringer bell;  // wakes the agent when it sleeps (doorbell.hpp)
  channel replies;
  std::uint32_t pid = 0;
  std::atomic<std::uint64_t> next_token{1};
  std::mutex reply_mu;  // one waiter on the reply channel at a time
  // Transfers' outcomes (rma.hpp) read while waiting for another reply (under reply_mu): kept
  // for the handles still waiting (rma_waiting), dropped for the others.
  std::unordered_set<std::uint64_t> rma_waiting;
  std::unordered_map<std::uint64_t, std::int32_t> rma_finished;

  ~client_state() {
    if (replies.is_open()) {
      replies.close();
      channel::unlink(detail::reply_channel_name(pid), {node_job});
    }
  }

  bool agent_alive() const noexcept { return detail::agent_serving(state.state); }

  // One atomic load: cheap enough for every send.
  bool marked_gone(std::uint32_t node) const noexcept {
    const peer_state p = detail::load_peer(state.state, node);
    return p == peer_state::dead || p == peer_state::left;
  }
  // Also probes the local agent's process (system calls): only when a call is blocked.
  bool node_gone(std::uint32_t node) const noexcept { return marked_gone(node) || !agent_alive(); }

  // Writes one inbox record (header + payload), waiting up to t while the inbox is full.
  status put(const w::inbox_header& h, std::span<const std::byte> payload, timeout t) noexcept {
    channels::send_claim claim;
    if (const status st = claim_record(h, payload.size(), claim, t); st != status::ok) return st;
    if (!payload.empty()) std::memcpy(claim.data().data() + sizeof h, payload.data(), payload.size());
    return commit_record(claim);
  }

  // Publishes a claimed inbox record and wakes the agent if it sleeps.
  status commit_record(channels::send_claim& claim) noexcept {
    const status st = inbox.commit(claim);
    if (st == status::ok && should_ring(state.state->agent_asleep)) bell.ring();
    return st;
  }

  // Claims an inbox record of header + `payload_bytes` and writes the header: the caller fills
  // the payload in place (remote_channel::claim) and commits. Waits up to t for room.
  //
  // A full inbox means the agent is held back by a slow destination. A waiting sender sleeps on
  // the node's inbox_room futex, which the agent wakes once the inbox is half empty: sleeping
  // on the inbox channel itself would make the agent pay a wake-up system call for every slot
  // it frees, which under sustained back-pressure costs more than the messages.
  status claim_record(const w::inbox_header& h, std::size_t payload_bytes, channels::send_claim& claim, timeout t) noexcept {
    const std::size_t bytes = sizeof h + payload_bytes;
    status st = inbox.claim_send(bytes, claim, channels::try_once);
    if (st != status::ok) {
      if (st == status::closed) return status::peer_dead;  // the agent stopped and sealed it
      if (st != status::full) return st;
      if (t == channels::try_once) return marked_gone(h.dest_node) ? status::peer_dead : status::full;
      const auto start = clock_type::now();
      std::atomic_ref<std::uint32_t> room(state.state->inbox_room);
      std::atomic_ref<std::uint32_t> waiters(state.state->inbox_waiters);
      while (true) {
        const std::uint32_t seen = room.load(std::memory_order_acquire);
        waiters.fetch_add(1, std::memory_order_seq_cst);
        st = inbox.claim_send(bytes, claim, channels::try_once);  // re-check after announcing
        if (st == status::full) {
          auto left = t == channels::forever ? timeout(liveness_slice) : t - (clock_type::now() - start);
          channels::detail::futex_wait(&state.state->inbox_room, seen,
                                       std::clamp(left, timeout::zero(), timeout(liveness_slice)));
        }
        waiters.fetch_sub(1, std::memory_order_relaxed);
        if (st == status::full) st = inbox.claim_send(bytes, claim, channels::try_once);
        if (st != status::full) break;
        if (t != channels::forever && clock_type::now() - start >= t) return status::timeout;
        if (node_gone(h.dest_node)) return status::peer_dead;
      }
      if (st == status::closed) return status::peer_dead;
      if (st != status::ok) return st;
    }
    std::memcpy(claim.data().data(), &h, sizeof h);
    return status::ok;
  }

  void keep_rma_outcome(const std::byte* record) {
    w::rma_reply r;
    std::memcpy(&r, record, sizeof r);
    if (rma_waiting.count(r.token)) rma_finished[r.token] = r.error;
  }

  // Waits for the reply record of `token`; discards stale ones (of calls that timed out).
  status await_reply(w::reply_kind kind, std::uint64_t token, std::uint32_t node, timeout t, void* out,
                     std::size_t out_bytes) noexcept {
    const auto deadline = t == channels::forever ? clock_type::time_point::max() : clock_type::now() + t;
    std::byte buf[64];
    while (true) {
      std::size_t len = 0;
      const auto left = deadline - clock_type::now();
      const timeout slice = left < liveness_slice ? std::chrono::duration_cast<timeout>(left) : timeout(liveness_slice);
      const status st = replies.recv({buf, sizeof buf}, len, std::max(slice, timeout::zero()));
      if (st == status::ok) {
        w::reply_envelope env;
        if (len < sizeof env) continue;
        std::memcpy(&env, buf, sizeof env);
        if (env.kind == static_cast<std::uint32_t>(w::reply_kind::rma) && len == sizeof env + sizeof(w::rma_reply) &&
            kind != w::reply_kind::rma) {
          keep_rma_outcome(buf + sizeof env);
          continue;
        }
        if (env.kind != static_cast<std::uint32_t>(kind) || len != sizeof env + out_bytes) continue;
        std::uint64_t got = 0;
        // Every reply record carries the token at offset 8 of the body.
        std::memcpy(&got, buf + sizeof env + 8, sizeof got);
        if (got != token) {
          if (env.kind == static_cast<std::uint32_t>(w::reply_kind::rma)) keep_rma_outcome(buf + sizeof env);
          continue;
        }
        std::memcpy(out, buf + sizeof env, out_bytes);
        return status::ok;
      }
      if (st != status::timeout && st != status::empty) return st;
      if (node_gone(node)) return status::peer_dead;
      if (clock_type::now() >= deadline) return status::timeout;
    }
  }
};

}  // namespace chanpool::transport::detail
