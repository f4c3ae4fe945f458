// One node of a Pool: a supervisor process that owns the node's "pool-tasks" channel, forks the
// node's workers, and replaces any that die (reporting what a dead worker was running, so the
// orchestrator can re-run it). Workers pull chunks from the channel as they become idle.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace chanpool::pool::detail {

inline constexpr const char* tasks_channel_name = "pool-tasks";
inline constexpr const char* results_channel_name = "pool-results";

// Worker exit codes the supervisor acts on.
enum worker_exit : int {
  exit_stopped = 0,          // took a stop message: not replaced
  exit_maxtasks = 3,         // maxtasksperchild reached: replaced
  exit_transport_gone = 4,   // its node's agent is gone: not replaced (nothing could reach it)
  exit_setup_failed = 5,     // could not open its channels: replaced at most a few times
};

struct node_plan {
  std::string node_job;          // the node's shared-memory namespace
  std::uint32_t node = 0;
  std::uint32_t workers = 1;
  std::uint32_t tasks_capacity = 1024;
  std::uint32_t max_item_bytes = 8u << 20;
  std::uint32_t maxtasksperchild = 0;
  bool pin = false;
  bool spin = true;  // false: workers sleep at once when their channel is empty
  std::uint32_t first_core = 0;  // worker i is pinned to core first_core + i (mod cores)
  std::string initializer_task;
  std::string initializer_args;
};

// Shared between the supervisor and its workers (an anonymous shared mapping made before the
// fork): what each worker is doing, read by the supervisor after the worker dies.
enum class worker_activity : std::uint32_t { idle = 0, receiving = 1, running = 2 };

struct alignas(64) worker_slot {
  std::atomic<worker_activity> activity{worker_activity::idle};  // stored last (release)
  std::atomic<std::uint32_t> job{0};
  std::atomic<std::uint32_t> chunk{0};
  std::atomic<std::uint32_t> attempt{0};
  std::atomic<std::uint32_t> item_count{0};
  std::atomic<std::uint64_t> first_item{0};
};
static_assert(sizeof(worker_slot) == 64);
static_assert(std::atomic<worker_activity>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free);

// Runs in a freshly forked process; never returns. Exits when the orchestrator stops the node
// (every worker took a stop message), on SIGTERM (kills its workers first: terminate()), or when
// its parent dies.
[[noreturn]] void run_supervisor(const node_plan& plan, int parent_pid);

}  // namespace chanpool::pool::detail
