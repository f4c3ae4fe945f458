#include "chanpool/pool/job.hpp"

#include "chanpool/pool/errors.hpp"

namespace chanpool::pool::detail {

job::job(std::uint32_t id, std::string task_name, std::size_t items)
    : id_(id), task_name_(std::move(task_name)), states_(items, item_state::pending), locations_(items) {
  if (items == 0) ready_ = true;
}

namespace {
template <class Pred>
bool wait_for(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
              const std::optional<clock::time_point>& deadline, Pred pred) {
  if (!deadline) {
    cv.wait(lock, pred);
    return true;
  }
  return cv.wait_until(lock, *deadline, pred);
}
}  // namespace

bool job::wait_ready(std::optional<clock::time_point> deadline) {
  std::unique_lock lock(mutex_);
  return wait_for(changed_, lock, deadline, [&] { return ready_; });
}

bool job::wait_item(std::size_t i, std::optional<clock::time_point> deadline) {
  std::unique_lock lock(mutex_);
  return wait_for(changed_, lock, deadline, [&] { return states_.at(i) != item_state::pending; });
}

std::optional<std::size_t> job::wait_completion(std::size_t k, std::optional<clock::time_point> deadline) {
  std::unique_lock lock(mutex_);
  if (!wait_for(changed_, lock, deadline, [&] { return completion_order_.size() > k; })) return std::nullopt;
  return completion_order_[k];
}

bool job::ready() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

bool job::successful() const {
  std::lock_guard lock(mutex_);
  return ready_ && failures_.empty();
}

bool job::item_finished(std::size_t i) const {
  std::lock_guard lock(mutex_);
  return states_.at(i) != item_state::pending;
}

bool job::all_finished() const {
  std::lock_guard lock(mutex_);
  return finished_ == states_.size();
}

std::string_view job::result_bytes(std::size_t i) const {
  std::lock_guard lock(mutex_);
  const location& l = locations_.at(i);
  return std::string_view(blobs_.at(l.blob)).substr(l.offset, l.length);
}

void job::throw_failure(std::size_t i, const item_failure& f) const {
  switch (f.kind) {
    case failure_kind::task_raised: throw task_error(task_name_, i, f.message);
    case failure_kind::worker_lost: throw worker_lost(f.message);
    case failure_kind::terminated: throw pool_not_running(f.message);
  }
  throw pool_not_running(f.message);
}

void job::throw_if_failed(std::size_t i) const {
  std::unique_lock lock(mutex_);
  if (states_.at(i) != item_state::failed) return;
  const item_failure f = failures_.at(i);
  lock.unlock();
  throw_failure(i, f);
}

void job::throw_first_failure() const {
  std::unique_lock lock(mutex_);
  if (failures_.empty()) return;
  const auto [i, f] = *failures_.begin();
  lock.unlock();
  throw_failure(i, f);
}

bool job::mark_ready_locked() {
  const bool now_ready = finished_ == states_.size() || !failures_.empty();
  if (!now_ready || ready_callback_done_) {
    if (now_ready) ready_ = true;
    return false;
  }
  // With a callback, the job turns ready only after it ran (publish_ready), as in Python: a
  // caller woken by wait() sees the callback's effects.
  if (!on_ready) ready_ = true;
  ready_callback_done_ = true;
  return true;
}

void job::publish_ready() {
  {
    std::lock_guard lock(mutex_);
    ready_ = true;
  }
  changed_.notify_all();
}

bool job::complete_items(std::string blob, const std::vector<item_bytes>& items) {
  bool became_ready = false;
  {
    std::lock_guard lock(mutex_);
    const auto blob_index = static_cast<std::uint32_t>(blobs_.size());
    bool used = false;
    for (const item_bytes& it : items) {
      if (it.index >= states_.size() || states_[it.index] != item_state::pending) continue;
      if (it.ok) {
        states_[it.index] = item_state::ok;
        locations_[it.index] = {blob_index, it.offset, it.length};
        used = true;
      } else {
        states_[it.index] = item_state::failed;
        failures_.emplace(it.index, item_failure{failure_kind::task_raised, blob.substr(it.offset, it.length)});
      }
      ++finished_;
      completion_order_.push_back(it.index);
    }
    if (used) blobs_.push_back(std::move(blob));
    became_ready = mark_ready_locked();
  }
  changed_.notify_all();
  return became_ready;
}

bool job::fail_items(std::size_t first, std::size_t count, failure_kind kind, const std::string& message) {
  bool became_ready = false;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = first; i < first + count && i < states_.size(); ++i) {
      if (states_[i] != item_state::pending) continue;
      states_[i] = item_state::failed;
      failures_.emplace(i, item_failure{kind, message});
      ++finished_;
      completion_order_.push_back(i);
    }
    became_ready = mark_ready_locked();
  }
  changed_.notify_all();
  return became_ready;
}

}  // namespace chanpool::pool::detail
