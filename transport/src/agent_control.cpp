// Control frames and their backlog, sending batch frames, peer death and the agent's failure.
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <cstdio>
#include <cstring>

#include "agent_impl.hpp"
#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::transport {

namespace w = wire;
using detail::destination;

namespace detail {

std::uint64_t now_ns() noexcept { return as_ns(std::chrono::steady_clock::now().time_since_epoch()); }

const char* describe(death_cause c) noexcept {
  switch (c) {
    case death_cause::left: return "it left";
    case death_cause::control_send_refused: return "control send refused";
    case death_cause::batch_send_refused: return "batch send refused";
    case death_cause::control_send_failed: return "control send failed";
    case death_cause::batch_send_failed: return "batch send failed";
    case death_cause::large_send_failed: return "large send failed";
    case death_cause::silent: return "no frame within peer_timeout";
    case death_cause::declared_this_dead: return "it declared this node dead";
    case death_cause::this_node_evicted: return "this node was stopped for longer than peer_timeout";
    case death_cause::agent_failed: return "this node's agent failed";
  }
  return "unknown";
}

}  // namespace detail

agent::impl::impl(std::uint32_t node_index, std::uint32_t nodes, std::string job, agent_config cfg)
    : node(node_index), node_count(nodes), node_job(std::move(job)), config(std::move(cfg)), tx_replies(node_job),
      rx_replies(node_job), rma_replies(node_job) {}

// What wait_stalled() waits for changed (credit, a free buffer, large-message room, a death).
void agent::impl::wake_stalled() noexcept { stall_epoch.fetch_add(1, std::memory_order_release); }

void agent::impl::fill_header(w::frame_header& h, w::frame_kind kind, std::size_t bytes, std::uint32_t count) const noexcept {
  h.magic = w::frame_magic;
  h.version = w::protocol_version;
  h.kind = static_cast<std::uint16_t>(kind);
  h.job_key = job_key;
  h.src_node = node;
  h.bytes = static_cast<std::uint32_t>(bytes);
  h.count = count;
  h.sequence = 0;
}

// Sends a control frame; if the provider is busy it waits in the backlog that RX retries.
void agent::impl::send_control(std::uint32_t dest, w::frame_kind kind, std::uint32_t count, const void* body,
                               std::size_t body_bytes, const void* tail, std::size_t tail_bytes) {
  auto f = std::make_unique<detail::control_frame>();
  f->dest = dest;
  f->bytes.resize(sizeof(w::frame_header) + body_bytes + tail_bytes);
  w::frame_header h{};
  fill_header(h, kind, f->bytes.size(), count);
  std::memcpy(f->bytes.data(), &h, sizeof h);
  if (body_bytes) std::memcpy(f->bytes.data() + sizeof h, body, body_bytes);
  if (tail_bytes) std::memcpy(f->bytes.data() + sizeof h + body_bytes, tail, tail_bytes);
  if (auto mr = endpoint.register_memory(f->bytes.data(), f->bytes.size())) f->mr = std::move(*mr);
  post_control(std::move(f));
}

void agent::impl::post_control(std::unique_ptr<detail::control_frame> f) {
  {
    std::lock_guard lock(backlog_mu);
    auto& q = backlog[f->dest];
    if (!q.empty()) {  // keep order behind what is already waiting for that peer
      q.push_back(std::move(f));
      backlog_size.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  const ssize_t rc = fi_send(endpoint.ep(), f->bytes.data(), f->bytes.size(), f->mr.desc(), f->dest, f.get());
  if (rc == 0) {
    f.release();  // owned by the completion now
  } else if (rc == -FI_EAGAIN) {
    std::lock_guard lock(backlog_mu);
    backlog[f->dest].push_back(std::move(f));
    backlog_size.fetch_add(1, std::memory_order_relaxed);
  } else {
    mark_dead(f->dest, detail::death_cause::control_send_refused, rc);
  }
}

// Progress thread: retries control frames, in order per destination.
void agent::impl::retry_backlog() {
  if (backlog_size.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::pair<std::uint32_t, long>> refused;
  {
    std::lock_guard lock(backlog_mu);
    for (auto& q : backlog) {
      while (!q.empty()) {
        auto& f = q.front();
        if (!destinations[f->dest]->dead.load(std::memory_order_relaxed)) {
          const ssize_t rc = fi_send(endpoint.ep(), f->bytes.data(), f->bytes.size(), f->mr.desc(), f->dest, f.get());
          if (rc == -FI_EAGAIN) break;
          if (rc == 0) {
            f.release();
          } else {
            refused.emplace_back(f->dest, rc);
          }
        }
        q.pop_front();
        backlog_size.fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }
  for (auto [d, rc] : refused) mark_dead(d, detail::death_cause::control_send_refused, rc);
}

void agent::impl::pump_locked(destination& d, detail::hop_log* hops) {
  const detail::pump_outcome out = d.pump_locked([&](detail::frame_buffer& fb, std::uint32_t sequence) -> ssize_t {
    auto* h = reinterpret_cast<w::frame_header*>(fb.bytes.data());
    fill_header(*h, w::frame_kind::batch, fb.used, fb.count);
    h->sequence = sequence;
    const ssize_t rc = fi_send(endpoint.ep(), fb.bytes.data(), fb.used, fb.mr.desc(), d.node, &fb);
    if (rc == 0 && hops) hops->note(hop::frame_posted);
    return rc;
  });
  ready_total.fetch_sub(out.frames, std::memory_order_relaxed);
  detail::relaxed_add(counters().frames_sent, out.frames);
  detail::relaxed_add(counters().messages_sent, out.messages);
  detail::relaxed_add(counters().bytes_sent, out.bytes);
  if (out.busy) provider_busy.store(true, std::memory_order_relaxed);  // RX retries after progressing
  if (out.refused) mark_dead_locked(d, detail::death_cause::batch_send_refused, out.refused);
}

void agent::impl::mark_dead(std::uint32_t peer, detail::death_cause why, long code) {
  if (peer >= node_count || peer == node) return;
  destination& d = *destinations[peer];
  {
    std::lock_guard lock(d.mu);
    mark_dead_locked(d, why, code);
  }
  wake_stalled();
}

// Frames queued for a dead peer are dropped and counted; senders learn of it from the peer
// state (status::peer_dead).
void agent::impl::mark_dead_locked(destination& d, detail::death_cause why, long code) {
  if (d.node == node || d.dead.exchange(true)) return;
  // Once this agent is stopping, a peer found closed is one that stopped first: not news.
  if (why != detail::death_cause::left && !stopped.load(std::memory_order_relaxed)) {
    char line[256];
    std::snprintf(line, sizeof line, "chanpool agent (node %u): node %u is unreachable: %s%s%s", node, d.node,
                  detail::describe(why), code ? ": " : "", code ? fi_strerror(static_cast<int>(code < 0 ? -code : code)) : "");
    diagnose(line);
  }
  if (detail::load_peer(shared.state, d.node) != peer_state::left) detail::store_peer(shared.state, d.node, peer_state::dead);
  detail::relaxed_add(counters().peers_dead, 1);
  fail_rma_to(d.node);  // transfers waiting for the peer's rma_done end with peer_dead
  release_reads_to(d.node);  // large payloads it was to read go back to the inbox heap
  ready_total.fetch_sub(static_cast<std::uint32_t>(d.ready_locked()), std::memory_order_relaxed);
  detail::relaxed_add(counters().dropped_peer_dead, d.drop_ready_locked());
}

void agent::impl::send_owed(std::uint32_t s, bool all) {
  detail::owed_to_source owed = in->take_owed(s, all);
  if (!owed.acks.empty())
    send_control(s, w::frame_kind::ack, static_cast<std::uint32_t>(owed.acks.size()), owed.acks.data(),
                 owed.acks.size() * sizeof(w::ack_record));
  if (!owed.reads_done.empty())
    send_control(s, w::frame_kind::large_done, static_cast<std::uint32_t>(owed.reads_done.size()), owed.reads_done.data(),
                 owed.reads_done.size() * sizeof(std::uint64_t));
  if (owed.credits) send_control(s, w::frame_kind::credit, owed.credits, nullptr, 0);
}

void agent::impl::return_all_credits() {
  for (std::uint32_t s = 0; s < node_count; ++s)
    if (in->source(s).credits_owed) send_owed(s, true);
}

void agent::impl::record_failure(std::error_code ec, std::string text) {
  std::lock_guard lock(failure_mu);
  if (failure_code) return;  // the first reason is the one that matters
  failure_code = ec;
  failure_text = std::move(text);
}

// The agent cannot go on (the provider refused what it needs to receive). Rather than end the
// process it runs in (under start_agent_mpi that is the user's MPI rank), it stops moving
// messages: every peer is dead to it, its clients' calls return status::peer_dead, and the
// owner of the agent reads the reason from agent::failure().
void agent::impl::fail(const char* what, std::error_code ec) {
  char line[256];
  std::snprintf(line, sizeof line, "chanpool agent (node %u): %s: %s; the agent stops", node, what, ec.message().c_str());
  record_failure(ec, std::string(what) + ": " + ec.message());
  diagnose(line);
  std::atomic_ref<std::int32_t>(shared.state->failure_code).store(ec.value(), std::memory_order_relaxed);
  std::atomic_ref<std::uint32_t>(shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::failed), std::memory_order_release);
  for (std::uint32_t p = 0; p < node_count; ++p) mark_dead(p, detail::death_cause::agent_failed);
  stopping.store(true, std::memory_order_relaxed);
  wake_stalled();
  inbox.seal();  // blocked senders see closed (peer_dead) instead of waiting for room
}

}  // namespace chanpool::transport
