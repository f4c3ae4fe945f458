// Creating, opening and validating channel segments (Boost.Interprocess shared memory).
#pragma once

#include <boost/interprocess/mapped_region.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "chanpool/channels/channel.hpp"
#include "layout.hpp"

namespace chanpool::channels::detail {

// Process-local, validated copy of the layout plus pointers into the mapping. Bounds come from
// here, never re-read from the (shared, writable by others) header.
struct channel_view {
  std::byte* base = nullptr;
  segment_header* header = nullptr;
  control_block* control = nullptr;
  registry_entry* registry = nullptr;
  waiter_record* waiters = nullptr;  // registry_entries of them
  std::byte* ring = nullptr;
  std::uint32_t* heap_owner = nullptr;
  std::byte* heap = nullptr;
  std::uint64_t mask = 0;
  std::uint32_t capacity = 0;
  std::uint32_t slot_bytes = 0;
  std::uint32_t inline_capacity = 0;
  std::uint32_t heap_blocks = 0;
  std::uint32_t heap_block_bytes = 0;
  std::uint32_t heap_block_shift = 0;
  std::uint32_t registry_entries = 0;
  std::uint64_t heap_bytes = 0;
  bool single_producer = false;
  bool single_consumer = false;

  slot_header* slot(std::uint64_t position) const noexcept {
    return reinterpret_cast<slot_header*>(ring + (position & mask) * slot_bytes);
  }
  std::uint32_t slot_index(std::uint64_t position) const noexcept { return static_cast<std::uint32_t>(position & mask); }
  std::byte* inline_payload(slot_header* s) const noexcept { return reinterpret_cast<std::byte*>(s + 1); }
  std::byte* block_address(std::uint32_t block) const noexcept {
    return heap + (static_cast<std::uint64_t>(block) << heap_block_shift);
  }
};

struct segment {
  boost::interprocess::mapped_region region;
  channel_view view;
};

inline constexpr std::uint32_t default_registry_entries = 256;
inline constexpr std::size_t max_name_length = 100;
inline constexpr std::size_t max_job_length = 32;

bool valid_identifier(std::string_view s, std::size_t max_length) noexcept;
std::string effective_job(const open_options& options);
// "chanpool.<uid>.<job>.<name>" (no leading slash) or an error.
std::error_code shm_name_for(std::string_view name, const open_options& options, std::string& out);

std::error_code validate_config(const channel_config& config) noexcept;
std::error_code create_segment(const std::string& shm_name, std::string_view job, std::string_view name,
                               const channel_config& config, segment*& out);
std::error_code open_segment(const std::string& shm_name, segment*& out);
std::error_code unlink_segment(const std::string& shm_name);

// Checks a mapped header against the mapping size; fills `view` when it is sound.
std::error_code validate_header(std::byte* base, std::size_t mapped_bytes, channel_view& view) noexcept;

}  // namespace chanpool::channels::detail
