// Large messages (payloads over the large threshold), both ways.
//
// By read (agent_config::large_by_read, on a provider with FI_RMA): the payload stays where the
// sending process put it, in this node's inbox heap, which the agent registered for remote read
// once at start. TX takes the record out of its ring slot (channel::keep), so the inbox keeps
// flowing, and puts the message's header and a large_source {address, key} in the batch, in
// order with the destination's other messages. The receiving agent claims the slot in the target
// channel and fi_reads the bytes straight into it; when the read is done (or the message could
// not be delivered) it names the tag in a large_done frame, and the sender frees the heap blocks.
// Neither agent copies the payload. The sender's heap bounds what is held (a process sending into
// a full heap waits, as for any channel), and large_in_flight bounds what TX commits to.
//
// By copy (no FI_RMA, or large_by_read false): TX copies the payload out of the inbox and sends
// it as a tagged message after its header's batch; the receiver posts the tagged receive into
// the claimed slot.
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

#include <cstring>

#include "agent_impl.hpp"
#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::transport {

namespace w = wire;
using channels::channel;
using detail::destination;

// The inbox heap's remote key where the key is ours to pick: the salt with bit 63 set. Regions
// use salt ^ generation with generations far below 2^63, so the two never meet.
constexpr std::uint64_t inbox_heap_key_bit = std::uint64_t{1} << 63;

void agent::impl::register_inbox_heap() {
  if (!config.large_by_read || !endpoint.info().rma) return;
  const std::span<std::byte> heap = inbox.heap_memory();
  if (heap.empty()) return;
  auto reg = endpoint.register_rma(heap.data(), heap.size(), key_salt ^ inbox_heap_key_bit);
  if (!reg) {
    diagnose("chanpool agent (node " + std::to_string(node) + "): cannot register the inbox for remote read (" +
             reg.error().message() + "): large messages are copied and sent instead");
    return;
  }
  inbox_heap = std::move(*reg);
  inbox_heap_base = heap.data();
}

// Waits until fewer than two windows of large messages are in flight (or the agent stops).
// Partial batches go first: the descriptors in them are what lets their receivers finish (and
// so what frees room here).
void agent::impl::wait_large_room() {
  bool sealed = false;
  while (true) {
    const std::uint64_t seen = stall_epoch.load(std::memory_order_acquire);
    if (large_in_flight.load(std::memory_order_acquire) < 2 * config.credits || stopping.load()) return;
    if (!sealed) {
      for (destination* p : partials) seal(*p);
      sealed = true;
      continue;
    }
    wait_stalled(seen);
  }
}

void agent::impl::send_large(destination& d, const w::inbox_header& h, channels::recv_run& run, std::size_t i,
                             std::span<const std::byte> payload) {
  wait_large_room();
  if (inbox_heap.registered() && payload.size() <= endpoint.info().max_msg_size && send_large_read(d, h, run, i, payload))
    return;
  send_large_copy(d, h, payload);
}

// What both paths do before a large message's descriptor goes into d's batch: a fresh tag, room
// for the descriptor and `body_bytes` after it, and for a deposited message the tag -> token map
// its ack comes back through. Returns the tag, or 0 (never a tag) when d died: the caller drops.
std::uint64_t agent::impl::open_large(destination& d, const w::inbox_header& h, std::size_t body_bytes) {
  const std::uint64_t tag = (static_cast<std::uint64_t>(node) << 40) | d.next_tag++;
  if (d.current && !d.current->fits(body_bytes)) seal(d);
  if (!ensure_current(d)) return 0;
  if (h.flags & w::deposited) {
    std::lock_guard lock(large_tokens_mu);
    large_tokens[{d.node, tag}] = h.token;
  }
  return tag;
}

// False when the record cannot be kept (inline: not in the heap); the caller copies it then.
bool agent::impl::send_large_read(destination& d, const w::inbox_header& h, channels::recv_run& run, std::size_t i,
                                  std::span<const std::byte> payload) {
  channels::kept_payload kept;
  if (inbox.keep(run, i, kept) != status::ok) return false;
  const w::large_source where{inbox_heap.base() + static_cast<std::uint64_t>(payload.data() - inbox_heap_base), inbox_heap.key()};
  const std::uint64_t tag = open_large(d, h, sizeof where);
  if (tag == 0) {
    inbox.release(kept);
    drop_for_dead(h);
    return true;
  }
  {
    std::lock_guard lock(kept_mu);
    kept_reads.emplace(std::pair{d.node, tag}, kept);
  }
  large_in_flight.fetch_add(1, std::memory_order_relaxed);
  const w::message_header m{static_cast<std::uint32_t>(payload.size()), h.channel_id,
                            static_cast<std::uint16_t>(h.flags | w::large | w::remote_read), 0, h.src_pid, tag};
  // The descriptor is a small message like any other: it fills the batch under the same flush
  // rules (a burst of large messages shares frames and credits; a lone one leaves at once).
  append_message(d, m, {reinterpret_cast<const std::byte*>(&where), sizeof where});
  detail::relaxed_add(counters().large_sent, 1);
  detail::relaxed_add(counters().large_read_sent, 1);
  detail::relaxed_add(counters().bytes_sent, payload.size());
  return true;
}

// A large payload: a descriptor in the batch (keeps the source's order at the receiver), the
// bytes as a tagged message the receiver takes straight into the target channel.
void agent::impl::send_large_copy(destination& d, const w::inbox_header& h, std::span<const std::byte> payload) {
  const std::uint64_t tag = open_large(d, h, 0);
  if (tag == 0) {
    drop_for_dead(h);
    return;
  }
  const w::message_header m{static_cast<std::uint32_t>(payload.size()), h.channel_id,
                            static_cast<std::uint16_t>(h.flags | w::large), 0, h.src_pid, tag};
  if (d.current->append(m, {})) d.current_since_ns = detail::now_ns();
  seal(d);
  auto ls = std::make_unique<detail::large_send>();
  ls->dest = d.node;
  ls->payload.assign(payload.begin(), payload.end());
  if (auto mr = endpoint.register_memory(ls->payload.data(), ls->payload.size())) ls->mr = std::move(*mr);
  while (true) {
    const ssize_t rc = fi_tsend(endpoint.ep(), ls->payload.data(), ls->payload.size(), ls->mr.desc(), d.node, tag, ls.get());
    if (rc == 0) break;
    if (rc != -FI_EAGAIN || d.dead.load() || stopping.load()) {
      {
        std::lock_guard lock(large_tokens_mu);
        large_tokens.erase({d.node, tag});
      }
      drop_for_dead(h);
      return;
    }
    fi_cq_data_entry e;
    fi_cq_read(endpoint.cq(), &e, 0);  // progress only: this thread is the one that makes it
  }
  large_in_flight.fetch_add(1, std::memory_order_relaxed);
  detail::relaxed_add(counters().large_sent, 1);
  detail::relaxed_add(counters().bytes_sent, payload.size());
  ls.release();
}

// The inbound side's hook for a large message: claims its slot in `ch` and starts the transfer
// straight into it (a read, or the tagged receive).
bool agent::impl::start_large_recv(std::uint32_t s, const w::message_header& m, const w::large_source& where, channel& ch) {
  auto lr = std::make_unique<detail::large_recv>();
  const status st = ch.claim_send(m.length, lr->delivery.claim, channels::try_once);
  if (st == status::full) return false;
  lr->delivery.source = s;
  lr->delivery.channel_id = m.channel_id;
  lr->delivery.flags = m.flags;
  lr->delivery.src_pid = m.src_pid;
  lr->delivery.token = m.token;
  lr->delivery.remote_read = (m.flags & w::remote_read) != 0;
  if (st != status::ok) {
    detail::relaxed_add(counters().dropped_undeliverable, 1);
    in->ack(s, m, st);
    if (lr->delivery.remote_read) {  // nothing to read: the sender may free it now
      in->read_done(s, m.token);
      return true;
    }
    // Cannot take it (too large, closed): receive it anyway so the sender's tagged send
    // completes, then drop it.
  }
  if (lr->delivery.remote_read) return start_large_read(s, m, where, std::move(lr), ch);
  std::byte* dst = nullptr;
  if (lr->delivery.claim.active()) {
    dst = lr->delivery.claim.data().data();
  } else {
    lr->discard.resize(m.length);
    dst = lr->discard.data();
  }
  if (auto mr = endpoint.register_memory(dst, m.length)) lr->mr = std::move(*mr);
  while (true) {
    const ssize_t rc = fi_trecv(endpoint.ep(), dst, m.length, lr->mr.desc(), s, m.token, 0, lr.get());
    if (rc == 0) break;
    if (rc != -FI_EAGAIN) {
      if (lr->delivery.claim.active()) ch.abandon(lr->delivery.claim);
      detail::relaxed_add(counters().dropped_malformed, 1);
      return true;  // skip it
    }
    fi_cq_data_entry e;
    fi_cq_read(endpoint.cq(), &e, 0);
  }
  in->large_started(lr.release()->delivery);
  return true;
}

// Reads a remote_read message from the sender's inbox heap into the claimed slot. Where the
// provider wants local buffers registered (FI_MR_LOCAL) the slot is registered for this read:
// a target channel's mapping can be replaced (re-resolved) under a longer-lived registration.
bool agent::impl::start_large_read(std::uint32_t s, const w::message_header& m, const w::large_source& where,
                                   std::unique_ptr<detail::large_recv> lr, channel& ch) {
  std::byte* dst = lr->delivery.claim.data().data();
  if (auto mr = endpoint.register_memory(dst, m.length, FI_READ)) lr->mr = std::move(*mr);
  while (true) {
    const ssize_t rc = fi_read(endpoint.ep(), dst, m.length, lr->mr.desc(), s, where.address, where.key, lr.get());
    if (rc == 0) break;
    if (rc != -FI_EAGAIN || destinations[s]->dead.load(std::memory_order_relaxed)) {
      ch.abandon(lr->delivery.claim);
      detail::relaxed_add(counters().dropped_undeliverable, 1);
      in->ack(s, m, status::peer_dead);
      in->read_done(s, m.token);
      return true;
    }
    fi_cq_data_entry e;
    fi_cq_read(endpoint.cq(), &e, 0);  // progress, so the provider frees room for the read
  }
  detail::relaxed_add(counters().large_read_received, 1);
  in->large_started(lr.release()->delivery);
  return true;
}

bool agent::impl::on_large_done(std::uint32_t s, const detail::frame_view& f) {
  if (!detail::check_large_done(f)) return false;
  std::uint32_t freed = 0;
  {
    std::lock_guard lock(kept_mu);
    for (std::uint32_t i = 0; i < f.header.count; ++i) {
      const auto it = kept_reads.find({s, detail::large_done_tag(f, i)});
      if (it == kept_reads.end()) continue;  // already freed (the peer was declared dead meanwhile)
      inbox.release(it->second);
      kept_reads.erase(it);
      ++freed;
    }
  }
  if (freed) {
    large_in_flight.fetch_sub(freed, std::memory_order_release);
    wake_stalled();
  }
  return true;
}

// The payloads a dead peer was to read go back to the heap. Caller may hold the peer's d.mu.
void agent::impl::release_reads_to(std::uint32_t peer) {
  std::uint32_t freed = 0;
  {
    std::lock_guard lock(kept_mu);
    for (auto it = kept_reads.lower_bound({peer, 0}); it != kept_reads.end() && it->first.first == peer;) {
      inbox.release(it->second);
      it = kept_reads.erase(it);
      ++freed;
    }
  }
  if (freed) large_in_flight.fetch_sub(freed, std::memory_order_release);
}

void agent::impl::release_all_reads() {
  std::lock_guard lock(kept_mu);
  for (auto& [key, kept] : kept_reads) inbox.release(kept);
  kept_reads.clear();
}

}  // namespace chanpool::transport
