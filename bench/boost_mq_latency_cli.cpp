// boost_mq_latency's command line (boost_mq_latency_cli.hpp): the manual page, the shared
// ping-pong flags, --no-pin and the --sizes list.
#include "boost_mq_latency_cli.hpp"

#include <string>

#include <CLI/CLI.hpp>

#include "man_help.hpp"
#include "ping_pong_flags.hpp"

namespace chanpool::bench::boost_mq_cli {
namespace {

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = tool_name,
      .summary = "Boost.Interprocess message_queue ping-pong latency baseline",
      .synopsis = "boost_mq_latency [--sizes B,B,...] [--iterations N] [--batch N] [--no-pin] [--json]",
      .description =
          "A fork()ed child answers every message with one of the same size over a second queue;\n"
          "one-way latency = round trip / 2. Both queues are boost::interprocess::message_queue\n"
          "objects of depth 1 sized for the largest message: blocking, with a process-shared\n"
          "mutex and condition variables (the table header says which synchronisation Boost was\n"
          "built with). The \"blocking shared-memory queue\" baseline that latency_bench --transport\n"
          "shm is compared against (scripts/compare_latency.sh). The queue names are removed right\n"
          "after both processes have them mapped, so nothing is left in /dev/shm.\n"
          "\n"
          "Method, per size (shared with latency_bench and mpi_latency,\n"
          "tools/common/latency_report.hpp): a warm-up of min(iterations, 10000) round trips, then a\n"
          "pass that reads the clock every --batch round trips (the one-way figure is the median of\n"
          "those batch means / 2) and a pass that times every round trip (clock read included; its\n"
          "99th percentile / 2 is the p99). Sizes >= 65536 B run min(iterations, 2000) round trips.\n"
          "\n"
          "Unless --no-pin, the pinger and the ponger are pinned to the first two CPUs this process\n"
          "may use (sched_setaffinity); with fewer than two they are not pinned.",
      .output =
          "Text (default):\n"
          "# boost_mq_latency, transport boost_mq: one-way latency = round trip / 2\n"
          "# Boost <version> message_queue x2 (depth 1, max <largest> B), fork()ed ponger <pinning>, ...\n"
          "# median: of batch means; p99: of individually timed round trips (clock read included)\n"
          "# size(B)   one-way(ns)   p99(ns)   iterations   (one row per size)\n"
          "\n"
          "--json: one JSON object (indented over several lines) {\"tool\":\"boost_mq_latency\",\n"
          "\"transport\":\"boost_mq\",\"results\":[{\"size\":B,\"one_way_ns\":median,\"p99_ns\":p99,\n"
          "\"iterations\":N}, ...]}.",
      .exit_status = "0 every size was measured.\n"
                     "1 a queue, fork or pinning failed, or the ponger died or exited with an error\n"
                     "  (message on stderr).\n"
                     "2 bad command line (unknown option, malformed --sizes, a size outside 1..2^30).",
      .environment = "None of its own. CHANPOOL_JOB is not used: the queues are Boost objects\n"
                     "(/dev/shm/chanpool_boost_mq_latency_<pid>_ping and _pong while they start).",
      .examples = "boost_mq_latency --sizes 64 --iterations 200000 --json\n"
                  "boost_mq_latency --sizes 8,64,1024,65536,1048576"};
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  chanpool::tools::ping_pong_flags flags;
  chanpool::tools::add_ping_pong_flags(app, flags);
  app.add_flag("--no-pin{false}", r.options.pin,
               "Do not pin pinger and ponger to the first two CPUs this process may use (default: pinned)");
  if (chanpool::tools::man::parse(app, argc, argv, r)) return r;
  chanpool::tools::take_ping_pong_flags(flags, max_message_bytes, tool_name, r);
  return r;
}

}  // namespace chanpool::bench::boost_mq_cli
