// Starting a job's agents.
//
// Embedded default: virtual_cluster starts N virtual nodes on this host, each an agent process
// with its own shared-memory namespace (node_job(k)), exchanging addresses through the parent
// over socketpairs. After start-up the nodes talk only through libfabric.
//
// On a cluster the same program runs once per node under mpirun/srun and calls
// start_agent_mpi() (chanpool/transport/mpi_bootstrap.hpp, target chanpool::transport_mpi):
// MPI exchanges the addresses and the job key, and is never used on the data path.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "chanpool/channels/error.hpp"
#include "chanpool/transport/agent.hpp"

namespace chanpool::transport {

struct cluster_config {
  std::uint32_t nodes = 2;
  std::string job;  // empty: "vc<pid>"; node k's namespace is virtual_node_job(job, k)
  agent_config agent;
  std::chrono::milliseconds start_timeout{60'000};
};

class virtual_cluster {
 public:
  virtual_cluster() = default;
  virtual_cluster(virtual_cluster&&) noexcept;
  virtual_cluster& operator=(virtual_cluster&&) noexcept;
  virtual_cluster(const virtual_cluster&) = delete;
  virtual_cluster& operator=(const virtual_cluster&) = delete;
  ~virtual_cluster();  // stop()

  // Forks one agent process per node and returns when every agent has heard from every other.
  // Call before starting threads in this process (it forks). On error no agent is left running
  // and the error names the failing node's problem on stderr.
  static result<virtual_cluster> start(const cluster_config& config);

  std::uint32_t nodes() const noexcept { return static_cast<std::uint32_t>(agents_.size()); }
  const std::string& job() const noexcept { return job_; }
  std::string node_job(std::uint32_t node) const;
  pid_t agent_pid(std::uint32_t node) const noexcept { return agents_.at(node).pid; }
  // The fabric the agents use (from node 0), e.g. "provider tcp;ofi_rxm, ...".
  const std::string& fabric_summary() const noexcept { return fabric_summary_; }
  // The job's frame key (tests forge frames with it; it never leaves this host otherwise).
  std::uint64_t job_key() const noexcept { return job_key_; }

  // Sends `signal` to one agent (tests kill agents with SIGKILL).
  bool signal_agent(std::uint32_t node, int signal) noexcept;
  // Stops every agent (SIGTERM, orderly goodbye) and reaps them. Idempotent.
  void stop() noexcept;

 private:
  struct agent_process {
    pid_t pid = -1;
    int fd = -1;  // our end of its socketpair
  };
  std::string job_;
  std::vector<agent_process> agents_;
  std::string fabric_summary_;
  std::uint64_t job_key_ = 0;
};

}  // namespace chanpool::transport
