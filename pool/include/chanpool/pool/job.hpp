// The type-erased state of one submission (a map, an imap, an apply): what the typed results in
// pool.hpp wait on and decode. Written by the Pool's scheduler thread, read by user threads.
// Not part of the stable API: use async_result / imap_result.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chanpool::pool::detail {

using clock = std::chrono::steady_clock;

enum class item_state : std::uint8_t { pending = 0, ok = 1, failed = 2 };

enum class failure_kind : std::uint8_t {
  task_raised,   // the function threw in the worker
  worker_lost,   // its worker or node died more often than the retries allow
  terminated,    // the pool was terminated before the item finished
};

struct item_failure {
  failure_kind kind = failure_kind::task_raised;
  std::string message;
};

class job {
 public:
  job(std::uint32_t id, std::string task_name, std::size_t items);

  std::uint32_t id() const noexcept { return id_; }
  std::size_t size() const noexcept { return states_.size(); }
  const std::string& task_name() const noexcept { return task_name_; }

  // --- user side (threadsafe; may block) ---------------------------------------------------
  // Waits until every item is finished or one failed (the job is then "ready", as Python's
  // AsyncResult is once the first error is known). False on timeout.
  bool wait_ready(std::optional<clock::time_point> deadline);
  // Waits until item i is finished (ok or failed). False on timeout.
  bool wait_item(std::size_t i, std::optional<clock::time_point> deadline);
  // Waits for the k-th item to finish in completion order and returns its index; nullopt on
  // timeout. k < size().
  std::optional<std::size_t> wait_completion(std::size_t k, std::optional<clock::time_point> deadline);
  bool ready() const;
  bool successful() const;  // ready and no item failed
  // The encoded result of a finished, successful item (valid while the job lives).
  std::string_view result_bytes(std::size_t i) const;
  // Throws the item's failure (task_error, worker_lost or pool_not_running) if it failed.
  void throw_if_failed(std::size_t i) const;
  // Throws the failure of the lowest-indexed failed item, if any.
  void throw_first_failure() const;

  // --- scheduler side ------------------------------------------------------------------------
  // Records results; returns true when this made the job ready (run its callback then).
  // An item already finished is ignored (a re-run's duplicate): results are delivered once.
  // A failed item's bytes are its error message.
  struct item_bytes {
    std::uint64_t index = 0;
    std::uint32_t offset = 0;  // into blob
    std::uint32_t length = 0;
    bool ok = true;
  };
  bool complete_items(std::string blob, const std::vector<item_bytes>& items);
  bool fail_items(std::size_t first, std::size_t count, failure_kind kind, const std::string& message);
  bool item_finished(std::size_t i) const;
  bool all_finished() const;
  // After complete_items/fail_items returned true and on_ready ran: wakes wait_ready().
  void publish_ready();
  std::function<void(job&)> on_ready;  // runs once, on the scheduler thread, outside the lock

 private:
  bool mark_ready_locked();
  [[noreturn]] void throw_failure(std::size_t i, const item_failure& f) const;

  const std::uint32_t id_;
  const std::string task_name_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<item_state> states_;
  struct location {
    std::uint32_t blob = 0;
    std::uint32_t offset = 0;
    std::uint32_t length = 0;
  };
  std::vector<location> locations_;
  std::deque<std::string> blobs_;  // a deque: references stay valid as it grows
  std::map<std::size_t, item_failure> failures_;
  std::vector<std::size_t> completion_order_;
  std::size_t finished_ = 0;
  bool ready_ = false;
  bool ready_callback_done_ = false;
};

}  // namespace chanpool::pool::detail
