#include "inbound.hpp"

#include <algorithm>
#include <cstring>

#include "frame_check.hpp"

namespace chanpool::transport::detail {

namespace w = wire;
using channels::channel;

inbound::inbound(std::uint32_t node_count, std::uint32_t window, node_counters& counters, start_large_fn start_large)
    : window_(window), counters_(counters), start_large_(std::move(start_large)), sources_(node_count) {}

inbound::batch_verdict inbound::on_batch(std::uint32_t s, std::uint32_t sequence, const std::byte* body,
                                         const std::byte* end, std::size_t frame_bytes) {
  source_state& src = sources_[s];
  if (sequence != src.next_sequence) {
    // Overtaken: kept until the ones before it are in. At most a window's worth can be ahead;
    // anything further (or a duplicate, or one already delivered) is not from a well-behaved peer.
    const std::uint32_t ahead = sequence - src.next_sequence;
    if (ahead > 4 * window_ + 4 || src.early.count(sequence)) return batch_verdict::malformed;
    src.early.emplace(sequence, std::vector<std::byte>(body, end));
    return batch_verdict::held_early;
  }
  accept_batch(s, body, end, frame_bytes);
  while (true) {
    auto it = src.early.find(src.next_sequence);
    if (it == src.early.end()) break;
    const std::vector<std::byte> held = std::move(it->second);
    src.early.erase(it);
    accept_batch(s, held.data(), held.data() + held.size(), held.size() + sizeof(w::frame_header));
  }
  return batch_verdict::accepted;
}

void inbound::accept_batch(std::uint32_t s, const std::byte* body, const std::byte* end, std::size_t frame_bytes) {
  source_state& src = sources_[s];
  ++src.next_sequence;
  relaxed_add(counters_.frames_received, 1);
  relaxed_add(counters_.bytes_received, frame_bytes);
  if (!src.pending.empty()) {
    src.pending.push_back({std::vector<std::byte>(body, end), 0, true});
    return;
  }
  const std::byte* reached = deliver(s, body, end);
  if (!reached) {
    relaxed_add(counters_.dropped_malformed, 1);
    ++src.credits_owed;
  } else if (reached == end) {
    ++src.credits_owed;
  } else {
    src.pending.push_back({std::vector<std::byte>(reached, end), 0, true});
  }
}

// Consecutive small messages for one channel go in as a run (one claim, one index update and
// one wake-up for the lot); the rest one at a time.
const std::byte* inbound::deliver(std::uint32_t s, const std::byte* p, const std::byte* end) {
  std::uint64_t delivered = 0;
  while (p < end) {
    w::message_header m;
    std::size_t body = 0;
    if (next_message(p, end, m, body) != batch_step::message) {
      p = nullptr;
      break;
    }
    channel* ch = target(m.channel_id);
    if (!ch) {
      relaxed_add(counters_.dropped_unknown_channel, 1);
      ack(s, m, status::invalid);
      if ((m.flags & w::large) && (m.flags & w::remote_read)) read_done(s, m.token);
      p += sizeof m + body;
      continue;
    }
    if (m.flags & w::large) {
      w::large_source where{};
      if (m.flags & w::remote_read) std::memcpy(&where, p + sizeof m, sizeof where);
      if (!start_large_(s, m, where, *ch)) {  // channel full: tried again later
        relaxed_add(counters_.delivery_holds, 1);
        break;
      }
      p += sizeof m + body;
      continue;
    }
    const std::byte* run_end = nullptr;
    const std::size_t run = run_length(p, end, m.channel_id, ch->inline_capacity(), run_end);
    if (run > 1) {
      const std::byte* reached = deliver_run(s, p, run, *ch, delivered);
      if (reached != run_end) {  // the channel is full: the rest waits
        relaxed_add(counters_.delivery_holds, 1);
        if (reached) p = reached;
        break;
      }
      p = reached;
      continue;
    }
    const status st = ch->try_send({p + sizeof m, m.length});
    if (st == status::full) {
      relaxed_add(counters_.delivery_holds, 1);
      break;
    }
    if (st == status::ok) {
      ++delivered;
    } else {
      relaxed_add(counters_.dropped_undeliverable, 1);
    }
    ack(s, m, st);
    p += sizeof m + body;
  }
  relaxed_add(counters_.messages_delivered, delivered);
  return p;
}

// How many messages from p on are small, for `channel_id`, and fit a slot inline (at most
// max_run). Sets run_end to where they end.
std::size_t inbound::run_length(const std::byte* p, const std::byte* end, std::uint32_t channel_id,
                                std::size_t inline_bytes, const std::byte*& run_end) {
  std::size_t n = 0;
  while (n < channels::max_run && p < end) {
    w::message_header m;
    std::size_t body = 0;
    if (next_message(p, end, m, body) != batch_step::message) break;
    if ((m.flags & w::large) || m.channel_id != channel_id || m.length > inline_bytes) break;
    p += sizeof m + body;
    ++n;
  }
  run_end = p;
  return n;
}

// Puts the first `count` messages from p (checked by run_length()) into ch as one run. Returns
// where delivery stopped (the run's end when all went in), or nullptr when the channel took none.
const std::byte* inbound::deliver_run(std::uint32_t s, const std::byte* p, std::size_t count, channel& ch,
                                      std::uint64_t& delivered) {
  channels::send_run run;
  const status st = ch.claim_send_run(count, run, channels::try_once);
  if (st == status::full) return nullptr;
  if (st != status::ok) {
    // Closed or invalid: each message is dropped and acked with the reason, as one at a time.
    for (std::size_t i = 0; i < count; ++i) {
      w::message_header m;
      std::memcpy(&m, p, sizeof m);
      relaxed_add(counters_.dropped_undeliverable, 1);
      ack(s, m, st);
      p += sizeof m + w::padded(m.length);
    }
    return p;
  }
  const std::size_t n = run.size();  // as many as were free: the rest waits
  std::size_t lengths[channels::max_run];
  const std::byte* q = p;
  for (std::size_t i = 0; i < n; ++i) {
    w::message_header m;
    std::memcpy(&m, q, sizeof m);
    std::memcpy(run.data(i).data(), q + sizeof m, m.length);
    lengths[i] = m.length;
    q += sizeof m + w::padded(m.length);
  }
  const status committed = ch.commit(run, {lengths, n});
  q = p;
  for (std::size_t i = 0; i < n; ++i) {
    w::message_header m;
    std::memcpy(&m, q, sizeof m);
    ack(s, m, committed);
    q += sizeof m + w::padded(m.length);
  }
  if (committed == status::ok) {
    delivered += n;
  } else {
    relaxed_add(counters_.dropped_undeliverable, n);
  }
  return q;
}

void inbound::drain_pending(std::uint32_t s) {
  source_state& src = sources_[s];
  while (!src.pending.empty()) {
    pending_fragment& f = src.pending.front();
    const std::byte* begin = f.messages.data() + f.offset;
    const std::byte* end = f.messages.data() + f.messages.size();
    const std::byte* reached = deliver(s, begin, end);
    if (!reached) {
      relaxed_add(counters_.dropped_malformed, 1);
      reached = end;
    }
    f.offset = static_cast<std::size_t>(reached - f.messages.data());
    if (reached != end) return;
    if (f.returns_credit) ++src.credits_owed;
    src.pending.pop_front();
  }
}

void inbound::finish_large(large_delivery& d, bool ok) {
  source_state& src = sources_[d.source];
  if (src.large_in_progress) --src.large_in_progress;
  if (d.channel_id < targets_.size() && targets_[d.channel_id].large_in_progress) --targets_[d.channel_id].large_in_progress;
  if (d.claim.active()) {
    channel* ch = target(d.channel_id);
    if (ch && ok) {
      ch->commit(d.claim);
      relaxed_add(counters_.messages_delivered, 1);
    } else if (ch) {
      ch->abandon(d.claim);
    }
    if (d.channel_id < targets_.size() && targets_[d.channel_id].next.is_open() && !awaits_large_into(d.channel_id))
      targets_[d.channel_id].ch = std::move(targets_[d.channel_id].next);
    w::message_header m{0, d.channel_id, d.flags, 0, d.src_pid, d.token};
    ack(d.source, m, ok ? status::ok : status::peer_dead);
  }
  if (d.remote_read) read_done(d.source, d.token);
  drain_pending(d.source);
}

void inbound::ack(std::uint32_t s, const w::message_header& m, status st) {
  if (!(m.flags & w::deposited)) return;
  const std::uint8_t flags = (m.flags & w::large) ? w::ack_of_large : 0;
  sources_[s].acks.push_back({m.src_pid, static_cast<std::uint8_t>(st), flags, {}, m.token});
}

owed_to_source inbound::take_owed(std::uint32_t s, bool all) {
  source_state& src = sources_[s];
  owed_to_source out;
  out.acks.swap(src.acks);
  out.reads_done.swap(src.reads_done);
  if (src.credits_owed && (all || src.credits_owed >= std::max(1u, window_ / 4))) {
    out.credits = src.credits_owed;
    src.credits_owed = 0;
  }
  return out;
}

result<std::uint32_t> inbound::resolve(const std::string& name, const std::string& node_job) {
  auto opened = channel::open(name, {node_job});
  if (!opened) return opened.error();
  auto [it, fresh] = target_ids_.try_emplace(name, static_cast<std::uint32_t>(targets_.size()));
  if (fresh) targets_.push_back({name, {}, {}});
  target_entry& t = targets_[it->second];
  if (t.ch.same_segment(*opened)) return it->second;  // each sender resolves: most find it open
  if (awaits_large_into(it->second)) {
    t.next = std::move(*opened);
  } else {
    t.ch = std::move(*opened);
  }
  return it->second;
}

bool inbound::awaits_large_into(std::uint32_t channel_id) const noexcept {
  return channel_id < targets_.size() && targets_[channel_id].large_in_progress != 0;
}

void inbound::large_started(const large_delivery& d) {
  ++sources_[d.source].large_in_progress;
  if (d.channel_id < targets_.size()) ++targets_[d.channel_id].large_in_progress;
}

channel* inbound::target(std::uint32_t id) noexcept {
  if (id >= targets_.size() || !targets_[id].ch.is_open()) return nullptr;
  return &targets_[id].ch;
}

bool inbound::any_pending() const noexcept {
  return std::any_of(sources_.begin(), sources_.end(), [](const source_state& s) { return !s.pending.empty(); });
}

}  // namespace chanpool::transport::detail
