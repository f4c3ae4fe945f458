// fanin_bench under mpirun/srun: one node per rank. MPI exchanges the agents' addresses and
// synchronises the start; the data path is libfabric. A lost node ends the job (MPI_Abort).
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "chanpool/channels/cleanup.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/mpi_bootstrap.hpp"

#include "fanin_bench.hpp"

namespace chanpool::tools::fanin {

using chanpool::status;

namespace {

constexpr int exit_node_lost = 4;

constexpr int node_stopped_tag = 7;

// A rank ended by a signal (the launcher's SIGTERM when the job ends early, after MPI_Abort on
// another rank) would leave its node's segments behind: the agent removes them only at stop(),
// and a host that was stopped meanwhile is ended on resuming, before it gets there. Made before
// MPI_Init, the watcher blocks the ending signals in this thread and so in every thread started
// after it (MPI's, the agent's); its own thread waits for one, removes the segments of the node
// it was told about, and ends the process with the status the signal would have given.
class ending_signal_watcher {
 public:
  ending_signal_watcher() {
    sigemptyset(&set_);
    for (const int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set_, s);
    ::pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { wait(); }).detach();
  }
  void watch(const std::string& node_job) {
    std::lock_guard lock(mu_);
    node_job_ = node_job;
  }

 private:
  void wait() {
    int sig = 0;
    if (::sigwait(&set_, &sig) != 0) return;
    std::string job;
    {
      std::lock_guard lock(mu_);
      job = node_job_;
    }
    std::size_t removed = 0;
    if (!job.empty())
      for (const auto& segment : ch::list_segments(job)) removed += ::shm_unlink(("/" + segment.shm_name).c_str()) == 0;
    if (removed)
      std::fprintf(stderr, "fanin_bench: ended by signal %d before node %s had stopped: removed its %zu segments\n", sig,
                   job.c_str(), removed);
    ::_exit(128 + sig);
  }

  sigset_t set_;
  std::mutex mu_;
  std::string node_job_;
};

// Rank 0, ending the job after a node was lost: waits until the given ranks say that their nodes
// are stopped (their segments removed), or `limit`.
void wait_for_stopped_nodes(const std::vector<int>& ranks, std::chrono::milliseconds limit) {
  std::vector<int> flags(ranks.size());
  std::vector<MPI_Request> requests(ranks.size());
  for (std::size_t i = 0; i < ranks.size(); ++i)
    MPI_Irecv(&flags[i], 1, MPI_INT, ranks[i], node_stopped_tag, MPI_COMM_WORLD, &requests[i]);
  const auto until = clock_type::now() + limit;
  int done = ranks.empty() ? 1 : 0;
  while (!done && clock_type::now() < until) {
    MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool orchestrator_gone(const std::string& node_job) {
  auto c = tr::client::attach(node_job);
  const auto s = c ? c->peer(0) : tr::peer_state::dead;
  return s == tr::peer_state::dead || s == tr::peer_state::left;
}

struct pending_sender {
  pid_t pid;
  int setup_fd;  // we write "<id> <node_job>\n"
};

// Forks this node's senders before MPI_Init (MPI does not support fork after it); each waits on
// its setup pipe for its id and node namespace. Returns false when a pipe cannot be made.
bool fork_senders(const options& o, const int (&ready)[2], const int (&go)[2], std::vector<pending_sender>& local) {
  for (std::uint32_t s = 0; s < o.senders_per_node; ++s) {
    int setup[2];
    if (::pipe(setup) != 0) return false;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(setup[1]);
      ::close(ready[0]);
      ::close(go[1]);
      char line[256] = {};
      std::size_t n = 0;
      while (n < sizeof line - 1 && ::read(setup[0], line + n, 1) == 1 && line[n] != '\n') ++n;
      line[n] = 0;
      unsigned id = 0;
      char job[200] = {};
      if (std::sscanf(line, "%u %199s", &id, job) != 2) ::_exit(2);
      run_sender(o, job, id, ready[1], go[0]);
    }
    ::close(setup[0]);
    local.push_back({pid, setup[1]});
  }
  return true;
}

// Tells each local sender its id and node namespace and waits until it is ready; false when one
// could not be told or did not start.
bool start_senders(const options& o, int rank, const std::string& node_job, std::vector<pending_sender>& local,
                   int ready_fd) {
  bool ok = true;
  for (std::uint32_t s = 0; s < local.size(); ++s) {
    const std::string line = std::to_string(static_cast<std::uint32_t>(rank) * o.senders_per_node + s) + " " + node_job + "\n";
    if (::write(local[s].setup_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ok = false;
    ::close(local[s].setup_fd);
  }
  for (std::uint32_t s = 0; s < local.size(); ++s) {
    char c;
    if (::read(ready_fd, &c, 1) != 1) ok = false;
  }
  return ok;
}

// Rank 0 after a node was lost: the lost node's rank never reaches the gather, and the launcher
// would wait for it, so the job ends here (Open MPI and Slurm end every rank on MPI_Abort and
// exit with its code) once this node is cleaned up and the reachable nodes have stopped.
void abort_after_lost_node(const options& o, ch::channel& sink, const std::string& node_job,
                                        chanpool::result<tr::client>& watch, std::unique_ptr<tr::agent>& agent,
                                        const std::vector<pid_t>& pids) {
  std::fprintf(stderr, "fanin_bench: ending the job (MPI_Abort, exit %d)\n", exit_node_lost);
  std::fflush(stderr);
  std::vector<int> alive;  // their ranks confirm once their nodes are stopped
  for (std::uint32_t k = 1; k < o.nodes; ++k)
    if (watch && watch->peer(k) == tr::peer_state::alive) alive.push_back(static_cast<int>(k));
  sink.close();
  ch::channel::unlink("sink", {node_job});
  *watch = tr::client{};
  agent->stop();  // its segments go; every sender sees node 0 leave and exits
  agent.reset();
  for (pid_t p : pids)
    if (p > 0) ::waitpid(p, nullptr, 0);
  // The reachable nodes see node 0 leave within milliseconds and stop their agents (see
  // run_other_rank): wait for that (at most 2 s) before the launcher kills their ranks.
  wait_for_stopped_nodes(alive, std::chrono::seconds(2));
  MPI_Abort(MPI_COMM_WORLD, exit_node_lost);
}

// Rank 0: receives everything, gathers every node's counters and reports.
int run_rank0(const options& o, ch::channel& sink, std::vector<pid_t>& pids, int go_fd, const std::string& node_job,
              std::unique_ptr<tr::agent>& agent, int size, double startup_s) {
  const std::uint32_t senders = o.nodes * o.senders_per_node;
  auto watch = tr::client::attach(node_job);
  const auto lost_node = [&]() -> std::string {
    for (std::uint32_t k = 1; watch && k < o.nodes; ++k)
      if (const auto s = watch->peer(k); s == tr::peer_state::dead || s == tr::peer_state::left)
        return "node " + std::to_string(k) + " is unreachable (its agent " +
               (s == tr::peer_state::left ? "left" : "stopped answering") + ")";
    return {};
  };
  receive_result r = receive_all(o, sink, senders, pids, [&] { ::close(go_fd); }, lost_node);
  if (!r.lost_node.empty()) {
    abort_after_lost_node(o, sink, node_job, watch, agent, pids);
    return exit_node_lost;  // not reached: MPI_Abort ends the job
  }
  sink.close();
  ch::channel::unlink("sink", {node_job});
  // Every node's counters, gathered at rank 0 (MPI only for the report, after the run).
  const tr::agent_stats mine = agent->stats();
  std::vector<tr::agent_stats> all(static_cast<std::size_t>(size));
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  return report(o, r, all, agent->fabric_info().summary(), startup_s,
                "mpi (" + std::to_string(size) + " ranks, one node each)");
}

// Every other rank: waits for its senders and sends its counters to rank 0. Returns -1 when it
// finished the job itself (node 0 is gone), else the exit status.
int run_other_rank(int rank, std::vector<pid_t>& pids, int go_fd, const std::string& node_job,
                   std::unique_ptr<tr::agent>& agent) {
  ::close(go_fd);
  int errors = 0;
  for (pid_t p : pids) {
    int ws = 0;
    ::waitpid(p, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) errors++;
  }
  const tr::agent_stats mine = agent->stats();
  if (orchestrator_gone(node_job)) {
    // Rank 0 cannot gather: it ends the job (or is gone). Leave nothing behind meanwhile.
    std::fprintf(stderr, "fanin_bench (rank %d): node 0 is unreachable; stopping this node\n", rank);
    agent->stop();
    agent.reset();
    int stopped = 1;
    MPI_Send(&stopped, 1, MPI_INT, 0, node_stopped_tag, MPI_COMM_WORLD);
    MPI_Finalize();  // returns when the launcher ends the job, if it can reach this host
    return -1;
  }
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, nullptr, 0, MPI_BYTE, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 has everything: the agents may stop
  return errors ? 1 : 0;
}

// The ranks on this host (for choose_spins).
int ranks_on_this_host() {
  MPI_Comm host;
  int ranks_here = 1;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host);
  MPI_Comm_size(host, &ranks_here);
  MPI_Comm_free(&host);
  return ranks_here;
}

}  // namespace

// Cluster mode: this process is one node (its MPI rank). Senders are forked before MPI_Init
// (MPI does not support fork after it) and learn their node's namespace over a pipe. MPI
// exchanges the agents' addresses and synchronises the start; the data path is libfabric.
int run_under_mpi(options& o, int argc, char** argv) {
  int ready[2], go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return 2;
  std::vector<pending_sender> local;
  if (!fork_senders(o, ready, go, local)) return 2;
  ::close(ready[1]);
  ::close(go[0]);
  static ending_signal_watcher watcher;  // after the fork: the senders keep the default actions

  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  o.nodes = static_cast<std::uint32_t>(size);
  // One job name for all ranks: rank 0's.
  char job[32] = {};
  if (rank == 0) std::snprintf(job, sizeof job, "fb%d", static_cast<int>(::getpid()));
  MPI_Bcast(job, sizeof job, MPI_CHAR, 0, MPI_COMM_WORLD);
  const std::string node_job = tr::virtual_node_job(job, static_cast<std::uint32_t>(rank));
  watcher.watch(node_job);  // before the agent makes the node's segments
  const auto ranks_here = static_cast<std::uint32_t>(ranks_on_this_host());
  choose_spins(o, ranks_here, ranks_here * o.senders_per_node);
  const auto start_t0 = clock_type::now();
  auto agent = tr::start_agent_mpi(MPI_COMM_WORLD, job, agent_config_for(o));
  int ok = agent ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!agent) std::fprintf(stderr, "fanin_bench: rank %d: agent: %s\n", rank, agent.error().message().c_str());
    for (auto& l : local) ::kill(l.pid, SIGKILL);
    MPI_Finalize();
    return 2;
  }
  const double startup_s = std::chrono::duration<double>(clock_type::now() - start_t0).count();
  chanpool::result<ch::channel> sink = chanpool::errc::not_found;
  if (rank == 0) {
    sink = create_sink(o, node_job);
    if (!sink) std::fprintf(stderr, "fanin_bench: cannot create the sink: %s\n", sink.error().message().c_str());
  }
  MPI_Barrier(MPI_COMM_WORLD);  // the sink exists before anyone resolves it
  if (!start_senders(o, rank, node_job, local, ready[0])) ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    std::fprintf(stderr, "fanin_bench: rank %d: a sender failed to start (see above)\n", rank);
    for (auto& l : local) ::kill(l.pid, SIGKILL);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::vector<pid_t> pids;
  for (auto& l : local) pids.push_back(l.pid);
  MPI_Barrier(MPI_COMM_WORLD);  // every sender everywhere is ready: go
  const int status = rank == 0 ? run_rank0(o, *sink, pids, go[1], node_job, *agent, size, startup_s)
                               : run_other_rank(rank, pids, go[1], node_job, *agent);
  if (status < 0) return 1;  // this node stopped itself: node 0 is gone
  (*agent)->stop();
  agent->reset();
  MPI_Finalize();
  return status;
}

}  // namespace chanpool::tools::fanin
