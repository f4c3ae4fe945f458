// latency_bench's command line (latency_bench_cli.hpp): the manual page, the options, and the
// checks of --sizes, --hops and --bandwidth against each other.
#include "latency_bench_cli.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "latency_bandwidth.hpp"
#include "man_help.hpp"
#include "ping_pong_flags.hpp"

namespace chanpool::tools::latency_bench_cli {
namespace {

using result = cli_result<options>;
constexpr int exit_usage = chanpool::tools::man::exit_usage;
// The fabric modes cast the spins to long microseconds.
constexpr double max_fabric_spin_us = 1e9;

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = "latency_bench",
      .summary = "one-way latency between two processes over chanpool channels (ping-pong)",
      .synopsis = "latency_bench [--transport shm] [--sizes B,B,...] [--iterations N] [--large-iterations N]\n"
                  "              [--batch N] [--wait spin|adaptive|idle] [--spin-us US]\n"
                  "              [--path copy|zerocopy|auto] [--channel mpmc|spsc] [--no-pin] [--json]\n"
                  "latency_bench --transport fabric [--fabric-mode agent|direct|both] [--provider P]\n"
                  "              [--agent-spin-us US] [--receiver-spin-us US] [--sizes B,B,...]\n"
                  "              [--iterations N] [--batch N] [--hops] [--no-pin] [--json]\n"
                  "latency_bench --transport fabric --bandwidth [--window W] [--fabric-mode agent|direct|both]\n"
                  "              [--provider P] [--sizes B,B,...] [--iterations N] [--no-pin] [--json]",
      .description =
          "--transport shm (default): the process creates two channels, \"ping\" and \"pong\" (job\n"
          "latbench<pid>, 64 slots of 128 bytes, so messages up to 112 B are inline; a heap of\n"
          "max(1 MiB, 4 x the largest size)), and forks a ponger. The pinger sends one message on \"ping\",\n"
          "the ponger answers with a message of the same size on \"pong\". One-way latency is half the\n"
          "round trip. --channel spsc declares both channels single producer / single consumer\n"
          "(plain-store fast paths); --path chooses send/recv (copy) or claim_send/commit and\n"
          "claim_recv/release (zerocopy); auto uses zerocopy for messages above the inline 112 B.\n"
          "\n"
          "Method, per size (shared with mpi_latency and boost_mq_latency, tools/common/latency_report.hpp):\n"
          "a warm-up of min(iterations, 10000) round trips, then two passes of `iterations` round\n"
          "trips. Pass 1 reads the clock every --batch round trips; the reported one-way figure is the\n"
          "median of those batch means / 2. Pass 2 times every round trip (clock read included) and\n"
          "reports their 99th percentile / 2. Sizes >= 65536 B run min(iterations, --large-iterations)\n"
          "round trips. A memcpy of each size, timed in the pinger, is printed as an anchor.\n"
          "\n"
          "--transport fabric: the same ping-pong between two nodes through libfabric. --fabric-mode\n"
          "direct opens two bare endpoints (fi_send/fi_recv, busy-polled completion queue: what\n"
          "fi_pingpong measures); agent starts two virtual nodes (one agent process each) and measures\n"
          "the full path: process -> inbox -> agent -> fabric -> agent -> channel -> process; both\n"
          "(default) runs direct, then agent. --iterations defaults to 10000 here; sizes >= 65536 B\n"
          "run min(iterations, 2000) round trips; --wait, --spin-us, --path, --channel and\n"
          "--large-iterations do not apply.\n"
          "\n"
          "--hops (agent mode, one size): the agents note when they take each message from the inbox,\n"
          "post its frame, see the frame arrive and have delivered it (agent_config::hop_trace_file,\n"
          "written when they stop); the processes note when they call send() and when recv()\n"
          "returns. All are one host's steady clock, so each message is followed through the path: a\n"
          "second table gives the median and p99 of each hop over every message after the warm-up,\n"
          "both directions. Tracing costs a clock read per event. A size that goes point to point\n"
          "(above the agents' large-message threshold) is refused after the run.\n"
          "\n"
          "--bandwidth (with --transport fabric): bandwidth instead of latency, osu_bw style. Per size and\n"
          "kind, the initiator on node 0 keeps a window of W operations in flight (--window, default 64,\n"
          "at most 128; capped so that W x size <= 16 MiB: 16 at 1 MiB, 4 at 4 MiB): it issues W, waits\n"
          "for all W, and repeats; for messages the receiver answers an 8-byte ack after each window,\n"
          "and the window ends with it. Time runs at the initiator from the first operation of the\n"
          "first timed window to the last completion (ack) of the last; MB/s is 10^6 bytes per second.\n"
          "Kinds: direct send (bare endpoints, fi_send with a window of receives posted), direct write\n"
          "and direct read (fi_writemsg / fi_readmsg into the peer's buffer registered for RMA with the\n"
          "provider's mr_mode; a write completes with FI_DELIVERY_COMPLETE, so its bytes are placed at\n"
          "the target, or, where the provider refuses the flag, each window ends with a fenced read:\n"
          "the header says which), agent message (remote_channel sends to a channel on node 1, whose\n"
          "process recv()s them), agent message in place (the same, zero copy: remote_channel::claim\n"
          "and commit at node 0, claim_recv and release at node 1, the bytes left as they are, as a\n"
          "direct send leaves its buffer), agent put and agent get (client::put_async / get_async between a\n"
          "region on node 0 and one on node 1; a put completes once its bytes are visible at the\n"
          "target). Each agent kind's ratio is to the direct kind of its family: message to direct\n"
          "send, put to direct write, get to direct read. Sizes default to 4096,65536,262144,1048576,\n"
          "4194304 (at most 4 MiB). After 2 windows of warm-up, --iterations N gives the timed windows;\n"
          "without it, as many as take about 0.2 s judged from the last warm-up window (at least 2).\n"
          "A provider without FI_RMA gets \"unsupported\" in the four rma rows.\n"
          "\n"
          "Under a launcher (mpirun, srun; --transport fabric, latency only): each rank is one node,\n"
          "normally on a host of its own, and rank 0 times a ping-pong with every other rank in turn,\n"
          "direct (one bare endpoint per rank) and through the agents (one agent per rank, started with\n"
          "start_agent_mpi; the channels ping and pong live on the receiving nodes). MPI only exchanges\n"
          "addresses and orders the pairs; the ranks not being timed wait in a sleeping barrier. When\n"
          "the ranks span hosts the endpoints listen where the provider chooses (FI_TCP_IFACE picks an\n"
          "interface). Two or more ranks; --hops and --bandwidth run without a launcher only. The tool\n"
          "does not pin its ranks there: use the launcher's binding.\n"
          "\n"
          "Unless --no-pin, the pinger is pinned to core 0 and the ponger to core 1 with hwloc (the\n"
          "first processing unit of each physical core); the header says whether pinning worked.",
      .output =
          "Text (default), one table per transport or fabric mode:\n"
          "# latency_bench, transport shm: one-way latency = round trip / 2\n"
          "# channel mpmc, wait adaptive, path auto, pinned to cores 0 and 1 (hwloc)   (the settings)\n"
          "# median: of batch means; p99: of individually timed round trips (clock read included)\n"
          "# size(B)   one-way(ns)   p99(ns)   iterations   (one row per size)\n"
          "# anchor: memcpy of the same size in this process (ns): ...   (shm only)\n"
          "For fabric the second line names the provider, fabric, domain and libfabric version and\n"
          "the path measured.\n"
          "\n"
          "--json, shm: one line {\"tool\":\"latency_bench\",\"transport\":\"shm\",\"channel\":\"mpmc\"|\"spsc\",\n"
          "\"wait\":..., \"pinning\":\"pinned to cores 0 and 1 (hwloc)\" or why not, \"results\":[{\"size\":B,\n"
          "\"one_way_ns\":median, \"p99_ns\":p99, \"iterations\":N, \"memcpy_ns\":anchor,\n"
          "\"path\":\"copy\"|\"zerocopy\"}, ...]}.\n"
          "--json, fabric: {\"tool\":\"latency_bench\",\"transport\":\"fabric\",\"modes\":[{\"mode\":\"direct\"|\n"
          "\"agent\",\"fabric\":summary,\"results\":[...]}, ...],\"results\":[...]}; the top-level results\n"
          "are the agent path's when it ran, else the direct path's. Keys of a result as for shm,\n"
          "without memcpy_ns and path. With --hops the agent mode's object has \"hops\":{\"size\":B,\n"
          "\"messages\":N,\"hops\":[{\"hop\":name,\"median_ns\":..,\"p99_ns\":..}, ...]} (the last hop is\n"
          "\"one way\").\n"
          "Under a launcher: one table per pair and mode (\"fabric (agent), rank 0 on h0 <-> rank 2 on\n"
          "h2\"); --json: {\"tool\":\"latency_bench\",\"transport\":\"fabric\",\"launcher\":\"mpi\",\n"
          "\"ranks\":N,\"hosts\":[...],\"pairs\":[{\"mode\":..,\"peer_rank\":k,\"fabric\":..,\"results\":\n"
          "[...]}, ...],\"results\":[...]} (the top-level results: rank 0 with rank 1, agent path first).\n"
          "\n"
          "--bandwidth: a table \"# size(B) kind MB/s ratio window windows\" (ratio \"-\" where its direct\n"
          "kind did not run; \"unsupported\" for the rma kinds of a provider without FI_RMA), after\n"
          "header lines naming each mode's fabric and how its completions are made. --json: {\"tool\":\n"
          "\"latency_bench\",\"transport\":\"fabric\",\"modes\":[{\"mode\":\"direct\"|\"agent\",\"fabric\":\n"
          "summary,\"notes\":...}, ...],\"bandwidth\":[{\"size\":B,\"kind\":\"direct send\"|\"direct write\"|\n"
          "\"direct read\"|\"agent message\"|\"agent message in place\"|\"agent put\"|\"agent get\",\"mb_per_s\":..,\"ratio_to_direct\":..,\n"
          "\"window\":W,\"iterations\":timed windows}, ...]} (mb_per_s and ratio_to_direct null, and\n"
          "\"unsupported\":true, for a kind the provider lacks).",
      .exit_status =
          "0 every size was measured.\n"
          "1 a channel or fabric operation failed, or the ponger exited with an error (message on\n"
          "  stderr).\n"
          "2 bad command line: an unknown option or value, a malformed --sizes list, a size above\n"
          "  the channel's largest message, or --hops without the agent path and one size; with\n"
          "  --bandwidth: without --transport fabric, with --hops, or a size above 4 MiB; under a\n"
          "  launcher: a single rank, --hops or --bandwidth. A rank that fails under a launcher ends\n"
          "  the job with MPI_Abort (exit status 1, the rank and reason on stderr).",
      .environment =
          "FI_PROVIDER             fabric: the libfabric provider when --provider is not given\n"
          "                        (default tcp;ofi_rxm).\n"
          "FI_OFI_RXM_BUFFER_SIZE  fabric, agent mode on an RxM provider: the eager size that caps\n"
          "                        the agents' frames (16384 by default; see docs/tuning.md).\n"
          "Other FI_* variables are read by libfabric itself. CHANPOOL_JOB is not used: the channels\n"
          "live in a job of their own (latbench<pid>, or vc<pid>-n0/-n1 for the virtual nodes).",
      .examples =
          "latency_bench                                     # shm, all default sizes\n"
          "latency_bench --channel spsc --sizes 8,64 --json   # declared single producer/consumer\n"
          "latency_bench --wait idle --sizes 64               # a receiver that sleeps at once\n"
          "latency_bench --transport fabric --sizes 64,4096 --iterations 2000\n"
          "latency_bench --transport fabric --fabric-mode agent --agent-spin-us 0 --sizes 64   # agents that sleep at once\n"
          "latency_bench --transport fabric --fabric-mode agent --sizes 64 --hops   # where the time goes\n"
          "latency_bench --transport fabric --bandwidth                # seven kinds, 4 KiB to 4 MiB\n"
          "latency_bench --transport fabric --bandwidth --sizes 65536 --window 16 --iterations 50 --json\n"
          "mpirun -np 4 --map-by node latency_bench --transport fabric --sizes 64,4096   # rank 0 vs each host"};
}

void add_options(CLI::App& app, options& o) {
  const std::string shm_only = "With --transport shm only";
  const std::string fabric_only = "With --transport fabric only";
  app.add_option("--transport", o.transport,
                 "shm: two processes, two channels. fabric: two nodes through libfabric (see --fabric-mode)")
      ->check(CLI::IsMember({"shm", "fabric"}));
  app.add_option("--sizes", o.sizes_text, "Comma-separated message sizes in bytes");
  app.add_option("--iterations", o.iterations,
                 "Timed round trips per size and pass (--transport fabric: 10000 unless given; --bandwidth: timed "
                 "windows per size and kind, about 0.2 s of them unless given)")
      ->check(CLI::Range(1ull, 1ull << 40));
  app.add_option("--batch", o.batch, "Round trips per clock read (batch mean) in the median pass")
      ->check(CLI::Range(1ull, 1ull << 30));
  app.add_flag("!--no-pin", o.pin, "Do not pin the two processes to distinct cores (default: pinned with hwloc)");
  app.add_flag("--json", o.json, "Print one JSON object instead of the table");
  app.add_option("--large-iterations", o.large_iterations, "Cap on round trips for sizes >= 65536 B")
      ->check(CLI::Range(1ull, 1ull << 40))
      ->group(shm_only);
  app.add_option("--wait", o.wait, "Receiver wait: spin, adaptive (spin, then futex) or idle (futex at once)")
      ->check(CLI::IsMember({"spin", "adaptive", "idle"}))
      ->group(shm_only);
  app.add_option("--spin-us", o.spin_us, "Adaptive wait: spin this many microseconds before sleeping")
      ->check(CLI::Range(0.0, 1e7))
      ->check(chanpool::tools::finite_number())
      ->group(shm_only);
  app.add_option("--path", o.path, "copy (send/recv), zerocopy (claim/commit) or auto (zerocopy above inline)")
      ->check(CLI::IsMember({"copy", "zerocopy", "auto"}))
      ->group(shm_only);
  app.add_option("--channel", o.channel_kind,
                 "mpmc (any number of senders and receivers) or spsc (declared single producer and consumer: "
                 "plain-store fast paths)")
      ->check(CLI::IsMember({"mpmc", "spsc"}))
      ->group(shm_only);
  app.add_option("--fabric-mode", o.fabric_mode,
                 "agent (process -> agent -> fabric -> agent -> channel -> process), direct (two "
                 "endpoints, fi_send/fi_recv, busy-polled CQ: what fi_pingpong measures) or both")
      ->check(CLI::IsMember({"agent", "direct", "both"}))
      ->group(fabric_only);
  app.add_option("--provider", o.provider, "libfabric provider (default: $FI_PROVIDER, else tcp;ofi_rxm)")
      ->group(fabric_only);
  // The agents keep their own default (50 us): an agent that just sent a large message's
  // descriptor is then still awake to serve its read, and the far agent for the data (64 KiB one
  // way 95-101 against 146-163 us without it, 64 B 38-40 against 50-56 us, docs/benchmarks.md).
  // The processes sleep at once: a polling process holds the core a woken agent needs.
  app.add_option("--agent-spin-us", o.agent_spin_us,
                 "Agent mode: agent threads poll this many microseconds before sleeping (the default is the "
                 "agents' own)")
      ->check(chanpool::tools::finite_within(0, max_fabric_spin_us))
      ->group(fabric_only);
  app.add_option("--receiver-spin-us", o.receiver_spin_us,
                 "Agent mode: the two processes poll their channel this many microseconds before sleeping")
      ->check(chanpool::tools::finite_within(0, max_fabric_spin_us))
      ->group(fabric_only);
  app.add_flag("--hops", o.hops,
               "Agent mode: also say where the one-way time goes, hop by hop (the agents trace each message; "
               "one size, small enough to go batched)")
      ->group(fabric_only);
  app.add_flag("--bandwidth", o.bandwidth,
               "Measure bandwidth instead of latency (osu_bw style: a window of operations in flight, then wait "
               "for all); see DESCRIPTION")
      ->group(fabric_only);
  app.add_option("--window", o.window,
                 "Bandwidth: operations in flight per window (capped so window x size <= 16 MiB)")
      ->check(CLI::Range(1u, chanpool::tools::bandwidth_max_window))
      ->group(fabric_only);
}

// --bandwidth: its own sizes (4 KiB to 4 MiB unless --sizes), between two nodes only.
result& check_bandwidth(result& r, bool sizes_given) {
  options& o = r.options;
  if (o.transport != "fabric" || o.hops)
    return refuse(r, exit_usage,
                  "latency_bench: --bandwidth measures between two nodes: give it with --transport fabric, "
                  "and without --hops\n");
  if (!sizes_given) o.sizes_text = chanpool::tools::bandwidth_default_sizes;
  if (auto why = chanpool::tools::size_list_error(o.sizes_text, o.sizes, chanpool::tools::bandwidth_max_size))
    return refuse(r, exit_usage, "latency_bench: " + *why + "; --bandwidth takes sizes up to 4 MiB\n");
  std::sort(o.sizes.begin(), o.sizes.end());
  o.sizes.erase(std::unique(o.sizes.begin(), o.sizes.end()), o.sizes.end());
  return r;
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  result r;
  options& o = r.options;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  add_options(app, o);
  if (chanpool::tools::man::parse(app, argc, argv, r)) return r;
  o.iterations_given = app.count("--iterations") > 0;
  if (o.bandwidth) return check_bandwidth(r, app.count("--sizes") > 0);
  if (!chanpool::tools::parse_sizes(o.sizes_text, o.sizes))
    return refuse(r, exit_usage,
                  "latency_bench: --sizes must be a comma-separated list of byte counts, got '" + o.sizes_text + "'\n");
  for (const std::size_t size : o.sizes)
    if (size > max_message_bytes)  // both ends allocate the largest size (shm: a heap of 4x it)
      return refuse(r, exit_usage,
                    "latency_bench: --sizes: " + std::to_string(size) + " is out of range (0.." +
                        std::to_string(max_message_bytes) + " bytes)\n");
  if (o.hops && (o.transport != "fabric" || o.fabric_mode == "direct" || o.sizes.size() != 1))
    return refuse(r, exit_usage,
                  "latency_bench: --hops traces the agent path of one size: give it with --transport fabric, "
                  "--fabric-mode agent or both, and one --sizes value\n");
  return r;
}

}  // namespace chanpool::tools::latency_bench_cli
