#include "region_table.hpp"

#include "process.hpp"  // channels/src: process_alive_since

namespace chanpool::transport::detail {

region_table::region_table(std::string node_job, std::uint32_t agent_pid, std::uint32_t max_regions, register_fn reg)
    : node_job_(std::move(node_job)), agent_pid_(agent_pid), register_(std::move(reg)), slots_(max_regions) {}

region_table::~region_table() {
  std::lock_guard lock(mu_);
  for (auto& s : slots_)
    if (s) free_locked(s);
}

result<region_table::created> region_table::create(std::uint32_t owner_pid, std::uint64_t owner_start_time,
                                                   std::uint64_t bytes, std::uint32_t rights) {
  std::lock_guard lock(mu_);
  std::uint32_t id = 0;
  while (id < slots_.size() && slots_[id]) ++id;
  if (id == slots_.size()) return make_error_code(rma_errc::too_many_regions);
  const std::uint64_t generation = next_generation_++;
  auto mem = create_region_segment(node_job_, id, generation, bytes, rights & rma_read_write, owner_pid, agent_pid_);
  if (!mem) return mem.error();
  auto e = std::make_unique<region_entry>();
  e->id = id;
  e->generation = generation;
  e->rights = rights & rma_read_write;
  e->owner_pid = owner_pid;
  e->owner_start_time = owner_start_time;
  e->memory = std::move(*mem);
  auto reg = register_(e->memory.data, e->memory.bytes, generation);
  if (!reg) {
    unlink_region_segment(node_job_, id, generation);
    return reg.error();
  }
  e->registration = std::move(*reg);
  slots_[id] = std::move(e);
  return created{id, generation};
}

void region_table::free_locked(std::unique_ptr<region_entry>& slot) {
  // Deregister before unmapping: the provider must not keep a registration of unmapped memory.
  slot->registration.reset();
  unlink_region_segment(node_job_, slot->id, slot->generation);
  slot.reset();
}

std::error_code region_table::close(std::uint32_t id, std::uint64_t generation) {
  std::lock_guard lock(mu_);
  if (id >= slots_.size() || !slots_[id] || slots_[id]->generation != generation || slots_[id]->retired)
    return rma_errc::stale_region;
  slots_[id]->retired = true;
  if (slots_[id]->leases == 0) free_locked(slots_[id]);
  return {};
}

result<region_lease> region_table::lease(std::uint32_t id, std::uint64_t generation, std::uint64_t offset,
                                         std::uint64_t length, std::uint32_t needed) {
  std::lock_guard lock(mu_);
  if (id >= slots_.size() || !slots_[id]) return make_error_code(rma_errc::stale_region);
  region_entry& e = *slots_[id];
  if (e.generation != generation || e.retired) return make_error_code(rma_errc::stale_region);
  if (offset > e.memory.bytes || length > e.memory.bytes - offset) return make_error_code(rma_errc::out_of_range);
  if ((e.rights & needed) != needed) return make_error_code(rma_errc::no_rights);
  ++e.leases;
  region_lease l;
  l.id = id;
  l.generation = generation;
  l.data = e.memory.data + offset;
  l.desc = e.registration.desc();
  l.key = e.registration.key();
  l.address = e.registration.base() + offset;
  return l;
}

void region_table::release(const region_lease& l) {
  std::lock_guard lock(mu_);
  if (l.id >= slots_.size() || !slots_[l.id] || slots_[l.id]->generation != l.generation) return;
  region_entry& e = *slots_[l.id];
  if (e.leases > 0) --e.leases;
  if (e.retired && e.leases == 0) free_locked(slots_[l.id]);
}

std::size_t region_table::reap_dead_owners() {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto& s : slots_) {
    if (!s || s->retired) continue;
    if (channels::detail::process_alive_since(s->owner_pid, s->owner_start_time)) continue;
    s->retired = true;
    ++n;
    if (s->leases == 0) free_locked(s);
  }
  return n;
}

void region_table::close_all() {
  std::lock_guard lock(mu_);
  for (auto& s : slots_) {
    if (!s) continue;
    s->retired = true;
    if (s->leases == 0) free_locked(s);
  }
}

std::size_t region_table::open_count() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& s : slots_)
    if (s && !s->retired) ++n;
  return n;
}

}  // namespace chanpool::transport::detail
