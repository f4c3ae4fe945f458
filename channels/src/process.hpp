// Process identity and liveness for crash repair.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>

namespace chanpool::channels::detail {

struct registry_entry;

// The calling process's pid, 0 until first asked for; refreshed in the child after fork().
inline std::atomic<std::uint32_t> cached_pid{0};
std::uint32_t init_current_pid() noexcept;

// getpid() without a system call (inline: every send and receive asks for it).
inline std::uint32_t current_pid() noexcept {
  const std::uint32_t pid = cached_pid.load(std::memory_order_relaxed);
  return pid != 0 ? pid : init_current_pid();
}

// Kernel start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22); 0 if unknown.
std::uint64_t process_start_time(std::uint32_t pid) noexcept;

// Reads /proc/<pid>/stat: the state letter (field 3) and the start time (field 22).
bool read_process_stat(std::uint32_t pid, char& state, std::uint64_t& start_time) noexcept;

// The calling process's start time (cached; refreshed after fork).
std::uint64_t current_start_time() noexcept;

// False only when `pid` is certainly gone: kill(pid, 0) says ESRCH; or it is a zombie (killed or
// exited, not reaped yet, no thread left); or `start_time` is not 0 and the process now holding
// that pid started at another time (pid reuse).
bool process_alive_since(std::uint32_t pid, std::uint64_t start_time) noexcept;

// process_alive_since() with the start time the registry recorded for `pid` (0 if none).
bool process_alive(std::uint32_t pid, const registry_entry* registry, std::uint32_t entries) noexcept;

// Claims a registry entry for the calling process; returns its index or UINT32_MAX when the
// table is full even after taking back entries of dead processes (the channel still works;
// liveness then relies on kill(pid, 0) alone).
std::uint32_t register_process(registry_entry* registry, std::uint32_t entries) noexcept;
void deregister_process(registry_entry* registry, std::uint32_t entries, std::uint32_t index,
                        std::uint32_t pid) noexcept;
std::uint32_t count_live_processes(const registry_entry* registry, std::uint32_t entries) noexcept;

// The processes chanpool forks to serve a node (a Pool node's supervisor, a virtual node's agent)
// follow their parent with PR_SET_PDEATHSIG(parent_death_signal). The kernel sends it when the
// *thread* that forked the child ends, which is not always the parent's death: a parent's thread
// may end while the process lives on, and a parent killed with SIGKILL ends thread by thread, so
// the child may first be handed to a sibling thread that still runs (getppid() unchanged, the
// signal sent) and only then to its reaper (the signal sent again). The signal therefore only
// says "look": the parent is gone once getppid() differs from its pid. It is not SIGTERM, which
// these processes take as "stop" from their owner. Block it before calling follow_parent_death.
inline constexpr int parent_death_signal = SIGUSR1;

// Asks for parent_death_signal on the forking thread's end; false when `parent` is gone already.
bool follow_parent_death(std::uint32_t parent) noexcept;

// Whether the process that forked this one (pid `parent`) has ended.
bool parent_gone(std::uint32_t parent) noexcept;

}  // namespace chanpool::channels::detail
