// latency_bench --transport fabric --bandwidth: the window timing shared by every kind, and the
// report (table or JSON) with each agent kind's ratio to the direct kind of its family.
#include "latency_bandwidth.hpp"
#include "launcher.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

namespace chanpool::tools {

std::uint32_t window_for(std::size_t size, std::uint32_t requested) {
  const std::size_t cap = std::max<std::size_t>(1, bandwidth_max_window_bytes / std::max<std::size_t>(size, 1));
  return static_cast<std::uint32_t>(std::max<std::size_t>(1, std::min<std::size_t>(requested, cap)));
}

bandwidth_row measure_windows(std::size_t size, const std::string& kind, std::uint32_t window, std::uint64_t fixed,
                              const std::function<void()>& run_window,
                              const std::function<void(std::uint64_t)>& announce) {
  using clock = std::chrono::steady_clock;
  double last_s = 0;
  for (std::uint64_t i = 0; i < bandwidth_warm_up_windows; ++i) {
    const auto t0 = clock::now();
    run_window();
    last_s = std::chrono::duration<double>(clock::now() - t0).count();
  }
  std::uint64_t n = fixed;
  if (n == 0) {
    const double target = std::chrono::duration<double>(bandwidth_target_time).count();
    const double fit = last_s > 0 ? std::ceil(target / last_s) : static_cast<double>(bandwidth_max_auto_windows);
    n = static_cast<std::uint64_t>(std::clamp(fit, 2.0, static_cast<double>(bandwidth_max_auto_windows)));
  }
  announce(n);
  const auto t0 = clock::now();
  for (std::uint64_t i = 0; i < n; ++i) run_window();
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  bandwidth_row r;
  r.size = size;
  r.kind = kind;
  r.window = window;
  r.windows = n;
  const double bytes = static_cast<double>(size) * window * static_cast<double>(n);
  r.mb_per_s = seconds > 0 ? bytes / seconds / 1e6 : 0;
  return r;
}

namespace {

// The direct kind each agent kind is compared with.
const std::map<std::string, std::string>& family() {
  static const std::map<std::string, std::string> f{{"direct send", "direct send"},     {"direct write", "direct write"},
                                                    {"direct read", "direct read"},     {"agent message", "direct send"},
                                                    {"agent message in place", "direct send"},
                                                    {"agent put", "direct write"},      {"agent get", "direct read"}};
  return f;
}

const std::vector<std::string>& kind_order() {
  static const std::vector<std::string> k{"direct send",   "direct write", "direct read",
                                          "agent message", "agent message in place", "agent put", "agent get"};
  return k;
}

struct reported {
  bandwidth_row row;
  std::optional<double> ratio;  // to the direct row of the same family and size, where both ran
};

std::vector<reported> with_ratios(const std::vector<bandwidth_row>& rows, const std::vector<std::size_t>& sizes) {
  std::vector<reported> out;
  for (const auto size : sizes)
    for (const auto& kind : kind_order())
      for (const auto& r : rows) {
        if (r.size != size || r.kind != kind) continue;
        reported e{r, std::nullopt};
        for (const auto& d : rows)
          if (d.size == size && d.kind == family().at(kind) && d.supported && r.supported && d.mb_per_s > 0)
            e.ratio = r.mb_per_s / d.mb_per_s;
        out.push_back(e);
      }
  return out;
}

void print_text(const std::vector<reported>& rows, const std::vector<std::pair<std::string, bandwidth_part>>& parts) {
  std::printf("# latency_bench, transport fabric: bandwidth, osu_bw style (a window of W operations in flight,\n"
              "# then wait for all W; messages: until the receiver's ack of the window)\n");
  for (const auto& [mode, part] : parts) {
    std::printf("# %s: %s\n", mode.c_str(), part.fabric.c_str());
    if (!part.notes.empty()) std::printf("# %s\n", part.notes.c_str());
  }
  std::printf("# MB/s: 10^6 bytes/s; ratio: to the direct kind of the same family and size (message: direct send,\n"
              "# put: direct write, get: direct read); windows: timed windows after %llu of warm-up\n",
              static_cast<unsigned long long>(bandwidth_warm_up_windows));
  std::printf("%-12s %-22s %12s %8s %8s %9s\n", "# size(B)", "kind", "MB/s", "ratio", "window", "windows");
  for (const auto& e : rows) {
    const auto& r = e.row;
    if (!r.supported) {
      std::printf("%-12zu %-22s %12s %8s %8u %9s\n", r.size, r.kind.c_str(), "unsupported", "-", r.window, "-");
      continue;
    }
    char ratio[32] = "-";
    if (e.ratio) std::snprintf(ratio, sizeof ratio, "%.3f", *e.ratio);
    std::printf("%-12zu %-22s %12.1f %8s %8u %9llu\n", r.size, r.kind.c_str(), r.mb_per_s, ratio, r.window,
                static_cast<unsigned long long>(r.windows));
  }
  std::fflush(stdout);
}

nlohmann::json to_json(const std::vector<reported>& rows, const std::vector<std::pair<std::string, bandwidth_part>>& parts) {
  nlohmann::json out;
  out["tool"] = "latency_bench";
  out["transport"] = "fabric";
  out["modes"] = nlohmann::json::array();
  for (const auto& [mode, part] : parts) {
    nlohmann::json m{{"mode", mode}, {"fabric", part.fabric}};
    if (!part.notes.empty()) m["notes"] = part.notes;
    out["modes"].push_back(m);
  }
  out["bandwidth"] = nlohmann::json::array();
  for (const auto& e : rows) {
    const auto& r = e.row;
    nlohmann::json j{{"size", r.size}, {"kind", r.kind}, {"window", r.window}, {"iterations", r.windows}};
    j["mb_per_s"] = r.supported ? nlohmann::json(r.mb_per_s) : nlohmann::json(nullptr);
    j["ratio_to_direct"] = e.ratio ? nlohmann::json(*e.ratio) : nlohmann::json(nullptr);
    if (!r.supported) j["unsupported"] = true;
    out["bandwidth"].push_back(j);
  }
  return out;
}

}  // namespace

int run_fabric_bandwidth(const fabric_bandwidth_options& o) {
  if (launched_by_mpi()) {
    std::fprintf(stderr, "latency_bench: --bandwidth starts its own two nodes on this host; under a launcher only the "
                         "latency modes run (one node per rank): run --bandwidth without a launcher\n");
    return 2;
  }
  std::vector<std::pair<std::string, bandwidth_part>> parts;
  std::vector<bandwidth_row> rows;
  for (const std::string mode : {"direct", "agent"}) {
    if (o.mode != "both" && o.mode != mode) continue;
    auto part = mode == "direct" ? run_direct_bandwidth(o) : run_agent_bandwidth(o);
    rows.insert(rows.end(), part.rows.begin(), part.rows.end());
    parts.emplace_back(mode, std::move(part));
  }
  const auto reported_rows = with_ratios(rows, o.sizes);
  if (o.json)
    std::printf("%s\n", to_json(reported_rows, parts).dump().c_str());
  else
    print_text(reported_rows, parts);
  return 0;
}

}  // namespace chanpool::tools
