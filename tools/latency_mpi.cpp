// latency_bench --transport fabric under mpirun/srun: each rank is one node (normally one host),
// and rank 0 ping-pongs with every other rank in turn. MPI exchanges the endpoints' and agents'
// addresses and orders the pairs; every timed message goes through libfabric.
//  - direct: one bare endpoint per rank, busy-polled (what fi_pingpong measures between hosts);
//  - agent:  one agent per rank (start_agent_mpi); rank 0's process sends to channel "ping" on
//            rank k's node, whose process answers to "pong" on node 0, both through their agents.
// Ranks not in the pair being timed wait in a sleeping barrier, so they take no core from it.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "chanpool/transport/client.hpp"
#include "chanpool/transport/mpi_bootstrap.hpp"
#include "latency_direct_peer.hpp"
#include "latency_fabric.hpp"
#include "latency_report.hpp"

namespace chanpool::tools {
namespace {

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;

// What a rank reports when a step fails: the job cannot go on without it.
[[noreturn]] void abort_job(int rank, const std::string& what) {
  std::fprintf(stderr, "latency_bench (rank %d): %s\n", rank, what.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);  // not reached
}

// A barrier whose waiters sleep: Open MPI's blocking calls busy-poll, which on an oversubscribed
// host would take the core from the pair being timed.
void idle_barrier() {
  MPI_Request r;
  MPI_Ibarrier(MPI_COMM_WORLD, &r);
  int done = 0;
  for (MPI_Test(&r, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&r, &done, MPI_STATUS_IGNORE))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Every rank's hostname, gathered at every rank.
std::vector<std::string> gather_hosts(int size) {
  char mine[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(mine, &len);
  std::vector<char> all(static_cast<std::size_t>(size) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) hosts.emplace_back(all.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  return hosts;
}

bool spans_hosts(const std::vector<std::string>& hosts) {
  for (const auto& h : hosts)
    if (h != hosts.front()) return true;
  return false;
}

std::size_t largest_of(const std::vector<std::size_t>& sizes) {
  std::size_t largest = 8;
  for (auto s : sizes) largest = std::max(largest, s);
  return largest;
}

// The rows rank 0 measured with one peer, per mode.
struct pair_result {
  int peer = 0;
  std::string mode, fabric;
  std::vector<latency_row> rows;
};

// direct: every rank opens an endpoint; rank 0 and rank k exchange, the rest wait their turn.
void run_direct_mpi(const fabric_latency_options& o, int rank, int size, bool across_hosts, std::vector<pair_result>& out) {
  tr::endpoint_config ec;
  ec.provider = o.provider;
  if (across_hosts) ec.node.clear();  // loopback cannot reach another host: the provider picks
  if (auto e = tr::preload_providers(ec); e) abort_job(rank, "libfabric provider: " + e.message());
  auto ep = tr::fabric_endpoint::open(ec);
  if (!ep) abort_job(rank, "opening an endpoint: " + ep.error().message());
  constexpr int max_address = 256;
  std::vector<unsigned char> mine(max_address + 4, 0), all(static_cast<std::size_t>(size) * (max_address + 4));
  const auto len = static_cast<std::uint32_t>(ep->address().size());
  if (len > max_address) abort_job(rank, "the endpoint's address is longer than 256 bytes");
  std::memcpy(mine.data(), &len, 4);
  std::memcpy(mine.data() + 4, ep->address().data(), len);
  MPI_Allgather(mine.data(), max_address + 4, MPI_UNSIGNED_CHAR, all.data(), max_address + 4, MPI_UNSIGNED_CHAR,
                MPI_COMM_WORLD);
  direct_peer p;
  p.ep = std::move(*ep);
  const std::size_t largest = largest_of(o.sizes);
  p.send_buf.assign(largest, std::byte{0x5a});
  p.recv_buf.resize(largest);
  std::vector<std::uint64_t> addresses(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) {
    if (r == rank || (rank != 0 && r != 0)) continue;  // rank 0 reaches everyone, the others rank 0
    const auto* at = all.data() + static_cast<std::size_t>(r) * (max_address + 4);
    std::uint32_t n = 0;
    std::memcpy(&n, at, 4);
    auto addr = p.ep.insert_peer({reinterpret_cast<const std::byte*>(at + 4), n});
    if (!addr) abort_job(rank, "fi_av_insert of rank " + std::to_string(r) + ": " + addr.error().message());
    addresses[static_cast<std::size_t>(r)] = *addr;
  }
  p.post_recv();
  idle_barrier();  // every receive is posted before anyone sends
  for (int k = 1; k < size; ++k) {
    if (rank == 0) {
      p.peer = addresses[static_cast<std::size_t>(k)];
      pair_result pr{k, "direct", p.ep.info().summary(), {}};
      for (auto s : o.sizes) {
        const std::uint64_t iters = iterations_for(s, o.iterations);
        auto round_trip = [&] { p.exchange(s, true); };
        for (std::uint64_t i = 0; i < warm_up_for(iters); ++i) round_trip();
        pr.rows.push_back(measure_round_trips(s, iters, o.batch, round_trip));
      }
      out.push_back(std::move(pr));
    } else if (rank == k) {
      p.peer = addresses[0];
      for (auto s : o.sizes) {
        const std::uint64_t iters = iterations_for(s, o.iterations);
        for (std::uint64_t i = 0; i < warm_up_for(iters) + round_trips_per_size(iters); ++i) p.exchange(s, false);
      }
      p.drain();
    }
    idle_barrier();
  }
  p.drain();
}

ch::channel_config pair_channel_config(std::size_t largest) {
  ch::channel_config cfg;
  cfg.capacity = 64;
  cfg.single_producer = true;  // the agent
  cfg.single_consumer = true;  // the process
  cfg.heap_bytes = std::max<std::uint64_t>(1u << 20, (4 * largest + 4095) / 4096 * 4096);
  return cfg;
}

// One timed pair through the agents: rank 0 sends to "ping" on node k and waits on "pong".
void time_agent_pair(const fabric_latency_options& o, int rank, int k, tr::client& c, ch::channel& mine,
                     std::vector<std::byte>& buf, pair_result& pr) {
  const bool pinger = rank == 0;
  auto to = c.open(pinger ? tr::channel_address{static_cast<std::uint32_t>(k), "ping"} : tr::channel_address{0, "pong"});
  if (!to) abort_job(rank, std::string("opening ") + (pinger ? "ping on node " + std::to_string(k) : "pong on node 0") +
                               ": " + to.error().message());
  auto fail = [&](const char* what, status st) { abort_job(rank, std::string(what) + ": " + std::string(to_string(st))); };
  for (auto s : o.sizes) {
    const std::uint64_t iters = iterations_for(s, o.iterations);
    if (pinger) {
      auto round_trip = [&] {
        if (auto st = to->send({buf.data(), s}, std::chrono::seconds(30)); st != status::ok) fail("send to ping", st);
        std::size_t len = 0;
        if (auto st = mine.recv(buf, len, std::chrono::seconds(30)); st != status::ok) fail("receive from pong", st);
      };
      for (std::uint64_t i = 0; i < warm_up_for(iters); ++i) round_trip();
      pr.rows.push_back(measure_round_trips(s, iters, o.batch, round_trip));
    } else {
      for (std::uint64_t i = 0; i < warm_up_for(iters) + round_trips_per_size(iters); ++i) {
        std::size_t len = 0;
        if (auto st = mine.recv(buf, len, std::chrono::seconds(30)); st != status::ok) fail("receive from ping", st);
        if (auto st = to->send({buf.data(), len}, std::chrono::seconds(30)); st != status::ok) fail("send to pong", st);
      }
    }
  }
}

// agent: one agent per rank; the channels live on the receiving nodes and are removed at the end.
void run_agents_mpi(const fabric_latency_options& o, int rank, int size, std::vector<pair_result>& out) {
  char job[32] = {};
  if (rank == 0) std::snprintf(job, sizeof job, "lb%d", static_cast<int>(::getpid()));
  MPI_Bcast(job, sizeof job, MPI_CHAR, 0, MPI_COMM_WORLD);
  tr::agent_config cfg;
  cfg.provider = o.provider;
  cfg.spin = std::chrono::microseconds(static_cast<long>(o.agent_spin_us));
  auto agent = tr::start_agent_mpi(MPI_COMM_WORLD, job, cfg);
  int ok = agent ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!agent) abort_job(rank, "starting this node's agent: " + agent.error().message());
  if (!all_ok) {
    (*agent)->stop();  // another rank's agent failed (it says why): leave nothing behind
    MPI_Finalize();
    std::_Exit(1);
  }
  const std::string node_job = tr::virtual_node_job(job, static_cast<std::uint32_t>(rank));
  const std::string name = rank == 0 ? "pong" : "ping";
  auto mine = ch::channel::create(name, pair_channel_config(largest_of(o.sizes)), {node_job});
  if (!mine) {
    (*agent)->stop();
    abort_job(rank, "creating channel " + name + ": " + mine.error().message());
  }
  ch::wait_config wait;
  wait.spin_for = std::chrono::microseconds(static_cast<long>(o.receiver_spin_us));
  mine->set_wait(wait);
  auto c = tr::client::attach(node_job);
  if (!c) abort_job(rank, "attaching to this node: " + c.error().message());
  std::vector<std::byte> buf(largest_of(o.sizes), std::byte{0x5a});
  idle_barrier();  // every channel exists before anyone opens one
  for (int k = 1; k < size; ++k) {
    pair_result pr{k, "agent", (*agent)->fabric_info().summary(), {}};
    if (rank == 0 || rank == k) time_agent_pair(o, rank, k, *c, *mine, buf, pr);
    if (rank == 0) out.push_back(std::move(pr));
    idle_barrier();
  }
  *c = tr::client{};
  mine->close();
  ch::channel::unlink(name, {node_job});
  idle_barrier();  // nobody still sends through an agent that stops
  (*agent)->stop();
}

void report(const fabric_latency_options& o, const std::vector<pair_result>& pairs, const std::vector<std::string>& hosts) {
  if (!o.json) {
    for (const auto& p : pairs)
      print_table("latency_bench", "fabric (" + p.mode + "), rank 0 on " + hosts[0] + " <-> rank " +
                                       std::to_string(p.peer) + " on " + hosts[static_cast<std::size_t>(p.peer)],
                  p.rows,
                  p.fabric + (p.mode == "agent" ? "; path: process -> agent -> fabric -> agent -> channel -> process"
                                                : "; path: endpoint -> fabric -> endpoint (no agent)"));
    return;
  }
  nlohmann::json out;
  out["tool"] = "latency_bench";
  out["transport"] = "fabric";
  out["launcher"] = "mpi";
  out["ranks"] = hosts.size();
  out["hosts"] = hosts;
  out["pairs"] = nlohmann::json::array();
  for (const auto& p : pairs) {
    auto j = to_json("latency_bench", "fabric", p.rows);
    j["mode"] = p.mode;
    j["peer_rank"] = p.peer;
    j["fabric"] = p.fabric;
    // The headline: rank 0 and rank 1, through the agents where that mode ran.
    if (p.peer == 1 && (p.mode == "agent" || o.mode == p.mode)) out["results"] = j["results"];
    out["pairs"].push_back(j);
  }
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace

int run_fabric_latency_mpi(const fabric_latency_options& o) {
  MPI_Init(nullptr, nullptr);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    std::fprintf(stderr, "latency_bench: under a launcher, start two or more ranks (rank 0 measures against each of "
                         "the others); one rank has no peer\n");
    MPI_Finalize();
    return 2;
  }
  const auto hosts = gather_hosts(size);
  std::vector<pair_result> pairs;
  if (o.mode != "agent") run_direct_mpi(o, rank, size, spans_hosts(hosts), pairs);
  if (o.mode != "direct") run_agents_mpi(o, rank, size, pairs);
  if (rank == 0) report(o, pairs, hosts);
  MPI_Finalize();
  return 0;
}

}  // namespace chanpool::tools
