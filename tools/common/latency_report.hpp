// Shared measurement and reporting for every ping-pong tool (latency_bench, mpi_latency,
// boost_mq_latency), so that all contenders are timed and printed the same way.
//
// Method: the pinger runs `iterations` round trips twice.
//  - pass 1 (median): a clock read only every `batch` round trips; each batch mean / 2 is one
//    sample of one-way latency; the headline is the median of those batch means. Clock reads
//    (~25 ns each here) are amortised over the batch and do not inflate the figure.
//  - pass 2 (p99): a clock read around every round trip; p99 of (round trip / 2). The clock
//    read cost is included in these samples (it is the same for every tool).
#pragma once

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ping_pong_flags.hpp"  // the shared flags and --sizes

namespace chanpool::tools {

struct latency_row {
  std::size_t size = 0;
  double one_way_ns = 0;  // median of batch means, half the round trip
  double p99_ns = 0;      // 99th percentile of individually timed round trips / 2
  std::uint64_t iterations = 0;
};

inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

// Runs both passes on the pinger side. `round_trip()` performs one full ping-pong.
template <class RoundTrip>
latency_row measure_round_trips(std::size_t size, std::uint64_t iterations, std::uint64_t batch,
                                RoundTrip&& round_trip) {
  using clock = std::chrono::steady_clock;
  batch = std::max<std::uint64_t>(1, std::min(batch, iterations));
  std::vector<double> batch_means;
  batch_means.reserve(iterations / batch + 1);
  std::uint64_t done = 0;
  while (done < iterations) {
    const std::uint64_t n = std::min(batch, iterations - done);
    const auto t0 = clock::now();
    for (std::uint64_t i = 0; i < n; ++i) round_trip();
    const auto t1 = clock::now();
    batch_means.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * static_cast<double>(n)));
    done += n;
  }
  std::vector<double> samples;
  samples.reserve(iterations);
  for (std::uint64_t i = 0; i < iterations; ++i) {
    const auto t0 = clock::now();
    round_trip();
    const auto t1 = clock::now();
    samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / 2.0);
  }
  return latency_row{size, percentile(std::move(batch_means), 0.5), percentile(std::move(samples), 0.99), iterations};
}

// Policy shared by every ping-pong tool, so they measure the same number of round trips.
inline constexpr std::size_t large_message_bytes = 65536;            // sizes from here on are capped:
inline constexpr std::uint64_t large_message_max_iterations = 2000;  // at most this many round trips
inline constexpr std::uint64_t max_warm_up_round_trips = 10000;      // warm-up: min(iterations, this)

inline std::uint64_t iterations_for(std::size_t size, std::uint64_t requested) {
  return size >= large_message_bytes ? std::min(requested, large_message_max_iterations) : requested;
}
inline std::uint64_t warm_up_for(std::uint64_t iterations) { return std::min(iterations, max_warm_up_round_trips); }

// Total round trips the peer must answer for one size: both passes.
inline std::uint64_t round_trips_per_size(std::uint64_t iterations) { return 2 * iterations; }

inline void print_table(const std::string& tool, const std::string& transport, const std::vector<latency_row>& rows,
                        const std::string& extra_header = {}) {
  std::printf("# %s, transport %s: one-way latency = round trip / 2\n", tool.c_str(), transport.c_str());
  if (!extra_header.empty()) std::printf("# %s\n", extra_header.c_str());
  std::printf("# median: of batch means; p99: of individually timed round trips (clock read included);\n"
              "# round trip: a request and its response, what a remote call pays\n");
  std::printf("%-12s %16s %14s %12s %16s %14s\n", "# size(B)", "one-way(ns)", "p99(ns)", "iterations", "round-trip(ns)",
              "rt-p99(ns)");
  for (const auto& r : rows)
    std::printf("%-12zu %16.1f %14.1f %12llu %16.1f %14.1f\n", r.size, r.one_way_ns, r.p99_ns,
                static_cast<unsigned long long>(r.iterations), 2 * r.one_way_ns, 2 * r.p99_ns);
  std::fflush(stdout);
}

inline nlohmann::json to_json(const std::string& tool, const std::string& transport, const std::vector<latency_row>& rows) {
  nlohmann::json j;
  j["tool"] = tool;
  j["transport"] = transport;
  j["results"] = nlohmann::json::array();
  for (const auto& r : rows)
    j["results"].push_back({{"size", r.size},
                            {"one_way_ns", r.one_way_ns},
                            {"p99_ns", r.p99_ns},
                            {"round_trip_ns", 2 * r.one_way_ns},
                            {"round_trip_p99_ns", 2 * r.p99_ns},
                            {"iterations", r.iterations}});
  return j;
}

}  // namespace chanpool::tools
