// The inbound half of the progress thread: what a completion means, frames to their handlers
// (agent_frames.cpp), receive buffers reposted, retries of what the provider refused for now,
// and the heartbeats.
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstring>

#include "agent_impl.hpp"

namespace chanpool::transport {

namespace w = wire;
using detail::destination;

std::error_code agent::impl::post_recv(detail::recv_slot& slot) {
  while (true) {
    const ssize_t rc = fi_recv(endpoint.ep(), slot.data, slot.size, recv_memory->mr.desc(), FI_ADDR_UNSPEC, &slot);
    if (rc == 0) return {};
    if (rc != -FI_EAGAIN) return fabric_error(rc);
    fi_cq_data_entry e;
    fi_cq_read(endpoint.cq(), &e, 0);  // progress only
  }
}

void agent::impl::handle_completion(const fi_cq_data_entry& e, std::vector<std::uint32_t>& touched) {
  auto* op = static_cast<detail::operation*>(e.op_context);
  if (!op) return;
  switch (op->kind) {
    case detail::op_kind::frame_recv: {
      auto* slot = static_cast<detail::recv_slot*>(op);
      if (e.len) {
        // Frames name their source; note it so credits/acks go out after this CQ read.
        w::frame_header h{};
        if (e.len >= sizeof h) {
          std::memcpy(&h, slot->data, sizeof h);
          if (h.src_node < node_count) touched.push_back(h.src_node);
        }
        const bool batch_frame = h.kind == static_cast<std::uint16_t>(w::frame_kind::batch);
        if (batch_frame && rx_hops) rx_hops->note(hop::frame_received);
        handle_frame(slot->data, e.len);
        if (batch_frame && rx_hops) rx_hops->note(hop::frame_delivered);
      }
      // The frame is handled (what must wait was copied out): the slot takes the next one.
      if (auto ec = post_recv(*slot); ec) fail("reposting a receive", ec);
      return;
    }
    case detail::op_kind::batch_send: {
      auto* fb = static_cast<detail::frame_buffer*>(op);
      destination& d = *destinations[fb->dest];
      {
        std::lock_guard lock(d.mu);
        d.release_locked(fb);
      }
      wake_stalled();
      return;
    }
    case detail::op_kind::control_send:
      delete static_cast<detail::control_frame*>(op);
      return;
    case detail::op_kind::large_send:
      delete static_cast<detail::large_send*>(op);
      large_in_flight.fetch_sub(1, std::memory_order_release);
      wake_stalled();
      return;
    case detail::op_kind::large_recv: {
      std::unique_ptr<detail::large_recv> lr(static_cast<detail::large_recv*>(op));
      touched.push_back(lr->delivery.source);
      in->finish_large(lr->delivery, true);
      return;
    }
    case detail::op_kind::rma_target:
      finish_rma_target(static_cast<detail::rma_target_op*>(op), true);
      return;
  }
}

void agent::impl::handle_error_completion() {
  fi_cq_err_entry err{};
  if (fi_cq_readerr(endpoint.cq(), &err, 0) <= 0) return;
  auto* op = static_cast<detail::operation*>(err.op_context);
  if (!op) return;
  switch (op->kind) {
    case detail::op_kind::batch_send: {
      auto* fb = static_cast<detail::frame_buffer*>(op);
      destination& d = *destinations[fb->dest];
      {
        std::lock_guard lock(d.mu);
        d.release_locked(fb);
        detail::relaxed_add(counters().dropped_peer_dead, fb->count);
      }
      mark_dead(fb->dest, detail::death_cause::batch_send_failed, err.err);
      return;
    }
    case detail::op_kind::control_send: {
      auto* f = static_cast<detail::control_frame*>(op);
      const std::uint32_t d = f->dest;
      delete f;
      mark_dead(d, detail::death_cause::control_send_failed, err.err);
      return;
    }
    case detail::op_kind::large_send: {
      auto* ls = static_cast<detail::large_send*>(op);
      const std::uint32_t d = ls->dest;
      delete ls;
      large_in_flight.fetch_sub(1, std::memory_order_release);
      mark_dead(d, detail::death_cause::large_send_failed, err.err);
      return;
    }
    case detail::op_kind::frame_recv: {
      // A frame larger than a slot (a peer with other settings: FI_ETRUNC), or a cancel at shutdown.
      if (err.err != FI_ECANCELED) {
        detail::relaxed_add(counters().dropped_malformed, 1);
        if (auto ec = post_recv(*static_cast<detail::recv_slot*>(op)); ec) fail("reposting a receive", ec);
      }
      return;
    }
    case detail::op_kind::rma_target:
      // The initiator's node is gone or refused the access; it learns from rma_done if it can.
      finish_rma_target(static_cast<detail::rma_target_op*>(op), false);
      return;
    case detail::op_kind::large_recv: {
      if (err.err == FI_ECANCELED) return;  // shutdown: the agent's destructor owns the rest
      std::unique_ptr<detail::large_recv> lr(static_cast<detail::large_recv*>(op));
      const std::uint32_t source = lr->delivery.source;
      in->finish_large(lr->delivery, false);
      send_owed(source, false);  // the ack and, after a read, large_done
      return;
    }
  }
}

// Every millisecond: retries, held-back deliveries, and (at its interval) heartbeats and the
// silence check.
void agent::impl::tick(std::uint64_t now, std::uint64_t& next_heartbeat) {
  retry_backlog();
  if (provider_busy.exchange(false, std::memory_order_relaxed) && any_ready())
    for (auto& d : destinations) {
      std::lock_guard lock(d->mu);
      if (d->ready_locked()) pump_locked(*d, rx_hops.get());
    }
  for (std::uint32_t s = 0; s < node_count; ++s)
    if (in->has_pending(s)) {
      in->drain_pending(s);
      send_owed(s, true);
    }
  if (now < next_heartbeat) return;
  regions->reap_dead_owners();  // a region whose owner died (zombies included) is closed
  const std::uint64_t timeout = detail::as_ns(config.peer_timeout);
  next_heartbeat = now + detail::as_ns(config.heartbeat_interval);
  for (std::uint32_t p = 0; p < node_count; ++p) {
    if (p == node || destinations[p]->dead.load(std::memory_order_relaxed)) continue;
    // last_heard may be later than `now` (set while handling completions after it was read).
    const std::uint64_t heard = in->source(p).last_heard_ns;
    if (heard && now > heard && now - heard > timeout) {
      mark_dead(p, detail::death_cause::silent);
      continue;
    }
    send_control(p, w::frame_kind::heartbeat, 0, nullptr, 0);
  }
}

}  // namespace chanpool::transport
