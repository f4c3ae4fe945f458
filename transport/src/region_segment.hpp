// A region's shared-memory segment: a header page, then the region's bytes. The node's agent
// creates it (and registers the bytes with the provider); the owning process maps it by name.
#pragma once

#include <boost/interprocess/mapped_region.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

#include "chanpool/channels/error.hpp"

namespace chanpool::transport::detail {

inline constexpr std::uint64_t region_magic = 0x3130474E52504343ull;  // "CCPRGN01"
inline constexpr std::uint32_t region_version = 1;
// The bytes start a page in: page-aligned for the provider (registration pins whole pages).
inline constexpr std::size_t region_data_offset = 4096;

enum class region_phase : std::uint32_t { initialising = 0, open = 1 };

struct region_header {
  std::uint64_t magic;              // region_magic, release-stored last
  std::uint32_t version;
  std::uint32_t phase;              // region_phase
  std::uint32_t agent_pid;          // the agent that created and registered it
  std::uint32_t region_id;
  std::uint64_t generation;
  std::uint64_t bytes;              // of the region, not counting the header page
  std::uint32_t rights;             // rma_rights peers may use
  std::uint32_t owner_pid;          // the process that asked for it
};
static_assert(sizeof(region_header) == 48, "region_header is a shared-memory layout");
static_assert(std::is_trivially_copyable_v<region_header>);

// "rgn-<id>-<generation>": a region created again gets a name no old mapping shares.
std::string region_segment_name(std::uint32_t id, std::uint64_t generation);

struct region_mapping {
  boost::interprocess::mapped_region map;
  std::byte* data = nullptr;  // region_data_offset into the mapping
  std::size_t bytes = 0;
};

// Agent: creates the segment of `bytes` (header published); errc::out_of_memory when the host
// cannot size or map it, errc::already_exists for a leftover of a crashed agent (removed first).
result<region_mapping> create_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation,
                                             std::uint64_t bytes, std::uint32_t rights, std::uint32_t owner_pid,
                                             std::uint32_t agent_pid);
// A process: maps the segment and checks its header against what the agent answered.
result<region_mapping> open_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation,
                                           std::uint64_t bytes);
void unlink_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation) noexcept;

}  // namespace chanpool::transport::detail
