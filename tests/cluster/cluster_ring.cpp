// cluster_ring: remote channels across hosts, one rank per host under mpirun.
//
// Every rank starts its node's agent (start_agent_mpi), creates channel "ring" on its node and
// sends --messages messages to "ring" on the next rank's node through its agent. It receives as many from the
// previous rank and checks every one: sender, sequence (exactly once, in order) and payload.
// Then a token goes round the ring --laps times and rank 0 reports the time per hop.
// Rank 0 also checks that the ranks run on distinct hosts (hostnames).
// Exit status: 0 all checked; 1 a check failed (what, on stderr); 2 start-up failed.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/mpi_bootstrap.hpp"

namespace ch = chanpool::channels;
namespace tr = chanpool::transport;
using chanpool::status;

namespace {

constexpr std::size_t message_bytes = 256;

void fill(std::vector<std::byte>& m, std::uint32_t from, std::uint64_t seq) {
  std::memcpy(m.data(), &from, 4);
  std::memcpy(m.data() + 8, &seq, 8);
  for (std::size_t i = 16; i < m.size(); ++i) m[i] = static_cast<std::byte>((seq * 7 + i + from) % 251);
}

// Empty when m is message `seq` from `from`; else what is wrong.
std::string check(const std::vector<std::byte>& m, std::size_t len, std::uint32_t from, std::uint64_t seq) {
  std::vector<std::byte> want(message_bytes);
  fill(want, from, seq);
  if (len != message_bytes) return "size " + std::to_string(len);
  std::uint32_t got_from = 0;
  std::uint64_t got_seq = 0;
  std::memcpy(&got_from, m.data(), 4);
  std::memcpy(&got_seq, m.data() + 8, 8);
  if (got_from != from || got_seq != seq)
    return "from rank " + std::to_string(got_from) + " seq " + std::to_string(got_seq);
  if (std::memcmp(want.data(), m.data(), message_bytes) != 0) return "payload differs";
  return {};
}

int run(int rank, int size, std::uint64_t messages, int laps) {
  char job[32] = {};
  if (rank == 0) std::snprintf(job, sizeof job, "ring%d", static_cast<int>(::getpid()));
  MPI_Bcast(job, sizeof job, MPI_CHAR, 0, MPI_COMM_WORLD);
  auto agent = tr::start_agent_mpi(MPI_COMM_WORLD, job, {});
  const std::string node_job = tr::virtual_node_job(job, static_cast<std::uint32_t>(rank));
  ch::channel_config cfg;
  cfg.capacity = 256;
  cfg.slot_bytes = 512;
  auto ring = agent ? ch::channel::create("ring", cfg, {node_job}) : chanpool::result<ch::channel>(agent.error());
  auto me = ring ? tr::client::attach(node_job) : chanpool::result<tr::client>(ring.error());
  int ok = me ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!me) std::fprintf(stderr, "cluster_ring (rank %d): start: %s\n", rank, me.error().message().c_str());
    if (ring) ring->close(), (void)ch::channel::unlink("ring", {node_job});
    if (agent) (*agent)->stop();
    MPI_Finalize();
    return 2;
  }
  const auto next = static_cast<std::uint32_t>((rank + 1) % size);
  const auto prev = static_cast<std::uint32_t>((rank + size - 1) % size);
  auto out = me->open({next, "ring"});
  int failures = 0;
  if (!out) {
    std::fprintf(stderr, "cluster_ring (rank %d): open ring on node %u: %s\n", rank, next, out.error().message().c_str());
    failures++;
  }
  std::vector<std::byte> m(message_bytes), in(message_bytes);
  std::uint64_t sent = 0, received = 0;
  // Send and receive interleaved: the ring's channels hold fewer than --messages.
  while (failures == 0 && (sent < messages || received < messages)) {
    if (sent < messages) {
      fill(m, static_cast<std::uint32_t>(rank), sent);
      // Buffered: a timeout means the local agent did not take it, so it is sent again.
      const status st = out->send(m, std::chrono::milliseconds(1));
      if (st == status::ok) {
        ++sent;
      } else if (st != status::timeout && st != status::full) {
        std::fprintf(stderr, "cluster_ring (rank %d): send %llu: %s\n", rank, static_cast<unsigned long long>(sent),
                     std::string(chanpool::to_string(st)).c_str());
        failures++;
      }
    }
    std::size_t len = 0;
    const status st = ring->recv(in, len, sent < messages ? ch::try_once : ch::timeout(std::chrono::seconds(20)));
    if (st == status::ok) {
      if (const auto why = check(in, len, prev, received); !why.empty()) {
        std::fprintf(stderr, "cluster_ring (rank %d): message %llu from rank %u: %s\n", rank,
                     static_cast<unsigned long long>(received), prev, why.c_str());
        failures++;
      }
      ++received;
    } else if (st != status::timeout && st != status::empty) {
      std::fprintf(stderr, "cluster_ring (rank %d): recv: %s\n", rank, std::string(chanpool::to_string(st)).c_str());
      failures++;
    } else if (sent == messages && st == status::timeout) {
      std::fprintf(stderr, "cluster_ring (rank %d): %llu of %llu messages from rank %u after 20 s\n", rank,
                   static_cast<unsigned long long>(received), static_cast<unsigned long long>(messages), prev);
      failures++;
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  // The token: rank 0 starts it, every rank passes it on (deposited: each send returns once the
  // token is in the next rank's channel); rank 0 times the laps.
  double hop_us = 0;
  for (int lap = 0; failures == 0 && lap < laps; ++lap) {
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t len = 0;
    if (rank == 0) fill(m, 0, static_cast<std::uint64_t>(lap)), (void)out->send(m, ch::forever, tr::send_mode::deposited);
    if (ring->recv(in, len, ch::timeout(std::chrono::seconds(20))) != status::ok) {
      std::fprintf(stderr, "cluster_ring (rank %d): token lap %d did not come\n", rank, lap);
      failures++;
      break;
    }
    if (rank != 0) (void)out->send(std::span(in.data(), len), ch::forever, tr::send_mode::deposited);
    if (const auto why = rank == 0 ? check(in, len, 0, static_cast<std::uint64_t>(lap)) : ""; !why.empty()) {
      std::fprintf(stderr, "cluster_ring: token lap %d came back wrong: %s\n", lap, why.c_str());
      failures++;
    }
    if (rank == 0) hop_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  std::vector<char> hosts(static_cast<std::size_t>(size) * sizeof host);
  MPI_Gather(host, sizeof host, MPI_CHAR, hosts.data(), sizeof host, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    std::set<std::string> distinct;
    for (int r = 0; r < size; ++r) distinct.insert(hosts.data() + static_cast<std::size_t>(r) * sizeof host);
    if (distinct.size() != static_cast<std::size_t>(size)) {
      std::fprintf(stderr, "cluster_ring: %d ranks on %zu hosts (expected one rank per host)\n", size, distinct.size());
      failures++;
    }
    if (failures == 0)
      std::printf("cluster_ring: %d hosts, %llu messages per rank checked, token %.1f us per hop (%s)\n", size,
                  static_cast<unsigned long long>(messages), hop_us / laps / size,
                  (*agent)->fabric_info().summary().c_str());
  }
  MPI_Barrier(MPI_COMM_WORLD);  // everyone has received everything: the agents may stop
  out = chanpool::errc::not_found;
  *me = tr::client{};
  ring->close();
  (void)ch::channel::unlink("ring", {node_job});
  (*agent)->stop();
  agent->reset();
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::uint64_t messages = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  const int laps = argc > 2 ? std::atoi(argv[2]) : 200;
  if (messages == 0 || laps <= 0) {
    if (rank == 0) std::fprintf(stderr, "usage: cluster_ring [MESSAGES > 0] [LAPS > 0]\n");
    MPI_Finalize();
    return 2;
  }
  return run(rank, size, messages, laps);
}
