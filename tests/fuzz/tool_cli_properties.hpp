// What each tool's later code relies on in the options its parser accepted
// (fuzz_tool_cli.cpp): every list non-empty, every size and count within what the tool allocates
// or loops over, every number of seconds or microseconds finite and within what the chrono casts
// and sleeps of the tool can take, every word one of the values the tool compares it with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "boost_mq_latency_cli.hpp"
#include "chanpool_cleanup_cli.hpp"
#include "fanin_bench_cli.hpp"
#include "latency_bandwidth.hpp"
#include "latency_bench_cli.hpp"
#include "mpi_bandwidth_cli.hpp"
#include "mpi_fanin_cli.hpp"
#include "mpi_latency_cli.hpp"
#include "mpi_pool_cli.hpp"
#include "ping_pong_flags.hpp"
#include "pool_map_cli.hpp"

namespace chanpool::fuzz::tool_cli {

inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_tool_cli: %s\n", what);
  std::abort();
}

inline bool one_of(const std::string& v, std::initializer_list<const char*> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; });
}
inline bool within(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }
template <class T>
bool all_within(const std::vector<T>& v, T lo, T hi) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [&](T x) { return x >= lo && x <= hi; });
}
// Microseconds a tool casts to long and then to nanoseconds (spins, deadlines).
constexpr double max_chrono_us = 9e12;
// The largest message a ping-pong tool allocates (twice, and a 4x heap for latency_bench).
constexpr std::size_t max_ping_pong_bytes = std::size_t{1} << 30;

inline void check_pool_map(const tools::pool_map_cli::options& o) {
  require(all_within(o.nodes, 1u, std::numeric_limits<unsigned>::max()), "pool_map: --nodes empty or 0");
  require(!o.imbalance_factors.empty(), "pool_map: no imbalance factor");
  // pool_map runs the MPI pools with the same values; they accept these ranges (mpi_pool_cli.hpp).
  for (double k : o.imbalance_factors)
    require(within(k, 1, mpi_compare::pool::max_imbalance_factor), "pool_map: imbalance factor outside the MPI pools' range");
  require(within(o.min_time, 0, mpi_compare::pool::max_min_time), "pool_map: --min_time outside the MPI pools' range");
  require(o.items_per_worker <= mpi_compare::pool::max_items_per_worker, "pool_map: --items_per_worker over the MPI pools'");
  require(o.num_iters >= 1, "pool_map: --num_iters 0 (the runtime is a mean over them)");
  require(o.mpi == "none" || o.mpi.find("round") != std::string::npos || o.mpi.find("dynamic") != std::string::npos,
          "pool_map: --mpi names no pool");
  require(one_of(o.python, {"auto", "on", "off"}), "pool_map: --python");
  // run_shell() turns the timeout into a steady_clock duration (int64 nanoseconds).
  require(std::isfinite(o.mpi_timeout) && o.mpi_timeout <= 9e9, "pool_map: --mpi_timeout not a duration");
}

inline void check_fanin_bench(const tools::fanin::options& o) {
  require(o.nodes >= 1 && o.nodes <= 4096 && o.senders_per_node >= 1 && o.senders_per_node <= 1024, "fanin_bench: counts");
  require(o.msg_size >= tools::fanin::header_bytes && o.msg_size <= (std::size_t{1} << 26), "fanin_bench: --msg_size");
  // The receiver expects nodes * senders * messages (uint64); mpi_fanin takes 1..2^40 of them.
  require(o.messages_per_sender >= 1 && o.messages_per_sender <= (std::uint64_t{1} << 40),
          "fanin_bench: --messages_per_sender outside what mpi_fanin and the receiver's count take");
  // Senders add duration * 1e9 ns to the clock (uint64); mpi_fanin --duration takes up to a day.
  require(within(o.duration, 0, 86400), "fanin_bench: --duration not a number of seconds the senders can add");
  require(one_of(o.aggregation, {"on", "off"}) && one_of(o.bootstrap, {"auto", "embedded", "mpi"}), "fanin_bench: words");
  require(o.flush_bytes >= 256 && o.flush_bytes <= (std::size_t{1} << 22) && o.credits >= 1 && o.credits <= 4096,
          "fanin_bench: tuning counts");
  require(within(o.flush_deadline_us, 0, max_chrono_us), "fanin_bench: --flush_deadline_us not a duration");
  require(!o.agent_spin_us || within(*o.agent_spin_us, 0, max_chrono_us), "fanin_bench: --agent_spin_us not a duration");
  require(!o.receiver_spin_us || within(*o.receiver_spin_us, -max_chrono_us, max_chrono_us),
          "fanin_bench: --receiver_spin_us not a duration");
  // Senders cast it to long seconds; the receiver compares elapsed time with it.
  require(within(o.stall_timeout, 0, 9e9), "fanin_bench: --stall_timeout not a duration");
}

inline void check_latency_bench(const tools::latency_bench_cli::options& o) {
  require(one_of(o.transport, {"shm", "fabric"}) && one_of(o.wait, {"spin", "adaptive", "idle"}) &&
              one_of(o.path, {"copy", "zerocopy", "auto"}) && one_of(o.channel_kind, {"mpmc", "spsc"}) &&
              one_of(o.fabric_mode, {"agent", "direct", "both"}),
          "latency_bench: words");
  require(o.iterations >= 1 && o.batch >= 1 && o.large_iterations >= 1, "latency_bench: counts");
  require(o.window >= 1 && o.window <= tools::bandwidth_max_window, "latency_bench: --window");
  // spin_us * 1000 is cast to int64 nanoseconds; the fabric spins are cast to long microseconds.
  require(within(o.spin_us, 0, 1e7), "latency_bench: --spin-us");
  require(within(o.agent_spin_us, 0, max_chrono_us) && within(o.receiver_spin_us, 0, max_chrono_us),
          "latency_bench: --agent-spin-us/--receiver-spin-us not a duration");
  if (o.bandwidth) {
    require(o.transport == "fabric" && !o.hops, "latency_bench: --bandwidth without fabric, or with --hops");
    require(all_within(o.sizes, std::size_t{1}, tools::bandwidth_max_size) && std::is_sorted(o.sizes.begin(), o.sizes.end()) &&
                std::adjacent_find(o.sizes.begin(), o.sizes.end()) == o.sizes.end(),
            "latency_bench: --bandwidth sizes");
    return;
  }
  // Buffers of the largest size are allocated at both ends (a heap of 4x it for shm).
  require(all_within(o.sizes, std::size_t{0}, max_ping_pong_bytes), "latency_bench: --sizes empty or too large");
  if (o.hops) require(o.transport == "fabric" && o.fabric_mode != "direct" && o.sizes.size() == 1, "latency_bench: --hops");
}

inline void check_cleanup(const tools::cleanup_cli::options&) {}  // any job name filters; no numbers

inline void check_ping_pong(const std::vector<std::size_t>& sizes, std::uint64_t iterations, std::uint64_t batch) {
  require(all_within(sizes, std::size_t{1}, max_ping_pong_bytes), "ping-pong: --sizes");
  require(iterations >= 1 && iterations <= tools::max_iterations && batch >= 1 && batch <= tools::max_iterations,
          "ping-pong: --iterations/--batch");
}
inline void check_mpi_latency(const mpi_compare::latency_cli::options& o) { check_ping_pong(o.sizes, o.iterations, o.batch); }
inline void check_boost_mq_latency(const bench::boost_mq_cli::options& o) { check_ping_pong(o.sizes, o.iterations, o.batch); }

inline void check_mpi_bandwidth(const mpi_compare::bandwidth_cli::options& o) {
  namespace b = mpi_compare::bandwidth_cli;
  require(all_within(o.sizes, std::size_t{1}, b::target_window_bytes) && !o.kinds.empty(), "mpi_bandwidth: lists");
  require(o.window >= 1 && o.window <= b::max_window && o.iterations <= b::max_windows && o.warmup <= b::max_windows,
          "mpi_bandwidth: counts");
  // ceil(seconds / per_window) is cast to a window count.
  require(within(o.seconds, b::min_seconds, b::max_seconds), "mpi_bandwidth: --seconds");
}

inline void check_mpi_fanin(const mpi_compare::fanin_cli::options& o) {
  namespace f = mpi_compare::fanin_cli;
  require(o.msg_size >= f::header_bytes && o.msg_size <= f::max_message_bytes, "mpi_fanin: --msg_size");
  require(o.messages_per_sender >= 1 && o.messages_per_sender <= f::max_messages_per_sender, "mpi_fanin: count");
  require(o.duration_s == 0 || within(o.duration_s, 1e-3, 86400), "mpi_fanin: --duration");
  require(within(o.stall_timeout_s, 0, 86400), "mpi_fanin: --stall_timeout");
}

inline void check_mpi_pool(const mpi_compare::pool::options& o) {
  namespace p = mpi_compare::pool;
  require(within(o.imbalance_factor, 1, p::max_imbalance_factor) && within(o.min_time, 0, p::max_min_time),
          "mpi_pool: --imbalance_factor/--min_time");
  require(o.items_per_worker >= 1 && o.items_per_worker <= p::max_items_per_worker, "mpi_pool: --items_per_worker");
  require(o.num_iters >= 1 && o.num_iters <= p::max_num_iters, "mpi_pool: --num_iters");
  // --print_items generates that many items before printing them.
  require(o.print_items <= p::max_items_per_worker, "mpi_pool: --print_items more than a list can hold");
}

}  // namespace chanpool::fuzz::tool_cli
