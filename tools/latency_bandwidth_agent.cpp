// latency_bench --bandwidth, the agent kinds: two virtual nodes (one agent process each), a
// process on each node, every byte through the agents.
//  - agent message: the process on node 0 sends W messages to channel "bw" on node 1 (buffered
//                   remote_channel::send: returns once its agent's inbox has the message); the
//                   process there recv()s all W and answers an 8-byte message on "bw-ack" on node 0.
//  - agent put:     W client::put_async from a region on node 0 into the region the process on
//                   node 1 created (its descriptor came over the socketpair), then wait for all
//                   W: each completes once the bytes are visible at the target.
//  - agent get:     W client::get_async from that region into node 0's, then wait for all W.
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/rma.hpp"
#include "latency_bandwidth.hpp"
#include "latency_fabric_util.hpp"
#include "pinning.hpp"

namespace chanpool::tools {
namespace {

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;
using fabric_util::die;
using fabric_util::receive_value;
using fabric_util::send_value;

constexpr auto op_timeout = std::chrono::seconds(30);
// The receiver gives up first, so that its message (how far it got) is the one printed.
constexpr auto receiver_timeout = std::chrono::seconds(20);
constexpr std::size_t ack_bytes = 8;

std::size_t largest_window_bytes(const fabric_bandwidth_options& o) {
  std::size_t bytes = 8;
  for (auto s : o.sizes) bytes = std::max<std::size_t>(bytes, s * window_for(s, o.window));
  return bytes;
}

// "bw" on node 1 holds a whole window of the largest size twice over (heap blocks round each
// message up; the next window may start arriving while the receiver drains this one).
ch::channel_config data_channel_config(const fabric_bandwidth_options& o) {
  std::uint32_t most = 1;
  for (auto s : o.sizes) most = std::max(most, window_for(s, o.window));
  ch::channel_config cfg;
  cfg.capacity = std::bit_ceil(std::max<std::uint32_t>(64, 2 * most));
  cfg.single_producer = true;  // the agent
  cfg.single_consumer = true;  // the process
  const std::uint64_t block = cfg.heap_block_bytes;
  cfg.heap_bytes = (2 * largest_window_bytes(o) + (1u << 20) + block - 1) / block * block;
  return cfg;
}

void check(status st, const char* what) {
  if (st != status::ok) die(what, std::string(to_string(st)));
}

// The process on node 1: receives every window of the message kind, then keeps its region open
// until the process on node 0 is done with the rma kinds.
[[noreturn]] void run_receiver(const fabric_bandwidth_options& o, const std::string& node_job, ch::channel& bw, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
  if (o.pin) pin_to_core(1);
  auto c = tr::client::attach(node_job);
  if (!c) die("attach node 1", c.error().message());
  auto to_ack = c->open({0, "bw-ack"});
  if (!to_ack) die("open bw-ack", to_ack.error().message());
  auto region = tr::region::create(*c, largest_window_bytes(o));
  if (!region && region.error() != tr::rma_errc::rma_unsupported) die("region::create on node 1", region.error().message());
  send_value(fd, region ? region->descriptor() : tr::region_descriptor{});
  ch::wait_config wait;
  wait.spin_for = std::chrono::microseconds(static_cast<long>(o.receiver_spin_us));
  bw.set_wait(wait);
  std::vector<std::byte> buf(*std::max_element(o.sizes.begin(), o.sizes.end()));
  const std::byte ack[ack_bytes]{};
  // One message: into buf (recv), or read where it lies and released (in place).
  auto receive = [&](bool in_place, std::size_t& len) {
    if (!in_place) return bw.recv(buf, len, receiver_timeout);
    ch::recv_claim claim;
    const status st = bw.claim_recv(claim, receiver_timeout);
    if (st != status::ok) return st;
    len = claim.data().size();
    return bw.release(claim);
  };
  for (const auto size : o.sizes)
    for (const bool in_place : {false, true}) {
      const std::uint32_t w = window_for(size, o.window);
      std::uint64_t total = bandwidth_warm_up_windows;
      for (std::uint64_t k = 0; k < total; ++k) {
        for (std::uint32_t i = 0; i < w; ++i) {
          std::size_t len = 0;
          if (const status st = receive(in_place, len); st != status::ok)
            die("node 1 recv", std::string(to_string(st)) + " after " + std::to_string(i) + " of the " + std::to_string(w) +
                                   " messages of window " + std::to_string(k + 1) + " of " + std::to_string(size) + " B");
          if (len != size) die("node 1 recv", "a message of " + std::to_string(len) + " bytes, expected " + std::to_string(size));
        }
        check(to_ack->send({ack, ack_bytes}, op_timeout), "node 1 ack");
        if (k + 1 == bandwidth_warm_up_windows) total += receive_value<std::uint64_t>(fd);
      }
    }
  (void)receive_value<char>(fd);  // the rma kinds are over
  if (region) region->close();
  std::_Exit(0);
}

// A window of messages: sent from `source`, or claimed and committed in place (in_place; their
// bytes are left as the inbox has them, as a direct send leaves its buffer).
void message_window(tr::remote_channel& to_bw, ch::channel& acks, const std::vector<std::byte>& source, std::size_t size,
                    std::uint32_t w, bool in_place) {
  for (std::uint32_t i = 0; i < w; ++i) {
    if (!in_place) {
      check(to_bw.send({source.data() + i * size, size}, op_timeout), "node 0 send");
      continue;
    }
    tr::remote_claim claim;
    check(to_bw.claim(size, claim, op_timeout), "node 0 claim");
    check(to_bw.commit(claim), "node 0 commit");
  }
  std::byte ack[ack_bytes];
  std::size_t len = 0;
  check(acks.recv(ack, len, op_timeout), "node 0 ack recv");
}

void rma_window(tr::client& c, const tr::region& mine, const tr::region_descriptor& theirs, bool put, std::size_t size,
                std::uint32_t w, std::vector<tr::rma_op>& ops) {
  ops.clear();
  for (std::uint32_t i = 0; i < w; ++i) {
    const std::uint64_t at = std::uint64_t{i} * size;
    auto op = put ? c.put_async(mine, at, size, theirs, at) : c.get_async(theirs, at, size, mine, at);
    if (!op) die(put ? "put_async" : "get_async", op.error().message());
    ops.push_back(std::move(*op));
  }
  for (auto& op : ops)
    if (auto ec = op.wait(op_timeout); ec) die(put ? "put" : "get", ec.message());
}

// The process on node 0: every kind, as the initiator.
std::vector<bandwidth_row> run_initiator(const fabric_bandwidth_options& o, const std::string& node_job, ch::channel& acks,
                                         int fd, std::string& rma_note) {
  const scoped_pin pinned(o.pin, 0);  // core 0 while measuring; the CPUs back after
  auto c = tr::client::attach(node_job);
  if (!c) die("attach node 0", c.error().message());
  auto to_bw = c->open({1, "bw"});
  if (!to_bw) die("open bw", to_bw.error().message());
  const auto theirs = receive_value<tr::region_descriptor>(fd);
  ch::wait_config wait;
  wait.spin_for = std::chrono::microseconds(static_cast<long>(o.receiver_spin_us));
  acks.set_wait(wait);
  std::vector<bandwidth_row> rows;
  const std::vector<std::byte> source(largest_window_bytes(o), std::byte{0x5a});
  auto announce = [&](std::uint64_t n) { send_value(fd, n); };
  for (const auto size : o.sizes)
    for (const bool in_place : {false, true}) {
      const std::uint32_t w = window_for(size, o.window);
      rows.push_back(measure_windows(size, in_place ? "agent message in place" : "agent message", w, o.windows,
                                     [&] { message_window(*to_bw, acks, source, size, w, in_place); }, announce));
    }
  auto mine = tr::region::create(*c, largest_window_bytes(o));
  if (!mine && mine.error() != tr::rma_errc::rma_unsupported) die("region::create on node 0", mine.error().message());
  const bool rma = mine && theirs.generation != 0;
  rma_note = rma ? "agent put completes once the bytes are visible at the target; get once they are in node 0's region"
                 : "agent put and get: provider " + c->provider() + " has no FI_RMA";
  std::vector<tr::rma_op> ops;
  for (const bool put : {true, false})
    for (const auto size : o.sizes) {
      const std::uint32_t w = window_for(size, o.window);
      const std::string kind = put ? "agent put" : "agent get";
      if (!rma) {
        rows.push_back({size, kind, false, 0, w, 0});
        continue;
      }
      rows.push_back(measure_windows(size, kind, w, o.windows, [&] { rma_window(*c, *mine, theirs, put, size, w, ops); },
                                     [](std::uint64_t) {}));
    }
  if (mine) mine->close();
  return rows;
}

}  // namespace

bandwidth_part run_agent_bandwidth(const fabric_bandwidth_options& o) {
  tr::cluster_config cc;
  cc.nodes = 2;
  cc.agent.provider = o.provider;
  cc.agent.spin = std::chrono::microseconds(static_cast<long>(o.agent_spin_us));
  auto vc = tr::virtual_cluster::start(cc);
  if (!vc) die("starting two virtual nodes", vc.error().message());
  ch::channel_config ack_cfg;
  ack_cfg.capacity = 64;
  ack_cfg.single_producer = ack_cfg.single_consumer = true;
  ack_cfg.heap_bytes = 1u << 20;
  const auto data_cfg = data_channel_config(o);
  auto bw = ch::channel::create("bw", data_cfg, {vc->node_job(1)});
  auto acks = ch::channel::create("bw-ack", ack_cfg, {vc->node_job(0)});
  if (!bw || !acks) die("creating channels", (!bw ? bw.error() : acks.error()).message());
  const auto [fd, child] = fabric_util::fork_peer([&](int peer_fd) { run_receiver(o, vc->node_job(1), *bw, peer_fd); });
  bandwidth_part part;
  part.fabric = vc->fabric_summary() + "; path: process -> inbox -> agent -> fabric -> agent -> channel/region";
  std::string rma_note;
  part.rows = run_initiator(o, vc->node_job(0), *acks, fd, rma_note);
  char heap[32];
  std::snprintf(heap, sizeof heap, "%.1f MiB", static_cast<double>(data_cfg.heap_bytes) / (1u << 20));
  part.notes = "agent message: buffered sends, recv() at node 1 into a buffer of its own; in place: claim/commit "
               "and claim_recv/release, no copy in either process; channel heap " +
               std::string(heap) + "; " + rma_note;
  send_value(fd, char{1});
  int st = 0;
  ::waitpid(child, &st, 0);
  ::close(fd);
  bw->close();
  acks->close();
  ch::channel::unlink("bw", {vc->node_job(1)});
  ch::channel::unlink("bw-ack", {vc->node_job(0)});
  vc->stop();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("agent-path receiver", "exited with an error");
  return part;
}

}  // namespace chanpool::tools
