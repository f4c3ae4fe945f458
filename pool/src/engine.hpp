// The orchestrator: starts the nodes, hands chunks to nodes by credit, collects results, and
// re-runs what died. One scheduler thread owns all of the state below the mutex-guarded inbox;
// user threads only submit and wait on their jobs.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/pool/pool.hpp"
#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "dispatch.hpp"
#include "node.hpp"
#include "process_watch.hpp"
#include "wire.hpp"

namespace chanpool::pool::detail {

// Nodes started by a launcher (one rank per node under mpirun/srun; see mpi_launch.cpp).
struct launched_nodes {
  std::uint32_t node_count = 0;
  std::vector<std::uint32_t> workers;         // per node
  std::string job;
  pid_t own_supervisor = -1;                  // node 0's, a child of this process
  std::unique_ptr<transport::agent> agent;    // node 0's, running in this process
  bool pinned = false;
  bool oversubscribed = false;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  // start-up began
};

// Sets the RxM environment of pool_options (rxm_buffer_bytes, rxm_queue_depth) unless the
// environment already has it: before the agents start, in the process that starts them.
void set_provider_defaults(const pool_options& options);

node_plan make_node_plan(const pool_options& options, const std::string& job, std::uint32_t node, std::uint32_t workers,
                         bool pin, bool spin, std::uint32_t first_core);
// Forks a node's supervisor (which never returns); the child's pid, or -1 with errno.
pid_t fork_supervisor(const node_plan& plan);

class engine {
 public:
  explicit engine(const pool_options& options);  // throws std::system_error / std::runtime_error
  engine(const pool_options& options, launched_nodes&& launched);
  ~engine();

  std::shared_ptr<job> submit(submission&& s);
  void close();
  void terminate();
  void join();
  const pool_info& info() const noexcept { return info_; }
  pool_counters counters() const;

 private:
  struct chunk_info {
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    std::uint32_t attempts = 0;  // runs started so far
  };
  struct job_record {
    std::shared_ptr<job> state;
    const task_entry* task = nullptr;
    std::string args;
    std::vector<std::uint64_t> ends;
    std::size_t chunksize = 1;
    std::vector<chunk_info> chunks;
  };
  // A node's channels and processes; what it holds and whether it lives is dispatch_'s.
  struct node_record {
    transport::remote_channel tasks;
    pid_t supervisor = -1;
    bool stop_sent = false;
    std::uint32_t workers = 0;
  };

  void start();
  void start_launched(launched_nodes&& launched);
  void create_results_channel();
  void finish_start(std::chrono::steady_clock::time_point t0);
  void fork_supervisors();
  void plan_dispatch();
  void wait_for_workers();
  void warm_up();
  void scheduler_loop();
  void wake_scheduler();
  void take_submissions();
  void dispatch();
  dispatcher::offer offer_chunk(std::uint32_t node, chunk_ref ref);
  void handle_message(std::string_view message);
  void handle_results(const wire::result_header& h, std::string_view body);
  void handle_worker_lost(const wire::result_header& h, std::string_view body);
  void chunk_lost(chunk_ref ref, const std::string& why);
  void check_liveness();
  void node_lost(std::uint32_t node, const std::string& why);
  void fail_everything(failure_kind kind, const std::string& why);
  void finish_job_if_done(std::uint32_t job_id);
  void run_callback(job& j);
  void send_stops();
  void stop_processes(bool kill);

  pool_options options_;
  pool_info info_;
  transport::virtual_cluster cluster_;       // embedded: the agents, children of this process
  std::unique_ptr<transport::agent> agent_;  // launched: node 0's agent, in this process
  bool launched_ = false;
  transport::client client_;
  channels::channel results_;
  std::vector<node_record> nodes_;

  // Submissions from user threads, taken by the scheduler.
  std::mutex inbox_mutex_;
  std::deque<job_record> inbox_;
  bool closed_ = false;       // close(): no more submissions
  bool terminated_ = false;
  std::uint32_t next_job_ = 1;

  // Scheduler state (scheduler thread only, except counters).
  std::unordered_map<std::uint32_t, job_record> jobs_;
  dispatcher dispatch_;  // which node holds what, and which chunk goes where next
  std::string send_buffer_;
  std::chrono::steady_clock::time_point next_liveness_check_{};
  process_watch liveness_watch_;  // scheduler thread (check_liveness)
  std::string broken_;  // a fatal problem (an initializer that fails): new work fails with it

  mutable std::mutex counters_mutex_;
  pool_counters counters_;

  std::atomic<bool> stop_scheduler_{false};
  std::atomic<bool> wake_sent_{false};  // a wake message is on its way and the inbox not yet read
  std::thread scheduler_;
  bool joined_ = false;
};

}  // namespace chanpool::pool::detail
