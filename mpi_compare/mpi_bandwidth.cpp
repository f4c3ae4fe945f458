// mpi_bandwidth: the MPI bandwidth baseline between rank 0 and rank 1, osu_bw / osu_put_bw /
// osu_get_bw style, for chanpool's fabric bandwidth to be compared against:
//   send  rank 0 posts a window of MPI_Isend, rank 1 has the window's MPI_Irecv posted and
//         answers each window with a one-byte ack;
//   put   rank 0 MPI_Put's a window into an MPI-3 window on rank 1 (passive target, one
//         MPI_Win_lock_all), then MPI_Win_flush(1);
//   get   the same with MPI_Get.
//
//   mpirun -np 2 mpi_bandwidth --sizes 4096,1048576 --kinds send,put,get [--json]
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "latency_report.hpp"
#include "mpi_bandwidth_cli.hpp"
#include "mpi_common.hpp"

namespace {

namespace cli_ns = chanpool::mpi_compare::bandwidth_cli;
using cli_ns::exit_usage;
using cli_ns::kind;
using cli_ns::max_windows;
using cli_ns::options;
using cli_ns::target_window_bytes;
using cli_ns::tool_name;

constexpr int exit_failure = 1;  // data did not arrive as sent

constexpr int origin_rank = 0;
constexpr int target_rank = 1;
constexpr int data_tag = 21;
constexpr int ack_tag = 22;

// Each side keeps one buffer of window * size bytes (every message of a window has its own slice).
constexpr std::size_t max_window_bytes = std::size_t{64} << 20;

constexpr const char* kind_name(kind k) { return k == kind::send ? "send" : k == kind::put ? "put" : "get"; }

struct bandwidth_row {
  std::size_t size = 0;
  kind what = kind::send;
  std::size_t window = 0;
  std::uint64_t iterations = 0;  // timed windows
  double mb_per_s = 0;           // 10^6 B/s
};

// Parsed before MPI_Init (as in mpi_latency): only the launcher's rank 0 prints.
bool is_printing_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(variable)) return std::string_view(value) == "0";
  return true;
}

// One measurement's shape: the messages of a window and how many windows.
struct plan {
  std::size_t size = 0;
  std::size_t window = 0;
  std::uint64_t warmup = 0;
};

std::size_t window_for(std::size_t size, std::size_t requested) {
  return std::max<std::size_t>(1, std::min(requested, max_window_bytes / size));
}

// --warmup, or windows enough to move 4 MiB: 1 to 16.
std::uint64_t warmup_windows(std::uint64_t requested, std::size_t window, std::size_t size) {
  if (requested > 0) return requested;
  constexpr std::size_t warmup_bytes = std::size_t{4} << 20;
  const std::size_t window_bytes = window * size;
  return std::clamp<std::uint64_t>((warmup_bytes + window_bytes - 1) / window_bytes, 1, 16);
}

// The byte at offset `i` of every message.
unsigned char pattern_byte(std::size_t i) { return static_cast<unsigned char>((i * 131 + 7) & 0xff); }

void fill_messages(char* buffer, std::size_t messages, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) buffer[i] = static_cast<char>(pattern_byte(i));
  for (std::size_t m = 1; m < messages; ++m) std::memcpy(buffer + m * size, buffer, size);
}

bool holds_messages(const char* buffer, std::size_t messages, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i)
    if (static_cast<unsigned char>(buffer[i]) != pattern_byte(i)) return false;
  for (std::size_t m = 1; m < messages; ++m)
    if (std::memcmp(buffer + m * size, buffer, size) != 0) return false;
  return true;
}

// Runs the warm-up windows and returns how many windows to time: --iterations, or as many as
// fit --seconds at the pace of the warm-up windows after the first (which may set up connections),
// or of the only one.
template <class Window>
std::uint64_t warm_up(const options& opts, std::uint64_t warmup, Window&& one_window) {
  double start = MPI_Wtime();
  one_window();
  if (warmup > 1) start = MPI_Wtime();
  for (std::uint64_t i = 1; i < warmup; ++i) one_window();
  const double seconds = MPI_Wtime() - start;
  if (opts.iterations > 0) return opts.iterations;
  if (seconds <= 0) return 1;
  const double per_window = seconds / static_cast<double>(std::max<std::uint64_t>(warmup - 1, 1));
  const auto windows = static_cast<std::uint64_t>(std::ceil(opts.seconds / per_window));
  return std::clamp<std::uint64_t>(windows, 1, max_windows);
}

// Runs `windows` windows of `one_window()`; returns the seconds they took.
template <class Window>
double time_windows(std::uint64_t windows, Window&& one_window) {
  const double start = MPI_Wtime();
  for (std::uint64_t i = 0; i < windows; ++i) one_window();
  return MPI_Wtime() - start;
}

// ---- send: MPI_Isend windows acknowledged by rank 1 ------------------------------------------

void send_window(const plan& p, char* buffer, std::vector<MPI_Request>& requests) {
  for (std::size_t m = 0; m < p.window; ++m)
    MPI_Isend(buffer + m * p.size, static_cast<int>(p.size), MPI_BYTE, target_rank, data_tag, MPI_COMM_WORLD,
              &requests[m]);
  MPI_Waitall(static_cast<int>(p.window), requests.data(), MPI_STATUSES_IGNORE);
  char ack = 0;
  MPI_Recv(&ack, 1, MPI_BYTE, target_rank, ack_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

void post_receives(const plan& p, char* buffer, std::vector<MPI_Request>& requests) {
  for (std::size_t m = 0; m < p.window; ++m)
    MPI_Irecv(buffer + m * p.size, static_cast<int>(p.size), MPI_BYTE, origin_rank, data_tag, MPI_COMM_WORLD,
              &requests[m]);
}

// Rank 1's side of one phase: the next window's receives are posted before the ack goes out.
void receive_phase(const plan& p, std::uint64_t windows, char* buffer, std::vector<MPI_Request>& requests) {
  post_receives(p, buffer, requests);
  MPI_Barrier(MPI_COMM_WORLD);
  const char ack = 1;
  for (std::uint64_t i = 0; i < windows; ++i) {
    MPI_Waitall(static_cast<int>(p.window), requests.data(), MPI_STATUSES_IGNORE);
    if (i + 1 < windows) post_receives(p, buffer, requests);
    MPI_Send(&ack, 1, MPI_BYTE, origin_rank, ack_tag, MPI_COMM_WORLD);
  }
}

// Both ranks: returns rank 0's timed seconds and windows; `ok` false when rank 1's data was wrong.
// Each phase (warm-up, timed) starts after rank 1 has posted its first window (the barrier).
std::pair<double, std::uint64_t> measure_send(const options& opts, const plan& p, int rank, std::vector<char>& buffer,
                                              bool& ok) {
  std::vector<MPI_Request> requests(p.window);
  std::uint64_t windows = 0;
  double seconds = 0;
  if (rank == origin_rank) {
    fill_messages(buffer.data(), p.window, p.size);
    const auto one_window = [&] { send_window(p, buffer.data(), requests); };
    MPI_Barrier(MPI_COMM_WORLD);
    windows = warm_up(opts, p.warmup, one_window);
    MPI_Bcast(&windows, 1, MPI_UINT64_T, origin_rank, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    seconds = time_windows(windows, one_window);
  } else {
    std::memset(buffer.data(), 0, p.window * p.size);
    receive_phase(p, p.warmup, buffer.data(), requests);
    MPI_Bcast(&windows, 1, MPI_UINT64_T, origin_rank, MPI_COMM_WORLD);
    std::memset(buffer.data(), 0, p.window * p.size);
    receive_phase(p, windows, buffer.data(), requests);
    ok = holds_messages(buffer.data(), p.window, p.size);
  }
  return {seconds, windows};
}

// ---- put and get: passive-target one-sided windows ---------------------------------------------

// The target slot of message m: slices of the 4 MiB window, reused past its end.
MPI_Aint target_offset(const plan& p, std::size_t m) {
  const std::size_t slots = target_window_bytes / p.size;
  return static_cast<MPI_Aint>((m % slots) * p.size);
}

void rma_window(kind what, const plan& p, char* buffer, MPI_Win win) {
  for (std::size_t m = 0; m < p.window; ++m) {
    char* local = buffer + m * p.size;
    const int count = static_cast<int>(p.size);
    if (what == kind::put)
      MPI_Put(local, count, MPI_BYTE, target_rank, target_offset(p, m), count, MPI_BYTE, win);
    else
      MPI_Get(local, count, MPI_BYTE, target_rank, target_offset(p, m), count, MPI_BYTE, win);
  }
  MPI_Win_flush(target_rank, win);
}

// Rank 0's side, inside one lock_all epoch.
std::pair<double, std::uint64_t> rma_origin(const options& opts, kind what, const plan& p, char* buffer, MPI_Win win) {
  if (what == kind::put) fill_messages(buffer, p.window, p.size);
  else std::memset(buffer, 0, p.window * p.size);
  MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  const auto one_window = [&] { rma_window(what, p, buffer, win); };
  const auto windows = warm_up(opts, p.warmup, one_window);
  const double seconds = time_windows(windows, one_window);
  MPI_Win_unlock_all(win);
  return {seconds, windows};
}

struct one_sided {
  MPI_Win win = MPI_WIN_NULL;
  char* memory = nullptr;  // rank 1's 4 MiB; nothing on rank 0
};

// A window of its own for every size and kind (as the OSU benchmarks do): with Open MPI 4.1's osc
// pt2pt, rank 1's exclusive lock on its own window hung once rank 0 had used it.
one_sided allocate_target_window(int rank) {
  one_sided w;
  const auto bytes = static_cast<MPI_Aint>(rank == target_rank ? target_window_bytes : 0);
  MPI_Win_allocate(bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &w.memory, &w.win);
  return w;
}

// Both ranks. Rank 1 prepares its window (zeroes for put, the pattern for get), waits passively
// in the barriers, and checks what the puts left; rank 0 checks what the gets brought.
std::pair<double, std::uint64_t> measure_rma(const options& opts, kind what, const plan& p, int rank,
                                             std::vector<char>& buffer, bool& ok) {
  const std::size_t touched = std::min(p.window * p.size, target_window_bytes);
  one_sided target = allocate_target_window(rank);
  const MPI_Win win = target.win;
  char* window_memory = target.memory;
  if (rank == target_rank) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, target_rank, 0, win);  // local access to the exposed memory
    if (what == kind::put) std::memset(window_memory, 0, target_window_bytes);
    else fill_messages(window_memory, target_window_bytes / p.size, p.size);
    MPI_Win_unlock(target_rank, win);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::pair<double, std::uint64_t> result{0, 0};
  if (rank == origin_rank) {
    result = rma_origin(opts, what, p, buffer.data(), win);
    if (what == kind::get) ok = holds_messages(buffer.data(), p.window, p.size);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == target_rank && what == kind::put) {
    MPI_Win_lock(MPI_LOCK_SHARED, target_rank, 0, win);
    ok = holds_messages(window_memory, touched / p.size, p.size);
    MPI_Win_unlock(target_rank, win);
  }
  MPI_Win_free(&target.win);
  return result;
}

// ---- driver -----------------------------------------------------------------------------------

// Runs every size and kind on both ranks; rank 0 gets the rows. Returns false after a data error
// (rank 0 has said which).
bool run_all(const options& opts, int rank, std::vector<bandwidth_row>& rows) {
  std::size_t largest = 0;
  for (const auto size : opts.sizes) largest = std::max(largest, window_for(size, opts.window) * size);
  std::vector<char> buffer(largest, 0);
  bool all_ok = true;
  for (const auto size : opts.sizes) {
    const std::size_t window = window_for(size, opts.window);
    const plan p{size, window, warmup_windows(opts.warmup, window, size)};
    for (const auto what : opts.kinds) {
      bool ok = true;
      const auto [seconds, windows] = what == kind::send ? measure_send(opts, p, rank, buffer, ok)
                                                         : measure_rma(opts, what, p, rank, buffer, ok);
      int local_ok = ok ? 1 : 0;
      int both_ok = 0;
      MPI_Allreduce(&local_ok, &both_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      if (both_ok == 0) {
        if (rank == origin_rank) std::fprintf(stderr, "%s: %s %zu B: data arrived wrong\n", tool_name, kind_name(what), size);
        all_ok = false;
        continue;
      }
      const double bytes = static_cast<double>(windows) * static_cast<double>(p.window) * static_cast<double>(size);
      if (rank == origin_rank) rows.push_back({size, what, p.window, windows, seconds > 0 ? bytes / seconds / 1e6 : 0});
    }
  }
  return all_ok;
}

void print_rows(const options& opts, const std::vector<bandwidth_row>& rows) {
  const std::string library = chanpool::mpi_compare::mpi_library_name();
  if (opts.json) {
    nlohmann::json j{{"tool", tool_name}, {"library", library}, {"bandwidth", nlohmann::json::array()}};
    for (const auto& r : rows)
      j["bandwidth"].push_back({{"size", r.size},
                                {"kind", kind_name(r.what)},
                                {"mb_per_s", r.mb_per_s},
                                {"window", r.window},
                                {"iterations", r.iterations}});
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("# %s: bandwidth from rank 0 to rank 1, MB/s = 10^6 B/s\n", tool_name);
    std::printf("# %s, 2 ranks, window <= %zu (window * size <= 64 MiB), put/get: MPI_Win_allocate 4 MiB on "
                "rank 1, lock_all + flush per window\n",
                library.c_str(), opts.window);
    std::printf("%-10s %6s %8s %12s %12s\n", "# size(B)", "kind", "window", "iterations", "MB/s");
    for (const auto& r : rows)
      std::printf("%-10zu %6s %8zu %12llu %12.1f\n", r.size, kind_name(r.what), r.window,
                  static_cast<unsigned long long>(r.iterations), r.mb_per_s);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const auto cli = cli_ns::parse_command_line(argc, argv);
  if (is_printing_rank()) chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& opts = cli.options;

  const int rank = chanpool::mpi_compare::init_two_ranks(argc, argv, tool_name, exit_usage);
  std::vector<bandwidth_row> rows;
  const bool ok = run_all(opts, rank, rows);
  if (rank == origin_rank) print_rows(opts, rows);
  MPI_Finalize();
  return ok ? EXIT_SUCCESS : exit_failure;
}
