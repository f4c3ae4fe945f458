#include "region_segment.hpp"

#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <atomic>
#include <cstring>

#include "segment.hpp"  // channels/src: shm_name_for (one naming scheme for every segment of a job)

namespace chanpool::transport::detail {

namespace bip = boost::interprocess;

std::string region_segment_name(std::uint32_t id, std::uint64_t generation) {
  return "rgn-" + std::to_string(id) + "-" + std::to_string(generation);
}

namespace {
result<std::string> shm_name(const std::string& node_job, std::uint32_t id, std::uint64_t generation) {
  std::string out;
  channels::open_options o;
  o.job = node_job;
  if (auto ec = channels::detail::shm_name_for(region_segment_name(id, generation), o, out); ec) return ec;
  return out;
}
}  // namespace

result<region_mapping> create_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation,
                                             std::uint64_t bytes, std::uint32_t rights, std::uint32_t owner_pid,
                                             std::uint32_t agent_pid) {
  auto name = shm_name(node_job, id, generation);
  if (!name) return name.error();
  region_mapping out;
  try {
    bip::shared_memory_object::remove(name->c_str());  // a crashed agent's leftover of this generation
    bip::shared_memory_object shm(bip::create_only, name->c_str(), bip::read_write, bip::permissions(0600));
    try {
      shm.truncate(static_cast<bip::offset_t>(region_data_offset + bytes));
      out.map = bip::mapped_region(shm, bip::read_write);
    } catch (...) {
      bip::shared_memory_object::remove(name->c_str());
      throw;
    }
  } catch (const bip::interprocess_exception&) {
    return errc::out_of_memory;
  }
  auto* base = static_cast<std::byte*>(out.map.get_address());
  auto* h = reinterpret_cast<region_header*>(base);
  h->version = region_version;
  h->phase = static_cast<std::uint32_t>(region_phase::open);
  h->agent_pid = agent_pid;
  h->region_id = id;
  h->generation = generation;
  h->bytes = bytes;
  h->rights = rights;
  h->owner_pid = owner_pid;
  std::atomic_ref<std::uint64_t>(h->magic).store(region_magic, std::memory_order_release);
  out.data = base + region_data_offset;
  out.bytes = bytes;
  return out;
}

result<region_mapping> open_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation,
                                           std::uint64_t bytes) {
  auto name = shm_name(node_job, id, generation);
  if (!name) return name.error();
  region_mapping out;
  try {
    bip::shared_memory_object shm(bip::open_only, name->c_str(), bip::read_write);
    bip::offset_t size = 0;
    if (!shm.get_size(size) || static_cast<std::uint64_t>(size) != region_data_offset + bytes) return errc::layout_mismatch;
    out.map = bip::mapped_region(shm, bip::read_write);
  } catch (const bip::interprocess_exception&) {
    return errc::not_found;
  }
  auto* base = static_cast<std::byte*>(out.map.get_address());
  auto* h = reinterpret_cast<const region_header*>(base);
  if (std::atomic_ref<const std::uint64_t>(h->magic).load(std::memory_order_acquire) != region_magic) return errc::corrupted;
  if (h->version != region_version) return errc::version_mismatch;
  if (h->region_id != id || h->generation != generation || h->bytes != bytes) return errc::layout_mismatch;
  out.data = base + region_data_offset;
  out.bytes = bytes;
  return out;
}

void unlink_region_segment(const std::string& node_job, std::uint32_t id, std::uint64_t generation) noexcept {
  auto name = shm_name(node_job, id, generation);
  if (name) bip::shared_memory_object::remove(name->c_str());
}

}  // namespace chanpool::transport::detail
