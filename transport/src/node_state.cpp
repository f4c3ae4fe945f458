#include "node_state.hpp"

#include <cstring>

#include "chanpool/channels/channel.hpp"
#include "process.hpp"  // channels/src: pid liveness with start-time check

namespace chanpool::transport::detail {
namespace bip = boost::interprocess;

namespace {

result<std::string> shm_name(const std::string& node_job) {
  auto name = channels::channel::segment_name(node_state_name, {node_job});
  if (!name) return name.error();
  std::string s = *name;
  if (!s.empty() && s.front() == '/') s.erase(0, 1);
  return s;
}

}  // namespace

bool agent_process_alive(const node_state* s) noexcept {
  if (s->agent_pid == 0) return false;
  if (!channels::detail::process_alive(s->agent_pid, nullptr, 0)) return false;
  return s->agent_start_time == 0 || channels::detail::process_start_time(s->agent_pid) == s->agent_start_time;
}

bool agent_serving(const node_state* s) noexcept {
  const node_phase phase = load_phase(s);
  return phase != node_phase::stopped && phase != node_phase::failed && agent_process_alive(s);
}

agent_stats stats_from(const node_counters& c) noexcept {
  agent_stats s;
  s.messages_sent = relaxed_load(c.messages_sent);
  s.frames_sent = relaxed_load(c.frames_sent);
  s.bytes_sent = relaxed_load(c.bytes_sent);
  s.large_sent = relaxed_load(c.large_sent);
  s.large_read_sent = relaxed_load(c.large_read_sent);
  s.large_read_received = relaxed_load(c.large_read_received);
  s.credit_stalls = relaxed_load(c.credit_stalls);
  s.dropped_peer_dead = relaxed_load(c.dropped_peer_dead);
  s.inbox_malformed = relaxed_load(c.inbox_malformed);
  s.messages_delivered = relaxed_load(c.messages_delivered);
  s.frames_received = relaxed_load(c.frames_received);
  s.bytes_received = relaxed_load(c.bytes_received);
  s.dropped_bad_key = relaxed_load(c.dropped_bad_key);
  s.dropped_malformed = relaxed_load(c.dropped_malformed);
  s.dropped_unknown_channel = relaxed_load(c.dropped_unknown_channel);
  s.dropped_undeliverable = relaxed_load(c.dropped_undeliverable);
  s.peers_dead = relaxed_load(c.peers_dead);
  s.delivery_holds = relaxed_load(c.delivery_holds);
  s.dropped_from_dead = relaxed_load(c.dropped_from_dead);
  s.declared_dead_by_peer = relaxed_load(c.declared_dead_by_peer);
  return s;
}

result<node_state_mapping> create_node_state(const std::string& node_job) {
  auto name = shm_name(node_job);
  if (!name) return name.error();
  // A segment left by an agent that died is taken over; a live agent's is not.
  if (auto existing = open_node_state(node_job)) {
    if (agent_process_alive(existing->state)) return errc::already_exists;
  }
  bip::shared_memory_object::remove(name->c_str());
  try {
    bip::shared_memory_object shm(bip::create_only, name->c_str(), bip::read_write, bip::permissions(0600));
    shm.truncate(sizeof(node_state));
    node_state_mapping m;
    m.region = bip::mapped_region(shm, bip::read_write, 0, sizeof(node_state));
    m.state = static_cast<node_state*>(m.region.get_address());
    std::memset(static_cast<void*>(m.state), 0, sizeof(node_state));
    m.state->version = node_state_version;
    m.state->header_bytes = sizeof(node_state);
    m.state->agent_pid = channels::detail::current_pid();
    m.state->agent_start_time = channels::detail::process_start_time(m.state->agent_pid);
    return m;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::already_exists_error) return errc::already_exists;
    return errc::out_of_memory;
  }
}

// The agent publishes the magic once the rest of the header is written.
void publish_node_state(node_state* s) noexcept {
  std::atomic_ref<std::uint64_t>(s->magic).store(node_state_magic, std::memory_order_release);
}

result<node_state_mapping> open_node_state(const std::string& node_job) {
  auto name = shm_name(node_job);
  if (!name) return name.error();
  try {
    bip::shared_memory_object shm(bip::open_only, name->c_str(), bip::read_write);
    bip::offset_t size = 0;
    if (!shm.get_size(size)) return errc::layout_mismatch;
    if (size == 0) return errc::not_ready;  // the agent created it and has not sized it yet
    if (size < static_cast<bip::offset_t>(sizeof(node_state))) return errc::layout_mismatch;
    node_state_mapping m;
    m.region = bip::mapped_region(shm, bip::read_write, 0, sizeof(node_state));
    m.state = static_cast<node_state*>(m.region.get_address());
    const std::uint64_t magic = std::atomic_ref<std::uint64_t>(m.state->magic).load(std::memory_order_acquire);
    if (magic == 0) return errc::not_ready;
    if (magic != node_state_magic) return errc::corrupted;
    if (m.state->version != node_state_version) return errc::version_mismatch;
    if (m.state->header_bytes != sizeof(node_state) || m.state->node_count > max_nodes ||
        m.state->node >= m.state->node_count)
      return errc::layout_mismatch;
    return m;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error) return errc::not_found;
    if (e.get_error_code() == bip::security_error) return errc::permission_denied;
    return errc::not_found;
  }
}

void unlink_node_state(const std::string& node_job) noexcept {
  if (auto name = shm_name(node_job)) bip::shared_memory_object::remove(name->c_str());
}

}  // namespace chanpool::transport::detail
