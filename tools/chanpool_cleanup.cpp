// chanpool_cleanup: lists this user's chanpool segments and removes the stale ones (every
// process that used them is gone).
#include <nlohmann/json.hpp>

#include <cstdio>

#include "chanpool/channels/cleanup.hpp"
#include "chanpool_cleanup_cli.hpp"

int main(int argc, char** argv) {
  const auto cli = chanpool::tools::cleanup_cli::parse_command_line(argc, argv);
  chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const chanpool::channels::cleanup_options options{.job = cli.options.job, .dry_run = cli.options.dry_run};
  const bool list_only = cli.options.list_only;
  const bool json = cli.options.json;

  auto to_json = [](const chanpool::channels::segment_record& r) {
    return nlohmann::json{{"segment", r.shm_name}, {"job", r.job},   {"name", r.channel_name},
                          {"bytes", r.bytes},      {"creator_pid", r.creator_pid},
                          {"live_processes", r.live_processes}, {"stale", r.stale}, {"problem", r.problem}};
  };
  if (list_only) {
    const auto records = chanpool::channels::list_segments(options.job);
    if (json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& r : records) j.push_back(to_json(r));
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%-48s %12s %8s %6s %s\n", "segment", "bytes", "creator", "live", "state");
      for (const auto& r : records)
        std::printf("%-48s %12llu %8u %6u %s%s%s\n", r.shm_name.c_str(), static_cast<unsigned long long>(r.bytes),
                    r.creator_pid, r.live_processes, r.stale ? "stale" : "in use", r.problem.empty() ? "" : ": ",
                    r.problem.c_str());
    }
    return 0;
  }
  std::error_code error;
  const auto removed = chanpool::channels::cleanup_stale(options, error);
  if (json) {
    nlohmann::json j = {{"dry_run", options.dry_run}, {"removed", nlohmann::json::array()}};
    for (const auto& r : removed) j["removed"].push_back(to_json(r));
    if (error) j["error"] = error.message();
    std::printf("%s\n", j.dump().c_str());
  } else {
    for (const auto& r : removed)
      std::printf("%s %s (%llu bytes, creator pid %u)\n", options.dry_run ? "would remove" : "removed", r.shm_name.c_str(),
                  static_cast<unsigned long long>(r.bytes), r.creator_pid);
    std::printf("%zu stale segment(s) %s\n", removed.size(), options.dry_run ? "found" : "removed");
    if (error) std::fprintf(stderr, "chanpool_cleanup: %s\n", error.message().c_str());
  }
  return error ? 1 : 0;
}
