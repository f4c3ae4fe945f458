// The typed Pool's non-template half: lifetime, and the bridge to the engine.
#include "chanpool/pool/pool.hpp"

#include <stdexcept>

#include "engine.hpp"

namespace chanpool::pool {

pool::pool(const pool_options& options) : engine_(std::make_unique<detail::engine>(options)) {}

pool::pool(std::unique_ptr<detail::engine> e) : engine_(std::move(e)) {}

pool::~pool() = default;  // the engine terminates its processes unless joined

void pool::close() { engine_->close(); }
void pool::terminate() { engine_->terminate(); }
void pool::join() { engine_->join(); }
const pool_info& pool::info() const noexcept { return engine_->info(); }
pool_counters pool::counters() const { return engine_->counters(); }

// Python's map: ceil(n / (4 * workers)).
std::size_t pool::default_chunksize(std::size_t items) const noexcept {
  const std::size_t per = 4 * std::max<std::size_t>(1, info().workers);
  return std::max<std::size_t>(1, (items + per - 1) / per);
}

std::shared_ptr<detail::job> pool::submit(detail::submission&& s) { return engine_->submit(std::move(s)); }

namespace detail {

const task_entry& registered(std::uintptr_t function, const char* what) {
  const task_entry* t = find_task_by_function(function);
  if (t == nullptr)
    throw std::invalid_argument(std::string("chanpool pool: the ") + what +
                                " is not a registered task: register it with CHANPOOL_TASK(fn) at namespace scope");
  return *t;
}

std::optional<clock::time_point> deadline_after(std::optional<std::chrono::nanoseconds> t) {
  if (!t) return std::nullopt;
  const auto now = clock::now();
  if (*t > clock::time_point::max() - now) return std::nullopt;
  return now + std::chrono::duration_cast<clock::duration>(*t);
}

void throw_timeout(const job& j, const char* what) {
  throw timeout_error("chanpool pool: " + std::string(what) + " timed out waiting for task '" + j.task_name() + "'");
}

}  // namespace detail
}  // namespace chanpool::pool
