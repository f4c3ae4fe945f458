// latency_bench --transport fabric: ping-pong between two virtual nodes.
//  - agent:  the full path. Process A on node 0 sends to channel "ping" on node 1 through its
//            agent; process B receives it there and answers to "pong" on node 0 the same way.
//            Each one-way trip is: inbox -> agent -> fabric -> agent -> channel -> process.
//  - direct: two processes, each with its own libfabric endpoint (same provider, same hints as
//            the agents), fi_send/fi_recv and a busy-polled CQ: what fi_pingpong measures.
#include <sys/prctl.h>
#include <csignal>
#include "latency_fabric.hpp"

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/fabric.hpp"
#include "launcher.hpp"
#include "latency_direct_peer.hpp"
#include "latency_fabric_util.hpp"
#include "latency_hops.hpp"
#include "latency_report.hpp"
#include "pinning.hpp"

namespace chanpool::tools {
namespace {

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;

using fabric_util::die;

std::vector<latency_row> run_direct(const fabric_latency_options& o, std::string& fabric_summary) {
  tr::endpoint_config ec;
  ec.provider = o.provider;
  ec.multi_recv = false;
  if (auto e = tr::preload_providers(ec); e) die("libfabric provider", e.message());
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair", std::strerror(errno));
  std::size_t largest = 0;
  for (auto s : o.sizes) largest = std::max(largest, s);
  auto open_peer = [&](int fd) {
    direct_peer p;
    std::tie(p.ep, p.peer) = fabric_util::open_connected(ec, fd);
    p.send_buf.assign(std::max<std::size_t>(largest, 8), std::byte{0x5a});
    p.recv_buf.resize(std::max<std::size_t>(largest, 8));
    p.post_recv();
    return p;
  };
  const pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
    ::close(sv[0]);
    if (o.pin) pin_to_core(1);
    direct_peer p = open_peer(sv[1]);
    for (auto size : o.sizes) {
      const std::uint64_t n = warm_up_for(iterations_for(size, o.iterations)) + round_trips_per_size(iterations_for(size, o.iterations));
      for (std::uint64_t i = 0; i < n; ++i) p.exchange(size, false);
    }
    p.drain();
    std::_Exit(0);
  }
  ::close(sv[1]);
  const scoped_pin pinned(o.pin, 0);  // core 0 while measuring; the CPUs back after
  direct_peer p = open_peer(sv[0]);
  fabric_summary = p.ep.info().summary();
  std::vector<latency_row> rows;
  for (auto size : o.sizes) {
    const std::uint64_t iters = iterations_for(size, o.iterations);
    auto round_trip = [&] { p.exchange(size, true); };
    for (std::uint64_t i = 0; i < warm_up_for(iters); ++i) round_trip();
    rows.push_back(measure_round_trips(size, iters, o.batch, round_trip));
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  ::close(sv[0]);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("direct ponger", "exited with an error");
  return rows;
}

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// --hops: the agents' traces and the ponger's marks, laid beside the pinger's.
void report_hops(const fabric_latency_options& o, const std::string& base, const process_marks& pinger, hop_breakdown& out) {
  auto trace0 = tr::read_hop_trace(tr::hop_trace_path(base, 0));
  auto trace1 = tr::read_hop_trace(tr::hop_trace_path(base, 1));
  process_marks ponger;
  const bool marks = read_marks(base + ".ponger", ponger);
  for (const std::string& f : {tr::hop_trace_path(base, 0), tr::hop_trace_path(base, 1), base + ".ponger"}) ::unlink(f.c_str());
  if (!trace0 || !trace1) die("reading the agents' hop traces", (!trace0 ? trace0.error() : trace1.error()).message());
  if (!marks) die("reading the ponger's marks", base + ".ponger");
  out.size = o.sizes.front();
  std::string error;
  if (!analyze_hops(pinger, ponger, *trace0, *trace1, warm_up_for(iterations_for(out.size, o.iterations)), out, error))
    die("--hops", error);
}

std::vector<latency_row> run_agents(const fabric_latency_options& o, std::string& fabric_summary, hop_breakdown* hops) {
  tr::cluster_config cc;
  cc.nodes = 2;
  cc.agent.provider = o.provider;
  cc.agent.spin = std::chrono::microseconds(static_cast<long>(o.agent_spin_us));
  const char* tmp = std::getenv("TMPDIR");
  const std::string trace_base = std::string(tmp && *tmp ? tmp : "/tmp") + "/latency_bench-hops-" + std::to_string(::getpid());
  if (hops) cc.agent.hop_trace_file = trace_base;
  process_marks marks;
  auto vc = tr::virtual_cluster::start(cc);
  if (!vc) die("starting two virtual nodes", vc.error().message());
  fabric_summary = vc->fabric_summary();
  std::size_t largest = 0;
  for (auto s : o.sizes) largest = std::max(largest, s);
  ch::channel_config cfg;
  cfg.capacity = 64;
  cfg.single_producer = true;  // the agent
  cfg.single_consumer = true;  // the process
  cfg.heap_bytes = std::max<std::uint64_t>(1u << 20, (4 * largest + 4095) / 4096 * 4096);
  auto ping = ch::channel::create("ping", cfg, {vc->node_job(1)});
  auto pong = ch::channel::create("pong", cfg, {vc->node_job(0)});
  if (!ping || !pong) die("creating channels", (!ping ? ping.error() : pong.error()).message());
  ch::wait_config wait;
  wait.spin_for = std::chrono::microseconds(static_cast<long>(o.receiver_spin_us));
  const pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
    if (o.pin) pin_to_core(1);
    auto c = tr::client::attach(vc->node_job(1));
    if (!c) die("attach node 1", c.error().message());
    auto to_pong = c->open({0, "pong"});
    if (!to_pong) die("open pong", to_pong.error().message());
    ping->set_wait(wait);
    std::vector<std::byte> buf(std::max<std::size_t>(largest, 8));
    for (auto size : o.sizes) {
      const std::uint64_t n = warm_up_for(iterations_for(size, o.iterations)) + round_trips_per_size(iterations_for(size, o.iterations));
      for (std::uint64_t i = 0; i < n; ++i) {
        std::size_t len = 0;
        if (auto st = ping->recv(buf, len, std::chrono::seconds(30)); st != status::ok) die("ponger recv", std::string(to_string(st)));
        if (hops) {
          marks.received_ns.push_back(steady_ns());
          marks.sent_ns.push_back(steady_ns());
        }
        if (auto st = to_pong->send({buf.data(), len}, std::chrono::seconds(30)); st != status::ok) die("ponger send", std::string(to_string(st)));
      }
    }
    if (hops && !write_marks(trace_base + ".ponger", marks)) die("writing the ponger's marks", trace_base + ".ponger");
    std::_Exit(0);
  }
  const scoped_pin pinned(o.pin, 0);  // core 0 while measuring; the CPUs back after
  auto c = tr::client::attach(vc->node_job(0));
  if (!c) die("attach node 0", c.error().message());
  auto to_ping = c->open({1, "ping"});
  if (!to_ping) die("open ping", to_ping.error().message());
  pong->set_wait(wait);
  std::vector<std::byte> source(std::max<std::size_t>(largest, 8), std::byte{0x5a}), buf(source.size());
  std::vector<latency_row> rows;
  for (auto size : o.sizes) {
    const std::uint64_t iters = iterations_for(size, o.iterations);
    auto round_trip = [&] {
      if (hops) marks.sent_ns.push_back(steady_ns());
      if (auto st = to_ping->send({source.data(), size}, std::chrono::seconds(30)); st != status::ok) die("pinger send", std::string(to_string(st)));
      std::size_t len = 0;
      if (auto st = pong->recv(buf, len, std::chrono::seconds(30)); st != status::ok) die("pinger recv", std::string(to_string(st)));
      if (hops) marks.received_ns.push_back(steady_ns());
    };
    for (std::uint64_t i = 0; i < warm_up_for(iters); ++i) round_trip();
    rows.push_back(measure_round_trips(size, iters, o.batch, round_trip));
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  ping->close();
  pong->close();
  ch::channel::unlink("ping", {vc->node_job(1)});
  ch::channel::unlink("pong", {vc->node_job(0)});
  vc->stop();  // the agents write their hop traces as they stop
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("agent-path ponger", "exited with an error");
  if (hops) report_hops(o, trace_base, marks, *hops);
  return rows;
}

}  // namespace

int run_fabric_latency(const fabric_latency_options& o) {
  if (launched_by_mpi()) {
#ifdef CHANPOOL_LATENCY_WITH_MPI
    if (o.hops) {
      std::fprintf(stderr, "latency_bench: --hops reads every agent's trace on one host: run it without a launcher\n");
      return 2;
    }
    return run_fabric_latency_mpi(o);
#else
    std::fprintf(stderr, "latency_bench: started by an MPI launcher, but built without MPI: each rank would run its "
                         "own two virtual nodes. Rebuild with CHANPOOL_ENABLE_MPI=ON, or run it without a launcher\n");
    return 2;
#endif
  }
  nlohmann::json out;
  out["tool"] = "latency_bench";
  out["transport"] = "fabric";
  out["modes"] = nlohmann::json::array();
  for (const std::string mode : {"direct", "agent"}) {
    if (o.mode != "both" && o.mode != mode) continue;
    std::string fabric;
    hop_breakdown hops;
    const bool traced = o.hops && mode == "agent";
    const auto rows = mode == "direct" ? run_direct(o, fabric) : run_agents(o, fabric, traced ? &hops : nullptr);
    if (o.json) {
      auto j = to_json("latency_bench", "fabric", rows);
      j["mode"] = mode;
      j["fabric"] = fabric;
      if (traced) j["hops"] = hops_json(hops);
      out["modes"].push_back(j);
      if (mode == "agent" || o.mode == mode) out["results"] = j["results"];  // the headline path
    } else {
      print_table("latency_bench", "fabric (" + mode + ")", rows,
                  fabric + (mode == "agent" ? "; path: process -> inbox -> agent -> fabric -> agent -> channel -> process"
                                            : "; path: endpoint -> fabric -> endpoint (no agent)"));
      if (traced) print_hops(hops);
    }
  }
  if (o.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace chanpool::tools
