// The work items of the Pool comparison: one seeded list of durations that pool_map,
// mpi_pool_round and mpi_pool_dynamic generate identically (Python's Pool is handed the list).
// Free of MPI and of chanpool, so that every tool and test can include it (target
// chanpool_workload, built but not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace chanpool::workload {

// Maps one 64-bit engine output onto [0, 1): its top 53 bits times 2^-53, exact in a double.
// Written out rather than std::uniform_real_distribution, whose algorithm is up to the standard
// library (libstdc++, libc++ and MSVC give different numbers for the same engine).
inline double unit_interval(std::uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

// The list, exactly: item i (0-based) is
//     min_time + u_i * ((imbalance_factor - 1) * min_time)      (in that order, in doubles)
// where u_i = unit_interval(x_i) and x_i is the i-th output (from the first) of
// std::mt19937_64 constructed with `seed` (the standard's seeding of the 64-bit Mersenne
// Twister; its 10000th output for seed 5489 is 9981545732273789042). Each item is uniform in
// [min_time, imbalance_factor * min_time); imbalance_factor 1 gives min_time for every item.
// The project builds with -std=c++20 (no GNU extensions), so GCC does not contract the
// expression into an fma and the doubles match any IEEE implementation of the formula
// (tests/mpi/check_pool.py recomputes the list in Python and compares).
inline std::vector<double> work_items(std::uint64_t seed, std::size_t count, double min_time,
                                      double imbalance_factor) {
  std::mt19937_64 engine(seed);
  const double span = (imbalance_factor - 1.0) * min_time;
  std::vector<double> items;
  items.reserve(count);
  for (std::size_t i = 0; i < count; ++i) items.push_back(min_time + unit_interval(engine()) * span);
  return items;
}

}  // namespace chanpool::workload
