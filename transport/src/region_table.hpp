// The agent's table of its node's regions (rma.hpp): created, registered once, leased to
// transfers, closed when the owner asks or dies. A closed region's generation is retired at
// once (new transfers get stale_region), but its memory and registration live until the last
// transfer using it ended: the provider is never left pointing at unmapped memory.
//
// No libfabric here: registration is a hook, so the rules are tested directly
// (tests/transport/region_table_test.cpp). Threadsafe: the agent's progress thread creates, closes
// and leases for outgoing and incoming transfers and reaps; the owner's thread closes all at stop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/rma.hpp"
#include "region_segment.hpp"

namespace chanpool::transport::detail {

// Registers [data, data + bytes) for RMA with a key unique in the domain.
using register_fn = std::function<result<rma_registration>(std::byte* data, std::size_t bytes, std::uint64_t key)>;

struct region_entry {
  std::uint32_t id = 0;
  std::uint64_t generation = 0;
  std::uint32_t rights = 0;
  std::uint32_t owner_pid = 0;
  std::uint64_t owner_start_time = 0;  // /proc start time: a reused pid is not the owner
  region_mapping memory;
  rma_registration registration;
  std::uint32_t leases = 0;
  bool retired = false;                // closed: no new lease; freed when leases reach 0
};

// What a transfer holds while it runs: where the bytes are, for this agent and for a peer.
struct region_lease {
  std::uint32_t id = 0;
  std::uint64_t generation = 0;
  std::byte* data = nullptr;       // the first byte of the leased range, in the agent's mapping
  void* desc = nullptr;            // local descriptor for the provider (FI_MR_LOCAL)
  std::uint64_t key = 0;           // remote key
  std::uint64_t address = 0;       // remote address of the first byte of the range
};

class region_table {
 public:
  region_table(std::string node_job, std::uint32_t agent_pid, std::uint32_t max_regions, register_fn reg);
  ~region_table();

  struct created {
    std::uint32_t id;
    std::uint64_t generation;
  };
  // rma_errc::too_many_regions, registration_failed; errc::out_of_memory.
  result<created> create(std::uint32_t owner_pid, std::uint64_t owner_start_time, std::uint64_t bytes,
                         std::uint32_t rights);
  // Retires the region (stale for everyone from now on); stale_region if it is not this one.
  std::error_code close(std::uint32_t id, std::uint64_t generation);

  // Checks a transfer's range and rights (`needed`: rma_rights a peer needs, 0 for this node's
  // own side) and takes a lease. Errors: stale_region, out_of_range, no_rights.
  result<region_lease> lease(std::uint32_t id, std::uint64_t generation, std::uint64_t offset, std::uint64_t length,
                             std::uint32_t needed);
  void release(const region_lease& l);

  // Retires the regions whose owner process is gone (zombies included). Returns how many.
  std::size_t reap_dead_owners();
  // Retires every region; those still leased are freed by their last release().
  void close_all();
  std::size_t open_count() const;

 private:
  void free_locked(std::unique_ptr<region_entry>& slot);

  std::string node_job_;
  std::uint32_t agent_pid_;
  register_fn register_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<region_entry>> slots_;  // by id; null: free
  std::uint64_t next_generation_ = 1;                 // never reused, so also a unique key
};

}  // namespace chanpool::transport::detail
