// Pins the calling process to one physical core (first PU of the core), via hwloc, so that
// ping-pong peers sit on distinct cores even on SMT machines.
#pragma once

#include <hwloc.h>
#include <sched.h>

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

// Pins the calling process to one core for a scope, and gives the calling thread its former CPU
// set back at the end. For the measuring process of a tool that forks more processes afterwards
// (a virtual cluster's agents inherit the CPU set of the thread that forks them): without the
// restore, a later phase's agents would all share the core the earlier phase pinned to.
class scoped_pin {
 public:
  scoped_pin(bool on, unsigned core_index) {
    if (!on) return;
    CPU_ZERO(&saved_);
    saved_ok_ = ::sched_getaffinity(0, sizeof saved_, &saved_) == 0;
    why_ = pin_to_core(core_index);
  }
  scoped_pin(const scoped_pin&) = delete;
  scoped_pin& operator=(const scoped_pin&) = delete;
  ~scoped_pin() {
    if (saved_ok_) ::sched_setaffinity(0, sizeof saved_, &saved_);
  }
  const std::string& why() const noexcept { return why_; }  // empty: pinned (or not asked to)

 private:
  cpu_set_t saved_{};
  bool saved_ok_ = false;
  std::string why_;
};

inline unsigned core_count() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return 1;
  unsigned n = 1;
  if (hwloc_topology_load(topo) == 0) n = static_cast<unsigned>(std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE)));
  hwloc_topology_destroy(topo);
  return n;
}

}  // namespace chanpool::tools
