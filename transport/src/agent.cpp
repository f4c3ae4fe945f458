// The node agent's public surface: create, connect, stop. How it works is in agent_impl.hpp
// and the parts it lists.
#include "chanpool/transport/agent.hpp"

#include <pthread.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "agent_impl.hpp"
#include "node_keeper.hpp"
#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::transport {

using channels::channel;
using clock_type = std::chrono::steady_clock;

// ======================== public surface ========================

agent::agent(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

agent::~agent() {
  stop();
  if (impl_) {
    // The endpoint first (the provider lets go of posted and in-flight buffers), then the
    // buffers and their registrations, then the domain.
    impl_->endpoint.close_endpoint();
    impl_->rma_serving.clear();
    impl_->regions.reset();  // deregistered before the domain closes
    for (auto& d : impl_->destinations) {
      std::lock_guard lock(d->mu);
      d->clear_buffers_locked();
    }
    impl_->recv_slots.clear();
    impl_->recv_memory.reset();
    {
      std::lock_guard lock(impl_->backlog_mu);
      impl_->backlog.clear();
    }

    impl_->endpoint.close();
    channel::unlink(detail::inbox_name, {impl_->node_job});
    detail::unlink_node_state(impl_->node_job);
    if (impl_->keeper > 0) {  // woken, it finds the node state gone and leaves (else within 200 ms)
      ::kill(impl_->keeper, SIGTERM);
      ::waitpid(impl_->keeper, nullptr, 0);
    }
  }
}

result<std::unique_ptr<agent>> agent::create(std::uint32_t node, std::uint32_t node_count, const std::string& node_job,
                                             const agent_config& config) {
  if (node_count == 0 || node_count > detail::max_nodes || node >= node_count) return errc::invalid_config;
  if (config.flush_bytes < 256 || config.credits == 0 || config.recv_buffers == 0 ||
      config.recv_buffer_bytes < 2 * (config.flush_bytes + 4096))
    return errc::invalid_config;
  auto p = std::make_unique<impl>(node, node_count, node_job, config);
  if (!config.hop_trace_file.empty()) {
    // Enough for latency_bench's longest run; events past it are not kept.
    constexpr std::size_t hop_trace_events = 1u << 20;
    p->tx_hops = std::make_unique<detail::hop_log>(node, hop_trace_events);
    p->rx_hops = std::make_unique<detail::hop_log>(node, hop_trace_events);
  }

  auto shared = detail::create_node_state(node_job);
  if (!shared) return shared.error();
  p->shared = std::move(*shared);

  endpoint_config ec;
  ec.provider = config.provider;
  ec.node = config.listen_address;
  ec.rma = config.rma;
  auto ep = fabric_endpoint::open(ec);
  if (!ep) return ep.error();
  p->endpoint = std::move(*ep);
  // The progress thread sleeps on the CQ's file descriptor where the provider has one.
  if (fi_wait_obj kind = FI_WAIT_NONE; fi_control(&p->endpoint.cq()->fid, FI_GETWAITOBJ, &kind) == 0 && kind == FI_WAIT_FD) {
    int fd = -1;
    if (fi_control(&p->endpoint.cq()->fid, FI_GETWAIT, &fd) == 0 && fd >= 0) p->cq_wait_fd = fd;
  }
  auto bell = detail::doorbell::open(node_job);
  if (!bell) {
    diagnose("chanpool agent (node " + std::to_string(node) + "): cannot open the node's doorbell socket: " +
             bell.error().message());
    return bell.error();
  }
  p->bell = std::move(*bell);
  fabric_endpoint* registrar = &p->endpoint;  // stable: p outlives the table (see ~agent)
  // Where the provider leaves remote keys to us (no FI_MR_PROV_KEY: tcp, shm), a key is this
  // agent's random salt xor the region's generation, not the bare generation: another process
  // on the fabric cannot name a region by counting. XOR with one salt keeps them distinct.
  p->key_salt = make_job_key() & ~(std::uint64_t{1} << 63);
  const std::uint64_t salt = p->key_salt;
  p->regions = std::make_unique<detail::region_table>(
      node_job, static_cast<std::uint32_t>(::getpid()), config.max_regions,
      [registrar, salt](std::byte* data, std::size_t bytes, std::uint64_t generation) {
        return registrar->register_rma(data, bytes, salt ^ generation);
      });
  if (p->endpoint.address().size() > sizeof(p->shared.state->address)) return errc::invalid_config;

  channels::channel_config inbox_cfg;
  inbox_cfg.capacity = config.inbox_capacity;
  inbox_cfg.slot_bytes = 128;  // a 64 B payload plus the 24 B inbox header stays inline
  inbox_cfg.heap_bytes = 64u << 20;
  inbox_cfg.single_consumer = true;
  channel::unlink(detail::inbox_name, {node_job});  // a dead agent's; the node state was free
  auto inbox = channel::create(detail::inbox_name, inbox_cfg, {node_job});
  if (!inbox) return inbox.error();
  p->inbox = std::move(*inbox);
  p->register_inbox_heap();

  // Frames: a batch of flush_bytes plus one message that overflowed it, rounded, and never
  // above what the provider sends eagerly (see eager_message_limit()).
  const std::size_t frame_limit = std::min(config.flush_bytes, eager_message_limit(p->endpoint.info().provider));
  if (frame_limit < 256) return errc::invalid_config;
  p->config.flush_bytes = frame_limit;
  p->max_frame_bytes = frame_limit;
  // Rounded down to 8 so that a payload at the threshold plus its padding still fits a frame.
  p->large_threshold = std::min(config.large_threshold,
                                (frame_limit - sizeof(wire::frame_header) - sizeof(wire::message_header)) & ~std::size_t{7});
  for (std::uint32_t i = 0; i < node_count; ++i)
    p->destinations.push_back(std::make_unique<detail::destination>(i, config.credits, config.ready_batches, frame_limit));
  impl* raw = p.get();
  p->in = std::make_unique<detail::inbound>(node_count, config.credits, p->counters(),
                                            [raw](std::uint32_t s, const wire::message_header& m,
                                                  const wire::large_source& where, channel& ch) {
                                              return raw->start_large_recv(s, m, where, ch);
                                            });
  p->backlog.resize(node_count);

  detail::node_state* s = p->shared.state;
  s->node = node;
  s->node_count = node_count;
  s->address_bytes = static_cast<std::uint32_t>(p->endpoint.address().size());
  std::memcpy(s->address, p->endpoint.address().data(), s->address_bytes);
  std::snprintf(s->provider, sizeof s->provider, "%s", p->endpoint.info().provider.c_str());
  detail::publish_node_state(s);
  if (config.node_keeper) {
    if (auto keeper = detail::start_node_keeper(node_job)) {
      p->keeper = *keeper;
    } else {
      diagnose("chanpool agent (node " + std::to_string(node) + "): no node keeper (" + keeper.error().message() +
               "): if this process is killed, chanpool_cleanup removes the node's segments");
    }
  }
  return std::unique_ptr<agent>(new agent(std::move(p)));
}

const std::vector<std::byte>& agent::address() const noexcept { return impl_->endpoint.address(); }
const endpoint_info& agent::fabric_info() const noexcept { return impl_->endpoint.info(); }
const agent_config& agent::config() const noexcept { return impl_->config; }
std::uint32_t agent::node() const noexcept { return impl_->node; }
std::uint32_t agent::node_count() const noexcept { return impl_->node_count; }
agent_stats agent::stats() const noexcept { return detail::stats_from(impl_->shared.state->counters); }

std::error_code agent::connect(const std::vector<std::vector<std::byte>>& peers, std::uint64_t job_key,
                               std::chrono::milliseconds timeout) {
  impl& p = *impl_;
  if (peers.size() != p.node_count) return errc::invalid_config;
  p.job_key = job_key;
  p.rma_job_tag = wire::job_tag(job_key);
  if (auto ec = p.endpoint.insert_peers(peers); ec) return ec;

  // Receive slots: recv_buffers x recv_buffer_bytes cut into frames, at most half the provider's
  // receive queue (the other half is for the tagged receives of large messages).
  const std::size_t slot_bytes = (p.max_frame_bytes + 63) & ~std::size_t{63};
  std::size_t slots = std::uint64_t{p.config.recv_buffers} * p.config.recv_buffer_bytes / slot_bytes;
  if (const std::size_t queue = p.endpoint.info().rx_size; queue >= 4) slots = std::min(slots, queue / 2);
  if (slots < 2) return errc::invalid_config;
  p.recv_memory = std::make_unique<detail::recv_arena>(slots * slot_bytes);
  if (auto mr = p.endpoint.register_memory(p.recv_memory->bytes.get(), p.recv_memory->size); mr) {
    p.recv_memory->mr = std::move(*mr);
  } else {
    return mr.error();
  }
  for (std::size_t i = 0; i < slots; ++i) {
    auto slot = std::make_unique<detail::recv_slot>(p.recv_memory->bytes.get() + i * slot_bytes, slot_bytes);
    if (auto ec = p.post_recv(*slot); ec) return ec;
    p.recv_slots.push_back(std::move(slot));
  }
  std::atomic_ref<std::uint32_t>(p.shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::connecting), std::memory_order_release);
  detail::store_peer(p.shared.state, p.node, peer_state::alive);
  p.in->source(p.node).hello_seen = true;

  p.progress_thread = std::thread([&p] { p.progress_loop(); });
  ::pthread_setname_np(p.progress_thread.native_handle(), "cp-agent");  // for top -H and perf
  for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
    if (peer != p.node) p.send_control(peer, wire::frame_kind::hello, 0, nullptr, 0);

  const auto deadline = clock_type::now() + timeout;
  while (p.hellos.load(std::memory_order_acquire) < p.node_count - 1) {
    if (clock_type::now() > deadline) {
      std::string missing;
      for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
        if (detail::load_peer(p.shared.state, peer) != peer_state::alive) missing.append(" ").append(std::to_string(peer));
      p.record_failure({},  // words only: the agent itself has not failed
                       "no hello within " + std::to_string(timeout.count()) + " ms from node(s)" + missing);
      return fabric_error(-FI_ETIMEDOUT);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  p.inbox_open.store(true, std::memory_order_release);
  detail::doorbell_ringer(p.node_job).ring();  // it may be asleep without watching the inbox
  std::atomic_ref<std::uint32_t>(p.shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::ready), std::memory_order_release);
  return {};
}

void agent::stop() noexcept {
  if (!impl_) return;
  impl& p = *impl_;
  if (p.stopped.exchange(true)) return;
  if (p.progress_thread.joinable()) {
    for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
      if (peer != p.node && !p.destinations[peer]->dead.load()) p.send_control(peer, wire::frame_kind::goodbye, 0, nullptr, 0);
    // Give the goodbyes a moment to leave before the endpoint closes, and when the whole job is
    // stopping (every peer says goodbye too), stay until each peer has: a peer that has not yet
    // read our goodbye may still send to us, and would find the connection closed and report
    // this node unreachable. A lone agent leaving a running job waits the 50 ms bound.
    const auto until = clock_type::now() + std::chrono::milliseconds(50);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto all_gone = [&p] {
      for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
        if (peer != p.node && detail::load_peer(p.shared.state, peer) == peer_state::alive) return false;
      return true;
    };
    while (!all_gone() && clock_type::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  p.stopping.store(true);
  p.wake_stalled();
  p.inbox.seal();
  if (p.progress_thread.joinable()) {
    detail::doorbell_ringer(p.node_job).ring();
    p.progress_thread.join();
  }
  p.fail_all_rma();
  p.release_all_reads();
  p.regions->close_all();  // those still leased by the provider go in ~agent
  if (p.tx_hops && p.rx_hops)
    if (const std::string path = hop_trace_path(p.config.hop_trace_file, p.node);
        auto ec = detail::write_hop_trace(path, {p.tx_hops.get(), p.rx_hops.get()})) {
      const std::string line =
          "chanpool agent (node " + std::to_string(p.node) + "): cannot write the hop trace " + path + ": " + ec.message();
      diagnose(line);
    }
  // A failed agent stays failed: its clients and chanpool_cleanup see why it stopped.
  if (detail::load_phase(p.shared.state) != detail::node_phase::failed)
    std::atomic_ref<std::uint32_t>(p.shared.state->phase)
        .store(static_cast<std::uint32_t>(detail::node_phase::stopped), std::memory_order_release);
}

std::error_code agent::failure() const {
  std::lock_guard lock(impl_->failure_mu);
  return impl_->failure_code;
}

std::string agent::failure_reason() const {
  std::lock_guard lock(impl_->failure_mu);
  return impl_->failure_text;
}

result<agent_stats> read_agent_stats(const std::string& node_job) {
  auto m = detail::open_node_state(node_job);
  if (!m) return m.error();
  return detail::stats_from(m->state->counters);
}

result<std::vector<std::byte>> read_agent_address(const std::string& node_job) {
  auto m = detail::open_node_state(node_job);
  if (!m) return m.error();
  const detail::node_state* st = m->state;
  if (st->address_bytes > sizeof st->address) return errc::corrupted;
  const auto* p = reinterpret_cast<const std::byte*>(st->address);
  return std::vector<std::byte>(p, p + st->address_bytes);
}

std::uint64_t make_job_key() {
  std::uint64_t key = 0;
  while (key == 0)
    if (getrandom(&key, sizeof key, 0) != sizeof key) key = detail::now_ns() * 0x9e3779b97f4a7c15ull;
  return key;
}

}  // namespace chanpool::transport
