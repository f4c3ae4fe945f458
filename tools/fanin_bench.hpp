// fanin_bench's parts (tools/fanin_*.cpp): what each part offers the others (the options and the
// message layout are in fanin_bench_cli.hpp, with the command line). fanin_bench.cpp has main()
// and the embedded run; fanin_sender.cpp the sender processes; fanin_receive.cpp the receiver's
// checks; fanin_report.cpp the figures and the MPI baseline; fanin_mpi.cpp the run under
// mpirun/srun.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/agent.hpp"
#include "fanin_bench_cli.hpp"  // options, message layout

namespace chanpool::tools::fanin {

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;
using clock_type = std::chrono::steady_clock;

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

// A sender process (fanin_sender.cpp). Never returns; the client is gone (reply channel
// unlinked) before _exit.
[[noreturn]] void run_sender(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd);

// What the receiver measured.
struct receive_result {
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  double elapsed = 0;
  std::vector<double> latency_us;
  std::string lost_node;  // under a launcher: why a node's messages cannot all arrive
};

// Receives until every sender's messages are in (or a stall/error), checking each message
// (fanin_receive.cpp). open_gate() releases the senders; `pids` are the senders this process
// forked (reaped here); lost_node() names a node found unreachable (empty while all are alive).
receive_result receive_all(const options& o, ch::channel& sink, std::uint32_t senders, std::vector<pid_t>& pids,
                           const std::function<void()>& open_gate, const std::function<std::string()>& lost_node);

// Prints the result (text or JSON), running the MPI baseline first if asked; the exit status
// (fanin_report.cpp).
int report(const options& o, receive_result& r, const std::vector<tr::agent_stats>& agent_stats,
           const std::string& fabric, double startup_s, const std::string& bootstrap);

// Fills in the spin times the command line left unset; the agents' settings; the receiver's
// channel (fanin_bench.cpp).
void choose_spins(options& o, std::uint32_t agents, std::uint32_t senders);
tr::agent_config agent_config_for(const options& o);
chanpool::result<ch::channel> create_sink(const options& o, const std::string& node0_job);

#ifdef CHANPOOL_FANIN_WITH_MPI
// Cluster mode: this process is one node, its MPI rank (fanin_mpi.cpp).
int run_under_mpi(options& o, int argc, char** argv);
#endif

}  // namespace chanpool::tools::fanin
