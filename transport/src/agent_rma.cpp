// Regions and one-sided transfers (rma.hpp, wire.hpp's rma section).
//
// The initiator's agent (the outbound half of its progress thread) checks the local side, leases its region, and sends an
// rma_request to the agent of the target region's node. That agent (the inbound half) checks the
// request against its region table, leases the target range, and moves the bytes itself:
// fi_read from the initiator's region into its own (put) or fi_write from its own into the
// initiator's with FI_DELIVERY_COMPLETE (get), then answers rma_done. Both leases are held until
// then, so neither region's memory or registration goes away under the provider.
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <unistd.h>

#include <cstring>

#include "agent_impl.hpp"
#include "process.hpp"  // channels/src: process_start_time

namespace chanpool::transport {

namespace w = wire;
using detail::region_lease;

namespace {

// region_reply::category: how the client rebuilds the error_code.
std::uint32_t category_of(const std::error_code& ec) noexcept {
  if (ec.category() == rma_category()) return 0;
  if (ec.category() == chanpool_category()) return 1;
  return 2;
}

std::uint64_t host_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : UINT64_MAX;
}

}  // namespace

void agent::impl::reply_rma(std::uint32_t pid, std::uint64_t token, std::error_code ec) {
  const w::rma_reply r{pid, ec ? ec.value() : 0, token};
  rma_replies.deliver(pid, &r, sizeof r, w::reply_kind::rma);
}

void agent::impl::handle_region_create(const w::inbox_header& h, std::span<const std::byte> payload) {
  w::region_reply rep{h.src_pid, 0, h.token, 0, 0, 0, rma_job_tag, 0};
  std::error_code ec;
  w::region_create req{};
  if (payload.size() != sizeof req) {
    detail::relaxed_add(counters().inbox_malformed, 1);
    return;
  }
  std::memcpy(&req, payload.data(), sizeof req);
  if (!endpoint.info().rma) {
    ec = rma_errc::rma_unsupported;
  } else if (req.bytes == 0 || req.bytes > host_memory_bytes()) {
    ec = req.bytes == 0 ? std::error_code(errc::invalid_config) : std::error_code(errc::out_of_memory);
  } else if (auto made = regions->create(h.src_pid, channels::detail::process_start_time(h.src_pid), req.bytes, req.rights)) {
    rep.region_id = made->id;
    rep.generation = made->generation;
  } else {
    ec = made.error();
    if (ec.category() == fabric_category()) ec = rma_errc::registration_failed;
  }
  if (ec) {
    rep.error = ec.value();
    rep.category = category_of(ec);
  }
  std::lock_guard lock(rma_mu);
  rma_replies.deliver(h.src_pid, &rep, sizeof rep, w::reply_kind::region);
}

void agent::impl::handle_region_close(const w::inbox_header& h, std::span<const std::byte> payload) {
  std::uint64_t generation = 0;
  if (payload.size() != sizeof generation) {
    detail::relaxed_add(counters().inbox_malformed, 1);
    return;
  }
  std::memcpy(&generation, payload.data(), sizeof generation);
  const std::error_code ec = regions->close(h.channel_id, generation);
  w::region_reply rep{h.src_pid, ec ? ec.value() : 0, h.token, generation, h.channel_id, 0, rma_job_tag, 0};
  std::lock_guard lock(rma_mu);
  rma_replies.deliver(h.src_pid, &rep, sizeof rep, w::reply_kind::region);
}

void agent::impl::handle_rma(const w::inbox_header& h, std::span<const std::byte> payload) {
  w::rma_local l{};
  if (payload.size() != sizeof l) {
    detail::relaxed_add(counters().inbox_malformed, 1);
    return;
  }
  std::memcpy(&l, payload.data(), sizeof l);
  auto refuse = [&](std::error_code ec) {
    std::lock_guard lock(rma_mu);
    reply_rma(h.src_pid, h.token, ec);
  };
  const bool is_put = l.op == static_cast<std::uint16_t>(w::rma_op_kind::put);
  if (!is_put && l.op != static_cast<std::uint16_t>(w::rma_op_kind::get)) return refuse(rma_errc::invalid_descriptor);
  if (!endpoint.info().rma) return refuse(rma_errc::rma_unsupported);
  if (l.job_tag != rma_job_tag) return refuse(rma_errc::wrong_job);
  if (l.remote_node >= node_count) return refuse(rma_errc::invalid_descriptor);
  if (l.length > endpoint.info().max_msg_size) return refuse(rma_errc::too_large);
  auto local = regions->lease(l.local_region, l.local_generation, l.local_offset, l.length, 0);
  if (!local) return refuse(local.error());
  if (l.remote_node == node && l.notify_channel != w::no_notify) {
    // A notification names a channel resolved by the target's agent; a same-node put has none
    // (the client refuses it before it gets here).
    regions->release(*local);
    return refuse(rma_errc::invalid_descriptor);
  }
  if (l.remote_node == node) {
    // Both regions are this node's: the agent is the owner of both and copies (one copy, as a
    // shared-memory window would); the checks are the same as for a peer's request.
    auto remote = regions->lease(l.remote_region, l.remote_generation, l.remote_offset, l.length,
                                 is_put ? rma_write : rma_read);
    if (!remote) {
      regions->release(*local);
      return refuse(remote.error());
    }
    if (is_put) std::memmove(remote->data, local->data, l.length);
    else std::memmove(local->data, remote->data, l.length);
    regions->release(*remote);
    regions->release(*local);
    return refuse({});
  }
  if (destinations[l.remote_node]->dead.load(std::memory_order_relaxed)) {
    regions->release(*local);
    return refuse(rma_errc::peer_dead);
  }
  w::rma_request req{};
  req.op = l.op;
  req.region_id = l.remote_region;
  req.generation = l.remote_generation;
  req.offset = l.remote_offset;
  req.length = l.length;
  req.peer_key = local->key;
  req.peer_address = local->address;
  req.notify_channel = l.notify_channel;
  req.notify_tag = l.notify_tag;
  {
    std::lock_guard lock(rma_mu);
    req.token = next_rma_token++;
    rma_pending.emplace(req.token, detail::pending_rma{h.src_pid, h.token, l.remote_node, *local});
  }
  // A refused send marks the peer dead, which fails this transfer (fail_rma_to).
  send_control(l.remote_node, w::frame_kind::rma_request, 1, &req, sizeof req);
}

bool agent::impl::on_rma_request(std::uint32_t s, const detail::frame_view& f) {
  w::rma_request req{};
  if (f.body_bytes != sizeof req) return false;
  std::memcpy(&req, f.body, sizeof req);
  auto answer = [&](std::error_code ec) {
    const w::rma_done d{req.token, ec ? ec.value() : 0, 0};
    send_control(s, w::frame_kind::rma_done, 1, &d, sizeof d);
  };
  const bool is_put = req.op == static_cast<std::uint16_t>(w::rma_op_kind::put);
  if (!is_put && req.op != static_cast<std::uint16_t>(w::rma_op_kind::get)) return false;
  if (!endpoint.info().rma) return answer(rma_errc::rma_unsupported), true;
  if (req.length > endpoint.info().max_msg_size) return answer(rma_errc::too_large), true;
  if (is_put && req.notify_channel != w::no_notify && !in->target(req.notify_channel))
    return answer(rma_errc::notify_failed), true;
  auto lease = regions->lease(req.region_id, req.generation, req.offset, req.length, is_put ? rma_write : rma_read);
  if (!lease) return answer(lease.error()), true;

  auto op = std::make_unique<detail::rma_target_op>();
  op->source = s;
  op->token = req.token;
  op->is_put = is_put;
  op->lease = *lease;
  op->notify_channel = is_put ? req.notify_channel : w::no_notify;
  op->notice = put_notification{req.region_id, s, req.generation, req.offset, req.length, req.notify_tag};
  if (req.length == 0) {  // nothing to move: providers differ on zero-length RMA
    detail::rma_target_op* raw = op.get();
    rma_serving.emplace(raw, std::move(op));
    finish_rma_target(raw, true);
    return true;
  }
  iovec iov{lease->data, req.length};
  void* desc = lease->desc;
  fi_rma_iov rma{req.peer_address, req.length, req.peer_key};
  fi_msg_rma msg{};
  msg.msg_iov = &iov;
  msg.desc = &desc;
  msg.iov_count = 1;
  msg.addr = s;
  msg.rma_iov = &rma;
  msg.rma_iov_count = 1;
  msg.context = op.get();
  // get: the bytes must be at the initiator before rma_done tells it so, and the provider may
  // complete a write once it left; FI_DELIVERY_COMPLETE waits until it was placed. A read's
  // completion means the bytes are in this node's region.
  const std::uint64_t flags = FI_COMPLETION | (is_put ? 0 : FI_DELIVERY_COMPLETE);
  while (true) {
    const ssize_t rc = is_put ? fi_readmsg(endpoint.ep(), &msg, flags) : fi_writemsg(endpoint.ep(), &msg, flags);
    if (rc == 0) break;
    if (rc != -FI_EAGAIN) {
      regions->release(*lease);
      answer(rma_errc::peer_dead);
      return true;
    }
    fi_cq_data_entry e;
    fi_cq_read(endpoint.cq(), &e, 0);  // progress only
  }
  detail::rma_target_op* raw = op.get();
  rma_serving.emplace(raw, std::move(op));
  return true;
}

void agent::impl::finish_rma_target(detail::rma_target_op* raw, bool ok) {
  auto it = rma_serving.find(raw);
  if (it == rma_serving.end()) return;
  std::unique_ptr<detail::rma_target_op> op = std::move(it->second);
  rma_serving.erase(it);
  std::error_code ec = ok ? std::error_code() : make_error_code(rma_errc::peer_dead);
  if (ok && op->notify_channel != w::no_notify) {
    // After the bytes: a receiver that takes the notification finds them in the region.
    channels::channel* ch = in->target(op->notify_channel);
    const auto bytes = std::as_bytes(std::span(&op->notice, 1));
    if (!ch || ch->send(bytes, channels::try_once) != status::ok) ec = rma_errc::notify_failed;
  }
  regions->release(op->lease);
  const w::rma_done d{op->token, ec ? ec.value() : 0, 0};
  send_control(op->source, w::frame_kind::rma_done, 1, &d, sizeof d);
}

bool agent::impl::on_rma_done(std::uint32_t s, const detail::frame_view& f) {
  w::rma_done d{};
  if (f.body_bytes != sizeof d) return false;
  std::memcpy(&d, f.body, sizeof d);
  std::lock_guard lock(rma_mu);
  auto it = rma_pending.find(d.token);
  if (it == rma_pending.end() || it->second.dest != s) return true;  // failed already (peer was thought dead)
  detail::pending_rma p = it->second;
  rma_pending.erase(it);
  regions->release(p.local);
  const bool known = d.error > 0 && d.error <= static_cast<int>(rma_errc::too_many_regions);
  reply_rma(p.src_pid, p.client_token, d.error == 0 ? std::error_code() : make_error_code(known ? static_cast<rma_errc>(d.error) : rma_errc::peer_dead));
  return true;
}

void agent::impl::fail_rma_to(std::uint32_t peer) {
  std::lock_guard lock(rma_mu);
  for (auto it = rma_pending.begin(); it != rma_pending.end();) {
    if (it->second.dest != peer) {
      ++it;
      continue;
    }
    regions->release(it->second.local);
    reply_rma(it->second.src_pid, it->second.client_token, rma_errc::peer_dead);
    it = rma_pending.erase(it);
  }
}

void agent::impl::fail_all_rma() {
  std::lock_guard lock(rma_mu);
  for (auto& [token, p] : rma_pending) {
    regions->release(p.local);
    reply_rma(p.src_pid, p.client_token, rma_errc::peer_dead);
  }
  rma_pending.clear();
}

}  // namespace chanpool::transport
