#include "segment.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "process.hpp"

namespace chanpool::channels::detail {
namespace bip = boost::interprocess;
namespace {

constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept { return (v + a - 1) / a * a; }

struct layout {
  std::uint64_t control_offset, registry_offset, ring_offset, heap_owner_offset, heap_offset, total_bytes;
};

// The one place that decides where everything goes; create and open both use it.
layout layout_for(std::uint32_t capacity, std::uint32_t slot_bytes, std::uint32_t heap_blocks,
                  std::uint32_t heap_block_bytes, std::uint32_t registry_entries) noexcept {
  layout l{};
  l.control_offset = align_up(sizeof(segment_header), cache_line);
  l.registry_offset = l.control_offset + sizeof(control_block);
  l.ring_offset = align_up(waiter_table_offset(l.registry_offset, registry_entries) +
                               std::uint64_t{registry_entries} * sizeof(waiter_record),
                           4096);
  l.heap_owner_offset = align_up(l.ring_offset + std::uint64_t{capacity} * slot_bytes, cache_line);
  l.heap_offset = align_up(l.heap_owner_offset + std::uint64_t{heap_blocks} * sizeof(std::uint32_t),
                           std::max<std::uint64_t>(4096, heap_block_bytes));
  l.total_bytes = l.heap_offset + std::uint64_t{heap_blocks} * heap_block_bytes;
  return l;
}

std::uint64_t checksum_of(const segment_header& h) noexcept {
  segment_header copy = h;
  copy.state = 0;  // state changes after the checksum is written
  const auto* bytes = reinterpret_cast<const unsigned char*>(&copy);
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::size_t i = offsetof(segment_header, version); i < offsetof(segment_header, layout_checksum); ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::error_code from_errno(int err) noexcept {
  switch (err) {
    case ENOENT: return errc::not_found;
    case EEXIST: return errc::already_exists;
    case EACCES:
    case EPERM: return errc::permission_denied;
    case ENOMEM:
    case ENOSPC:
    case EFBIG: return errc::out_of_memory;
    case ENAMETOOLONG:
    case EINVAL: return errc::invalid_name;
    default: return {err, std::system_category()};
  }
}

std::error_code from_boost(const bip::interprocess_exception& e) noexcept {
  const int native = e.get_native_error();
  if (native != 0) return from_errno(native);
  switch (e.get_error_code()) {
    case bip::not_found_error: return errc::not_found;
    case bip::already_exists_error: return errc::already_exists;
    case bip::security_error: return errc::permission_denied;
    case bip::out_of_space_error: return errc::out_of_memory;
    default: return {EIO, std::system_category()};
  }
}

void fill_view(std::byte* base, const segment_header& h, channel_view& v) noexcept {
  v.base = base;
  v.header = reinterpret_cast<segment_header*>(base);
  v.control = reinterpret_cast<control_block*>(base + h.control_offset);
  v.registry = reinterpret_cast<registry_entry*>(base + h.registry_offset);
  v.waiters = reinterpret_cast<waiter_record*>(base + waiter_table_offset(h.registry_offset, h.registry_entries));
  v.ring = base + h.ring_offset;
  v.heap_owner = reinterpret_cast<std::uint32_t*>(base + h.heap_owner_offset);
  v.heap = base + h.heap_offset;
  v.capacity = h.capacity;
  v.mask = h.capacity - 1u;
  v.slot_bytes = h.slot_bytes;
  v.inline_capacity = h.slot_bytes - static_cast<std::uint32_t>(sizeof(slot_header));
  v.heap_blocks = h.heap_blocks;
  v.heap_block_bytes = h.heap_block_bytes;
  v.heap_block_shift = static_cast<std::uint32_t>(std::countr_zero(h.heap_block_bytes));
  v.registry_entries = h.registry_entries;
  v.heap_bytes = h.heap_bytes;
  v.single_producer = h.mode_flags & mode_single_producer;
  v.single_consumer = h.mode_flags & mode_single_consumer;
}

}  // namespace

bool valid_identifier(std::string_view s, std::size_t max_length) noexcept {
  if (s.empty() || s.size() > max_length) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string effective_job(const open_options& options) {
  if (!options.job.empty()) return options.job;
  if (const char* env = std::getenv("CHANPOOL_JOB"); env && *env) return env;
  return "default";
}

std::error_code shm_name_for(std::string_view name, const open_options& options, std::string& out) {
  const std::string job = effective_job(options);
  if (!valid_identifier(name, max_name_length) || !valid_identifier(job, max_job_length)) return errc::invalid_name;
  out = "chanpool." + std::to_string(::getuid()) + "." + job + "." + std::string(name);
  return {};
}

std::error_code validate_config(const channel_config& c) noexcept {
  const bool ok = std::has_single_bit(c.capacity) && c.capacity >= 2 && c.capacity <= (1u << 24) &&
                  c.slot_bytes % cache_line == 0 && c.slot_bytes >= 64 && c.slot_bytes <= 65536 &&
                  std::has_single_bit(c.heap_block_bytes) && c.heap_block_bytes >= 64 &&
                  c.heap_bytes % c.heap_block_bytes == 0 && c.heap_bytes / c.heap_block_bytes < heap_owner_pid_bit &&
                  c.heap_bytes < (1ull << 40);
  return ok ? std::error_code{} : make_error_code(errc::invalid_config);
}

std::error_code validate_header(std::byte* base, std::size_t mapped_bytes, channel_view& view) noexcept {
  if (mapped_bytes < sizeof(segment_header)) return errc::layout_mismatch;
  auto* h = reinterpret_cast<segment_header*>(base);
  if (std::atomic_ref<std::uint32_t>(h->state).load(std::memory_order_acquire) != state_ready) {
    // Not published yet. The creator stores magic just before `ready`, so magic without ready
    // is either that instant or damage: open_segment waits, then calls it corrupted.
    return errc::not_ready;
  }
  if (h->magic != segment_magic) return errc::corrupted;
  if (h->version != layout_version) return errc::version_mismatch;
  if (h->header_bytes != sizeof(segment_header)) return errc::layout_mismatch;
  if (h->layout_checksum != checksum_of(*h)) return errc::corrupted;
  const channel_config config{h->capacity, h->slot_bytes, h->heap_bytes, h->heap_block_bytes};
  if (validate_config(config) || (h->mode_flags & ~std::uint32_t{mode_single_producer | mode_single_consumer}) || std::uint64_t{h->heap_blocks} * h->heap_block_bytes != h->heap_bytes ||
      h->registry_entries == 0 || h->registry_entries > 65536)
    return errc::corrupted;
  const layout l = layout_for(h->capacity, h->slot_bytes, h->heap_blocks, h->heap_block_bytes, h->registry_entries);
  if (l.control_offset != h->control_offset || l.registry_offset != h->registry_offset ||
      l.ring_offset != h->ring_offset || l.heap_owner_offset != h->heap_owner_offset ||
      l.heap_offset != h->heap_offset || l.total_bytes != h->total_bytes || h->total_bytes != mapped_bytes)
    return errc::layout_mismatch;
  fill_view(base, *h, view);
  return {};
}

std::error_code create_segment(const std::string& shm_name, std::string_view job, std::string_view name,
                               const channel_config& config, segment*& out) {
  if (auto ec = validate_config(config)) return ec;
  const std::uint32_t heap_blocks = static_cast<std::uint32_t>(config.heap_bytes / config.heap_block_bytes);
  const layout l = layout_for(config.capacity, config.slot_bytes, heap_blocks, config.heap_block_bytes,
                              default_registry_entries);
  auto* seg = new (std::nothrow) segment;
  if (!seg) return errc::out_of_memory;
  try {
    bip::shared_memory_object shm(bip::create_only, shm_name.c_str(), bip::read_write, bip::permissions(0600));
    try {
      shm.truncate(static_cast<bip::offset_t>(l.total_bytes));
      seg->region = bip::mapped_region(shm, bip::read_write);
    } catch (...) {
      bip::shared_memory_object::remove(shm_name.c_str());
      throw;
    }
  } catch (const bip::interprocess_exception& e) {
    delete seg;
    return from_boost(e);
  }
  auto* base = static_cast<std::byte*>(seg->region.get_address());
  // The fresh object is zero-filled: state == initializing, all heap blocks free, all counters 0.
  auto* h = reinterpret_cast<segment_header*>(base);
  h->version = layout_version;
  h->header_bytes = sizeof(segment_header);
  h->creator_pid = current_pid();
  h->creator_start_time = process_start_time(h->creator_pid);
  h->created_unix_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  h->total_bytes = l.total_bytes;
  h->capacity = config.capacity;
  h->slot_bytes = config.slot_bytes;
  h->heap_bytes = config.heap_bytes;
  h->heap_block_bytes = config.heap_block_bytes;
  h->heap_blocks = heap_blocks;
  h->registry_entries = default_registry_entries;
  h->mode_flags = (config.single_producer ? mode_single_producer : 0u) | (config.single_consumer ? mode_single_consumer : 0u);
  h->control_offset = l.control_offset;
  h->registry_offset = l.registry_offset;
  h->ring_offset = l.ring_offset;
  h->heap_owner_offset = l.heap_owner_offset;
  h->heap_offset = l.heap_offset;
  std::strncpy(h->job, std::string(job).c_str(), sizeof h->job - 1);
  std::strncpy(h->name, std::string(name).c_str(), sizeof h->name - 1);
  h->layout_checksum = checksum_of(*h);
  fill_view(base, *h, seg->view);
  for (std::uint64_t i = 0; i < config.capacity; ++i) seg->view.slot(i)->ctrl = make_ctrl(i, slot_empty, 0);
  // Publish last: magic, then state with release so openers that see `ready` see everything.
  h->magic = segment_magic;
  std::atomic_ref<std::uint32_t>(h->state).store(state_ready, std::memory_order_release);
  out = seg;
  return {};
}

std::error_code open_segment(const std::string& shm_name, segment*& out) {
  auto* seg = new (std::nothrow) segment;
  if (!seg) return errc::out_of_memory;
  std::error_code ec;
  bool magic_without_ready = false;
  // A creator that is between shm_open and publishing is given up to a second.
  for (int attempt = 0; attempt < 100; ++attempt) {
    try {
      bip::shared_memory_object shm(bip::open_only, shm_name.c_str(), bip::read_write);
      bip::offset_t size = 0;
      if (!shm.get_size(size) || size < static_cast<bip::offset_t>(sizeof(segment_header))) {
        ec = size == 0 ? make_error_code(errc::not_ready) : make_error_code(errc::layout_mismatch);
      } else {
        seg->region = bip::mapped_region(shm, bip::read_write);
        ec = validate_header(static_cast<std::byte*>(seg->region.get_address()), seg->region.get_size(), seg->view);
        if (ec == errc::not_ready)
          magic_without_ready = reinterpret_cast<const segment_header*>(seg->region.get_address())->magic != 0;
      }
    } catch (const bip::interprocess_exception& e) {
      ec = from_boost(e);
    }
    if (ec != errc::not_ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Still unpublished after a second although its magic is written: damage, not a slow creator.
  if (ec == errc::not_ready && magic_without_ready) ec = errc::corrupted;
  if (ec) {
    delete seg;
    return ec;
  }
  out = seg;
  return {};
}

std::error_code unlink_segment(const std::string& shm_name) {
  const std::string posix_name = "/" + shm_name;
  if (::shm_unlink(posix_name.c_str()) != 0) return from_errno(errno);
  return {};
}

}  // namespace chanpool::channels::detail
