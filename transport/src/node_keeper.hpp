// The node keeper: what removes a node's segments when the process that runs its agent is killed.
//
// Under a launcher the agent runs inside the user's rank (start_agent_mpi). A rank killed with
// SIGKILL, or ended by its launcher after another rank's MPI_Abort, cannot remove its node's
// segments (the inbox, the node state, the processes' reply channels, regions, channels made in
// the node's namespace): on a real host they would stay in /dev/shm until someone runs
// chanpool_cleanup. The keeper is a small process forked once the agent exists. It waits for the
// rank's end; then it removes every segment of the node that no live process uses, trying again
// for a few seconds while the node's other processes (senders, workers) notice and leave. It
// leaves by itself, removing nothing, once the agent has been destroyed in order (the node state
// is gone), and it holds none of the rank's file descriptors, so a launcher waiting for the
// rank's output to close does not wait for it.
#pragma once

#include <sys/types.h>

#include <string>

#include "chanpool/channels/error.hpp"

namespace chanpool::transport::detail {

// Forks the keeper of `node_job`, whose agent runs in the calling process. Any thread; call it
// after the agent is created (its node state exists). The node works without a keeper: the error
// (fork failed) is for the caller to report, not to stop on.
result<pid_t> start_node_keeper(const std::string& node_job) noexcept;

}  // namespace chanpool::transport::detail
