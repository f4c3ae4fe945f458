#include "pool_map_latency.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "chanpool/pool/pool.hpp"

namespace chanpool::tools::pool_map {
namespace {

namespace pl = chanpool::pool;
using steady = std::chrono::steady_clock;

// The empty task: says where it ran, so that calls served on the caller's node are told apart.
std::uint32_t empty_task_node(int) {
  const auto w = pl::current_worker();
  return w ? w->node : 0;
}
CHANPOOL_TASK(empty_task_node);

struct summary {
  std::size_t count = 0;
  double median_us = 0;
  double p99_us = 0;
  double mean_us = 0;
  double min_us = 0;
};

summary summarise(std::vector<double> us) {
  summary s;
  s.count = us.size();
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))]; };
  s.median_us = at(0.5);
  s.p99_us = at(0.99);
  s.min_us = us.front();
  double sum = 0;
  for (const double v : us) sum += v;
  s.mean_us = sum / static_cast<double>(us.size());
  return s;
}

nlohmann::ordered_json to_json(const summary& s) {
  return {{"count", s.count}, {"median_us", s.median_us}, {"p99_us", s.p99_us}, {"mean_us", s.mean_us}, {"min_us", s.min_us}};
}

}  // namespace

int run_apply_latency(const apply_latency_options& o) {
  pl::pool_options po;
  po.nodes = std::max(2u, o.nodes);
  po.workers_per_node = o.workers_per_node;
  if (!o.provider.empty()) po.agent.provider = o.provider;
  pl::pool p(po);
  const pl::pool_info info = p.info();
  // Untimed warm-up: first-touch costs of every path, as the map's start-up pays them.
  for (int i = 0; i < 1000; ++i) p.apply_async(empty_task_node, 0).get(std::chrono::seconds(30));
  std::vector<double> remote, local;
  remote.reserve(o.round_trips);
  // The orchestrator hands calls to nodes in turn: stop once enough reached another node (or
  // after four times as many calls, should it keep choosing node 0).
  for (std::uint64_t i = 0; remote.size() < o.round_trips && i < 4 * o.round_trips; ++i) {
    const auto t0 = steady::now();
    const std::uint32_t node = p.apply_async(empty_task_node, 0).get(std::chrono::seconds(30));
    const double us = std::chrono::duration<double, std::micro>(steady::now() - t0).count();
    (node == 0 ? local : remote).push_back(us);
  }
  p.close();
  p.join();
  const summary r = summarise(remote), l = summarise(local);
  if (o.json) {
    nlohmann::ordered_json j;
    j["tool"] = "pool_map";
    j["mode"] = "apply_latency";
    j["nodes"] = info.nodes;
    j["workers_per_node"] = info.workers_per_node;
    j["fabric"] = info.fabric;
    j["other_node"] = to_json(r);
    j["same_node"] = to_json(l);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("# pool_map --apply_latency: apply_async(empty task).get(), one call at a time, %u nodes x %u workers\n",
                info.nodes, info.workers_per_node);
    std::printf("# fabric: %s\n", info.fabric.c_str());
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (info.workers + info.nodes + 1 > cores)
      std::printf("# note: %u workers, %u agents and this process share %u cores: waits sleep, they do not spin\n",
                  info.workers, info.nodes, cores);
    std::printf("%-34s %8s %12s %12s %12s %12s\n", "round trip (caller -> worker)", "calls", "median us", "p99 us",
                "mean us", "min us");
    for (const auto& [name, s] : {std::pair{"worker on another node", r}, std::pair{"worker on the caller's node", l}})
      std::printf("%-34s %8zu %12.1f %12.1f %12.1f %12.1f\n", name, s.count, s.median_us, s.p99_us, s.mean_us, s.min_us);
  }
  return r.count == 0 ? 1 : 0;
}

}  // namespace chanpool::tools::pool_map
