// Up-front checks that a start-up fits this host: open files, processes, /dev/shm and memory.
//
// A virtual cluster (and a Pool on top of it) forks processes and opens files and segments per
// node; a size the host cannot take should fail at once with the figures and the largest size
// that fits, not after minutes with "Too many open files" from deep inside. The per-node costs
// are estimates measured on Debian 12 with tcp;ofi_rxm (docs/pool.md, "Limits").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include "chanpool/transport/bootstrap.hpp"

namespace chanpool::transport {

// What a start-up will ask of the host.
struct resource_need {
  std::uint64_t tasks = 0;                 // processes and threads it starts (the kernel counts both)
  std::uint64_t open_files = 0;            // descriptors the calling process holds at once
  std::uint64_t open_files_per_child = 0;  // the most any one child (an agent) holds
  std::uint64_t shm_bytes = 0;             // /dev/shm pages written at start
  std::uint64_t memory_bytes = 0;          // resident memory of the new processes
};
resource_need operator+(const resource_need& a, const resource_need& b) noexcept;

// What the host has left for the calling user and process.
struct host_capacity {
  std::uint64_t tasks = 0;             // under RLIMIT_NPROC, kernel.pid_max and threads-max, less what runs
  std::uint64_t open_files = 0;        // RLIMIT_NOFILE (soft) less the descriptors open now
  std::uint64_t open_files_limit = 0;  // RLIMIT_NOFILE (soft): what each child inherits
  std::uint64_t shm_bytes = 0;         // free in /dev/shm
  std::uint64_t memory_bytes = 0;      // MemAvailable
  static host_capacity probe() noexcept;
};

// Which limit a need exceeds first (in the order of the fields); {} when it fits.
std::error_code exceeded(const resource_need& need, const host_capacity& have) noexcept;
// "N open files in this process (this host allows M)", ... for each limit exceeded; "" if none.
std::string describe_excess(const resource_need& need, const host_capacity& have);
// The largest n in [1, upper] whose need(n) fits (0 if none). need(n) must grow with n.
std::uint32_t largest_fitting(std::uint32_t upper, const std::function<resource_need(std::uint32_t)>& need,
                              const host_capacity& have);

// What `nodes` virtual nodes with agents configured as `agent` need: an agent process per node
// with a connection to every other node, its inbox channel, and a socketpair in this process.
resource_need cluster_need(std::uint32_t nodes, const agent_config& agent) noexcept;

// Checks that config.nodes virtual nodes fit before any is started: {} if they do; else the
// error virtual_cluster::start() returns (std::errc::too_many_files_open,
// resource_unavailable_try_again, no_space_on_device or not_enough_memory) and, in `why`, what
// was asked, what the host allows, and the largest node count that fits.
std::error_code check_cluster_fits(const cluster_config& config, std::string* why = nullptr);

}  // namespace chanpool::transport
