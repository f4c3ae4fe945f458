// fanin_bench: the figures (text or one JSON line), the agents' counters summed, and the MPI
// baseline (mpi_fanin with the same process and message counts).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "fanin_bench.hpp"

namespace chanpool::tools::fanin {

using chanpool::status;

namespace {

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

}  // namespace

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

}  // namespace chanpool::tools::fanin
