#include "latency_hops.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>

namespace chanpool::tools {
namespace {

using transport::hop;
using transport::hop_record;

// One node's agent events of one kind, in time order.
std::vector<std::uint64_t> times_of(const std::vector<hop_record>& trace, hop kind) {
  std::vector<std::uint64_t> t;
  for (const hop_record& r : trace)
    if (r.kind == static_cast<std::uint32_t>(kind)) t.push_back(r.t_ns);
  std::sort(t.begin(), t.end());
  return t;
}

// The stages of one direction, each a time per message: send, taken, posted, received,
// delivered, got.
using stages = std::array<std::vector<std::uint64_t>, 6>;

bool direction(const process_marks& from, const process_marks& to, const std::vector<hop_record>& from_trace,
               const std::vector<hop_record>& to_trace, const char* name, stages& s, std::string& error) {
  s = {from.sent_ns,
       times_of(from_trace, hop::inbox_taken),
       times_of(from_trace, hop::frame_posted),
       times_of(to_trace, hop::frame_received),
       times_of(to_trace, hop::frame_delivered),
       to.received_ns};
  static constexpr const char* stage_names[] = {"sends", "inbox takes", "frames posted", "frames received",
                                                "frames delivered", "receives"};
  for (std::size_t k = 1; k < s.size(); ++k)
    if (s[k].size() != s[0].size()) {
      error = std::string(name) + ": " + std::to_string(s[0].size()) + " sends but " + std::to_string(s[k].size()) + " " +
              stage_names[k] +
              ": the messages did not go one per batch frame (a size above the agents' large-message "
              "threshold goes point to point, untraced; choose a smaller size)";
      return false;
    }
  return true;
}

std::int64_t percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

bool analyze_hops(const process_marks& node0, const process_marks& node1, const std::vector<hop_record>& trace0,
                  const std::vector<hop_record>& trace1, std::uint64_t skip, hop_breakdown& out, std::string& error) {
  stages ping, pong;
  if (!direction(node0, node1, trace0, trace1, "node 0 -> node 1", ping, error)) return false;
  if (!direction(node1, node0, trace1, trace0, "node 1 -> node 0", pong, error)) return false;
  static const std::array<std::pair<const char*, const char*>, 6> names = {{
      {"process -> agent", "inbox put, the agent's wake-up (doorbell), inbox take"},
      {"agent, outbound", "batch built, fi_send posted"},
      {"fabric -> far agent", "provider, loopback TCP, the far agent's wake-up"},
      {"far agent, inbound", "frame checks, copy into the channel, receiver's futex wake"},
      {"channel -> process", "receiver runs and recv() returns (the wake is in the hop before)"},
      {"one way", "send() called to recv() returned"},
  }};
  std::array<std::vector<std::int64_t>, 6> d;
  for (const stages* s : {&ping, &pong})
    for (std::size_t i = skip; i < (*s)[0].size(); ++i) {
      for (std::size_t k = 0; k + 1 < s->size(); ++k)
        d[k].push_back(static_cast<std::int64_t>((*s)[k + 1][i]) - static_cast<std::int64_t>((*s)[k][i]));
      d[5].push_back(static_cast<std::int64_t>((*s)[5][i]) - static_cast<std::int64_t>((*s)[0][i]));
    }
  if (d[5].empty()) {
    error = "no message after the warm-up to trace";
    return false;
  }
  out.messages = d[5].size();
  out.hops.clear();
  for (std::size_t k = 0; k < d.size(); ++k)
    out.hops.push_back({names[k].first, names[k].second, percentile(d[k], 0.5), percentile(d[k], 0.99)});
  return true;
}

void print_hops(const hop_breakdown& b) {
  std::printf("# hops of the agent path, %zu B: %llu one-way messages after the warm-up, both directions\n", b.size,
              static_cast<unsigned long long>(b.messages));
  std::printf("# a hop's median is of that hop alone: medians do not add up to the one-way median\n");
  std::printf("# %-22s %12s %12s   %s\n", "hop", "median(ns)", "p99(ns)", "holds");
  for (const hop_stat& h : b.hops)
    std::printf("  %-22s %12lld %12lld   %s\n", h.name.c_str(), static_cast<long long>(h.median_ns),
                static_cast<long long>(h.p99_ns), h.holds.c_str());
}

nlohmann::json hops_json(const hop_breakdown& b) {
  nlohmann::json j;
  j["size"] = b.size;
  j["messages"] = b.messages;
  j["hops"] = nlohmann::json::array();
  for (const hop_stat& h : b.hops) j["hops"].push_back({{"hop", h.name}, {"median_ns", h.median_ns}, {"p99_ns", h.p99_ns}});
  return j;
}

bool write_marks(const std::string& path, const process_marks& m) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const std::uint64_t n[2] = {m.sent_ns.size(), m.received_ns.size()};
  f.write(reinterpret_cast<const char*>(n), sizeof n);
  f.write(reinterpret_cast<const char*>(m.sent_ns.data()), static_cast<std::streamsize>(n[0] * sizeof(std::uint64_t)));
  f.write(reinterpret_cast<const char*>(m.received_ns.data()), static_cast<std::streamsize>(n[1] * sizeof(std::uint64_t)));
  return static_cast<bool>(f.flush());
}

bool read_marks(const std::string& path, process_marks& m) {
  std::ifstream f(path, std::ios::binary);
  std::uint64_t n[2] = {0, 0};
  if (!f.read(reinterpret_cast<char*>(n), sizeof n) || n[0] > (1ull << 32) || n[1] > (1ull << 32)) return false;
  m.sent_ns.resize(n[0]);
  m.received_ns.resize(n[1]);
  f.read(reinterpret_cast<char*>(m.sent_ns.data()), static_cast<std::streamsize>(n[0] * sizeof(std::uint64_t)));
  f.read(reinterpret_cast<char*>(m.received_ns.data()), static_cast<std::streamsize>(n[1] * sizeof(std::uint64_t)));
  return static_cast<bool>(f);
}

}  // namespace chanpool::tools
