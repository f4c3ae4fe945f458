// The task registry: filled during static initialisation, read-only afterwards.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "chanpool/pool/task.hpp"
#include "report.hpp"

namespace chanpool::pool {
namespace {

struct registry {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, task_entry> by_id;
  std::unordered_map<std::uintptr_t, std::uint64_t> by_function;
};

registry& the_registry() {
  static registry r;  // constructed on first use: safe from any static initialiser
  return r;
}

}  // namespace

bool detail::register_task(task_entry entry) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  if (const auto it = r.by_id.find(entry.id); it != r.by_id.end()) {
    if (it->second.function == entry.function) return true;  // the same registration, seen twice
    report("chanpool pool: two tasks registered as '%s' (or names with one hash): rename one",
                 entry.name.c_str());
    std::abort();
  }
  r.by_function.emplace(entry.function, entry.id);
  r.by_id.emplace(entry.id, std::move(entry));
  return true;
}

const task_entry* find_task(std::uint64_t id) noexcept {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.by_id.find(id);
  return it == r.by_id.end() ? nullptr : &it->second;
}

const task_entry* find_task(std::string_view name) noexcept {
  const task_entry* t = find_task(task_id(name));
  return t != nullptr && t->name == name ? t : nullptr;
}

const task_entry* find_task_by_function(std::uintptr_t function) noexcept {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.by_function.find(function);
  if (it == r.by_function.end()) return nullptr;
  return &r.by_id.at(it->second);
}

}  // namespace chanpool::pool
