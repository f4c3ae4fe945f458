// Tasks are plain functions registered by name, so that every process of a Pool (forked here,
// or the same binary started on other nodes) can run them: a work item names its task by a
// 64-bit hash of the name, never by address (addresses differ between processes under ASLR).
//
//   int square(int x) { return x * x; }
//   CHANPOOL_TASK(square);                     // at namespace scope, in any .cpp of the binary
//   std::vector<int> r = pool.map(square, xs); // the Pool finds "square" by the function
//
// Registration happens during static initialisation. Lambdas and functions taking references
// to non-const are not tasks; arguments are taken by value (const& is fine) and encoded with
// codec.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "chanpool/pool/codec.hpp"

namespace chanpool::pool {

// Runs one item: decodes its argument bytes, calls the function, encodes the result into `out`.
// Throws what the function throws (the worker reports it) or decode_error.
using task_invoker = void (*)(std::string_view args, std::string& out);

struct task_entry {
  std::string name;
  std::uint64_t id = 0;          // task_id(name)
  task_invoker invoke = nullptr;
  std::uintptr_t function = 0;  // the registered function's address in this process
};

// FNV-1a of the name: stable across processes and builds.
constexpr std::uint64_t task_id(std::string_view name) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Which worker runs the calling code: inside a task, its node and its index on that node
// (as Python's multiprocessing.current_process()); nullopt outside a Pool's worker.
struct worker_identity {
  std::uint32_t node = 0;
  std::uint32_t worker = 0;
};
std::optional<worker_identity> current_worker() noexcept;

namespace detail {
// Registers a task; aborts with a message on a duplicate name (two tasks, one name, is a bug
// that would run the wrong code on other nodes). Threadsafe.
bool register_task(task_entry entry);
}  // namespace detail

// Lookups. Threadsafe once static initialisation is over.
const task_entry* find_task(std::uint64_t id) noexcept;
const task_entry* find_task_by_function(std::uintptr_t function) noexcept;
const task_entry* find_task(std::string_view name) noexcept;

template <class F>
struct task_traits;

template <class R, class... Args>
struct task_traits<R (*)(Args...)> {
  using result_type = R;
  using args_tuple = std::tuple<std::decay_t<Args>...>;
  static constexpr std::size_t arity = sizeof...(Args);

  template <auto Fn>
  static void invoke(std::string_view bytes, std::string& out) {
    auto args = decode_args<std::decay_t<Args>...>(bytes);
    if constexpr (std::is_void_v<R>) {
      std::apply(Fn, std::move(args));
    } else {
      encode(std::apply(Fn, std::move(args)), out);
    }
  }
};

template <class R, class... Args>
struct task_traits<R (&)(Args...)> : task_traits<R (*)(Args...)> {};
template <class R, class... Args>
struct task_traits<R(Args...)> : task_traits<R (*)(Args...)> {};

template <auto Fn>
bool register_task_as(std::string name) {
  using traits = task_traits<decltype(Fn)>;
  static_assert(!std::is_reference_v<typename traits::result_type>, "a task returns a value, not a reference");
  task_entry e;
  e.id = task_id(name);
  e.name = std::move(name);
  e.invoke = &traits::template invoke<Fn>;
  e.function = reinterpret_cast<std::uintptr_t>(Fn);
  return detail::register_task(std::move(e));
}

}  // namespace chanpool::pool

#define CHANPOOL_POOL_CONCAT2(a, b) a##b
#define CHANPOOL_POOL_CONCAT(a, b) CHANPOOL_POOL_CONCAT2(a, b)

// Registers function `fn` under its own name (qualified names keep their "::").
#define CHANPOOL_TASK(fn) CHANPOOL_TASK_NAMED(fn, #fn)
// Registers function `fn` under `name` (a string literal, unique in the binary).
#define CHANPOOL_TASK_NAMED(fn, name)                                                              \
  [[maybe_unused]] static const bool CHANPOOL_POOL_CONCAT(chanpool_task_registered_, __COUNTER__) = \
      ::chanpool::pool::register_task_as<&fn>(name)
