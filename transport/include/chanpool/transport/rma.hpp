// One-sided transfers between nodes: regions of a node's shared memory that processes on any node
// put bytes into and get bytes from, without the owner's processes taking part.
//
//   auto c = client::attach(node_job).value();
//   auto r = region::create(c, 1 << 20).value();        // on this node, registered by its agent
//   send_somewhere(r.descriptor());                       // 48 trivially copyable bytes
//   ...
//   // on another node, from a region of its own:
//   auto src = region::create(c2, 1 << 20).value();
//   fill(src.bytes());
//   std::error_code ec = c2.put(src, 0, 4096, desc, 0);   // blocking; put_async() returns a handle
//
// How it works (docs/rma.md): a region is a shared-memory segment the node's agent created and
// registered with the provider once (fi_mr_reg). A transfer goes to the agent of the region's
// node, which checks the descriptor against its table (generation, range, rights) and moves the
// bytes with fi_read (put) or fi_write (get) between the two regions' memory: no frame, no bounce
// buffer, no copy on either node. Completion means both MPI levels at once: the source may be
// reused and the bytes are visible at the target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <type_traits>

#include "chanpool/transport/client.hpp"

namespace chanpool::transport {

enum class rma_errc {
  out_of_range = 1,     // offset + length outside the region or the descriptor
  no_rights,            // the descriptor (or the region) does not allow this direction
  stale_region,         // the region was closed (and perhaps created again): the descriptor is old
  region_closed,        // a region handle used after close()
  peer_dead,            // the region's node, or this node's agent, is gone; the transfer failed
  wrong_job,            // the descriptor belongs to another job
  rma_unsupported,      // the provider has no FI_RMA (the message names it)
  not_local,            // the local region of a transfer is not this client's node's
  invalid_descriptor,   // an empty or malformed descriptor
  cancelled,            // rma_op::cancel()
  timed_out,            // a blocking call or wait() ran out of time; the transfer may still finish
  registration_failed,  // the provider refused to register the memory (fi_mr_reg)
  too_large,            // longer than the provider moves in one operation
  notify_failed,        // the bytes landed, but the notification channel was full or gone
  too_many_regions,     // the node's region table is full
};

const std::error_category& rma_category() noexcept;
inline std::error_code make_error_code(rma_errc e) noexcept { return {static_cast<int>(e), rma_category()}; }

enum rma_rights : std::uint32_t { rma_read = 1, rma_write = 2, rma_read_write = 3 };

// Names bytes [offset, offset + length) of a region, for the rights it grants. Any process may
// copy it into a message. A region closed and created again has a new generation, so an old
// descriptor gets rma_errc::stale_region; no descriptor reaches outside its range.
struct region_descriptor {
  std::uint32_t node = 0;
  std::uint32_t region_id = 0;
  std::uint64_t generation = 0;  // 0: an empty descriptor
  std::uint64_t offset = 0;      // in the region
  std::uint64_t length = 0;
  std::uint32_t rights = 0;      // rma_rights
  std::uint32_t job_tag = 0;
  std::uint64_t reserved = 0;
};
static_assert(sizeof(region_descriptor) == 48, "region_descriptor travels in messages: its layout is fixed");
static_assert(std::is_trivially_copyable_v<region_descriptor>);

// A narrower descriptor: [offset, offset + length) of d, with at most d's rights.
// rma_errc::out_of_range or no_rights when it would reach beyond d.
result<region_descriptor> narrow(const region_descriptor& d, std::uint64_t offset, std::uint64_t length,
                                 std::uint32_t rights);

// What a put with notification leaves in the target channel once its bytes are visible.
struct put_notification {
  std::uint32_t region_id = 0;
  std::uint32_t source_node = 0;
  std::uint64_t generation = 0;
  std::uint64_t offset = 0;  // in the region
  std::uint64_t length = 0;
  std::uint64_t tag = 0;     // the caller's
};
static_assert(sizeof(put_notification) == 40, "put_notification is a message format: its layout is fixed");
static_assert(std::is_trivially_copyable_v<put_notification>);

// Memory in this node's shared memory that the agent registered for one-sided access.
// Owned by the process that created it: closed by close(), the destructor, or the owner's death
// (the agent notices it and closes the region). Transfers in flight on a closed region finish
// first: the agent deregisters and unmaps once the last one ended.
class region {
 public:
  region() noexcept;
  region(region&&) noexcept;
  region& operator=(region&&) noexcept;
  ~region();

  // `remote_rights`: what descriptors of it may grant (peers' put needs rma_write, get rma_read).
  // Errors: rma_unsupported, registration_failed, too_many_regions, errc::out_of_memory, errc::
  // peer_unreachable (the agent is gone), errc::timed_out.
  static result<region> create(client& c, std::size_t bytes, std::uint32_t remote_rights = rma_read_write,
                               timeout t = std::chrono::seconds(10));

  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  bool is_open() const noexcept { return data_ != nullptr; }
  // The whole region with every right it grants.
  region_descriptor descriptor() const noexcept { return desc_; }

  // Asks the agent to close it and waits for the answer. Descriptors become stale at once.
  std::error_code close(timeout t = std::chrono::seconds(10));

 private:
  friend class client;
  struct mapping;
  std::shared_ptr<detail::client_state> client_;
  std::unique_ptr<mapping> map_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  region_descriptor desc_{};
};

// A transfer in flight. Not thread-safe: one thread tests or waits on a handle.
class rma_op {
 public:
  rma_op() = default;
  rma_op(rma_op&&) noexcept;
  rma_op& operator=(rma_op&&) noexcept;
  ~rma_op();

  // True once the transfer ended; `ec` is then its outcome. Never blocks on the transfer.
  bool test(std::error_code& ec) noexcept;
  // Waits up to t: the outcome, or rma_errc::timed_out (the transfer goes on; wait again).
  std::error_code wait(timeout t = channels::forever) noexcept;
  // Stops waiting: test() and wait() report cancelled from now on. A transfer already handed to
  // the agent still runs to its end (its regions stay in use until then), like a cancelled
  // receive whose data already arrived.
  void cancel() noexcept;

 private:
  friend class client;
  std::shared_ptr<detail::client_state> client_;
  std::uint64_t token_ = 0;
  std::uint32_t node_ = 0;
  bool done_ = false;
  std::error_code outcome_;
};

}  // namespace chanpool::transport

template <>
struct std::is_error_code_enum<chanpool::transport::rma_errc> : std::true_type {};
