// pool_map --apply_latency: what one apply_async costs its caller. One empty task at a time,
// from this process to a worker and back, timed at the caller (submit to get()), on a Pool of
// at least two virtual nodes so that most calls reach a worker on another node.
#pragma once

#include <cstdint>
#include <string>

namespace chanpool::tools::pool_map {

struct apply_latency_options {
  unsigned nodes = 2;             // at least 2
  unsigned workers_per_node = 1;  // 0: cores / nodes
  std::uint64_t round_trips = 10000;  // timed calls that ran on another node
  std::string provider;
  bool json = false;
};

// Runs the measurement and prints it (a table, or one JSON line); returns the exit status.
int run_apply_latency(const apply_latency_options& options);

}  // namespace chanpool::tools::pool_map
