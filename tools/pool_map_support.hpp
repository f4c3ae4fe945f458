// Support for the pool_map tool: the zero-overhead reference times of a work list, running the
// contenders (the MPI pools mpi_pool_round and mpi_pool_dynamic under mpirun, Python's
// multiprocessing.Pool) and reading their JSON, and the tool's outputs (JSON line, CSV, SVG plot).
// Kept apart from pool_map's main() so that all of it is unit-tested without a Pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace chanpool::tools::pool_map {

// --- Zero-overhead references (same definitions as ideal() in mpi_compare/mpi_pool.hpp) ------
// All three throw std::invalid_argument when workers == 0; an empty list gives 0.

// The makespan of the list handed out in order, each item to whichever worker is free first
// (ties: any), with no overhead: what a perfect dynamic pool achieves on this list.
double ideal_makespan(const std::vector<double>& items, std::size_t workers);
// The round-based schedule: items in rounds of `workers`; the next round starts when the
// round's longest item is done. The sum over rounds of each round's longest item.
double round_makespan(const std::vector<double>& items, std::size_t workers);
// No schedule beats this: max(total / workers, longest item).
double bound(const std::vector<double>& items, std::size_t workers);

// --- Running an MPI pool baseline ---------------------------------------------------------------

struct mpi_pool_request {
  std::string tool;  // path of mpi_pool_round or mpi_pool_dynamic (find_sibling_tool)
  unsigned workers = 0;  // MPI workers; mpirun -np workers + 1 (rank 0 is the root)
  double imbalance_factor = 1;
  std::uint64_t items_per_worker = 4;
  double min_time = 0.1;
  std::uint64_t seed = 1;
  unsigned num_iters = 1;
  std::string mpi_args;  // extra mpirun arguments, inserted verbatim (shell words) before the tool
  double timeout_s = 600;  // the whole mpirun; on expiry its process group is killed
};

// One contender's run (an MPI pool or Python's Pool).
struct contender_run {
  bool ok = false;
  double runtime_s = 0;              // the tool's runtime_s: mean over its num_iters maps
  std::vector<double> runtimes_s;    // one per map
  std::string command;               // the shell command run (for the user to repeat it)
  std::string error;                 // when !ok: what happened and what to do
};
using mpi_pool_run = contender_run;

// Runs `OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np W+1 --oversubscribe
// --bind-to none <mpi_args> <tool> --imbalance_factor K ... --json` through /bin/sh, waits for it
// (at most timeout_s), and parses the tool's JSON line. Never throws for a failed run: ok=false
// and `error` say why (mpirun or the tool missing, non-zero exit, no JSON, timeout, ...).
// Blocks the calling thread; safe to call from a multithreaded program (fork + exec).
mpi_pool_run run_mpi_pool(const mpi_pool_request& request);

// Python's multiprocessing.Pool on the same list: Pool(workers) from the "fork" context, then
// map(item, items, chunksize=1) num_iters times, each item sleeping its duration and returning
// it (every result is checked against its item). The durations are handed to it exactly (the
// same work, not a list regenerated in Python); one map of `workers` empty items first starts
// every worker, as the Pool's start-up does, and is not timed.
struct python_pool_request {
  std::string python = "python3";  // looked up in PATH unless it has a '/'
  unsigned workers = 0;
  std::vector<double> items;  // seconds
  unsigned num_iters = 1;
  double timeout_s = 600;
};
// Never throws for a failed run: ok=false and `error` say why (no python3, a wrong result,
// timeout, ...). Blocks the calling thread; forks and execs like run_mpi_pool.
contender_run run_python_pool(const python_pool_request& request);
// Whether `python` (as in python_pool_request) can be run here.
bool python_available(const std::string& python = "python3");

// Finds the executable `name` (e.g. "mpi_pool_round") for the program started as argv0:
//   1. next to it (installed: both in bin/);
//   2. in ../mpi_compare/ relative to it (build tree: tools/pool_map, mpi_compare/mpi_pool_round);
//   3. in PATH.
// argv0 without a '/' is looked up in PATH, then /proc/self/exe is used. Returns the path
// found (lexically normalised), or "" when none.
std::string find_sibling_tool(const char* argv0, const std::string& name);

// --- Results and their outputs -------------------------------------------------------------------

// One pool_map measurement: one node count and one imbalance factor.
struct row {
  unsigned nodes = 0;
  unsigned workers_per_node = 0;
  unsigned workers = 0;  // nodes * workers_per_node: the Pool's and each MPI pool's workers
  double imbalance_factor = 1;
  double ideal_s = 0;  // ideal_makespan of the list
  double bound_s = 0;  // bound of the list
  double pool_runtime_s = 0;
  double pool_startup_s = 0;
  std::optional<double> mpi_round_s;    // absent: not run (or failed)
  std::optional<double> mpi_dynamic_s;
  std::optional<double> python_s;       // Python's multiprocessing.Pool
};

// Shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string number(double value);

// ideal / runtime, and contender / pool; nullopt when a runtime is missing or not positive.
std::optional<double> efficiency(const row& r);
std::optional<double> speedup(std::optional<double> mpi_runtime_s, double pool_runtime_s);

// The tool's JSON line for one row, keys in this order (docs/tools.md lists them):
// {"tool":"pool_map","nodes":N,"workers_per_node":W,"workers":N*W,"imbalance_factor":K,
//  "ideal_s":..,"bound_s":..,"pool":{"runtime_s":..,"startup_s":..,"efficiency":ideal/runtime},
//  "mpi_round":{"runtime_s":..,"speedup":mpi/pool},"mpi_dynamic":{"runtime_s":..,"speedup":..},
//  "python_pool":{"runtime_s":..,"speedup":python/pool}}
// mpi_round / mpi_dynamic / python_pool are left out when not run. An integral imbalance factor is written as
// an integer (1, not 1.0), as on the command line; a ratio that cannot be
// computed (zero runtime) is null.
nlohmann::ordered_json to_json(const row& r);

// The row of one of to_json's lines (as written by pool_map --json); nullopt for any other line
// (another tool's, --apply_latency's, or one missing a key).
std::optional<row> row_from_json(const nlohmann::json& j);

// A CSV file: one header line, then one line per row, in the given order. Columns:
// nodes,workers_per_node,workers,imbalance_factor,ideal_s,bound_s,pool_runtime_s,pool_startup_s,
// efficiency,mpi_round_s,mpi_dynamic_s,speedup_vs_round,speedup_vs_dynamic,python_s,speedup_vs_python
// (empty cells for a contender not run). Throws std::runtime_error (path: strerror) on I/O failure.
void write_csv(const std::string& path, const std::vector<row>& rows);

// A standalone SVG (no scripts, fonts or external references): speedup (contender runtime /
// Pool runtime) against nodes on a log2 axis, one line per (imbalance factor, contender), a
// dashed line at 1 (equal), axis labels, legend and title. Rows without a contender's runtime
// add no point for it. Throws std::runtime_error (path: strerror) on I/O failure.
void write_svg_plot(const std::string& path, const std::vector<row>& rows);

}  // namespace chanpool::tools::pool_map
