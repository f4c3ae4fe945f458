// fanin_bench: many senders on many nodes, one receiver on node 0, through the node agents.
//
// Every sender process attaches to its node's agent and sends fixed-size messages to channel
// "sink" on node 0 (through the agents even on node 0, so the sink has one producer: node 0's
// agent). The receiver (this process) verifies every message (sender, sequence: exactly once,
// in order per sender) and measures the rate at the receiver, from the moment all senders are
// released to the last message, and the send-to-receive latency (same host clock).
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/limits.hpp"
#include "man_help.hpp"
#ifdef CHANPOOL_FANIN_WITH_MPI
#include "chanpool/transport/mpi_bootstrap.hpp"
#endif

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;
using chanpool::status;
using clock_type = std::chrono::steady_clock;

namespace {

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = "fanin_bench",
      .summary = "many-to-one message rate through chanpool's node agents",
      .synopsis =
          "fanin_bench [--nodes N] [--senders_per_node S] [--msg_size B]\n"
          "            [--messages_per_sender M | --duration SECONDS] [--aggregation on|off]\n"
          "            [--mpi [--mpi_args ARGS] [--mpi_fanin PATH]] [--json] [--bootstrap auto|embedded|mpi]\n"
          "            [--provider P] [--flush_bytes B] [--flush_deadline_us US] [--credits C]\n"
          "            [--agent_spin_us US] [--receiver_spin_us US] [--sink_capacity SLOTS]\n"
          "            [--rxm_buffer_bytes B] [--rxm_queue_depth D] [--stall_timeout SECONDS]\n"
          "mpirun -np N fanin_bench [options]          (one rank per node)\n"
          "srun -N N --ntasks-per-node=1 fanin_bench [options]",
      .description =
          "Starts N virtual nodes on this host (embedded bootstrap: one agent process each, its own\n"
          "shared-memory namespace <job>-n<k>, talking to the others only through libfabric), S sender\n"
          "processes per node, and one receiver, this process, on node 0. Every sender sends messages\n"
          "of --msg_size bytes to channel \"sink\" on node 0 through its node's agent (node 0's\n"
          "senders too, so the sink has one producer: node 0's agent). The agents batch small\n"
          "messages per destination node (--aggregation on) and return credits as the receiver\n"
          "drains.\n"
          "\n"
          "Every message starts with a 24-byte header: sender id, flags, per-sender sequence number\n"
          "and send time (steady clock). The receiver checks every message: size, sender, and\n"
          "sequence (exactly once, in order per sender). With --messages_per_sender each sender\n"
          "sends exactly M; with --duration each sends for that long and flags its last message.\n"
          "\n"
          "Measured at the receiver: elapsed = from releasing all senders (they are started and\n"
          "attached before) to the last message; rate = messages / elapsed; latency = receive time\n"
          "minus send time of every 16th message of each sender (same host clock; under saturation\n"
          "this is mostly queueing). With --mpi it then runs mpi_fanin (MPI_Send to rank 0,\n"
          "MPI_Recv(MPI_ANY_SOURCE)) under mpirun with the same number of processes and messages and\n"
          "prints the ratio.\n"
          "\n"
          "Virtual nodes share this machine's cores: with 32 nodes and 128 senders on a few cores the\n"
          "figure measures scheduling as much as the transport; the output says how many CPUs ran it.\n"
          "\n"
          "Under a launcher (mpirun, srun: detected from the environment, or --bootstrap mpi) each\n"
          "rank is one node and --nodes is ignored: every rank forks its S senders before MPI_Init,\n"
          "runs its agent on two threads, and exchanges agent addresses with MPI_Allgather; the data\n"
          "path is libfabric. Only rank 0 receives and prints.\n"
          "\n"
          "The agent tuning options set chanpool::transport::agent_config for every agent (see\n"
          "docs/transport.md and docs/tuning.md); their defaults here differ from agent_config's own\n"
          "(credits 32, spin 50 us) and from libfabric's (16 KiB frames). Agents and receiver poll\n"
          "only when this host has a core for every agent thread, sender and the receiver; otherwise\n"
          "they sleep at once.",
      .output =
          "Text (default):\n"
          "fanin_bench: N nodes x S senders = T senders -> 1 receiver on node 0, B B messages, aggregation on|off\n"
          "  fabric      provider, fabric, domain, libfabric version (bootstrap: embedded|mpi)\n"
          "  machine     logical CPUs for the agents, senders and receiver\n"
          "  start-up    time to start the agents and connect them all\n"
          "  received    messages and elapsed seconds; \"each once and in order per sender\" or ERRORS\n"
          "  rate        messages/s and MB/s (10^6 bytes) at the receiver\n"
          "  latency     p50 and p99 of send -> receive, in microseconds\n"
          "  frames      batch frames sent by all agents, messages per frame, credit stalls (times an\n"
          "              agent's TX thread waited for a destination's credit) and holds (times the\n"
          "              full sink held node 0's agent back: the receiver was the bottleneck)\n"
          "  mpi_fanin   (--mpi) its rate, process count, and chanpool / MPI\n"
          "With --mpi a line \"running MPI baseline: <command>\" comes first. Progress lines\n"
          "(\"... N messages received (T s)\") go to stderr every 2 s of a long run.\n"
          "\n"
          "--json, one line: {\"tool\":\"fanin_bench\",\"nodes\",\"senders\",\"msg_size\",\"aggregation\"\n"
          "(true|false),\"msgs_per_s\",\"p50_us\",\"p99_us\",\"bytes_per_s\",\"messages\",\"elapsed_s\",\n"
          "\"startup_s\",\"cores\" (logical CPUs),\"agent_spin_us\",\"receiver_spin_us\",\"fabric\",\n"
          "\"bootstrap\",\"frames\",\"msgs_per_frame\",\"credit_stalls\",\"delivery_holds\",\"errors\"} and\n"
          "with --mpi \"mpi\" (mpi_fanin's JSON object, or null if it failed) and \"ratio_vs_mpi\".",
      .exit_status =
          "0 every message arrived exactly once and in order per sender.\n"
          "1 a message was lost, duplicated, reordered or malformed, a sender failed, nothing arrived\n"
          "  for --stall_timeout seconds, or an agent dropped frames (details on stderr). Under a\n"
          "  launcher, a rank other than 0 exits 1 when one of its senders failed.\n"
          "2 bad command line, or the job could not start (agents, sink, senders; --bootstrap mpi in a\n"
          "  build without MPI). A failed --mpi baseline is reported but does not change the status.\n"
          "4 under a launcher: a node became unreachable during the run (named on stderr); rank 0 ended\n"
          "  the job with MPI_Abort.",
      .environment =
          "FI_PROVIDER             libfabric provider when --provider is not given (default\n"
          "                        tcp;ofi_rxm).\n"
          "FI_OFI_RXM_BUFFER_SIZE  eager size of RxM providers (here --rxm_buffer_bytes, 33024, unless\n"
          "                        set): the agents' frames are capped at it minus 256 bytes, whatever\n"
          "                        --flush_bytes says.\n"
          "FI_OFI_RXM_MSG_TX_SIZE, FI_OFI_RXM_MSG_RX_SIZE\n"
          "                        RxM's per-connection queue depths (here --rxm_queue_depth, 64,\n"
          "                        unless set).\n"
          "OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK, MPI_LOCALNRANKS\n"
          "                        any of them set: started by a launcher (--bootstrap auto -> mpi).\n"
          "OMPI_ALLOW_RUN_AS_ROOT, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM\n"
          "                        --mpi sets both to 1 for its mpirun; under mpirun as root you must\n"
          "                        set them yourself.\n"
          "CHANPOOL_JOB is not used: the job is vc<pid> (embedded) or fb<pid of rank 0> (launcher).",
      .examples =
          "fanin_bench --nodes 32 --senders_per_node 4 --msg_size 64\n"
          "fanin_bench --nodes 4 --senders_per_node 2 --messages_per_sender 5000 --json\n"
          "fanin_bench --nodes 32 --aggregation off --messages_per_sender 2000\n"
          "fanin_bench --nodes 32 --mpi --mpi_args \"--mca btl self,tcp\" --json\n"
          "fanin_bench --nodes 3 --senders_per_node 1 --provider shm --json\n"
          "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \\\n"
          "  mpirun -np 4 --oversubscribe --bind-to none fanin_bench --senders_per_node 2 --messages_per_sender 500\n"
          "srun -N 32 --ntasks-per-node=1 fanin_bench --senders_per_node 4"};
}

struct options {
  std::uint32_t nodes = 32;
  std::uint32_t senders_per_node = 4;
  std::size_t msg_size = 64;
  std::uint64_t messages_per_sender = 20000;
  double duration = 0;
  std::string aggregation = "on";
  bool mpi = false;
  std::string mpi_args;
  std::string mpi_fanin;
  bool json = false;
  std::string provider;
  std::size_t flush_bytes = 64 * 1024;
  double flush_deadline_us = 20;
  // 64 frames of 32 KiB in flight per destination: at most 2 MiB per sending node, 62 MiB
  // towards node 0 in a 32-node fan-in. Frames are capped at RxM's eager size, so
  // --rxm_buffer_bytes raises it from 16 KiB: half the frames, and half the per-frame work of
  // the sending agents, which are most of the CPU time of a fan-in. Measured on 2 cores, means
  // of 3-5 alternated runs: 16 KiB frames x 8 credits (the earlier default) 3.15 M msgs/s,
  // x 32: 3.67 M; 32 KiB x 16: 4.51-4.76 M, x 32: 5.16 M, x 64: 5.37 M; with the 64 Ki-slot
  // sink, x 32: 6.32 M, x 48: 6.44 M, x 64: 6.82 M (docs/benchmarks.md).
  std::uint32_t credits = 64;
  std::uint32_t rxm_buffer_bytes = 32 * 1024 + 256;  // 256: RxM's header; frames are 32 KiB
  // RxM's per-connection queues (FI_OFI_RXM_MSG_TX_SIZE/RX_SIZE): every agent connects to every
  // other, and RxM allocates and clears these buffers per connection at start-up.
  std::uint32_t rxm_queue_depth = 64;
  // Unset: 20 and 50 us when this host has a core for every busy thread, else 0 (see
  // choose_spins()). Polling only pays when the poller has a core of its own.
  std::optional<double> agent_spin_us;
  std::optional<double> receiver_spin_us;
  // 8 MiB of 128-byte slots: about 10 ms of messages at 6 M/s. A full sink holds node 0's agent
  // back (it retries every 50 us and returns no credit meanwhile); on 2 cores the receiver is
  // often off its core for milliseconds. 16 Ki slots: 4.81 M msgs/s mean of 4, 3.3-6.0 M;
  // 64 Ki: 5.90 M, 5.86-5.93 M (same credits, alternated runs).
  std::uint32_t sink_capacity = 65536;
  double stall_timeout = 60;
};

// Message layout: [0,4) sender id | [4,8) flags (1 = final, duration mode) | [8,16) sequence |
// [16,24) send time (steady clock ns; set in messages whose sequence is a multiple of 16, the
// ones whose latency is sampled) | rest: filler.
constexpr std::size_t header_bytes = 24;
constexpr std::uint32_t final_flag = 1;
constexpr std::uint64_t latency_sample_mask = 15;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

// A sender process's work; its exit status.
int sender_main(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd);

// A sender process. Never returns; the client is gone (reply channel unlinked) before _exit.
[[noreturn]] void run_sender(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd) {
  ::_exit(sender_main(o, node_job, id, ready_fd, go_fd));
}

int sender_main(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd) {
  auto c = tr::client::attach(node_job);
  if (!c) {
    std::fprintf(stderr, "fanin_bench: sender %u: attach: %s\n", id, c.error().message().c_str());
    return 2;
  }
  auto sink = c->open({0, "sink"}, {.routing = tr::route::via_agent});
  if (!sink) {
    std::fprintf(stderr, "fanin_bench: sender %u: open sink: %s\n", id, sink.error().message().c_str());
    return 2;
  }
  std::vector<std::byte> msg(o.msg_size, std::byte{0x5a});
  std::memcpy(msg.data(), &id, 4);
  const char r = 'r';
  if (::write(ready_fd, &r, 1) != 1) return 2;
  char go;
  if (::read(go_fd, &go, 1) < 0) return 2;  // EOF when the receiver opens the gate
  const std::uint64_t end_ns = o.duration > 0 ? now_ns() + static_cast<std::uint64_t>(o.duration * 1e9) : 0;
  std::uint64_t seq = 0;
  auto send = [&](std::uint32_t flags) {
    std::memcpy(msg.data() + 4, &flags, 4);
    std::memcpy(msg.data() + 8, &seq, 8);
    // Only the messages whose latency the receiver samples carry a send time: reading the clock
    // for every message was a sixth of a sender's CPU time, and it is not the transport's.
    if ((seq & latency_sample_mask) == 0) {
      const std::uint64_t t = now_ns();
      std::memcpy(msg.data() + 16, &t, 8);
    }
    const status st = sink->send(msg, std::chrono::seconds(static_cast<long>(o.stall_timeout)));
    if (st != status::ok) {
      std::fprintf(stderr, "fanin_bench: sender %u: send %llu: %s\n", id, static_cast<unsigned long long>(seq),
                   std::string(chanpool::to_string(st)).c_str());
      return false;
    }
    ++seq;
    return true;
  };
  if (end_ns) {
    while (true) {
      for (int i = 0; i < 256; ++i)
        if (!send(0)) return 1;
      if (now_ns() >= end_ns) break;
    }
    if (!send(final_flag)) return 1;
  } else {
    for (std::uint64_t i = 0; i < o.messages_per_sender; ++i)
      if (!send(0)) return 1;
  }
  c->flush();
  return 0;
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Finds mpi_fanin: next to this binary (installed) or in the build tree's mpi_compare/.
std::string find_mpi_fanin(const std::string& given) {
  if (!given.empty()) return given;
  namespace fs = std::filesystem;
  const fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
  for (const fs::path& p : {self / "mpi_fanin", self.parent_path() / "mpi_compare" / "mpi_fanin"})
    if (fs::exists(p)) return p.string();
  return "mpi_fanin";
}

// Runs the MPI baseline with the same process and message counts; its JSON line, or null.
nlohmann::json run_mpi_baseline(const options& o, std::uint32_t senders) {
  const std::string exe = find_mpi_fanin(o.mpi_fanin);
  std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " + std::to_string(senders + 1) +
                    " --oversubscribe --bind-to none " + o.mpi_args + " " + exe + " --msg_size " + std::to_string(o.msg_size);
  if (o.duration > 0)
    cmd += " --duration " + std::to_string(o.duration);
  else
    cmd += " --messages_per_sender " + std::to_string(o.messages_per_sender);
  cmd += " --json";
  if (!o.json) std::printf("running MPI baseline: %s\n", cmd.c_str());
  std::fflush(stdout);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int rc = ::pclose(p);
  for (std::size_t pos = out.rfind("{\"tool\""); pos != std::string::npos;) {
    auto j = nlohmann::json::parse(out.substr(pos, out.find('\n', pos) - pos), nullptr, false);
    if (!j.is_discarded()) return j;
    break;
  }
  std::fprintf(stderr, "fanin_bench: MPI baseline failed (exit %d): %s\n", rc, out.c_str());
  return nullptr;
}



// What the receiver measured.
struct receive_result {
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  double elapsed = 0;
  std::vector<double> latency_us;
  std::string lost_node;  // under a launcher: why a node's messages cannot all arrive
};

// Checks each message against its sender's sequence, samples latencies, and learns from every
// sender's final message how many it sent (--duration runs).
class sender_order {
 public:
  sender_order(std::size_t msg_size, std::uint32_t senders)
      : msg_size_(msg_size), senders_(senders), next_(senders, 0), final_count_(senders, -1) {}

  // `buf` holds a received message of `len` bytes (and is at least 64 bytes long).
  void check(const std::vector<std::byte>& buf, std::size_t len, receive_result& r) {
    std::uint32_t id, flags;
    std::uint64_t seq, sent;
    std::memcpy(&id, buf.data(), 4);
    std::memcpy(&flags, buf.data() + 4, 4);
    std::memcpy(&seq, buf.data() + 8, 8);
    std::memcpy(&sent, buf.data() + 16, 8);
    if (len != msg_size_ || id >= senders_ || seq != next_[id]) {
      if (r.errors++ < 10)
        std::fprintf(stderr, "fanin_bench: bad message: size %zu sender %u seq %llu (expected %llu)\n", len, id,
                     static_cast<unsigned long long>(seq), id < senders_ ? static_cast<unsigned long long>(next_[id]) : 0ull);
      if (id < senders_) next_[id] = seq + 1;
    } else {
      ++next_[id];
    }
    ++r.received;
    if ((seq & latency_sample_mask) == 0) r.latency_us.push_back(static_cast<double>(now_ns() - sent) / 1e3);
    if (flags & final_flag && id < senders_ && final_count_[id] < 0) {
      final_count_[id] = static_cast<std::int64_t>(seq + 1);
      if (++finals_ == senders_)
        for (auto f : final_count_) total_ += static_cast<std::uint64_t>(f);
    }
  }

  // The messages to expect: `so_far` until every sender's final message is in, then their sum.
  std::uint64_t expected(std::uint64_t so_far) const { return finals_ == senders_ ? total_ : so_far; }

 private:
  std::size_t msg_size_;
  std::uint32_t senders_;
  std::vector<std::uint64_t> next_;
  std::vector<std::int64_t> final_count_;
  std::uint32_t finals_ = 0;
  std::uint64_t total_ = 0;
};

// Reaps the senders that have exited; returns how many of them failed (and says so on stderr).
std::uint64_t reap_failed_senders(std::vector<pid_t>& pids) {
  std::uint64_t failed = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    int ws = 0;
    if (pids[i] > 0 && ::waitpid(pids[i], &ws, WNOHANG) == pids[i]) {
      pids[i] = -1;
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        std::fprintf(stderr, "fanin_bench: sender %zu failed (status %d)\n", i, ws);
        failed++;
      }
    }
  }
  return failed;
}

// Receives until every sender's messages are in (or a stall/error), checking each message.
// open_gate() releases the senders; `pids` are the senders this process forked (reaped here);
// lost_node() names a node found unreachable (empty while all are alive).
template <class OpenGate, class LostNode>
receive_result receive_all(const options& o, ch::channel& sink, std::uint32_t senders, std::vector<pid_t>& pids,
                           OpenGate&& open_gate, LostNode&& lost_node) {
  sender_order order(o.msg_size, senders);
  std::uint64_t expected = o.duration > 0 ? UINT64_MAX : senders * o.messages_per_sender;
  receive_result r;
  std::uint64_t& received = r.received;
  std::uint64_t& errors = r.errors;
  r.latency_us.reserve(1 << 20);
  std::vector<std::byte> buf(std::max<std::size_t>(o.msg_size, 64));

  const auto t0 = clock_type::now();
  open_gate();  // every sender starts now
  auto last_progress = t0;
  auto last_arrival = t0;
  auto last_node_check = t0;
  // The clock is read for sampled messages, every 4096 messages and after a wait that ended
  // without one, not for every message (it would be a tenth of the receiver's work).
  auto now = t0;
  while (received < expected) {
    std::size_t len = 0;
    const status st = sink.recv(buf, len, std::chrono::milliseconds(200));
    if (st != status::ok || (received & 4095) == 0) now = clock_type::now();
    if (st == status::ok) {
      last_arrival = now;
      order.check(buf, len, r);
      expected = order.expected(expected);
    } else if (st != status::timeout) {
      std::fprintf(stderr, "fanin_bench: receive failed: %s\n", std::string(chanpool::to_string(st)).c_str());
      errors++;
      break;
    }
    if (now - last_progress > std::chrono::seconds(2) && !o.json) {
      last_progress = now;
      std::fprintf(stderr, "  ... %llu messages received (%.1f s)\n", static_cast<unsigned long long>(received),
                   std::chrono::duration<double>(now - t0).count());
    }
    // A lost node: checked after a wait and at least every 100 ms while messages flow.
    if ((st != status::ok || (received & 4095) == 0) && now - last_node_check > std::chrono::milliseconds(100)) {
      last_node_check = now;
      if (r.lost_node = lost_node(); !r.lost_node.empty()) {
        std::fprintf(stderr, "fanin_bench: %s: %llu messages received, the rest of its senders' cannot arrive\n",
                     r.lost_node.c_str(), static_cast<unsigned long long>(received));
        errors++;
        break;
      }
    }
    if (st != status::ok) {
      // A sender that died will never finish: say so instead of waiting for the stall timeout.
      errors += reap_failed_senders(pids);
      if (now - last_arrival > std::chrono::duration<double>(o.stall_timeout)) {
        std::fprintf(stderr, "fanin_bench: nothing arrived for %.0f s; %llu of %llu received\n", o.stall_timeout,
                     static_cast<unsigned long long>(received), static_cast<unsigned long long>(expected));
        errors++;
        break;
      }
    }
  }
  r.elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (!r.lost_node.empty()) return r;  // the senders may still be sending: the caller ends them
  for (pid_t p : pids)
    if (p > 0) {
      int ws = 0;
      ::waitpid(p, &ws, 0);
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) r.errors++;
    }
  return r;
}

// The agents' counters, summed over the nodes.
struct agent_totals {
  std::uint64_t frames = 0, stalls = 0, holds = 0, dropped = 0;
};

std::uint64_t dropped_by(const tr::agent_stats& a) {
  return a.dropped_bad_key + a.dropped_malformed + a.dropped_unknown_channel + a.dropped_undeliverable +
         a.dropped_peer_dead + a.inbox_malformed;
}

// Sums the counters and names, on stderr, every node that dropped something.
agent_totals sum_agent_stats(const std::vector<tr::agent_stats>& agent_stats) {
  agent_totals t;
  for (const auto& a : agent_stats) {
    t.frames += a.frames_sent;
    t.stalls += a.credit_stalls;
    t.holds += a.delivery_holds;
    t.dropped += dropped_by(a);
  }
  if (t.dropped) {
    std::fprintf(stderr, "fanin_bench: the agents dropped %llu messages or frames:\n", static_cast<unsigned long long>(t.dropped));
    for (std::size_t k = 0; k < agent_stats.size(); ++k) {
      const auto& a = agent_stats[k];
      if (dropped_by(a))
        std::fprintf(stderr, "  node %zu: bad key %llu, malformed %llu, unknown channel %llu, undeliverable %llu, peer dead %llu, bad inbox record %llu\n",
                     k, (unsigned long long)a.dropped_bad_key, (unsigned long long)a.dropped_malformed,
                     (unsigned long long)a.dropped_unknown_channel, (unsigned long long)a.dropped_undeliverable,
                     (unsigned long long)a.dropped_peer_dead, (unsigned long long)a.inbox_malformed);
    }
  }
  return t;
}

// What report() prints, gathered.
struct fanin_figures {
  std::uint32_t senders = 0;
  std::uint64_t received = 0, errors = 0;
  double elapsed = 0, rate = 0, p50 = 0, p99 = 0, startup_s = 0;
  unsigned cores = 0;
  agent_totals agents;
  std::string fabric, bootstrap;
  nlohmann::json mpi;
};

void print_json(const options& o, const fanin_figures& f) {
  nlohmann::ordered_json j;
  j["tool"] = "fanin_bench";
  j["nodes"] = o.nodes;
  j["senders"] = f.senders;
  j["msg_size"] = o.msg_size;
  j["aggregation"] = o.aggregation == "on";
  j["msgs_per_s"] = f.rate;
  j["p50_us"] = f.p50;
  j["p99_us"] = f.p99;
  j["bytes_per_s"] = f.rate * static_cast<double>(o.msg_size);
  j["messages"] = f.received;
  j["elapsed_s"] = f.elapsed;
  j["startup_s"] = f.startup_s;
  j["cores"] = f.cores;
  j["agent_spin_us"] = o.agent_spin_us.value_or(20.0);
  j["receiver_spin_us"] = o.receiver_spin_us.value_or(50.0);
  j["fabric"] = f.fabric;
  j["bootstrap"] = f.bootstrap;
  j["frames"] = f.agents.frames;
  j["msgs_per_frame"] = f.agents.frames ? static_cast<double>(f.received) / static_cast<double>(f.agents.frames) : 0.0;
  j["credit_stalls"] = f.agents.stalls;
  j["delivery_holds"] = f.agents.holds;
  j["errors"] = f.errors;
  if (o.mpi) {
    j["mpi"] = f.mpi;
    if (f.mpi.is_object() && f.mpi.contains("msgs_per_s") && f.mpi["msgs_per_s"].get<double>() > 0)
      j["ratio_vs_mpi"] = f.rate / f.mpi["msgs_per_s"].get<double>();
  }
  std::printf("%s\n", j.dump().c_str());
}

void print_text(const options& o, const fanin_figures& f) {
  std::printf("fanin_bench: %u nodes x %u senders = %u senders -> 1 receiver on node 0, %zu B messages, aggregation %s\n",
              o.nodes, o.senders_per_node, f.senders, o.msg_size, o.aggregation.c_str());
  std::printf("  fabric      %s (bootstrap: %s)\n", f.fabric.c_str(), f.bootstrap.c_str());
  std::printf("  machine     %u cores for %u agents + %u senders + 1 receiver (scheduling is part of the figure);\n"
              "              spin: agents %.0f us, receiver %.0f us\n",
              f.cores, o.nodes, f.senders, o.agent_spin_us.value_or(20.0), o.receiver_spin_us.value_or(50.0));
  std::printf("  start-up    %.3f s for %u agents\n", f.startup_s, o.nodes);
  std::printf("  received    %llu messages in %.3f s%s\n", static_cast<unsigned long long>(f.received), f.elapsed,
              f.errors ? "  ** ERRORS: see above **" : ", each once and in order per sender");
  std::printf("  rate        %.0f msgs/s, %.1f MB/s\n", f.rate, f.rate * static_cast<double>(o.msg_size) / 1e6);
  std::printf("  latency     p50 %.1f us, p99 %.1f us (send -> receive, includes queueing)\n", f.p50, f.p99);
  std::printf("  frames      %llu (%.1f messages per frame), %llu credit stalls, %llu holds at a full sink\n",
              static_cast<unsigned long long>(f.agents.frames),
              f.agents.frames ? static_cast<double>(f.received) / static_cast<double>(f.agents.frames) : 0.0,
              static_cast<unsigned long long>(f.agents.stalls), static_cast<unsigned long long>(f.agents.holds));
  if (!o.mpi) return;
  if (f.mpi.is_object()) {
    const double m = f.mpi.value("msgs_per_s", 0.0);
    std::printf("  mpi_fanin   %.0f msgs/s (%u processes, same counts); chanpool / MPI = %.2fx\n", m, f.senders + 1,
                m > 0 ? f.rate / m : 0.0);
  } else {
    std::printf("  mpi_fanin   failed (see stderr)\n");
  }
}

// Prints the result (text or JSON) and returns the exit status.
int report(const options& o, receive_result& r, const std::vector<tr::agent_stats>& agent_stats,
           const std::string& fabric, double startup_s, const std::string& bootstrap) {
  fanin_figures f;
  f.senders = o.nodes * o.senders_per_node;
  f.agents = sum_agent_stats(agent_stats);
  f.received = r.received;
  f.errors = r.errors + (f.agents.dropped ? 1 : 0);
  f.elapsed = r.elapsed;
  f.rate = static_cast<double>(r.received) / r.elapsed;
  f.p50 = percentile(r.latency_us, 0.50);
  f.p99 = percentile(r.latency_us, 0.99);
  f.cores = std::thread::hardware_concurrency();
  f.startup_s = startup_s;
  f.fabric = fabric;
  f.bootstrap = bootstrap;
  f.mpi = nullptr;
  if (o.mpi) f.mpi = run_mpi_baseline(o, f.senders);
  if (o.json) {
    print_json(o, f);
  } else {
    print_text(o, f);
  }
  return f.errors ? 1 : 0;
}

// Fills in the spin times the command line left unset. `agents` and `senders` are those on this
// host; each agent has two threads, and the receiver is one more. When they outnumber the cores,
// a thread that polls takes the core from the thread that would give it something to find:
// here, spinning agents cost a fan-in of 32 virtual nodes on 2 cores about a tenth of its rate.
void choose_spins(options& o, std::uint32_t agents, std::uint32_t senders) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const bool oversubscribed = 2u * agents + senders + 1u > cores;
  if (!o.agent_spin_us) o.agent_spin_us = oversubscribed ? 0.0 : 20.0;
  if (!o.receiver_spin_us) o.receiver_spin_us = oversubscribed ? 0.0 : 50.0;
}

tr::agent_config agent_config_for(const options& o) {
  tr::agent_config a;
  a.provider = o.provider;
  a.aggregation = o.aggregation == "on";
  a.flush_bytes = o.flush_bytes;
  a.flush_deadline = std::chrono::microseconds(static_cast<long>(o.flush_deadline_us));
  a.credits = o.credits;
  a.spin = std::chrono::microseconds(static_cast<long>(o.agent_spin_us.value_or(20.0)));
  if (o.msg_size > a.large_threshold) a.large_threshold = o.msg_size;  // keep a fan-in a fan-in
  a.recv_buffer_bytes = std::max<std::size_t>(2u << 20, 4 * (o.flush_bytes + a.large_threshold + 4096));
  return a;
}

chanpool::result<ch::channel> create_sink(const options& o, const std::string& node0_job) {
  ch::channel_config cfg;
  cfg.capacity = o.sink_capacity;
  cfg.slot_bytes = static_cast<std::uint32_t>(std::max<std::size_t>(128, (o.msg_size + 32 + 63) / 64 * 64));
  if (cfg.slot_bytes > 1024) cfg.slot_bytes = 128;  // big messages side-load into the heap
  cfg.heap_bytes = std::max<std::uint64_t>(16u << 20, 64 * o.msg_size);
  cfg.single_producer = true;  // node 0's agent
  cfg.single_consumer = true;  // this process
  auto sink = ch::channel::create("sink", cfg, {node0_job});
  if (!sink) return sink.error();
  ch::wait_config w;
  const double spin_us = o.receiver_spin_us.value_or(50.0);
  w.spin_for = std::chrono::nanoseconds(static_cast<std::int64_t>(spin_us * 1000));
  if (spin_us < 0) w.mode = ch::wait_mode::spin;  // never sleeps
  if (spin_us == 0) w.mode = ch::wait_mode::idle;
  sink->set_wait(w);
  return std::move(*sink);
}

// Embedded default: N virtual nodes on this host.
int run_embedded(options& o) {
  const std::uint32_t senders = o.nodes * o.senders_per_node;
  choose_spins(o, o.nodes, senders);
  tr::cluster_config cc;
  cc.nodes = o.nodes;
  cc.agent = agent_config_for(o);
  if (std::string why; tr::check_cluster_fits(cc, &why)) {
    std::fprintf(stderr, "fanin_bench: %s\n", why.c_str());
    return 2;
  }
  const auto start_t0 = clock_type::now();
  auto vc = tr::virtual_cluster::start(cc);
  if (!vc) {
    std::fprintf(stderr, "fanin_bench: cannot start %u virtual nodes: %s\n", o.nodes, vc.error().message().c_str());
    return 2;
  }
  const double startup_s = std::chrono::duration<double>(clock_type::now() - start_t0).count();
  auto sink = create_sink(o, vc->node_job(0));
  if (!sink) {
    std::fprintf(stderr, "fanin_bench: cannot create the sink: %s\n", sink.error().message().c_str());
    return 2;
  }
  int ready[2], go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return 2;
  std::vector<pid_t> pids;
  for (std::uint32_t node = 0; node < o.nodes; ++node)
    for (std::uint32_t s = 0; s < o.senders_per_node; ++s) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        run_sender(o, vc->node_job(node), node * o.senders_per_node + s, ready[1], go[0]);
      }
      if (pid < 0) {
        std::perror("fanin_bench: fork");
        return 2;
      }
      pids.push_back(pid);
    }
  ::close(ready[1]);
  ::close(go[0]);
  for (std::uint32_t i = 0; i < senders; ++i) {
    char c;
    if (::read(ready[0], &c, 1) != 1) {
      std::fprintf(stderr, "fanin_bench: a sender failed to start (see above)\n");
      for (pid_t p : pids) ::kill(p, SIGKILL);
      return 2;
    }
  }
  receive_result r = receive_all(o, *sink, senders, pids, [&] { ::close(go[1]); }, [] { return std::string(); });
  std::vector<tr::agent_stats> agent_stats;
  for (std::uint32_t k = 0; k < o.nodes; ++k)
    if (auto st = tr::read_agent_stats(vc->node_job(k))) agent_stats.push_back(*st);
  const std::string fabric = vc->fabric_summary();
  sink->close();
  ch::channel::unlink("sink", {vc->node_job(0)});
  vc->stop();
  return report(o, r, agent_stats, fabric, startup_s, "embedded (" + std::to_string(o.nodes) + " virtual nodes)");
}

#ifdef CHANPOOL_FANIN_WITH_MPI
constexpr int exit_node_lost = 4;

constexpr int node_stopped_tag = 7;

// Rank 0, ending the job after a node was lost: waits until the given ranks say that their nodes
// are stopped (their segments removed), or `limit`.
void wait_for_stopped_nodes(const std::vector<int>& ranks, std::chrono::milliseconds limit) {
  std::vector<int> flags(ranks.size());
  std::vector<MPI_Request> requests(ranks.size());
  for (std::size_t i = 0; i < ranks.size(); ++i)
    MPI_Irecv(&flags[i], 1, MPI_INT, ranks[i], node_stopped_tag, MPI_COMM_WORLD, &requests[i]);
  const auto until = clock_type::now() + limit;
  int done = ranks.empty() ? 1 : 0;
  while (!done && clock_type::now() < until) {
    MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool orchestrator_gone(const std::string& node_job) {
  auto c = tr::client::attach(node_job);
  const auto s = c ? c->peer(0) : tr::peer_state::dead;
  return s == tr::peer_state::dead || s == tr::peer_state::left;
}

struct pending_sender {
  pid_t pid;
  int setup_fd;  // we write "<id> <node_job>\n"
};

// Forks this node's senders before MPI_Init (MPI does not support fork after it); each waits on
// its setup pipe for its id and node namespace. Returns false when a pipe cannot be made.
bool fork_senders(const options& o, const int (&ready)[2], const int (&go)[2], std::vector<pending_sender>& local) {
  for (std::uint32_t s = 0; s < o.senders_per_node; ++s) {
    int setup[2];
    if (::pipe(setup) != 0) return false;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(setup[1]);
      ::close(ready[0]);
      ::close(go[1]);
      char line[256] = {};
      std::size_t n = 0;
      while (n < sizeof line - 1 && ::read(setup[0], line + n, 1) == 1 && line[n] != '\n') ++n;
      line[n] = 0;
      unsigned id = 0;
      char job[200] = {};
      if (std::sscanf(line, "%u %199s", &id, job) != 2) ::_exit(2);
      run_sender(o, job, id, ready[1], go[0]);
    }
    ::close(setup[0]);
    local.push_back({pid, setup[1]});
  }
  return true;
}

// Tells each local sender its id and node namespace and waits until it is ready; false when one
// could not be told or did not start.
bool start_senders(const options& o, int rank, const std::string& node_job, std::vector<pending_sender>& local,
                   int ready_fd) {
  bool ok = true;
  for (std::uint32_t s = 0; s < local.size(); ++s) {
    const std::string line = std::to_string(static_cast<std::uint32_t>(rank) * o.senders_per_node + s) + " " + node_job + "\n";
    if (::write(local[s].setup_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ok = false;
    ::close(local[s].setup_fd);
  }
  for (std::uint32_t s = 0; s < local.size(); ++s) {
    char c;
    if (::read(ready_fd, &c, 1) != 1) ok = false;
  }
  return ok;
}

// Rank 0 after a node was lost: the lost node's rank never reaches the gather, and the launcher
// would wait for it, so the job ends here (Open MPI and Slurm end every rank on MPI_Abort and
// exit with its code) once this node is cleaned up and the reachable nodes have stopped.
void abort_after_lost_node(const options& o, ch::channel& sink, const std::string& node_job,
                                        chanpool::result<tr::client>& watch, std::unique_ptr<tr::agent>& agent,
                                        const std::vector<pid_t>& pids) {
  std::fprintf(stderr, "fanin_bench: ending the job (MPI_Abort, exit %d)\n", exit_node_lost);
  std::fflush(stderr);
  std::vector<int> alive;  // their ranks confirm once their nodes are stopped
  for (std::uint32_t k = 1; k < o.nodes; ++k)
    if (watch && watch->peer(k) == tr::peer_state::alive) alive.push_back(static_cast<int>(k));
  sink.close();
  ch::channel::unlink("sink", {node_job});
  *watch = tr::client{};
  agent->stop();  // its segments go; every sender sees node 0 leave and exits
  agent.reset();
  for (pid_t p : pids)
    if (p > 0) ::waitpid(p, nullptr, 0);
  // The reachable nodes see node 0 leave within milliseconds and stop their agents (see
  // run_other_rank): wait for that (at most 2 s) before the launcher kills their ranks.
  wait_for_stopped_nodes(alive, std::chrono::seconds(2));
  MPI_Abort(MPI_COMM_WORLD, exit_node_lost);
}

// Rank 0: receives everything, gathers every node's counters and reports.
int run_rank0(const options& o, ch::channel& sink, std::vector<pid_t>& pids, int go_fd, const std::string& node_job,
              std::unique_ptr<tr::agent>& agent, int size, double startup_s) {
  const std::uint32_t senders = o.nodes * o.senders_per_node;
  auto watch = tr::client::attach(node_job);
  const auto lost_node = [&]() -> std::string {
    for (std::uint32_t k = 1; watch && k < o.nodes; ++k)
      if (const auto s = watch->peer(k); s == tr::peer_state::dead || s == tr::peer_state::left)
        return "node " + std::to_string(k) + " is unreachable (its agent " +
               (s == tr::peer_state::left ? "left" : "stopped answering") + ")";
    return {};
  };
  receive_result r = receive_all(o, sink, senders, pids, [&] { ::close(go_fd); }, lost_node);
  if (!r.lost_node.empty()) {
    abort_after_lost_node(o, sink, node_job, watch, agent, pids);
    return exit_node_lost;  // not reached: MPI_Abort ends the job
  }
  sink.close();
  ch::channel::unlink("sink", {node_job});
  // Every node's counters, gathered at rank 0 (MPI only for the report, after the run).
  const tr::agent_stats mine = agent->stats();
  std::vector<tr::agent_stats> all(static_cast<std::size_t>(size));
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  return report(o, r, all, agent->fabric_info().summary(), startup_s,
                "mpi (" + std::to_string(size) + " ranks, one node each)");
}

// Every other rank: waits for its senders and sends its counters to rank 0. Returns -1 when it
// finished the job itself (node 0 is gone), else the exit status.
int run_other_rank(int rank, std::vector<pid_t>& pids, int go_fd, const std::string& node_job,
                   std::unique_ptr<tr::agent>& agent) {
  ::close(go_fd);
  int errors = 0;
  for (pid_t p : pids) {
    int ws = 0;
    ::waitpid(p, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) errors++;
  }
  const tr::agent_stats mine = agent->stats();
  if (orchestrator_gone(node_job)) {
    // Rank 0 cannot gather: it ends the job (or is gone). Leave nothing behind meanwhile.
    std::fprintf(stderr, "fanin_bench (rank %d): node 0 is unreachable; stopping this node\n", rank);
    agent->stop();
    agent.reset();
    int stopped = 1;
    MPI_Send(&stopped, 1, MPI_INT, 0, node_stopped_tag, MPI_COMM_WORLD);
    MPI_Finalize();  // returns when the launcher ends the job, if it can reach this host
    return -1;
  }
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, nullptr, 0, MPI_BYTE, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 has everything: the agents may stop
  return errors ? 1 : 0;
}

// The ranks on this host (for choose_spins).
int ranks_on_this_host() {
  MPI_Comm host;
  int ranks_here = 1;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host);
  MPI_Comm_size(host, &ranks_here);
  MPI_Comm_free(&host);
  return ranks_here;
}

// Cluster mode: this process is one node (its MPI rank). Senders are forked before MPI_Init
// (MPI does not support fork after it) and learn their node's namespace over a pipe. MPI
// exchanges the agents' addresses and synchronises the start; the data path is libfabric.
int run_under_mpi(options& o, int argc, char** argv) {
  int ready[2], go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return 2;
  std::vector<pending_sender> local;
  if (!fork_senders(o, ready, go, local)) return 2;
  ::close(ready[1]);
  ::close(go[0]);

  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  o.nodes = static_cast<std::uint32_t>(size);
  // One job name for all ranks: rank 0's.
  char job[32] = {};
  if (rank == 0) std::snprintf(job, sizeof job, "fb%d", static_cast<int>(::getpid()));
  MPI_Bcast(job, sizeof job, MPI_CHAR, 0, MPI_COMM_WORLD);
  const auto ranks_here = static_cast<std::uint32_t>(ranks_on_this_host());
  choose_spins(o, ranks_here, ranks_here * o.senders_per_node);
  const auto start_t0 = clock_type::now();
  auto agent = tr::start_agent_mpi(MPI_COMM_WORLD, job, agent_config_for(o));
  int ok = agent ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!agent) std::fprintf(stderr, "fanin_bench: rank %d: agent: %s\n", rank, agent.error().message().c_str());
    for (auto& l : local) ::kill(l.pid, SIGKILL);
    MPI_Finalize();
    return 2;
  }
  const double startup_s = std::chrono::duration<double>(clock_type::now() - start_t0).count();
  const std::string node_job = tr::virtual_node_job(job, static_cast<std::uint32_t>(rank));
  chanpool::result<ch::channel> sink = chanpool::errc::not_found;
  if (rank == 0) {
    sink = create_sink(o, node_job);
    if (!sink) std::fprintf(stderr, "fanin_bench: cannot create the sink: %s\n", sink.error().message().c_str());
  }
  MPI_Barrier(MPI_COMM_WORLD);  // the sink exists before anyone resolves it
  if (!start_senders(o, rank, node_job, local, ready[0])) ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    std::fprintf(stderr, "fanin_bench: rank %d: a sender failed to start (see above)\n", rank);
    for (auto& l : local) ::kill(l.pid, SIGKILL);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::vector<pid_t> pids;
  for (auto& l : local) pids.push_back(l.pid);
  MPI_Barrier(MPI_COMM_WORLD);  // every sender everywhere is ready: go
  const int status = rank == 0 ? run_rank0(o, *sink, pids, go[1], node_job, *agent, size, startup_s)
                               : run_other_rank(rank, pids, go[1], node_job, *agent);
  if (status < 0) return 1;  // this node stopped itself: node 0 is gone
  (*agent)->stop();
  agent->reset();
  MPI_Finalize();
  return status;
}
#endif


// True when this process was started by an MPI launcher (one process per node).
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  options o;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  app.add_option("--nodes", o.nodes, "Virtual nodes, one agent each (ignored under a launcher: one node per rank)")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--senders_per_node", o.senders_per_node, "Sender processes per node")->check(CLI::Range(1u, 1024u));
  app.add_option("--msg_size", o.msg_size, "Message bytes (>= 24: sender, flags, sequence, timestamp)")
      ->check(CLI::Range(std::size_t{header_bytes}, std::size_t{1} << 26));
  auto* count_opt = app.add_option("--messages_per_sender", o.messages_per_sender, "Messages each sender sends");
  app.add_option("--duration", o.duration, "Send for this many seconds instead of a fixed count (0: use the count)")
      ->excludes(count_opt);
  app.add_option("--aggregation", o.aggregation, "Batch small messages per destination (on) or send each alone (off)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--json", o.json, "One JSON line instead of text");
  std::string bootstrap = "auto";
  app.add_option("--bootstrap", bootstrap,
                 "embedded: --nodes virtual nodes on this host; mpi: one process per node started by mpirun/srun "
                 "(addresses exchanged with MPI, data through libfabric); auto: mpi when started by a launcher")
      ->check(CLI::IsMember({"auto", "embedded", "mpi"}));
  const std::string baseline = "MPI baseline";
  app.add_flag("--mpi", o.mpi, "Also run mpi_fanin with the same process and message counts")->group(baseline);
  app.add_option("--mpi_args", o.mpi_args,
                 "Extra mpirun arguments for the MPI baseline, e.g. \"--mca btl self,tcp\" (default: none)")
      ->group(baseline);
  app.add_option("--mpi_fanin", o.mpi_fanin,
                 "Path of mpi_fanin (default: next to this binary, else ../mpi_compare/, else $PATH)")
      ->group(baseline);
  const std::string tuning = "Agent and receiver tuning";
  app.add_option("--provider", o.provider, "libfabric provider (default: $FI_PROVIDER, else tcp;ofi_rxm)")->group(tuning);
  app.add_option("--flush_bytes", o.flush_bytes, "Batch size that triggers a send (capped at the provider's eager size)")
      ->check(CLI::Range(std::size_t{256}, std::size_t{1} << 22))
      ->group(tuning);
  app.add_option("--flush_deadline_us", o.flush_deadline_us, "Max age of a partial batch while producers are busy")
      ->group(tuning);
  app.add_option("--credits", o.credits, "Frames in flight per destination before senders wait")
      ->check(CLI::Range(1u, 4096u))
      ->group(tuning);
  app.add_option("--agent_spin_us", o.agent_spin_us,
                 "How long agent threads poll before sleeping (default: 20, or 0 when the agents, senders "
                 "and receiver outnumber the cores)")
      ->group(tuning);
  app.add_option("--receiver_spin_us", o.receiver_spin_us,
                 "How long the receiver polls an empty sink before sleeping (negative: never sleeps; default: "
                 "50, or 0 when oversubscribed)")
      ->group(tuning);
  app.add_option("--sink_capacity", o.sink_capacity, "Slots in the receiver's channel (power of two)")->group(tuning);
  app.add_option("--rxm_buffer_bytes", o.rxm_buffer_bytes,
                 "RxM eager size (FI_OFI_RXM_BUFFER_SIZE unless set): frames are capped at it minus 256; 0: "
                 "libfabric's default (16384)")
      ->group(tuning);
  app.add_option("--rxm_queue_depth", o.rxm_queue_depth,
                 "RxM per-connection queues (FI_OFI_RXM_MSG_TX_SIZE/RX_SIZE unless set); 0: libfabric's default")
      ->group(tuning);
  app.add_option("--stall_timeout", o.stall_timeout,
                 "Give up when nothing arrives for this many seconds (also each sender's send timeout)")
      ->group(tuning);
  if (const auto exit_code = chanpool::tools::man::parse(app, argc, argv)) return *exit_code;
  // Read by libfabric when the agents open their endpoints; a value in the environment wins.
  tr::set_rxm_defaults(o.rxm_buffer_bytes, o.rxm_queue_depth);
  if (bootstrap == "mpi" || (bootstrap == "auto" && launched_by_mpi())) {
#ifdef CHANPOOL_FANIN_WITH_MPI
    return run_under_mpi(o, argc, argv);
#else
    std::fprintf(stderr, "fanin_bench: built without MPI (CHANPOOL_ENABLE_MPI=OFF): --bootstrap mpi is not available\n");
    return 2;
#endif
  }
  return run_embedded(o);
}
