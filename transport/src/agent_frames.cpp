// The progress thread's handling of a received frame: the checks every frame passes, then one handler
// per kind. Everything in a frame is untrusted; a handler returns false for a malformed one.
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include <cstdio>
#include <cstring>

#include "agent_impl.hpp"
#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::transport {

namespace w = wire;
using channels::channel;

void agent::impl::handle_frame(const std::byte* data, std::size_t len) {
  detail::frame_view f;
  const detail::frame_verdict verdict = detail::check_frame(data, len, node_count, job_key, f);
  if (verdict != detail::frame_verdict::ok) {
    detail::relaxed_add(verdict == detail::frame_verdict::bad_key ? counters().dropped_bad_key : counters().dropped_malformed, 1);
    return;
  }
  const w::frame_header& h = f.header;
  const std::uint32_t s = h.src_node;
  detail::source_state& src = in->source(s);
  const auto kind = static_cast<w::frame_kind>(h.kind);
  if (kind != w::frame_kind::goodbye && kind != w::frame_kind::declared_dead &&
      destinations[s]->dead.load(std::memory_order_relaxed)) {
    drop_late_frame(s, src);
    return;
  }
  src.last_heard_ns = detail::now_ns();
  bool ok = false;
  switch (kind) {
    case w::frame_kind::hello: ok = on_hello(s); break;
    case w::frame_kind::heartbeat: ok = true; break;
    case w::frame_kind::goodbye: ok = on_goodbye(s); break;
    case w::frame_kind::declared_dead:
      // Peer s declared this node dead and drops its frames: s is dead to this node too (a node
      // whose orchestrator did this sees peer_dead and leaves). Views stay symmetric.
      detail::relaxed_add(counters().declared_dead_by_peer, 1);
      mark_dead(s, detail::death_cause::declared_this_dead);
      ok = true;
      break;
    case w::frame_kind::credit: ok = on_credit(s, h.count); break;
    case w::frame_kind::batch: ok = on_batch(s, h, f.body, data + len, len); break;
    case w::frame_kind::resolve: ok = on_resolve(s, f); break;
    case w::frame_kind::resolve_reply: ok = on_resolve_reply(f); break;
    case w::frame_kind::ack: ok = on_ack(s, f); break;
    case w::frame_kind::rma_request: ok = on_rma_request(s, f); break;
    case w::frame_kind::rma_done: ok = on_rma_done(s, f); break;
    case w::frame_kind::large_done: ok = on_large_done(s, f); break;
  }
  if (!ok) detail::relaxed_add(counters().dropped_malformed, 1);
}

bool agent::impl::on_hello(std::uint32_t s) {
  detail::source_state& src = in->source(s);
  if (!src.hello_seen) {
    src.hello_seen = true;
    detail::store_peer(shared.state, s, peer_state::alive);
    hellos.fetch_add(1, std::memory_order_release);
  }
  return true;
}

bool agent::impl::on_goodbye(std::uint32_t s) {
  detail::store_peer(shared.state, s, peer_state::left);
  mark_dead(s, detail::death_cause::left);
  return true;
}

bool agent::impl::on_credit(std::uint32_t s, std::uint32_t count) {
  detail::destination& d = *destinations[s];
  {
    std::lock_guard lock(d.mu);
    d.add_credits_locked(count);
    pump_locked(d, rx_hops.get());
  }
  wake_stalled();
  // A partial batch held back for lack of credit can go now: wake TX if it sleeps.
  if (d.has_partial.load(std::memory_order_relaxed)) {
    const w::inbox_header flush{0, 0, static_cast<std::uint16_t>(w::inbox_kind::flush), 0, 0, 0};
    (void)inbox.try_send({reinterpret_cast<const std::byte*>(&flush), sizeof flush});
  }
  return true;
}

bool agent::impl::on_batch(std::uint32_t s, const w::frame_header& h, const std::byte* body, const std::byte* end,
                           std::size_t len) {
  return in->on_batch(s, h.sequence, body, end, len) != detail::inbound::batch_verdict::malformed;
}

bool agent::impl::on_resolve(std::uint32_t s, const detail::frame_view& f) {
  w::resolve_request req;
  std::string_view requested;
  if (!detail::decode_resolve(f, req, requested)) return false;
  w::resolve_reply rep{req.src_pid, 0, req.token, 0, 0, 0};
  if (auto id = in->resolve(std::string(requested), node_job)) {
    rep.channel_id = *id;
    rep.max_message_bytes = in->target(*id)->max_message_bytes();
  } else {
    rep.error = id.error().value();
  }
  send_control(s, w::frame_kind::resolve_reply, 1, &rep, sizeof rep);
  return true;
}

bool agent::impl::on_resolve_reply(const detail::frame_view& f) {
  w::resolve_reply rep;
  if (!detail::decode_resolve_reply(f, rep)) return false;
  rx_replies.deliver(rep.src_pid, &rep, sizeof rep, w::reply_kind::resolve);
  return true;
}

bool agent::impl::on_ack(std::uint32_t s, const detail::frame_view& f) {
  if (!detail::check_acks(f)) return false;
  for (std::uint32_t i = 0; i < f.header.count; ++i) {
    w::ack_record a = detail::ack_at(f, i);
    if (a.flags & w::ack_of_large) {
      std::lock_guard lock(large_tokens_mu);
      const auto it = large_tokens.find({s, a.token});
      if (it == large_tokens.end()) {  // not a deposited large send of ours to that node
        detail::relaxed_add(counters().dropped_malformed, 1);
        continue;
      }
      a.token = it->second;
      a.flags = 0;
      large_tokens.erase(it);
    }
    rx_replies.deliver(a.src_pid, &a, sizeof a, w::reply_kind::ack);
  }
  return true;
}

// A frame from a peer this node declared dead: it came back (stopped or cut off for longer
// than peer_timeout). Its work has been given to others, so nothing it sends now is used;
// it is told so, at most once per heartbeat interval, and leaves.
void agent::impl::drop_late_frame(std::uint32_t s, detail::source_state& src) {
  detail::relaxed_add(counters().dropped_from_dead, 1);
  if (detail::load_peer(shared.state, s) != peer_state::dead) return;  // it left: nothing to tell
  const std::uint64_t now = detail::now_ns();
  if (src.told_dead_ns != 0 && now - src.told_dead_ns < detail::as_ns(config.heartbeat_interval)) return;
  src.told_dead_ns = now;
  send_control(s, w::frame_kind::declared_dead, 0, nullptr, 0);
}

// The progress thread was not scheduled for longer than peer_timeout (the process was stopped, or
// starved): every peer has declared this node dead by now. It leaves before handling anything
// that arrived meanwhile, rather than act on a view the others no longer share.
void agent::impl::frozen_for(std::uint64_t ns) {
  if (evicted.exchange(true, std::memory_order_relaxed)) return;
  char line[200];
  std::snprintf(line, sizeof line, "chanpool agent (node %u): this node was stopped for %.1f s, longer than peer_timeout: "
                "its peers have declared it dead; it leaves the job", node, static_cast<double>(ns) * 1e-9);
  diagnose(line);
  for (std::uint32_t p = 0; p < node_count; ++p)
    if (p != node) mark_dead(p, detail::death_cause::this_node_evicted);
}

}  // namespace chanpool::transport
