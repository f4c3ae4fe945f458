#include "placement.hpp"

#include <hwloc.h>

#include <algorithm>
#include <memory>

namespace chanpool::pool::detail {
namespace {

struct topology_deleter {
  void operator()(hwloc_topology* t) const noexcept { hwloc_topology_destroy(t); }
};
using topology = std::unique_ptr<hwloc_topology, topology_deleter>;

topology load_topology() {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return nullptr;
  topology owned(t);
  if (hwloc_topology_load(t) != 0) return nullptr;
  return owned;
}

}  // namespace

unsigned physical_cores() {
  const topology t = load_topology();
  if (!t) return 1;
  return static_cast<unsigned>(std::max(1, hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_CORE)));
}

std::string pin_to_core(unsigned core) {
  const topology t = load_topology();
  if (!t) return "hwloc could not load the topology";
  const int cores = hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_CORE);
  if (cores <= 0) return "hwloc found no cores";
  hwloc_obj_t obj = hwloc_get_obj_by_type(t.get(), HWLOC_OBJ_CORE, core % static_cast<unsigned>(cores));
  hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
  hwloc_bitmap_singlify(set);  // one PU: SMT siblings stay free for others
  const int rc = hwloc_set_cpubind(t.get(), set, HWLOC_CPUBIND_PROCESS);
  hwloc_bitmap_free(set);
  return rc == 0 ? std::string() : std::string("hwloc_set_cpubind failed");
}

}  // namespace chanpool::pool::detail
