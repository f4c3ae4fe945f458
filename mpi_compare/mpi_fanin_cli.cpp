// mpi_fanin's command line (mpi_fanin_cli.hpp): the manual page, the options and the smallest
// message.
#include "mpi_fanin_cli.hpp"

#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "cli_checks.hpp"
#include "man_help.hpp"
#include "mpi_help.hpp"

namespace chanpool::mpi_compare::fanin_cli {
namespace {

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = tool_name,
      .summary = "many-to-one message rate baseline: MPI_Send to one MPI_Recv(MPI_ANY_SOURCE)",
      .synopsis = "mpirun -np P mpi_fanin [--msg_size BYTES] [--messages_per_sender M | --duration S]\n"
                  "                       [--stall_timeout S] [--json]",
      .description =
          "Ranks 1..P-1 (the senders) each send messages of --msg_size bytes to rank 0 with MPI_Send;\n"
          "rank 0 receives every message with MPI_Recv(MPI_ANY_SOURCE) into one buffer. This is the\n"
          "fan-in an MPI user writes by hand, the baseline for chanpool's many-to-one aggregation\n"
          "(fanin_bench --mpi runs it with the same counts). P >= 2. Only rank 0 prints.\n"
          "\n"
          "Every message starts with a 32-byte header: sender rank, flags, per-sender sequence number,\n"
          "send time (CLOCK_MONOTONIC ns, read just before MPI_Send) and a checksum of the payload and\n"
          "the header; the rest is a sender-specific pattern. Rank 0 verifies every message as it\n"
          "arrives (sender, size, checksum, per-sender order without gaps or repeats) and, at the end,\n"
          "that each sender's count is complete; this verification is part of the measured rate.\n"
          "\n"
          "With --messages_per_sender each sender sends exactly M messages. With --duration each sender\n"
          "sends until S seconds have passed on its clock; its last message is flagged final and\n"
          "carries its count (sequence number + 1), so rank 0 knows how many to expect.\n"
          "\n"
          "Measured at rank 0: elapsed = from the MPI_Barrier that precedes the first send to the\n"
          "last receive; msgs/s = messages / elapsed; bytes/s = messages * msg_size / elapsed;\n"
          "latency = receive time - send time per message, p50 and p99 in microseconds (to within\n"
          "1 %). Under saturation the latency includes queueing behind other senders' messages.\n"
          "The latency uses one host's CLOCK_MONOTONIC and means something only when every rank runs\n"
          "on the same host: on a cluster the nodes' clocks differ and the figures are meaningless\n"
          "(negative differences are counted as 0).\n"
          "\n"
          "The command line is parsed before MPI_Init: --help and usage errors need no MPI start-up.",
      .output =
          "Text (default):\n"
          "# mpi_fanin: <MPI library>, N senders -> rank 0, MPI_Send / MPI_Recv(MPI_ANY_SOURCE), B B messages\n"
          "# mode: --messages_per_sender M   (or --duration S s per sender)\n"
          "messages   total received (per sender min..max), every one verified\n"
          "elapsed    seconds from the barrier before the first send to the last receive\n"
          "rate       msgs/s and MB/s (10^6 bytes)\n"
          "latency    p50 and p99 of receive - send time, in microseconds\n"
          "note       (only if some) messages that arrived before their send time\n"
          "\n"
          "--json, one line with the keys in this order:\n"
          "{\"tool\":\"mpi_fanin\",\"senders\":N,\"msg_size\":B,\"messages\":T,\"msgs_per_s\":R,\n"
          " \"bytes_per_s\":R,\"p50_us\":L,\"p99_us\":L,\"elapsed_s\":S}",
      .exit_status =
          "0 all messages arrived intact.\n"
          "1 lost, duplicated, out-of-order or corrupt messages (described on stderr, nothing on\n"
          "  stdout), or no message for --stall_timeout seconds.\n"
          "2 bad command line (also --msg_size below 32), or fewer than 2 ranks (MPI_Abort with 2).",
      .environment = chanpool::mpi_compare::mpi_environment_help("self,tcp"),
      .examples =
          "mpirun -np 5 mpi_fanin --msg_size 64 --messages_per_sender 100000\n"
          "As root and with more ranks than cores (Open MPI refuses both unless told):\n"
          "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \\\n"
          "  mpirun -np 9 --oversubscribe --bind-to none mpi_fanin --duration 2 --json\n"
          "Force a transport: shared memory: --mca pml ob1 --mca btl self,vader;\n"
          "TCP: --mca pml ob1 --mca btl self,tcp (--mca btl_tcp_if_include lo on one host):\n"
          "mpirun -np 129 --oversubscribe --bind-to none --mca pml ob1 --mca btl self,tcp \\\n"
          "  --mca btl_tcp_if_include lo mpi_fanin --msg_size 64 --messages_per_sender 20000"};
}

void add_options(CLI::App& app, options& o) {
  app.add_option("--msg_size", o.msg_size,
                 "Bytes per message, header included (>= 32: the header's size)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, max_message_bytes));
  auto* count = app.add_option("--messages_per_sender", o.messages_per_sender, "Messages each sender sends")
                    ->capture_default_str()
                    ->check(CLI::Range(std::uint64_t{1}, max_messages_per_sender));
  auto* duration = app.add_option("--duration", o.duration_s,
                                  "Send for this many seconds instead of a fixed count (e.g. 2.5; not given: the count applies)")
                       ->check(CLI::Range(1e-3, 86400.0))
                       ->check(chanpool::tools::finite_number());
  count->excludes(duration);
  app.add_option("--stall_timeout", o.stall_timeout_s,
                 "Fail if rank 0 receives nothing for this many seconds (0: wait forever)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0))
      ->check(chanpool::tools::finite_number());
  app.add_flag("--json", o.json, "Print only one JSON line on stdout");
  // An empty group hides the option from --help: it exists for the tests only.
  const std::map<std::string, fault> faults{{"skip", fault::skip},
                                            {"duplicate", fault::duplicate},
                                            {"corrupt", fault::corrupt},
                                            {"lose_final", fault::lose_final}};
  app.add_option("--inject_fault", o.inject, "Test hook: rank 1 damages its stream once")
      ->transform(CLI::CheckedTransformer(faults))
      ->group("");
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  add_options(app, r.options);
  if (chanpool::tools::man::parse(app, argc, argv, r)) return r;
  if (r.options.msg_size < header_bytes)
    return refuse(r, exit_usage,
                  std::string(tool_name) + ": --msg_size " + std::to_string(r.options.msg_size) +
                      " is too small: every message carries a " + std::to_string(header_bytes) +
                      "-byte header (sender, sequence number, send time, checksum), so --msg_size must be >= " +
                      std::to_string(header_bytes) + "\nRun with --help for more information.\n");
  return r;
}

}  // namespace chanpool::mpi_compare::fanin_cli
