// fanin_bench's command line (fanin_bench_cli.hpp): the manual page and the options.
#include "fanin_bench_cli.hpp"

#include <string>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "man_help.hpp"

namespace chanpool::tools::fanin {
namespace {

// Counts and times the run turns into sums, casts and deadlines. The receiver expects nodes *
// senders * messages (uint64), and --mpi hands the count to mpi_fanin (1..2^40); senders add
// duration * 1e9 ns to the clock; spins and deadlines become long microseconds.
constexpr std::uint64_t max_messages_per_sender = std::uint64_t{1} << 40;
constexpr double max_duration_s = 86400;
constexpr double max_us = 1e9;

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
          "runs its agent on a thread, and exchanges agent addresses with MPI_Allgather; the data\n"
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
          "              agent waited for a destination's credit) and holds (times the\n"
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

void add_options(CLI::App& app, options& o) {
  app.add_option("--nodes", o.nodes, "Virtual nodes, one agent each (ignored under a launcher: one node per rank)")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--senders_per_node", o.senders_per_node, "Sender processes per node")->check(CLI::Range(1u, 1024u));
  app.add_option("--msg_size", o.msg_size, "Message bytes (>= 24: sender, flags, sequence, timestamp)")
      ->check(CLI::Range(std::size_t{header_bytes}, std::size_t{1} << 26));
  auto* count_opt = app.add_option("--messages_per_sender", o.messages_per_sender, "Messages each sender sends")
                        ->check(count_within(1, max_messages_per_sender));
  app.add_option("--duration", o.duration, "Send for this many seconds instead of a fixed count (0: use the count)")
      ->excludes(count_opt)
      ->check(finite_within(0, max_duration_s));
  app.add_option("--aggregation", o.aggregation, "Batch small messages per destination (on) or send each alone (off)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--json", o.json, "One JSON line instead of text");
  app.add_option("--bootstrap", o.bootstrap,
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
      ->check(finite_within(0, max_us))
      ->group(tuning);
  app.add_option("--credits", o.credits, "Frames in flight per destination before senders wait")
      ->check(CLI::Range(1u, 4096u))
      ->group(tuning);
  app.add_option("--agent_spin_us", o.agent_spin_us,
                 "How long agent threads poll before sleeping (default: 20, or 0 when the agents, senders "
                 "and receiver outnumber the cores)")
      ->check(finite_within(0, max_us))
      ->group(tuning);
  app.add_option("--receiver_spin_us", o.receiver_spin_us,
                 "How long the receiver polls an empty sink before sleeping (negative: never sleeps; default: "
                 "50, or 0 when oversubscribed)")
      ->check(finite_within(-max_us, max_us))
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
      ->check(finite_within(0, max_duration_s))
      ->group(tuning);
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  add_options(app, r.options);
  chanpool::tools::man::parse(app, argc, argv, r);
  return r;
}

}  // namespace chanpool::tools::fanin
