// latency_bench's direct fabric mode: one bare endpoint ping-ponging with one peer, with no
// agent in between (what fi_pingpong measures). Shared by the forked pair on one host
// (latency_fabric.cpp) and the ranks under a launcher (latency_mpi.cpp).
#pragma once

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <cstdint>
#include <vector>

#include "chanpool/transport/fabric.hpp"
#include "latency_fabric_util.hpp"

namespace chanpool::tools {

// One endpoint that ping-pongs with one peer: a receive always posted, busy-polled CQ.
struct direct_peer {
  transport::fabric_endpoint ep;
  std::uint64_t peer = 0;
  std::vector<std::byte> send_buf, recv_buf;

  std::uint64_t recvs = 0, sends_posted = 0, sends_done = 0;

  void post_recv() {
    ssize_t rc;
    while ((rc = fi_recv(ep.ep(), recv_buf.data(), recv_buf.size(), nullptr, FI_ADDR_UNSPEC, nullptr)) == -FI_EAGAIN) pump();
    if (rc) fabric_util::die("fi_recv", fi_strerror(static_cast<int>(-rc)));
  }
  void pump() {
    fi_cq_data_entry e;
    const ssize_t n = fi_cq_read(ep.cq(), &e, 1);
    if (n == 1) {
      ++((e.flags & FI_RECV) ? recvs : sends_done);
    } else if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(ep.cq(), &err, 0);
      fabric_util::die((err.flags & FI_RECV) ? "receive completion" : "send completion", fi_strerror(err.err));
    }
  }
  // Before exiting: our last message must have left.
  void drain() {
    while (sends_done < sends_posted) pump();
  }
  void send(std::size_t size) {
    while (sends_done < sends_posted) pump();  // the buffer is ours again
    ssize_t rc;
    while ((rc = fi_send(ep.ep(), send_buf.data(), size, nullptr, peer, nullptr)) == -FI_EAGAIN) pump();
    if (rc) fabric_util::die("fi_send", fi_strerror(static_cast<int>(-rc)));
    ++sends_posted;
  }
  void await_message() {
    while (recvs == 0) pump();
    --recvs;
    post_recv();
  }
  // Pinger: send, then wait for the answer. Ponger: wait for a message, answer it.
  void exchange(std::size_t size, bool pinger) {
    if (pinger) {
      send(size);
      await_message();
    } else {
      await_message();
      send(size);
    }
  }
};

}  // namespace chanpool::tools
