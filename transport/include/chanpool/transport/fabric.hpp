// A libfabric RDM endpoint with everything it needs (fabric, domain, address vector, completion
// queue), opened from a provider name, and the libfabric error category.
//
// This is the only place that knows how chanpool asks libfabric for an endpoint: the agent, the
// direct-endpoint latency mode and the tests that inject frames all open one here, so every
// user of the fabric gets the same capabilities and the same provider selection rules.
//
// Not thread-safe on one object for setup; the fids it hands out are opened with
// FI_THREAD_SAFE, so data-path calls on them may come from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <rdma/fabric.h>

#include "chanpool/channels/error.hpp"

struct fid_fabric;
struct fid_domain;
struct fid_ep;
struct fid_av;
struct fid_cq;
struct fid_mr;

namespace chanpool::transport {

// Errors from libfabric calls: the value is the positive FI_E* / errno code; message() is
// fi_strerror plus advice for the ones users meet (no provider, connection refused, ...).
const std::error_category& fabric_category() noexcept;
// From a libfabric return value (negative -FI_E* code).
inline std::error_code fabric_error(long rc) noexcept {
  return {static_cast<int>(rc < 0 ? -rc : rc), fabric_category()};
}

// Default provider on Debian's libfabric 1.17: TCP under the RxM reliable-datagram utility.
inline constexpr const char* default_provider = "tcp;ofi_rxm";

// Provider to use: `requested` if not empty, else $FI_PROVIDER, else default_provider.
std::string choose_provider(const std::string& requested);

struct endpoint_config {
  std::string provider;               // see choose_provider
  std::string node = "127.0.0.1";     // interface address to listen on (loopback for virtual nodes)
  std::size_t cq_size = 4096;
  bool tagged = true;                 // FI_TAGGED (large messages go point to point as tagged sends)
  // FI_MULTI_RECV. The agent does not ask for it (agent_ops.hpp says why: on libfabric 1.17's
  // tcp;ofi_rxm a buffer can be reported released while a frame into it is still arriving).
  bool multi_recv = false;
  bool wait_object = true;            // CQ with a wait object so fi_cq_sread can sleep
  // One-sided RMA (FI_RMA, fi_read/fi_write on registered regions). Asked for by default; a
  // provider without it still opens, with endpoint_info::rma false (regions then report
  // rma_errc::rma_unsupported, naming the provider).
  bool rma = true;
};

// Sizes RxM (tcp;ofi_rxm, verbs;ofi_rxm) for the endpoints opened after this call, where the
// environment does not already say otherwise (the user's setting wins); 0 keeps libfabric's
// default. eager_bytes (FI_OFI_RXM_BUFFER_SIZE, 16384 by default) caps an agent's frames at
// eager_bytes - 256; queue_depth (FI_OFI_RXM_MSG_TX_SIZE and _RX_SIZE) sets RxM's per-connection
// queues. RxM allocates and clears buffers of the eager size per endpoint and per connection at
// start-up, so both trade start-up time and memory against frame size. Calls setenv: call it
// before libfabric is initialised and before other threads start.
void set_rxm_defaults(std::uint32_t eager_bytes, std::uint32_t queue_depth);

// The largest message a provider carries in one eager send, for the agent's frames: on RxM
// providers FI_OFI_RXM_BUFFER_SIZE (16384 unless set, see set_rxm_defaults) less the 256 bytes
// of its own header; SIZE_MAX on the others. Larger messages go by segmentation or rendezvous,
// where libfabric 1.17 can release a FI_MULTI_RECV buffer early (docs/transport.md).
std::size_t eager_message_limit(const std::string& provider_name) noexcept;

// Runs provider discovery once in this process. libfabric initialises every provider on the first
// fi_getinfo (about 100 ms here: the verbs provider scans /proc/kallsyms); a process that forks
// many agents calls this first so each child inherits the initialised library instead of
// repeating it. Harmless anywhere else.
std::error_code preload_providers(const endpoint_config& config);

// What the endpoint got: printed by the tools so every figure names its provider.
struct endpoint_info {
  std::string provider;               // e.g. "tcp;ofi_rxm"
  std::string fabric;
  std::string domain;
  std::uint32_t api_version = 0;      // FI_VERSION of libfabric at run time
  std::size_t inject_size = 0;
  std::size_t max_msg_size = 0;
  bool multi_recv = false;
  bool tagged = false;
  std::size_t rx_size = 0;            // receives the endpoint can have posted (rx_attr->size)
  bool local_mr = false;              // FI_MR_LOCAL: buffers must be registered (verbs, cxi)
  bool cq_fd_wait = false;            // fi_cq_sread sleeps on file descriptors (FI_WAIT_FD or _POLLFD)
  bool rma = false;                   // FI_RMA with read, write and their remote sides
  std::uint64_t mr_mode = 0;          // the FI_MR_* bits the provider asked of us (see register_rma)
  std::size_t mr_key_size = 0;        // bytes of a remote key (fi_mr_key fits in 8 where it is <= 8)
  std::string summary() const;        // one line
};

// A registered buffer (only where the provider needs FI_MR_LOCAL; otherwise empty and desc()
// is nullptr, which is what libfabric expects then).
class memory_registration {
 public:
  memory_registration() = default;
  memory_registration(memory_registration&&) noexcept;
  memory_registration& operator=(memory_registration&&) noexcept;
  memory_registration(const memory_registration&) = delete;
  memory_registration& operator=(const memory_registration&) = delete;
  ~memory_registration() { reset(); }
  void* desc() const noexcept { return desc_; }
  void reset() noexcept;

 private:
  friend class fabric_endpoint;
  fid_mr* mr_ = nullptr;
  void* desc_ = nullptr;
};

// A buffer registered for one-sided access by peers (fi_read/fi_write into it) and as the local
// side of this endpoint's own RMA operations. What a peer needs to reach it is `key` and `base`:
// the remote address of byte i is base + i (base is the buffer's virtual address where the
// provider asks for FI_MR_VIRT_ADDR, else 0).
class rma_registration {
 public:
  rma_registration() = default;
  rma_registration(rma_registration&&) noexcept;
  rma_registration& operator=(rma_registration&&) noexcept;
  rma_registration(const rma_registration&) = delete;
  rma_registration& operator=(const rma_registration&) = delete;
  ~rma_registration() { reset(); }
  void* desc() const noexcept { return desc_; }
  std::uint64_t key() const noexcept { return key_; }
  std::uint64_t base() const noexcept { return base_; }
  bool registered() const noexcept { return mr_ != nullptr; }
  void reset() noexcept;

 private:
  friend class fabric_endpoint;
  fid_mr* mr_ = nullptr;
  void* desc_ = nullptr;
  std::uint64_t key_ = 0;
  std::uint64_t base_ = 0;
};

class fabric_endpoint {
 public:
  fabric_endpoint() = default;
  fabric_endpoint(fabric_endpoint&&) noexcept;
  fabric_endpoint& operator=(fabric_endpoint&&) noexcept;
  fabric_endpoint(const fabric_endpoint&) = delete;
  fabric_endpoint& operator=(const fabric_endpoint&) = delete;
  ~fabric_endpoint();

  static result<fabric_endpoint> open(const endpoint_config& config);

  // This endpoint's name, to be exchanged at bootstrap.
  const std::vector<std::byte>& address() const noexcept { return address_; }
  // Inserts peer names in order; peer i gets fi_addr_t i (FI_AV_TABLE). Call once.
  std::error_code insert_peers(const std::vector<std::vector<std::byte>>& names);
  // Inserts one more name and returns its fi_addr_t (for tools that talk to a single agent).
  result<std::uint64_t> insert_peer(std::span<const std::byte> name);

  // Registers a buffer for sends and receives (or the given access, e.g. FI_READ for the local
  // side of an fi_read) where the provider requires it (FI_MR_LOCAL); else returns an empty one.
  result<memory_registration> register_memory(void* buffer, std::size_t bytes, std::uint64_t access = FI_SEND | FI_RECV);
  // Registers a buffer for remote read and write and for local RMA, honouring the provider's
  // mr_mode: FI_MR_PROV_KEY (the provider picks the key, else `requested_key`, unique in this
  // domain, is used), FI_MR_VIRT_ADDR (peers address it by virtual address, else by offset),
  // FI_MR_ENDPOINT (bound to this endpoint and enabled), FI_MR_LOCAL and FI_MR_ALLOCATED (the
  // buffer is mapped memory the caller owns). Expensive (the provider may pin pages): register
  // once and reuse. errc-like fabric errors; -FI_EOPNOTSUPP when the endpoint has no FI_RMA.
  result<rma_registration> register_rma(void* buffer, std::size_t bytes, std::uint64_t requested_key);

  fid_fabric* fabric() const noexcept { return fabric_; }
  fid_ep* ep() const noexcept { return ep_; }
  fid_cq* cq() const noexcept { return cq_; }
  fid_domain* domain() const noexcept { return domain_; }
  const endpoint_info& info() const noexcept { return info_; }
  // Closes the endpoint alone: nothing is posted or in flight afterwards, so buffers and their
  // registrations can be freed before close() releases the domain.
  void close_endpoint() noexcept;
  void close() noexcept;

 private:
  std::error_code bind_to_endpoint(fid_mr* mr) noexcept;  // FI_MR_ENDPOINT providers
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_av* av_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_ep* ep_ = nullptr;
  std::vector<std::byte> address_;
  endpoint_info info_;
};

}  // namespace chanpool::transport
