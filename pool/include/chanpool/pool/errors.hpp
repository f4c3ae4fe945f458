// What the Pool's user API throws. As in Python's multiprocessing, a task's failure surfaces
// where its result is asked for: get() on an async result, map(), or the imap iterator.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace chanpool::pool {

// A task threw. what(): "task 'name' (item i) failed: <its message>".
class task_error : public std::runtime_error {
 public:
  task_error(std::string task, std::uint64_t item, std::string message)
      : std::runtime_error("task '" + task + "' (item " + std::to_string(item) + ") failed: " + message),
        task_(std::move(task)), item_(item), message_(std::move(message)) {}
  const std::string& task() const noexcept { return task_; }
  std::uint64_t item() const noexcept { return item_; }
  // The exception's own what() in the worker (for non-std exceptions: "unknown exception").
  const std::string& message() const noexcept { return message_; }

 private:
  std::string task_;
  std::uint64_t item_;
  std::string message_;
};

// The worker (or the whole node) running an item died, more often than the Pool re-runs an item
// (pool_options::max_task_retries). what() names the task, item and how the worker ended.
class worker_lost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// get() / next() ran out of time (Python's multiprocessing.TimeoutError). The work goes on; ask
// again later.
class timeout_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Work was submitted to a closed or terminated pool, or the pool was terminated while the
// result was pending (Python raises ValueError("Pool not running")).
class pool_not_running : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace chanpool::pool
