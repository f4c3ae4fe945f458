#include "chanpool/transport/client.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "chanpool/transport/wire.hpp"
#include "client_state.hpp"
#include "process.hpp"

namespace chanpool::transport {

using channels::channel;
using clock_type = std::chrono::steady_clock;
namespace w = wire;

std::string virtual_node_job(const std::string& job, std::uint32_t node) {
  return job + "-n" + std::to_string(node);
}

client::~client() = default;

result<client> client::attach(const std::string& node_job, timeout wait_for_agent) {
  auto sh = std::make_shared<detail::client_state>(node_job);
  sh->pid = channels::detail::current_pid();
  const auto deadline = clock_type::now() + wait_for_agent;
  while (true) {
    auto m = detail::open_node_state(node_job);
    if (m && detail::load_phase(m->state) == detail::node_phase::ready) {
      sh->state = std::move(*m);
      break;
    }
    const bool waiting = !m ? (m.error() == errc::not_found || m.error() == errc::not_ready) : true;
    if (!waiting) return m.error();
    if (clock_type::now() >= deadline) return waiting && !m ? m.error() : std::error_code(errc::timed_out);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto inbox = channel::open(detail::inbox_name, {node_job});
  if (!inbox) return inbox.error();
  sh->inbox = std::move(*inbox);
  channels::channel_config rc;
  rc.capacity = 256;
  rc.slot_bytes = 128;
  rc.heap_bytes = 0;
  channel::unlink(detail::reply_channel_name(sh->pid), {node_job});  // a previous process with this pid
  auto replies = channel::create(detail::reply_channel_name(sh->pid), rc, {node_job});
  if (!replies) return replies.error();
  sh->replies = std::move(*replies);
  client c;
  c.shared_ = std::move(sh);
  return c;
}

std::uint32_t client::node() const noexcept { return shared_->state.state->node; }
std::uint32_t client::node_count() const noexcept { return shared_->state.state->node_count; }
const std::string& client::node_job() const noexcept { return shared_->node_job; }
std::string client::provider() const {
  const char* p = shared_->state.state->provider;
  return std::string(p, strnlen(p, sizeof shared_->state.state->provider));
}
peer_state client::peer(std::uint32_t n) const noexcept {
  return n < node_count() ? detail::load_peer(shared_->state.state, n) : peer_state::unknown;
}
agent_stats client::stats() const noexcept { return detail::stats_from(shared_->state.state->counters); }

status client::flush() noexcept {
  w::inbox_header h{0, 0, static_cast<std::uint16_t>(w::inbox_kind::flush), 0, shared_->pid, 0};
  return shared_->put(h, {}, channels::forever);
}

result<remote_channel> client::open(const channel_address& address, const remote_open_options& options) {
  if (!shared_) return errc::invalid_config;
  if (address.node >= node_count()) return errc::peer_unreachable;
  remote_channel rc;
  rc.client_ = shared_;
  rc.address_ = address;
  if (address.node == node() && options.routing == route::direct_if_local) {
    auto local = channel::open(address.name, {shared_->node_job});
    if (!local) return local.error();
    rc.max_message_bytes_ = local->max_message_bytes();
    rc.local_ = std::move(*local);
    return rc;
  }
  if (shared_->node_gone(address.node)) return errc::peer_unreachable;
  std::lock_guard lock(shared_->reply_mu);
  const std::uint64_t token = shared_->next_token.fetch_add(1, std::memory_order_relaxed);
  w::inbox_header h{address.node, 0, static_cast<std::uint16_t>(w::inbox_kind::resolve), 0, shared_->pid, token};
  const status put = shared_->put(h, {reinterpret_cast<const std::byte*>(address.name.data()), address.name.size()},
                                  options.resolve_timeout);
  if (put == status::peer_dead) return errc::peer_unreachable;
  if (put != status::ok) return errc::timed_out;
  w::resolve_reply rep{};
  const status st = shared_->await_reply(w::reply_kind::resolve, token, address.node, options.resolve_timeout, &rep, sizeof rep);
  if (st == status::peer_dead) return errc::peer_unreachable;
  if (st != status::ok) return errc::timed_out;
  if (rep.error < 0) return errc::peer_unreachable;
  if (rep.error > 0) return std::error_code(rep.error, chanpool_category());
  rc.channel_id_ = rep.channel_id;
  rc.max_message_bytes_ = rep.max_message_bytes;
  return rc;
}

status remote_channel::send(std::span<const std::byte> message, timeout t, send_mode mode) noexcept {
  if (!client_) return status::invalid;
  if (local_.is_open()) return local_.send(message, t);
  if (message.size() > max_message_bytes_) return status::too_large;
  if (client_->marked_gone(address_.node)) return status::peer_dead;
  if (mode == send_mode::buffered) {
    const w::inbox_header h{address_.node, channel_id_, static_cast<std::uint16_t>(w::inbox_kind::data), 0, client_->pid, 0};
    return client_->put(h, message, t);
  }
  std::lock_guard lock(client_->reply_mu);
  const auto start = clock_type::now();
  const std::uint64_t token = client_->next_token.fetch_add(1, std::memory_order_relaxed);
  const w::inbox_header h{address_.node, channel_id_, static_cast<std::uint16_t>(w::inbox_kind::data), w::deposited,
                          client_->pid, token};
  if (const status st = client_->put(h, message, t); st != status::ok) return st;
  const timeout left = t == channels::forever ? t : std::max(timeout::zero(), t - (clock_type::now() - start));
  w::ack_record a{};
  const status st = client_->await_reply(w::reply_kind::ack, token, address_.node, left, &a, sizeof a);
  if (st != status::ok) return st;
  return static_cast<status>(a.status);
}

static_assert(std::is_trivially_copyable_v<remote_claim>);

std::span<std::byte> remote_claim::data() const noexcept {
  const std::span<std::byte> all = claim_.data();
  if (local_ || all.empty()) return all;
  return all.subspan(sizeof(w::inbox_header));  // the record's payload, after its header
}

status remote_channel::claim(std::size_t bytes, remote_claim& c, timeout t) noexcept {
  if (!client_ || c.active()) return status::invalid;
  if (local_.is_open()) {
    c.local_ = true;
    return local_.claim_send(bytes, c.claim_, t);
  }
  if (bytes > max_message_bytes_) return status::too_large;
  if (client_->marked_gone(address_.node)) return status::peer_dead;
  const w::inbox_header h{address_.node, channel_id_, static_cast<std::uint16_t>(w::inbox_kind::data), 0, client_->pid, 0};
  c.local_ = false;
  return client_->claim_record(h, bytes, c.claim_, t);
}

status remote_channel::commit(remote_claim& c) noexcept {
  if (!client_ || !c.active()) return status::invalid;
  if (c.local_) return local_.commit(c.claim_);
  const status st = client_->commit_record(c.claim_);
  return st == status::closed ? status::peer_dead : st;
}

status remote_channel::abandon(remote_claim& c) noexcept {
  if (!client_ || !c.active()) return status::invalid;
  channel& ch = c.local_ ? local_ : client_->inbox;
  return ch.abandon(c.claim_);
}

}  // namespace chanpool::transport
