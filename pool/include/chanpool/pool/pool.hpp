// chanpool::pool — Python's multiprocessing.Pool, typed for C++, over chanpool's channels and
// transport. Idle workers on every node pull the next work item from a node-local channel; the
// orchestrator (the process that owns the pool) keeps each node's channel topped up by credit
// and collects results through the transport's many-to-one aggregation.
//
//   int square(int x) { return x * x; }
//   CHANPOOL_TASK(square);
//
//   int main() {
//     chanpool::pool::pool p({.nodes = 4, .workers_per_node = 4});   // 4 virtual nodes here
//     std::vector<int> squares = p.map(square, std::vector{1, 2, 3});
//     auto r = p.apply_async(square, 7);
//     int v = r.get(std::chrono::seconds(5));                       // throws timeout_error
//   }                                                                // ~pool(): terminate()
//
// Threads: every member function of pool is threadsafe; results and iterators may be used from
// any one thread at a time. Create the pool before starting other threads: it forks the node
// agents and workers (the workers are copies of this process and run registered tasks).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "chanpool/pool/codec.hpp"
#include "chanpool/pool/errors.hpp"
#include "chanpool/pool/job.hpp"
#include "chanpool/pool/task.hpp"
#include "chanpool/transport/agent.hpp"

namespace chanpool::pool {

enum class pin_policy : std::uint8_t {
  automatic,  // pin each worker to its own core when there are no more workers than cores
  always,     // pin worker i to core i mod cores, oversubscribed or not
  never,
};

struct pool_options {
  // Virtual nodes on this host (the embedded default): each an agent and a shared-memory domain
  // of its own, talking to the others only through libfabric.
  std::uint32_t nodes = 1;
  // Workers per node; 0: one per core (hwloc) divided among the nodes, at least 1.
  std::uint32_t workers_per_node = 0;
  pin_policy pin = pin_policy::automatic;
  // A worker exits and is replaced after this many chunks (Python's maxtasksperchild); 0: never.
  std::uint32_t maxtasksperchild = 0;
  // A chunk whose worker (or node) dies is run again on another worker this many times; after
  // that its items fail with worker_lost.
  std::uint32_t max_task_retries = 2;
  // Chunks queued on a node beyond one per worker, per worker, so a worker finds its next item
  // at once. The orchestrator raises it for short tasks (up to max_prefetch_per_worker) and
  // stops prefetching at the tail of the work so no node sits on items while others idle.
  std::uint32_t prefetch_per_worker = 1;
  std::uint32_t max_prefetch_per_worker = 64;
  // The largest encoded argument list or result of one item.
  std::uint32_t max_item_bytes = 8u << 20;
  // Run once in every worker before its first task (Python's initializer/initargs): a
  // registered task and its encoded arguments; set with set_initializer().
  std::string initializer_task;
  std::string initializer_args;
  std::string job;  // shared-memory namespace prefix; empty: "pool<pid>-<n>"
  transport::agent_config agent;
  // RxM's eager buffer size and per-connection queue depths for the agents, applied with
  // transport::set_rxm_defaults() before they start (the environment wins; 0 leaves libfabric's
  // default). RxM clears pools of these at start-up, so smaller values start a Pool faster; the
  // Pool's messages are small and larger ones go point to point. Measured start-up times:
  // docs/benchmarks.md ("Pool start-up").
  std::uint32_t rxm_buffer_bytes = 4096;
  std::uint32_t rxm_queue_depth = 32;
  // When the pool's processes outnumber the cores, agents and workers sleep at once instead of
  // spinning first: a spinning process only delays the one it waits for.
  bool no_spin_when_oversubscribed = true;
  std::chrono::milliseconds start_timeout{60'000};

  template <class R, class... Params, class... Args>
  pool_options& set_initializer(R (*fn)(Params...), Args&&... args) {
    const task_entry* t = find_task_by_function(reinterpret_cast<std::uintptr_t>(fn));
    if (t == nullptr) throw std::invalid_argument("initializer is not a registered task (use CHANPOOL_TASK)");
    initializer_task = t->name;
    initializer_args.clear();
    encode_args<std::decay_t<Params>...>(initializer_args, std::decay_t<Params>(std::forward<Args>(args))...);
    return *this;
  }
};

template <class R>
using value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

namespace detail {
class engine;
struct pool_factory;

enum class job_kind : std::uint8_t { map, imap, imap_unordered, apply };

struct submission {
  const task_entry* task = nullptr;
  std::string args;                 // the items' encoded arguments, back to back
  std::vector<std::uint64_t> ends;  // item i is args[ends[i-1], ends[i])
  std::size_t chunksize = 1;
  job_kind kind = job_kind::map;
  std::function<void(job&)> on_ready;
};

const task_entry& registered(std::uintptr_t function, const char* what);
std::shared_ptr<job> submit(engine& e, submission&& s);
std::optional<clock::time_point> deadline_after(std::optional<std::chrono::nanoseconds> t);
[[noreturn]] void throw_timeout(const job& j, const char* what);

template <class R>
value_t<R> decode_result(const job& j, std::size_t i) {
  j.throw_if_failed(i);
  if constexpr (std::is_void_v<R>) {
    return {};
  } else {
    return decode<R>(j.result_bytes(i));
  }
}
}  // namespace detail

using duration = std::chrono::nanoseconds;

// The result of map_async / starmap_async / apply_async (Python's AsyncResult / MapResult).
template <class T>
class async_result {
 public:
  async_result() = default;
  async_result(std::shared_ptr<detail::job> j, std::function<T(const detail::job&)> extract)
      : job_(std::move(j)), extract_(std::move(extract)) {}

  // Waits for the result (forever, or `timeout`), then returns it or throws the task's error
  // (task_error, worker_lost, pool_not_running); timeout_error if it is not ready in time.
  T get(std::optional<duration> timeout = std::nullopt) const {
    if (!job_->wait_ready(detail::deadline_after(timeout))) detail::throw_timeout(*job_, "get()");
    job_->throw_first_failure();
    return extract_(*job_);
  }
  // Waits until ready or the timeout passes; never throws a task's error.
  void wait(std::optional<duration> timeout = std::nullopt) const { job_->wait_ready(detail::deadline_after(timeout)); }
  bool ready() const { return job_->ready(); }
  // Whether it completed without error; std::logic_error if not ready yet (as Python's ValueError).
  bool successful() const {
    if (!job_->ready()) throw std::logic_error("successful(): the result is not ready");
    return job_->successful();
  }
  bool valid() const noexcept { return job_ != nullptr; }

 private:
  std::shared_ptr<detail::job> job_;
  std::function<T(const detail::job&)> extract_;
};

// The result of imap / imap_unordered: results one at a time, in input order (imap) or as they
// finish (imap_unordered). A failed item throws at its place; the iteration may go on after it.
// One consumer thread at a time.
template <class R>
class imap_result {
 public:
  imap_result() = default;
  explicit imap_result(std::shared_ptr<detail::job> j, bool ordered) : job_(std::move(j)), ordered_(ordered) {}

  // The next result; nullopt once every item has been returned. Throws timeout_error after
  // `timeout` (the item is then still the next one), or the item's error.
  std::optional<value_t<R>> next(std::optional<duration> timeout = std::nullopt) {
    if (next_ >= job_->size()) return std::nullopt;
    const auto deadline = detail::deadline_after(timeout);
    std::size_t index = next_;
    if (ordered_) {
      if (!job_->wait_item(index, deadline)) detail::throw_timeout(*job_, "next()");
    } else {
      const auto done = job_->wait_completion(next_, deadline);
      if (!done) detail::throw_timeout(*job_, "next()");
      index = *done;
    }
    ++next_;
    return detail::decode_result<R>(*job_, index);
  }
  std::size_t size() const noexcept { return job_ ? job_->size() : 0; }

  // Range-for support: blocking, input iterator.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = value_t<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(imap_result* owner) : owner_(owner) { advance(); }
    const value_type& operator*() const { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(const iterator& other) const { return owner_ == other.owner_; }

   private:
    void advance() {
      current_ = owner_->next();
      if (!current_) owner_ = nullptr;
    }
    imap_result* owner_ = nullptr;
    std::optional<value_type> current_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  std::shared_ptr<detail::job> job_;
  bool ordered_ = true;
  std::size_t next_ = 0;
};

template <class R>
struct map_callbacks {
  // Both run on the pool's scheduler thread: keep them short (as in Python).
  std::function<void(const std::vector<value_t<R>>&)> callback;
  std::function<void(std::exception_ptr)> error_callback;
};

template <class R>
struct apply_callbacks {
  std::function<void(const value_t<R>&)> callback;
  std::function<void(std::exception_ptr)> error_callback;
};

struct pool_info {
  std::uint32_t nodes = 0;
  std::uint32_t workers_per_node = 0;
  std::uint32_t workers = 0;
  double startup_seconds = 0;  // constructor: agents, workers, every worker ready
  std::string job;
  std::string fabric;          // the agents' provider and fabric
  bool pinned = false;
  bool oversubscribed = false;  // more processes than cores: nothing spins
  std::vector<int> agent_pids;       // node k's transport agent (embedded: a child of this process)
  std::vector<int> supervisor_pids;  // node k's supervisor (forks and replaces its workers)
};

struct pool_counters {
  std::uint64_t chunks_sent = 0;
  std::uint64_t chunks_rerun = 0;     // after a worker or node died
  std::uint64_t workers_lost = 0;     // died while the pool ran (not asked to exit)
  std::uint64_t nodes_lost = 0;
  std::uint64_t duplicate_results = 0; // results of re-run items that had already arrived: dropped
  std::uint64_t bad_messages = 0;      // malformed messages on the results channel: dropped
};

class pool {
 public:
  // Starts nodes x workers_per_node workers (and a transport agent per node) and returns once
  // every worker is ready. Throws std::system_error (chanpool category) when they cannot start.
  explicit pool(const pool_options& options = {});
  ~pool();  // terminate(): leaving the scope ends the pool, as Python's `with Pool() as p:` does
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // --- map family: fn takes one argument, inputs is any range of values convertible to it ---
  // chunksize 0: ceil(n / (4 * workers)), as Python.
  template <class F, class Range>
  auto map(F fn, const Range& inputs, std::size_t chunksize = 0) {
    return map_async(fn, inputs, chunksize).get();
  }
  template <class F, class Range>
  auto map_async(F fn, const Range& inputs, std::size_t chunksize = 0,
                 map_callbacks<typename task_traits<F>::result_type> callbacks = {}) {
    static_assert(task_traits<F>::arity == 1, "map takes a one-argument task; use starmap");
    using arg = std::tuple_element_t<0, typename task_traits<F>::args_tuple>;
    auto s = begin_submission(fn, detail::job_kind::map);
    for (const auto& x : inputs) add_item(s, [&](std::string& out) { encode(static_cast<arg>(x), out); });
    return finish_map<typename task_traits<F>::result_type>(std::move(s), chunksize, std::move(callbacks));
  }
  // fn takes several arguments; each input is a tuple (or pair/array) of them.
  template <class F, class Range>
  auto starmap(F fn, const Range& inputs, std::size_t chunksize = 0) {
    return starmap_async(fn, inputs, chunksize).get();
  }
  template <class F, class Range>
  auto starmap_async(F fn, const Range& inputs, std::size_t chunksize = 0,
                     map_callbacks<typename task_traits<F>::result_type> callbacks = {}) {
    using args_tuple = typename task_traits<F>::args_tuple;
    auto s = begin_submission(fn, detail::job_kind::map);
    for (const auto& x : inputs)
      add_item(s, [&](std::string& out) { encode_tuple(out, static_cast<args_tuple>(x)); });
    return finish_map<typename task_traits<F>::result_type>(std::move(s), chunksize, std::move(callbacks));
  }
  // chunksize defaults to 1, as Python's.
  template <class F, class Range>
  imap_result<typename task_traits<F>::result_type> imap(F fn, const Range& inputs, std::size_t chunksize = 1) {
    return imap_impl(fn, inputs, chunksize, detail::job_kind::imap);
  }
  template <class F, class Range>
  imap_result<typename task_traits<F>::result_type> imap_unordered(F fn, const Range& inputs, std::size_t chunksize = 1) {
    return imap_impl(fn, inputs, chunksize, detail::job_kind::imap_unordered);
  }

  // --- apply family -------------------------------------------------------------------------
  template <class F, class... Args>
  auto apply(F fn, Args&&... args) {
    return apply_async(fn, std::forward<Args>(args)...).get();
  }
  template <class F, class... Args>
  auto apply_async(F fn, Args&&... args) {
    return apply_async_with(fn, std::forward_as_tuple(std::forward<Args>(args)...), {});
  }
  // Python's apply_async(func, args, callback=, error_callback=).
  template <class F, class Tuple>
  auto apply_async_with(F fn, Tuple&& args, apply_callbacks<typename task_traits<F>::result_type> callbacks) {
    using R = typename task_traits<F>::result_type;
    using args_tuple = typename task_traits<F>::args_tuple;
    static_assert(std::tuple_size_v<std::decay_t<Tuple>> == task_traits<F>::arity, "wrong number of arguments");
    auto s = begin_submission(fn, detail::job_kind::apply);
    add_item(s, [&](std::string& out) { encode_tuple(out, args_tuple(std::forward<Tuple>(args))); });
    if (callbacks.callback || callbacks.error_callback) {
      s.on_ready = [cb = std::move(callbacks)](detail::job& j) {
        try {
          j.throw_first_failure();
          if (cb.callback) cb.callback(detail::decode_result<R>(j, 0));
        } catch (...) {
          if (cb.error_callback) cb.error_callback(std::current_exception());
        }
      };
    }
    return async_result<value_t<R>>(submit(std::move(s)),
                                    [](const detail::job& j) { return detail::decode_result<R>(j, 0); });
  }

  // --- lifetime -----------------------------------------------------------------------------
  // No more submissions; work already submitted still runs.
  void close();
  // Stops now: kills the workers, fails pending results with pool_not_running. Idempotent.
  void terminate();
  // Waits for the workers to exit; after close() (lets queued work finish first) or terminate().
  // std::logic_error if the pool is still open, as Python's ValueError.
  void join();

  const pool_info& info() const noexcept;
  pool_counters counters() const;
  std::uint32_t workers() const noexcept { return info().workers; }

 private:
  template <class F>
  detail::submission begin_submission(F fn, detail::job_kind kind) {
    detail::submission s;
    s.task = &detail::registered(reinterpret_cast<std::uintptr_t>(+fn), "task");
    s.kind = kind;
    s.ends.reserve(64);
    return s;
  }
  template <class Encode>
  void add_item(detail::submission& s, Encode&& encode_one) {
    encode_one(s.args);
    s.ends.push_back(s.args.size());
  }
  template <class Tuple>
  static void encode_tuple(std::string& out, const Tuple& t) {
    std::apply([&](const auto&... a) { encode_args(out, a...); }, t);
  }
  template <class R>
  async_result<std::vector<value_t<R>>> finish_map(detail::submission&& s, std::size_t chunksize, map_callbacks<R> callbacks) {
    s.chunksize = chunksize != 0 ? chunksize : default_chunksize(s.ends.size());
    auto extract = [](const detail::job& j) {
      std::vector<value_t<R>> out;
      out.reserve(j.size());
      for (std::size_t i = 0; i < j.size(); ++i) out.push_back(detail::decode_result<R>(j, i));
      return out;
    };
    if (callbacks.callback || callbacks.error_callback) {
      s.on_ready = [cb = std::move(callbacks), extract](detail::job& j) {
        try {
          j.throw_first_failure();
          auto values = extract(j);
          if (cb.callback) cb.callback(values);
        } catch (...) {
          if (cb.error_callback) cb.error_callback(std::current_exception());
        }
      };
    }
    return async_result<std::vector<value_t<R>>>(submit(std::move(s)), extract);
  }
  template <class F, class Range>
  imap_result<typename task_traits<F>::result_type> imap_impl(F fn, const Range& inputs, std::size_t chunksize,
                                                               detail::job_kind kind) {
    static_assert(task_traits<F>::arity == 1, "imap takes a one-argument task");
    using arg = std::tuple_element_t<0, typename task_traits<F>::args_tuple>;
    auto s = begin_submission(fn, kind);
    for (const auto& x : inputs) add_item(s, [&](std::string& out) { encode(static_cast<arg>(x), out); });
    s.chunksize = chunksize == 0 ? 1 : chunksize;
    return imap_result<typename task_traits<F>::result_type>(submit(std::move(s)), kind == detail::job_kind::imap);
  }
  friend struct detail::pool_factory;
  explicit pool(std::unique_ptr<detail::engine> e);
  std::size_t default_chunksize(std::size_t items) const noexcept;
  std::shared_ptr<detail::job> submit(detail::submission&& s);

  std::unique_ptr<detail::engine> engine_;
};

}  // namespace chanpool::pool
