// A process's view of the transport: attach to the node's agent, open channels on any node by
// (node, name), and send to them with the channel API.
//
//   auto c = client::attach(node_job).value();
//   auto rc = c.open({7, "results"}).value();      // resolves "results" on node 7
//   rc.send(bytes);                                // returns once the local agent has it
//   rc.send(bytes, forever, send_mode::deposited); // returns once it is in node 7's channel
//
// The receiving side is a plain channels::channel on its own node: remote messages arrive in it
// like local ones. Order is FIFO per sending process and target channel.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/agent.hpp"

namespace chanpool::transport {

using channels::timeout;

// A channel anywhere in the job.
struct channel_address {
  std::uint32_t node = 0;
  std::string name;
};

enum class send_mode : std::uint8_t {
  buffered,   // return once the local agent holds the message (its inbox took it)
  deposited,  // return once the message is in the target channel, or with why it could not be
};

enum class route : std::uint8_t {
  direct_if_local,  // a channel on this node is written directly (no agent)
  via_agent,        // always through the agent (the target may then be single-producer)
};

struct remote_open_options {
  route routing = route::direct_if_local;
  timeout resolve_timeout = std::chrono::seconds(10);
};

class client;
class region;
class rma_op;
struct region_descriptor;
namespace detail {
struct client_state;
}

// A message built in place (remote_channel::claim): fill data(), then commit() or abandon() it
// through the channel that made it. Toward another node the bytes are in this node's agent
// inbox; above the agent's large threshold they leave from there (read by the receiving node's
// agent straight into the target slot), so a claimed message is never copied on this node.
// Trivially copyable (the C API keeps one in its chanpool_send_claim_t).
class remote_claim {
 public:
  std::span<std::byte> data() const noexcept;
  bool active() const noexcept { return claim_.active(); }

 private:
  friend class remote_channel;
  channels::send_claim claim_;  // the inbox record (header first), or the local channel's slot
  bool local_ = false;
};

class remote_channel {
 public:
  remote_channel() = default;
  remote_channel(remote_channel&&) noexcept = default;
  remote_channel& operator=(remote_channel&&) noexcept = default;

  // ok; full (try_once and the agent's inbox is full: the destination is slow); timeout;
  // peer_dead (the destination node or this node's agent is gone); too_large (over the target
  // channel's max_message_bytes); closed (deposited: the target channel was sealed); invalid.
  // Threadsafe (buffered). A deposited send waits for its confirmation: one deposited send at
  // a time per client (others queue behind a mutex).
  status send(std::span<const std::byte> message, timeout t = channels::forever,
              send_mode mode = send_mode::buffered) noexcept;
  status try_send(std::span<const std::byte> message) noexcept { return send(message, channels::try_once); }

  // Zero-copy send (buffered): reserves `bytes` for a message and returns it in `c` to fill in
  // place; commit() hands it to the agent (or, to a channel on this node opened direct, to the
  // channel), abandon() gives the room back. Results as send(); invalid if `c` is active. The
  // claim holds a slot of the inbox (or channel): keep it short. Threadsafe for distinct claims.
  status claim(std::size_t bytes, remote_claim& c, timeout t = channels::forever) noexcept;
  status commit(remote_claim& c) noexcept;
  status abandon(remote_claim& c) noexcept;

  const channel_address& address() const noexcept { return address_; }
  std::size_t max_message_bytes() const noexcept { return max_message_bytes_; }
  bool is_local() const noexcept { return local_.is_open(); }

 private:
  friend class client;
  std::shared_ptr<detail::client_state> client_;
  channel_address address_;
  std::uint32_t channel_id_ = 0;
  std::size_t max_message_bytes_ = 0;
  channels::channel local_;  // direct route to a channel on this node
};

class client {
 public:
  client() = default;
  client(client&&) noexcept = default;
  client& operator=(client&&) noexcept = default;
  ~client();

  // Attaches to the agent of the node whose shared-memory namespace is node_job, waiting up to
  // `wait_for_agent` for it to be ready. Creates this process's reply channel.
  static result<client> attach(const std::string& node_job, timeout wait_for_agent = std::chrono::seconds(30));

  // Resolves a channel on any node (its agent opens it): errc::not_found for a wrong name,
  // errc::peer_dead-equivalent (peer_unreachable) when the node is gone.
  result<remote_channel> open(const channel_address& address, const remote_open_options& options = {});

  // Asks the agent to send every partial batch now (threadsafe).
  status flush() noexcept;

  std::uint32_t node() const noexcept;
  std::uint32_t node_count() const noexcept;
  peer_state peer(std::uint32_t node) const noexcept;
  agent_stats stats() const noexcept;
  const std::string& node_job() const noexcept;
  // The libfabric provider the node's agent runs on (as fi_info names it), for messages such as
  // "provider udp;ofi_rxd has no RMA".
  std::string provider() const;

  // --- one-sided transfers (rma.hpp) ---
  // put: `length` bytes from src (this node's region, at src_offset) into dst at dst_offset
  // (offsets relative to the descriptor's range). With `notify` (a channel on dst's node), a
  // put_notification carrying `tag` lands in it after the bytes are visible.
  // get: `length` bytes from src at src_offset into dst (this node's region) at dst_offset.
  // Blocking calls return the outcome (empty: done) or rma_errc::timed_out; asynchronous ones
  // return a handle, or the error found before anything was sent. Threadsafe.
  std::error_code put(const region& src, std::uint64_t src_offset, std::uint64_t length, const region_descriptor& dst,
                      std::uint64_t dst_offset, timeout t = channels::forever, const remote_channel* notify = nullptr,
                      std::uint64_t tag = 0) noexcept;
  result<rma_op> put_async(const region& src, std::uint64_t src_offset, std::uint64_t length,
                           const region_descriptor& dst, std::uint64_t dst_offset,
                           const remote_channel* notify = nullptr, std::uint64_t tag = 0) noexcept;
  std::error_code get(const region_descriptor& src, std::uint64_t src_offset, std::uint64_t length, const region& dst,
                      std::uint64_t dst_offset, timeout t = channels::forever) noexcept;
  result<rma_op> get_async(const region_descriptor& src, std::uint64_t src_offset, std::uint64_t length,
                           const region& dst, std::uint64_t dst_offset) noexcept;

 private:
  friend class region;
  result<rma_op> start_transfer(std::uint16_t op, const region& local, std::uint64_t local_offset, std::uint64_t length,
                                const region_descriptor& remote, std::uint64_t remote_offset,
                                const remote_channel* notify, std::uint64_t tag) noexcept;
  std::shared_ptr<detail::client_state> shared_;
};

// The shared-memory namespace of node `node` in an embedded (virtual-node) job.
std::string virtual_node_job(const std::string& job, std::uint32_t node);

}  // namespace chanpool::transport
