// start_pool_mpi: one rank per node under mpirun/srun. See chanpool/pool/mpi.hpp.
#include "chanpool/pool/mpi.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/channels/cleanup.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/mpi_bootstrap.hpp"
#include "engine.hpp"
#include "placement.hpp"

namespace chanpool::pool {

namespace detail {
struct pool_factory {
  static std::unique_ptr<pool> make(std::unique_ptr<engine> e) { return std::unique_ptr<pool>(new pool(std::move(e))); }
};
}  // namespace detail

namespace {

std::string broadcast_string(MPI_Comm comm, std::string s) {
  int length = static_cast<int>(s.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, comm);
  s.resize(static_cast<std::size_t>(length));
  MPI_Bcast(s.data(), length, MPI_CHAR, 0, comm);
  return s;
}

// Once a node's processes are gone, what they left in its namespace (the task channel, reply
// channels) is stale: remove it, as the embedded virtual cluster does for its nodes.
void remove_node_segments(const std::string& node_job) {
  std::error_code ec;
  (void)channels::cleanup_stale({.job = node_job}, ec);
}

bool all_ranks(MPI_Comm comm, bool mine) {
  int ok = mine ? 1 : 0, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
  return all == 1;
}

// A node other than 0: its workers run until the orchestrator stops them (they exit and so does
// the supervisor) or node 0 goes away (its agent's goodbye, or heartbeats stop).
void serve_node(const std::string& node_job, pid_t supervisor) {
  auto c = transport::client::attach(node_job);
  for (;;) {
    if (::waitpid(supervisor, nullptr, WNOHANG) == supervisor) return;
    if (c) {
      const auto orchestrator = c->peer(0);
      if (orchestrator == transport::peer_state::dead || orchestrator == transport::peer_state::left) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(supervisor, SIGTERM);  // it kills its workers
  ::waitpid(supervisor, nullptr, 0);
}

}  // namespace

std::unique_ptr<pool> start_pool_mpi(MPI_Comm comm, pool_options options) {
  const auto started = std::chrono::steady_clock::now();
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  MPI_Comm host;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
  int host_rank = 0, host_size = 1;
  MPI_Comm_rank(host, &host_rank);
  MPI_Comm_size(host, &host_size);
  MPI_Comm_free(&host);

  const unsigned cores = detail::physical_cores();
  const auto ranks_here = static_cast<unsigned>(host_size);
  const std::uint32_t workers =
      options.workers_per_node != 0 ? options.workers_per_node : std::max(1u, cores / ranks_here);
  std::vector<std::uint32_t> all_workers(static_cast<std::size_t>(size));
  MPI_Allgather(&workers, 1, MPI_UINT32_T, all_workers.data(), 1, MPI_UINT32_T, comm);
  const std::string job = broadcast_string(
      comm, options.job.empty() ? "pool" + std::to_string(::getpid()) + "-mpi" : options.job);

  const bool pinned = options.pin == pin_policy::always ||
                      (options.pin == pin_policy::automatic && ranks_here * workers <= cores);
  const bool oversubscribed = ranks_here * (workers + 1) + (rank == 0 ? 1 : 0) > cores;
  const bool spin = !(oversubscribed && options.no_spin_when_oversubscribed);
  if (!spin) options.agent.spin = std::chrono::microseconds(0);
  detail::set_provider_defaults(options);

  // The supervisor first, while this process has no threads; its workers wait for the agent.
  const auto node = static_cast<std::uint32_t>(rank);
  const detail::node_plan plan = detail::make_node_plan(options, job, node, workers, pinned, spin,
                                                        static_cast<std::uint32_t>(host_rank) * workers);
  const pid_t supervisor = detail::fork_supervisor(plan);
  auto agent = transport::start_agent_mpi(comm, job, options.agent);
  const bool ok = all_ranks(comm, supervisor > 0 && agent.has_value());
  if (!ok) {
    if (supervisor > 0) {
      ::kill(supervisor, SIGTERM);
      ::waitpid(supervisor, nullptr, 0);
    }
    if (agent) (*agent)->stop();
    throw std::runtime_error("chanpool pool: node " + std::to_string(rank) + " of " + std::to_string(size) + ": " +
                             (supervisor <= 0 ? "cannot fork the supervisor"
                              : !agent        ? "cannot start the agent: " + agent.error().message()
                                              : "another node failed to start (see its message)"));
  }
  if (rank != 0) {
    serve_node(plan.node_job, supervisor);
    (*agent)->stop();
    agent->reset();
    remove_node_segments(plan.node_job);
    return nullptr;
  }
  detail::launched_nodes launched;
  launched.node_count = static_cast<std::uint32_t>(size);
  launched.workers = std::move(all_workers);
  launched.job = job;
  launched.own_supervisor = supervisor;
  launched.agent = std::move(*agent);
  launched.pinned = pinned;
  launched.oversubscribed = oversubscribed;
  launched.started = started;
  options.nodes = launched.node_count;
  return detail::pool_factory::make(std::make_unique<detail::engine>(options, std::move(launched)));
}

}  // namespace chanpool::pool
