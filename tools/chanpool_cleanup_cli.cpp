// chanpool_cleanup's command line (chanpool_cleanup_cli.hpp): the manual page and the options.
#include "chanpool_cleanup_cli.hpp"

#include <CLI/CLI.hpp>

#include "man_help.hpp"

namespace chanpool::tools::cleanup_cli {
namespace {

// The manual page printed by --help (tools/common/man_help.hpp).
chanpool::tools::man::page manual() {
  return {
      .name = "chanpool_cleanup",
      .summary = "list and remove stale chanpool shared-memory segments of the current user",
      .synopsis = "chanpool_cleanup [--job JOB] [--dry-run] [--json]\n"
                  "chanpool_cleanup --list [--job JOB] [--json]",
      .description =
          "Every chanpool channel, and every node agent's shared state (agent-state), is a POSIX\n"
          "shared-memory segment /dev/shm/chanpool.<uid>.<job>.<name>. Only segments whose <uid> is\n"
          "the caller's are looked at (and only those of --job JOB when given; node k of a job J\n"
          "started by virtual_cluster, or by fanin_bench, has the job J-n<k>).\n"
          "\n"
          "A segment is stale when no process that uses it is alive: neither its creator nor any\n"
          "process registered in it (every process that created or opened it). Each is checked by pid\n"
          "and by the kernel start time recorded with it, so a reused pid does not keep a segment\n"
          "alive. An agent-state segment is judged by its creator (the agent). A segment with a header\n"
          "that cannot be validated is reported with the problem and judged by its creator; an empty\n"
          "or unmappable one is stale. Segments are mapped read-only to be judged.\n"
          "\n"
          "Without --list, stale segments are removed (unlinked); live ones are never touched, and a\n"
          "name already gone (another cleanup) is not an error. Unlinking only removes the name:\n"
          "a process that still has the segment mapped keeps using it. With --list or --dry-run\n"
          "nothing is removed. --list takes precedence over --dry-run.",
      .output =
          "--list, text: a header line, then one line per segment:\n"
          "  segment (the /dev/shm name)  bytes  creator (pid)  live (processes alive)  state\n"
          "  where state is \"in use\" or \"stale\", followed by \": <problem>\" for a bad header.\n"
          "--list --json: one line, an array of {\"segment\",\"job\",\"name\",\"bytes\",\"creator_pid\",\n"
          "  \"live_processes\",\"stale\",\"problem\"} (problem \"\" when the header is valid).\n"
          "Removing, text: \"removed <segment> (<bytes> bytes, creator pid <pid>)\" per segment\n"
          "  (\"would remove\" with --dry-run), then \"<n> stale segment(s) removed\" (\"found\").\n"
          "Removing, --json: one line {\"dry_run\":bool,\"removed\":[records as for --list],\n"
          "  \"error\":message (only when a removal failed)}.",
      .exit_status = "0 success (also when there was nothing to remove).\n"
                     "1 a stale segment could not be removed (message on stderr, or \"error\" in JSON).\n"
                     "2 bad command line.",
      .environment = "None. CHANPOOL_JOB is not consulted: without --job every job of the user is examined.",
      .examples = "chanpool_cleanup --list                 # every segment of this user, with its state\n"
                  "chanpool_cleanup --dry-run              # what would be removed\n"
                  "chanpool_cleanup                        # remove the stale ones\n"
                  "chanpool_cleanup --job vc12345-n0 --json   # one job's stale segments, as JSON"};
}

}  // namespace

cli_result<options> parse_command_line(int argc, const char* const* argv) {
  cli_result<options> r;
  options& o = r.options;
  CLI::App app;
  chanpool::tools::man::apply(app, manual());
  app.add_option("--job", o.job, "Only segments of this job (default: every job of this user)");
  app.add_flag("--dry-run,-n", o.dry_run, "Report what would be removed, remove nothing");
  app.add_flag("--list,-l", o.list_only, "List every segment with its state, remove nothing");
  app.add_flag("--json", o.json, "Print one JSON line instead of text");
  chanpool::tools::man::parse(app, argc, argv, r);
  return r;
}

}  // namespace chanpool::tools::cleanup_cli
