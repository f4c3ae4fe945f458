// latency_bench: ping-pong between two processes over two chanpool channels.
// One-way latency = round trip / 2; see common/latency_report.hpp for the method.
#include <sys/prctl.h>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/channels/channel.hpp"
#include "latency_bandwidth.hpp"
#include "latency_fabric.hpp"
#include "latency_report.hpp"
#include "man_help.hpp"
#include "pinning.hpp"

namespace ch = chanpool::channels;
using chanpool::status;

namespace {

struct options {
  std::string transport = "shm";
  std::string sizes_text = "8,64,1024,65536,1048576";
  std::uint64_t iterations = 100000;
  std::uint64_t large_iterations = 2000;
  std::uint64_t batch = 100;
  std::string wait = "adaptive";
  double spin_us = 50;
  std::string path = "auto";
  std::string channel_kind = "mpmc";
  bool pin = true;
  bool json = false;
  std::string fabric_mode = "both";
  std::string provider;
  double agent_spin_us = 0;
  double receiver_spin_us = 0;
  bool hops = false;
  bool bandwidth = false;
  std::uint32_t window = 64;
};

std::uint64_t iterations_for(const options& o, std::size_t size) {
  return size >= chanpool::tools::large_message_bytes ? std::min(o.iterations, o.large_iterations) : o.iterations;
}
std::uint64_t warmup_for(const options& o, std::size_t size) { return chanpool::tools::warm_up_for(iterations_for(o, size)); }

bool zero_copy_for(const options& o, const ch::channel& c, std::size_t size) {
  return o.path == "zerocopy" || (o.path == "auto" && size > c.inline_capacity());
}

[[noreturn]] void fail(const char* what, status st) {
  std::fprintf(stderr, "latency_bench: %s failed: %s\n", what, std::string(chanpool::to_string(st)).c_str());
  std::exit(1);
}

// One message from `out`, built from `source`; copy or zero-copy as chosen.
void send_one(ch::channel& out, const std::byte* source, std::size_t size, bool zero_copy) {
  if (zero_copy) {
    ch::send_claim claim;
    if (auto st = out.claim_send(size, claim); st != status::ok) fail("claim_send", st);
    std::memcpy(claim.data().data(), source, size);  // build the message in place
    if (auto st = out.commit(claim); st != status::ok) fail("commit", st);
  } else if (auto st = out.send({source, size}); st != status::ok) {
    fail("send", st);
  }
}

// Receives one message; the ponger answers with a message of the same size built from it.
void recv_one(ch::channel& in, std::vector<std::byte>& buffer, bool zero_copy, ch::channel* reply_to) {
  if (zero_copy) {
    ch::recv_claim claim;
    if (auto st = in.claim_recv(claim); st != status::ok) fail("claim_recv", st);
    if (reply_to) send_one(*reply_to, claim.data().data(), claim.data().size(), true);
    if (auto st = in.release(claim); st != status::ok) fail("release", st);
  } else {
    std::size_t length = 0;
    if (auto st = in.recv(buffer, length); st != status::ok) fail("recv", st);
    if (reply_to) send_one(*reply_to, buffer.data(), length, false);
  }
}

double memcpy_ns(std::size_t size) {
  std::vector<std::byte> a(size, std::byte{1}), b(size);
  std::vector<double> samples;
  const int reps = size >= 65536 ? 200 : 20000;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      std::memcpy(b.data(), a.data(), size);
      asm volatile("" : : "r"(b.data()) : "memory");
    }
    samples.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / reps);
  }
  return chanpool::tools::percentile(samples, 0.5);
}

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
          "latency_bench --transport fabric --fabric-mode agent --agent-spin-us 50 --sizes 64\n"
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
  // Defaults 0: with two cores and six threads on the path, a spinning thread only takes the
  // core from the one that has work (measured: longer spins give longer latencies here).
  app.add_option("--agent-spin-us", o.agent_spin_us, "Agent mode: agent threads poll this many microseconds before sleeping")
      ->group(fabric_only);
  app.add_option("--receiver-spin-us", o.receiver_spin_us,
                 "Agent mode: the two processes poll their channel this many microseconds before sleeping")
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

int run_fabric(const options& o, bool iterations_given, const std::vector<std::size_t>& sizes) {
  chanpool::tools::fabric_latency_options fo;
  fo.sizes = sizes;
  // A fabric round trip costs microseconds, not nanoseconds: fewer by default.
  fo.iterations = iterations_given ? o.iterations : 10000;
  fo.batch = o.batch;
  fo.mode = o.fabric_mode;
  fo.provider = o.provider;
  fo.agent_spin_us = o.agent_spin_us;
  fo.receiver_spin_us = o.receiver_spin_us;
  fo.pin = o.pin;
  fo.json = o.json;
  fo.hops = o.hops;
  return chanpool::tools::run_fabric_latency(fo);
}

// --bandwidth: its own sizes (4 KiB to 4 MiB unless --sizes), --iterations as timed windows.
int run_bandwidth(options o, bool sizes_given, bool iterations_given) {
  if (o.transport != "fabric" || o.hops) {
    std::fprintf(stderr, "latency_bench: --bandwidth measures between two nodes: give it with --transport fabric, "
                         "and without --hops\n");
    return 2;
  }
  if (!sizes_given) o.sizes_text = chanpool::tools::bandwidth_default_sizes;
  chanpool::tools::fabric_bandwidth_options bo;
  if (auto why = chanpool::tools::size_list_error(o.sizes_text, bo.sizes, chanpool::tools::bandwidth_max_size)) {
    std::fprintf(stderr, "latency_bench: %s; --bandwidth takes sizes up to 4 MiB\n", why->c_str());
    return 2;
  }
  std::sort(bo.sizes.begin(), bo.sizes.end());
  bo.sizes.erase(std::unique(bo.sizes.begin(), bo.sizes.end()), bo.sizes.end());
  bo.window = o.window;
  bo.windows = iterations_given ? o.iterations : 0;
  bo.mode = o.fabric_mode;
  bo.provider = o.provider;
  bo.agent_spin_us = o.agent_spin_us;
  bo.receiver_spin_us = o.receiver_spin_us;
  bo.pin = o.pin;
  bo.json = o.json;
  return chanpool::tools::run_fabric_bandwidth(bo);
}

ch::channel_config shm_channel_config(const options& o, std::size_t largest) {
  ch::channel_config config;
  config.capacity = 64;
  config.slot_bytes = 128;
  config.single_producer = config.single_consumer = o.channel_kind == "spsc";
  // Room for a message in flight each way plus one being built.
  const std::uint64_t block = config.heap_block_bytes;
  config.heap_bytes = std::max<std::uint64_t>(1u << 20, (4 * largest + block - 1) / block * block);
  return config;
}

void set_receiver_wait(const options& o, ch::channel& ping, ch::channel& pong) {
  ch::wait_config wait;
  wait.mode = o.wait == "spin" ? ch::wait_mode::spin : o.wait == "idle" ? ch::wait_mode::idle : ch::wait_mode::adaptive;
  wait.spin_for = std::chrono::nanoseconds(static_cast<std::int64_t>(o.spin_us * 1000));
  ping.set_wait(wait);
  pong.set_wait(wait);
}

// The forked ponger: answers every round trip the pinger will make, then exits.
[[noreturn]] void run_ponger(const options& o, ch::channel& ping, ch::channel& pong,
                             const std::vector<std::size_t>& sizes, std::size_t largest) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
  if (o.pin) chanpool::tools::pin_to_core(1);
  std::vector<std::byte> buffer(largest);
  for (auto size : sizes) {
    const bool zc = zero_copy_for(o, ping, size);
    const std::uint64_t n = warmup_for(o, size) + chanpool::tools::round_trips_per_size(iterations_for(o, size));
    for (std::uint64_t i = 0; i < n; ++i) recv_one(ping, buffer, zc, &pong);
  }
  std::_Exit(0);
}

// Pins the pinger to core 0 (unless --no-pin) and says how the two processes are placed.
std::string pin_pinger(const options& o) {
  if (!o.pin) return "not pinned";
  if (auto why = chanpool::tools::pin_to_core(0); !why.empty()) return "not pinned: " + why;
  return "pinned to cores 0 and 1 (hwloc)";
}

void report_shm(const options& o, const ch::channel& ping, const std::vector<chanpool::tools::latency_row>& rows,
                const std::vector<double>& memcpy_anchor, const std::string& pin_note) {
  if (o.json) {
    auto j = chanpool::tools::to_json("latency_bench", o.transport, rows);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      j["results"][i]["memcpy_ns"] = memcpy_anchor[i];
      j["results"][i]["path"] = zero_copy_for(o, ping, rows[i].size) ? "zerocopy" : "copy";
    }
    j["wait"] = o.wait;
    j["channel"] = o.channel_kind;
    j["pinning"] = pin_note;
    std::printf("%s\n", j.dump().c_str());
  } else {
    chanpool::tools::print_table("latency_bench", o.transport, rows,
                                 "channel " + o.channel_kind + ", wait " + o.wait + ", path " + o.path + ", " + pin_note);
    std::printf("# anchor: memcpy of the same size in this process (ns): ");
    for (std::size_t i = 0; i < rows.size(); ++i) std::printf("%zu B %.1f%s", rows[i].size, memcpy_anchor[i], i + 1 < rows.size() ? ", " : "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  options o;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  add_options(app, o);
  if (const auto exit_code = chanpool::tools::man::parse(app, argc, argv)) return *exit_code;

  if (o.bandwidth) return run_bandwidth(o, app.count("--sizes") > 0, app.count("--iterations") > 0);
  std::vector<std::size_t> sizes;
  if (!chanpool::tools::parse_sizes(o.sizes_text, sizes)) {
    std::fprintf(stderr, "latency_bench: --sizes must be a comma-separated list of byte counts, got '%s'\n",
                 o.sizes_text.c_str());
    return 2;
  }
  std::size_t largest = 0;
  for (auto s : sizes) largest = std::max(largest, s);
  if (o.hops && (o.transport != "fabric" || o.fabric_mode == "direct" || sizes.size() != 1)) {
    std::fprintf(stderr, "latency_bench: --hops traces the agent path of one size: give it with --transport fabric, "
                         "--fabric-mode agent or both, and one --sizes value\n");
    return 2;
  }
  if (o.transport == "fabric") return run_fabric(o, app.count("--iterations") > 0, sizes);

  const ch::channel_config config = shm_channel_config(o, largest);
  const ch::open_options where{.job = "latbench" + std::to_string(::getpid())};
  auto unlink_channels = [&] {
    ch::channel::unlink("ping", where);
    ch::channel::unlink("pong", where);
  };
  auto ping = ch::channel::create("ping", config, where);
  auto pong = ch::channel::create("pong", config, where);
  if (!ping || !pong) {
    std::fprintf(stderr, "latency_bench: cannot create channels: %s\n",
                 (!ping ? ping.error() : pong.error()).message().c_str());
    unlink_channels();
    return 1;
  }
  set_receiver_wait(o, *ping, *pong);
  for (auto s : sizes)
    if (s > ping->max_message_bytes()) {
      std::fprintf(stderr, "latency_bench: size %zu exceeds the channel's max message size %zu\n", s, ping->max_message_bytes());
      unlink_channels();
      return 2;
    }

  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("latency_bench: fork");
    unlink_channels();
    return 1;
  }
  if (child == 0) run_ponger(o, *ping, *pong, sizes, largest);

  const std::string pin_note = pin_pinger(o);
  std::vector<std::byte> source(largest, std::byte{0x5a}), buffer(largest);
  std::vector<chanpool::tools::latency_row> rows;
  std::vector<double> memcpy_anchor;
  for (auto size : sizes) {
    const bool zc = zero_copy_for(o, *ping, size);
    auto round_trip = [&] {
      send_one(*ping, source.data(), size, zc);
      recv_one(*pong, buffer, zc, nullptr);
    };
    for (std::uint64_t i = 0; i < warmup_for(o, size); ++i) round_trip();
    rows.push_back(chanpool::tools::measure_round_trips(size, iterations_for(o, size), o.batch, round_trip));
    memcpy_anchor.push_back(memcpy_ns(size));
  }
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  unlink_channels();
  report_shm(o, *ping, rows, memcpy_anchor, pin_note);
  return WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0 ? 0 : 1;
}
