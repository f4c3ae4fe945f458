// How a node's processes wake its sleeping agent. The agent has one progress thread, which
// sleeps in the kernel on two things at once: its completion queue's file descriptor and this
// doorbell, a datagram socket in the abstract UNIX namespace (no file to remove, gone with the
// agent's process; one per node job, so within a host and network namespace it names one agent).
//
// The protocol with the inbox (node_state::agent_asleep):
//   agent:   asleep = 1; fence; inbox still empty? -> sleep on {CQ, doorbell}; asleep = 0; drain
//   sender:  publish the inbox record; fence; asleep == 1 and exchange(asleep, 0) == 1 -> ring
// Either the agent sees the record, or the sender sees the agent asleep; only the sender that
// turns the word from 1 to 0 rings, so a sleep costs at most one datagram however many send.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <system_error>

#include "chanpool/channels/error.hpp"
#include "fence.hpp"  // channels/src: full_fence()

namespace chanpool::transport::detail {

// The socket address of node job `node_job`'s doorbell (a hash of long names keeps it within
// sun_path). `length` is what bind/sendto take.
struct doorbell_address {
  sockaddr_un addr{};
  socklen_t length = 0;
};
doorbell_address make_doorbell_address(const std::string& node_job) noexcept;

// The agent's side. Owned by the progress thread after create(); not copyable.
class doorbell {
 public:
  doorbell() = default;
  doorbell(const doorbell&) = delete;
  doorbell& operator=(const doorbell&) = delete;
  doorbell(doorbell&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  doorbell& operator=(doorbell&& o) noexcept;
  ~doorbell();

  // Binds the node job's doorbell. EADDRINUSE: an agent of the same node job is running.
  static result<doorbell> open(const std::string& node_job);
  int fd() const noexcept { return fd_; }
  // Reads pending rings (non-blocking, up to 16). Returns how many it read.
  std::uint32_t drain() noexcept;

 private:
  int fd_ = -1;
};

// A process's side: rings the node's doorbell. ring() may be called from any thread; the socket
// is made on first use. A failed ring (no agent, a full queue) is ignored: the agent is gone,
// or already has a wake-up pending.
class doorbell_ringer {
 public:
  explicit doorbell_ringer(const std::string& node_job) : address_(make_doorbell_address(node_job)) {}
  doorbell_ringer(const doorbell_ringer&) = delete;
  doorbell_ringer& operator=(const doorbell_ringer&) = delete;
  ~doorbell_ringer();
  void ring() noexcept;

 private:
  doorbell_address address_;
  std::atomic<int> fd_{-1};
};

// The sender's half of the protocol above, after its record is published. `asleep` is the
// node_state word.
inline bool should_ring(std::uint32_t& asleep) noexcept {
  channels::detail::full_fence();
  std::atomic_ref<std::uint32_t> word(asleep);
  return word.load(std::memory_order_relaxed) != 0 && word.exchange(0, std::memory_order_acq_rel) != 0;
}

}  // namespace chanpool::transport::detail
