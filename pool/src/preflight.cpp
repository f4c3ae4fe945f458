#include "preflight.hpp"

#include <algorithm>
#include <system_error>

namespace chanpool::pool::detail {

std::uint32_t tasks_channel_capacity(std::uint32_t workers, const pool_options& options);  // engine.cpp

namespace {

constexpr std::uint64_t KiB = 1ull << 10, MiB = 1ull << 20;
// Per-process costs, measured like transport/src/limits.cpp's (docs/pool.md, "Limits"): one
// thread each, and a Pss of 0.3-0.45 MiB (forked: most pages are shared), rounded up.
constexpr std::uint64_t worker_tasks = 1;
constexpr std::uint64_t supervisor_tasks = 1;
constexpr std::uint64_t worker_memory = 1 * MiB;
constexpr std::uint64_t supervisor_memory = 1 * MiB;
constexpr std::uint64_t reply_channel_bytes = 32 * KiB;  // client.cpp: each attached process's
constexpr std::uint64_t task_slot_bytes = 256;            // node.cpp: the task channel's slots
constexpr std::uint64_t results_ring_bytes = 16384 * 256; // engine.cpp: the results channel's ring
constexpr std::uint64_t orchestrator_tasks = 1;           // the scheduler thread

}  // namespace

transport::resource_need pool_need(std::uint32_t nodes, std::uint32_t workers_per_node, const pool_options& options) {
  transport::resource_need n = transport::cluster_need(nodes, options.agent);
  const std::uint64_t per_node_processes = 1 + std::uint64_t{workers_per_node};
  n.tasks += orchestrator_tasks + nodes * (supervisor_tasks + std::uint64_t{workers_per_node} * worker_tasks);
  n.memory_bytes += nodes * (supervisor_memory + std::uint64_t{workers_per_node} * worker_memory);
  n.shm_bytes += results_ring_bytes + reply_channel_bytes +
                 nodes * (std::uint64_t{tasks_channel_capacity(workers_per_node, options)} * task_slot_bytes +
                          per_node_processes * reply_channel_bytes);
  return n;
}

void check_pool_fits(std::uint32_t nodes, std::uint32_t workers_per_node, const pool_options& options) {
  const auto have = transport::host_capacity::probe();
  const auto need = pool_need(nodes, workers_per_node, options);
  const std::error_code ec = transport::exceeded(need, have);
  if (!ec) return;
  const std::uint32_t max_nodes = transport::largest_fitting(
      nodes, [&](std::uint32_t n) { return pool_need(n, workers_per_node, options); }, have);
  const std::uint32_t max_workers = transport::largest_fitting(
      workers_per_node, [&](std::uint32_t w) { return pool_need(nodes, w, options); }, have);
  std::string fits;
  if (max_nodes > 0) fits = std::to_string(max_nodes) + " nodes x " + std::to_string(workers_per_node) + " workers";
  if (max_workers > 0)
    fits += (fits.empty() ? "" : ", or ") + std::to_string(nodes) + " nodes x " + std::to_string(max_workers) + " workers";
  if (fits.empty()) {
    const std::uint32_t one_each = transport::largest_fitting(
        nodes, [&](std::uint32_t n) { return pool_need(n, 1, options); }, have);
    fits = one_each > 0 ? std::to_string(one_each) + " nodes x 1 worker" : "not even 1 node x 1 worker";
  }
  throw std::system_error(ec, "chanpool pool: " + std::to_string(nodes) + " nodes x " + std::to_string(workers_per_node) +
                                  " workers need about " + transport::describe_excess(need, have) +
                                  "; the largest that fits is " + fits);
}

}  // namespace chanpool::pool::detail
