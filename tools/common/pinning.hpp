// Pins the calling process to one physical core (first PU of the core), via hwloc, so that
// ping-pong peers sit on distinct cores even on SMT machines.
#pragma once

#include <hwloc.h>

#include <string>

namespace chanpool::tools {

// Returns an empty string on success, else why it could not pin.
inline std::string pin_to_core(unsigned core_index) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return "hwloc_topology_init failed";
  std::string why;
  if (hwloc_topology_load(topo) == 0) {
    const int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (cores <= 0) {
      why = "hwloc found no cores";
    } else {
      hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, core_index % static_cast<unsigned>(cores));
      hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
      hwloc_bitmap_singlify(set);
      if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) != 0) why = "hwloc_set_cpubind failed";
      hwloc_bitmap_free(set);
    }
  } else {
    why = "hwloc_topology_load failed";
  }
  hwloc_topology_destroy(topo);
  return why;
}

inline unsigned core_count() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return 1;
  unsigned n = 1;
  if (hwloc_topology_load(topo) == 0) n = static_cast<unsigned>(std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE)));
  hwloc_topology_destroy(topo);
  return n;
}

}  // namespace chanpool::tools
