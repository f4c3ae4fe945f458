// mpi_bandwidth's command line (mpi_bandwidth_cli.hpp): the manual page, the options, and the
// --sizes and --kinds lists.
#include "mpi_bandwidth_cli.hpp"

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "man_help.hpp"
#include "mpi_help.hpp"
#include "ping_pong_flags.hpp"

namespace chanpool::mpi_compare::bandwidth_cli {
namespace {

chanpool::tools::man::page manual() {
  return {
      .name = tool_name,
      .summary = "MPI bandwidth baseline (MPI_Isend windows, MPI_Put, MPI_Get between two ranks)",
      .synopsis = "mpirun -np 2 mpi_bandwidth [--sizes B,B,...] [--kinds send,put,get] [--window W]\n"
                  "    [--iterations N] [--seconds S] [--warmup N] [--json]",
      .description =
          "Streams messages from rank 0 to rank 1 in windows and reports the bandwidth, the way the OSU\n"
          "micro-benchmarks do (osu_bw, osu_put_bw, osu_get_bw). Per size and kind:\n"
          "  send  rank 1 has a window of W MPI_Irecv posted; rank 0 posts W MPI_Isend and waits for\n"
          "        them; rank 1 waits for its receives, posts the next window's and sends a 1-byte ack.\n"
          "        The time runs from the first send to the last ack.\n"
          "  put   an MPI-3 window of 4 MiB on rank 1 (MPI_Win_allocate, passive target): rank 0 calls\n"
          "        MPI_Win_lock_all once, then per window W MPI_Put of the size, then\n"
          "        MPI_Win_flush(1); rank 1 only waits in MPI_Barrier. The time covers the windows.\n"
          "  get   the same with MPI_Get.\n"
          "Every message of a window has its own slice of a window * size buffer on each side, and of\n"
          "the 4 MiB target window (slices reused when W * size > 4 MiB). W is --window, capped so that\n"
          "W * size <= 64 MiB (so 16 at 4 MiB). After the timed windows the receiving side checks that\n"
          "the bytes it got are the ones sent. Bandwidth = windows * W * size / time, in MB/s (10^6 B/s).\n"
          "\n"
          "Iterations, per size and kind: --warmup untimed windows first (default: enough to move\n"
          "4 MiB, 1 to 16 windows); without --iterations, rank 0 times the warm-up windows after the\n"
          "first (or the only one) and then times enough windows for about --seconds, at least one.\n"
          "Over a slow link one window of 64 MiB takes longer than --seconds: then one size costs\n"
          "about 2 windows per kind.\n"
          "Must run as exactly 2 ranks; only rank 0 prints. Which transport and which one-sided (osc)\n"
          "component MPI uses is up to the MPI library and its parameters. Open MPI 4.1 on one host\n"
          "gives a MPI_Win_allocate window to osc rdma over vader, or to osc sm (shared memory) when\n"
          "the btl list has no vader: put and get bypass --mca btl self,tcp. --mca osc pt2pt sends\n"
          "them through ob1 and so through the BTLs (tcp).\n"
          "\n"
          "The command line is parsed before MPI_Init: --help and usage errors need no MPI start-up.",
      .output =
          "Text (default):\n"
          "# mpi_bandwidth: bandwidth from rank 0 to rank 1, MB/s = 10^6 B/s\n"
          "# <MPI library and version>, 2 ranks, ...\n"
          "# size(B)  kind  window  iterations  MB/s   (one row per size and kind)\n"
          "\n"
          "--json: one JSON object (indented over several lines) {\"tool\":\"mpi_bandwidth\",\n"
          "\"library\":\"<MPI library>\",\"bandwidth\":[{\"size\":B,\"kind\":\"send|put|get\",\"mb_per_s\":F,\n"
          "\"window\":W,\"iterations\":N}, ...]}; iterations counts the timed windows.",
      .exit_status = "0 every size and kind was measured and its data checked.\n"
                     "1 data arrived wrong (rank 0 prints which size and kind).\n"
                     "2 bad command line (unknown option or kind, malformed --sizes, a size outside\n"
                     "  1..4194304), or not exactly 2 ranks (MPI_Abort with 2; mpirun then exits 2).\n"
                     "MPI errors abort the job (MPI_ERRORS_ARE_FATAL); mpirun reports them.",
      .environment = chanpool::mpi_compare::mpi_environment_help("self,tcp"),
      .examples =
          "mpirun -np 2 mpi_bandwidth --sizes 4096,1048576\n"
          "mpirun -np 2 --oversubscribe --bind-to none --mca pml ob1 --mca btl self,tcp \\\n"
          "  --mca btl_tcp_if_include lo --mca osc pt2pt mpi_bandwidth --json\n"
          "mpirun -np 2 mpi_bandwidth --kinds put --sizes 65536 --window 16 --iterations 100"};
}

bool parse_kinds(const std::string& text, std::vector<kind>& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item == "send") out.push_back(kind::send);
    else if (item == "put") out.push_back(kind::put);
    else if (item == "get") out.push_back(kind::get);
    else return false;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out.empty();
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  options& o = r.options;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  std::string sizes_text = "4096,65536,262144,1048576,4194304";
  std::string kinds_text = "send,put,get";
  app.add_option("--sizes", sizes_text, "Comma-separated message sizes in bytes, each 1..4194304");
  app.add_option("--kinds", kinds_text, "Comma-separated kinds to measure: send, put, get");
  app.add_option("--window", o.window, "Messages per window; capped per size so that window * size <= 64 MiB")
      ->check(CLI::Range(std::size_t{1}, max_window));
  app.add_option("--iterations", o.iterations, "Timed windows per size and kind; 0: chosen from --seconds")
      ->check(CLI::Range(std::uint64_t{0}, max_windows));
  app.add_option("--seconds", o.seconds, "Timed seconds per size and kind that the iteration count aims at")
      ->check(CLI::Range(min_seconds, max_seconds))
      ->check(chanpool::tools::finite_number());
  app.add_option("--warmup", o.warmup,
                 "Untimed windows per size and kind before the timed ones; 0: enough for 4 MiB (1..16)")
      ->check(CLI::Range(std::uint64_t{0}, max_windows));
  app.add_flag("--json", o.json, "Print only one JSON object (tool, library, bandwidth) on stdout");
  if (chanpool::tools::man::parse(app, argc, argv, r)) return r;
  auto error = chanpool::tools::size_list_error(sizes_text, o.sizes, target_window_bytes);
  if (!error && !parse_kinds(kinds_text, o.kinds))
    error = "--kinds: malformed kind list '" + kinds_text + "' (expected send, put or get, comma-separated)";
  if (error)
    return refuse(r, exit_usage, std::string(tool_name) + ": " + *error + "\nRun with --help for more information.\n");
  return r;
}

}  // namespace chanpool::mpi_compare::bandwidth_cli
