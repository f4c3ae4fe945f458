// fanin_bench: many senders on many nodes, one receiver on node 0, through the node agents.
//
// Every sender process attaches to its node's agent and sends fixed-size messages to channel
// "sink" on node 0 (through the agents even on node 0, so the sink has one producer: node 0's
// agent). The receiver (this process) verifies every message (sender, sequence: exactly once,
// in order per sender) and measures the rate at the receiver, from the moment all senders are
// released to the last message, and the send-to-receive latency (same host clock).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/transport/bootstrap.hpp"
#include "launcher.hpp"
#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/transport/fabric.hpp"
#include "chanpool/transport/limits.hpp"
#include "fanin_bench.hpp"

namespace chanpool::tools::fanin {

// Fills in the spin times the command line left unset. `agents` and `senders` are those on this
// host; each agent has a progress thread, and the receiver is one more. When they outnumber the cores,
// a thread that polls takes the core from the thread that would give it something to find:
// here, spinning agents cost a fan-in of 32 virtual nodes on 2 cores about a tenth of its rate.
void choose_spins(options& o, std::uint32_t agents, std::uint32_t senders) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const bool oversubscribed = agents + senders + 1u > cores;
  if (!o.agent_spin_us) o.agent_spin_us = oversubscribed ? 0.0 : 20.0;
  if (!o.receiver_spin_us) o.receiver_spin_us = oversubscribed ? 0.0 : 50.0;
}

tr::agent_config agent_config_for(const options& o) {
  tr::agent_config a;
  a.provider = o.provider;
  a.aggregation = o.aggregation == "on";
  a.flush_bytes = o.flush_bytes;
  a.flush_deadline = std::chrono::microseconds(static_cast<long>(o.flush_deadline_us));
  a.credits = o.credits;
  a.spin = std::chrono::microseconds(static_cast<long>(o.agent_spin_us.value_or(20.0)));
  if (o.msg_size > a.large_threshold) a.large_threshold = o.msg_size;  // keep a fan-in a fan-in
  a.recv_buffer_bytes = std::max<std::size_t>(2u << 20, 4 * (o.flush_bytes + a.large_threshold + 4096));
  return a;
}

chanpool::result<ch::channel> create_sink(const options& o, const std::string& node0_job) {
  ch::channel_config cfg;
  cfg.capacity = o.sink_capacity;
  cfg.slot_bytes = static_cast<std::uint32_t>(std::max<std::size_t>(128, (o.msg_size + 32 + 63) / 64 * 64));
  if (cfg.slot_bytes > 1024) cfg.slot_bytes = 128;  // big messages side-load into the heap
  cfg.heap_bytes = std::max<std::uint64_t>(16u << 20, 64 * o.msg_size);
  cfg.single_producer = true;  // node 0's agent
  cfg.single_consumer = true;  // this process
  auto sink = ch::channel::create("sink", cfg, {node0_job});
  if (!sink) return sink.error();
  ch::wait_config w;
  const double spin_us = o.receiver_spin_us.value_or(50.0);
  w.spin_for = std::chrono::nanoseconds(static_cast<std::int64_t>(spin_us * 1000));
  if (spin_us < 0) w.mode = ch::wait_mode::spin;  // never sleeps
  if (spin_us == 0) w.mode = ch::wait_mode::idle;
  sink->set_wait(w);
  return std::move(*sink);
}

}  // namespace chanpool::tools::fanin

namespace {

using namespace chanpool::tools::fanin;

int run_embedded(options& o) {
  const std::uint32_t senders = o.nodes * o.senders_per_node;
  choose_spins(o, o.nodes, senders);
  tr::cluster_config cc;
  cc.nodes = o.nodes;
  cc.agent = agent_config_for(o);
  if (std::string why; tr::check_cluster_fits(cc, &why)) {
    std::fprintf(stderr, "fanin_bench: %s\n", why.c_str());
    return 2;
  }
  const auto start_t0 = clock_type::now();
  auto vc = tr::virtual_cluster::start(cc);
  if (!vc) {
    std::fprintf(stderr, "fanin_bench: cannot start %u virtual nodes: %s\n", o.nodes, vc.error().message().c_str());
    return 2;
  }
  const double startup_s = std::chrono::duration<double>(clock_type::now() - start_t0).count();
  auto sink = create_sink(o, vc->node_job(0));
  if (!sink) {
    std::fprintf(stderr, "fanin_bench: cannot create the sink: %s\n", sink.error().message().c_str());
    return 2;
  }
  int ready[2], go[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0) return 2;
  std::vector<pid_t> pids;
  for (std::uint32_t node = 0; node < o.nodes; ++node)
    for (std::uint32_t s = 0; s < o.senders_per_node; ++s) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        run_sender(o, vc->node_job(node), node * o.senders_per_node + s, ready[1], go[0]);
      }
      if (pid < 0) {
        std::perror("fanin_bench: fork");
        return 2;
      }
      pids.push_back(pid);
    }
  ::close(ready[1]);
  ::close(go[0]);
  for (std::uint32_t i = 0; i < senders; ++i) {
    char c;
    if (::read(ready[0], &c, 1) != 1) {
      std::fprintf(stderr, "fanin_bench: a sender failed to start (see above)\n");
      for (pid_t p : pids) ::kill(p, SIGKILL);
      return 2;
    }
  }
  receive_result r = receive_all(o, *sink, senders, pids, [&] { ::close(go[1]); }, [] { return std::string(); });
  std::vector<tr::agent_stats> agent_stats;
  for (std::uint32_t k = 0; k < o.nodes; ++k)
    if (auto st = tr::read_agent_stats(vc->node_job(k))) agent_stats.push_back(*st);
  const std::string fabric = vc->fabric_summary();
  sink->close();
  ch::channel::unlink("sink", {vc->node_job(0)});
  vc->stop();
  return report(o, r, agent_stats, fabric, startup_s, "embedded (" + std::to_string(o.nodes) + " virtual nodes)");
}


}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  auto cli = chanpool::tools::fanin::parse_command_line(argc, argv);
  chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  options& o = cli.options;
  // Read by libfabric when the agents open their endpoints; a value in the environment wins.
  tr::set_rxm_defaults(o.rxm_buffer_bytes, o.rxm_queue_depth);
  if (o.bootstrap == "mpi" || (o.bootstrap == "auto" && chanpool::tools::launched_by_mpi())) {
#ifdef CHANPOOL_FANIN_WITH_MPI
    return run_under_mpi(o, argc, argv);
#else
    std::fprintf(stderr, "fanin_bench: built without MPI (CHANPOOL_ENABLE_MPI=OFF): --bootstrap mpi is not available\n");
    return 2;
#endif
  }
  return run_embedded(o);
}
