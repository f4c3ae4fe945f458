// latency_bench --bandwidth, the direct kinds: two processes with bare libfabric endpoints (the
// hints the agents use, FI_RMA included where the provider has it), busy-polled CQs.
//  - direct send:  the receiver keeps a window of receives posted (one slice of its buffer each),
//                  reposts them once all W arrived, then answers an 8-byte ack; the sender posts
//                  W fi_send and waits for the ack.
//  - direct write: W fi_writemsg with FI_DELIVERY_COMPLETE into the peer's registered buffer,
//                  then all W completions: the bytes are placed at the target. A provider that
//                  refuses the flag gets plain writes and one fenced 8-byte fi_read after them
//                  (FI_FENCE: it completes only after the writes before it), reported in notes.
//  - direct read:  W fi_read from the peer's registered buffer, then all W completions.
// During the rma kinds the target only progresses its endpoint (fi_cq_read) until told to stop.
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <csignal>
#include <cstring>
#include <tuple>

#include "chanpool/transport/fabric.hpp"
#include "latency_bandwidth.hpp"
#include "latency_fabric_util.hpp"
#include "pinning.hpp"

namespace chanpool::tools {
namespace {

namespace tr = chanpool::transport;
using fabric_util::die;
using fabric_util::receive_value;
using fabric_util::send_value;

constexpr std::uint64_t ack_bytes = 8;

// What the target tells the initiator about its buffer.
struct rma_target {
  std::uint64_t supported = 0;
  std::uint64_t key = 0;
  std::uint64_t base = 0;
};

struct bw_peer {
  tr::fabric_endpoint ep;
  std::uint64_t peer = 0;
  std::vector<std::byte> buf;  // a window of messages, one slice each
  std::byte ack[ack_bytes]{};
  tr::memory_registration buf_mr, ack_mr;  // for send/recv, where the provider needs FI_MR_LOCAL
  tr::rma_registration rma;                // buf, for remote and local RMA
  std::uint64_t recvs = 0, done = 0;       // completions: receives, and everything else

  void pump() {
    fi_cq_data_entry e[16];
    const ssize_t n = fi_cq_read(ep.cq(), e, 16);
    for (ssize_t i = 0; i < n; ++i) ++((e[i].flags & FI_RECV) ? recvs : done);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(ep.cq(), &err, 0);
      die((err.flags & FI_RECV) ? "receive completion" : "completion", fi_strerror(err.err));
    }
  }
  template <class Post>
  void post(const char* what, Post&& op) {
    ssize_t rc;
    while ((rc = op()) == -FI_EAGAIN) pump();
    if (rc) die(what, fi_strerror(static_cast<int>(-rc)));
  }
  void post_recvs(std::size_t size, std::uint32_t w) {
    for (std::uint32_t i = 0; i < w; ++i)
      post("fi_recv", [&] { return fi_recv(ep.ep(), buf.data() + i * size, size, buf_mr.desc(), FI_ADDR_UNSPEC, nullptr); });
  }
  void send_ack() {
    post("fi_send", [&] { return fi_send(ep.ep(), ack, ack_bytes, ack_mr.desc(), peer, nullptr); });
    ++sent;
  }
  void await(std::uint64_t& counter, std::uint64_t target) {
    while (counter < target) pump();
  }
  std::uint64_t sent = 0;  // operations posted that complete in `done`
};

bw_peer open_peer(const fabric_bandwidth_options& o, int fd) {
  tr::endpoint_config ec;
  ec.provider = o.provider;
  ec.multi_recv = false;
  bw_peer p;
  std::tie(p.ep, p.peer) = fabric_util::open_connected(ec, fd);
  std::size_t bytes = 8;
  for (auto s : o.sizes) bytes = std::max<std::size_t>(bytes, s * window_for(s, o.window));
  p.buf.assign(bytes, std::byte{0x5a});
  if (auto mr = p.ep.register_memory(p.buf.data(), p.buf.size()); mr) p.buf_mr = std::move(*mr);
  else die("registering the buffer", mr.error().message());
  if (auto mr = p.ep.register_memory(p.ack, ack_bytes); mr) p.ack_mr = std::move(*mr);
  else die("registering the ack buffer", mr.error().message());
  if (p.ep.info().rma) {
    auto reg = p.ep.register_rma(p.buf.data(), p.buf.size(), 1);
    if (!reg) die("register_rma", reg.error().message());
    p.rma = std::move(*reg);
  }
  return p;
}

// The receiver of the send kind: every window of every size, then the rma kinds' target.
[[noreturn]] void run_target(const fabric_bandwidth_options& o, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
  if (o.pin) pin_to_core(1);
  bw_peer p = open_peer(o, fd);
  send_value(fd, rma_target{p.rma.registered() ? 1u : 0u, p.rma.key(), p.rma.base()});
  p.post_recvs(o.sizes.front(), window_for(o.sizes.front(), o.window));
  for (std::size_t si = 0; si < o.sizes.size(); ++si) {
    const std::size_t size = o.sizes[si];
    const std::uint32_t w = window_for(size, o.window);
    std::uint64_t total = bandwidth_warm_up_windows;
    for (std::uint64_t k = 0; k < total; ++k) {
      p.await(p.recvs, w);
      p.recvs -= w;
      // Receives for the next window are posted before the ack lets it start. The warm-up is
      // always followed by a timed window.
      const bool last = k >= bandwidth_warm_up_windows && k + 1 == total;
      if (!last) p.post_recvs(size, w);
      else if (si + 1 < o.sizes.size()) p.post_recvs(o.sizes[si + 1], window_for(o.sizes[si + 1], o.window));
      p.send_ack();
      if (k + 1 == bandwidth_warm_up_windows) total += receive_value<std::uint64_t>(fd);
    }
  }
  // The rma kinds: progress until the initiator says it is done.
  for (std::uint64_t i = 0;; ++i) {
    p.pump();
    char stop = 0;
    if (i % 256 == 0 && ::recv(fd, &stop, 1, MSG_DONTWAIT) == 1) break;
  }
  p.await(p.done, p.sent);
  p.ep.close_endpoint();
  std::_Exit(0);
}

void send_window(bw_peer& p, std::size_t size, std::uint32_t w) {
  const std::uint64_t acks = p.recvs + 1;
  p.post("fi_recv", [&] { return fi_recv(p.ep.ep(), p.ack, ack_bytes, p.ack_mr.desc(), FI_ADDR_UNSPEC, nullptr); });
  for (std::uint32_t i = 0; i < w; ++i)
    p.post("fi_send", [&] { return fi_send(p.ep.ep(), p.buf.data() + i * size, size, p.buf_mr.desc(), p.peer, nullptr); });
  p.sent += w;
  p.await(p.recvs, acks);
  p.await(p.done, p.sent);  // the sends' own completions (the buffer is ours again)
}

// One fi_readmsg / fi_writemsg of `len` bytes between local offset `at` and the target's.
ssize_t post_rma(bw_peer& p, const rma_target& t, bool write, std::uint64_t at, std::size_t len, std::uint64_t flags) {
  iovec iov{p.buf.data() + at, len};
  void* desc = p.rma.desc();
  fi_rma_iov rma{t.base + at, len, t.key};
  fi_msg_rma msg{};
  msg.msg_iov = &iov;
  msg.desc = &desc;
  msg.iov_count = 1;
  msg.addr = p.peer;
  msg.rma_iov = &rma;
  msg.rma_iov_count = 1;
  return write ? fi_writemsg(p.ep.ep(), &msg, flags | FI_COMPLETION) : fi_readmsg(p.ep.ep(), &msg, flags | FI_COMPLETION);
}

// A window of writes or reads. `delivery` (writes): FI_DELIVERY_COMPLETE, cleared for good if
// the provider refuses it, after which a fenced read closes each window.
void rma_window(bw_peer& p, const rma_target& t, bool write, std::size_t size, std::uint32_t w, bool& delivery) {
  for (std::uint32_t i = 0; i < w; ++i) {
    const std::uint64_t at = std::uint64_t{i} * size;
    ssize_t rc;
    while (true) {
      rc = post_rma(p, t, write, at, size, write && delivery ? FI_DELIVERY_COMPLETE : 0);
      if (rc == -FI_EAGAIN) p.pump();
      else if (write && delivery && rc != 0) delivery = false;  // try again without the flag
      else break;
    }
    if (rc) die(write ? "fi_writemsg" : "fi_readmsg", fi_strerror(static_cast<int>(-rc)));
    ++p.sent;
  }
  if (write && !delivery) {
    p.post("fenced fi_readmsg", [&] { return post_rma(p, t, false, 0, 8, FI_FENCE); });
    ++p.sent;
  }
  p.await(p.done, p.sent);
}

}  // namespace

bandwidth_part run_direct_bandwidth(const fabric_bandwidth_options& o) {
  tr::endpoint_config ec;
  ec.provider = o.provider;
  if (auto e = tr::preload_providers(ec); e) die("libfabric provider", e.message());
  const auto [fd, child] = fabric_util::fork_peer([&](int peer_fd) { run_target(o, peer_fd); });
  const scoped_pin pinned(o.pin, 0);  // core 0 while measuring; the CPUs back after
  bw_peer p = open_peer(o, fd);
  const auto target = receive_value<rma_target>(fd);
  bandwidth_part part;
  part.fabric = p.ep.info().summary() + "; path: endpoint -> fabric -> endpoint (no agent)";
  auto announce = [&](std::uint64_t n) { send_value(fd, n); };
  for (auto size : o.sizes) {
    const std::uint32_t w = window_for(size, o.window);
    part.rows.push_back(measure_windows(size, "direct send", w, o.windows, [&] { send_window(p, size, w); }, announce));
  }
  const bool rma = p.rma.registered() && target.supported;
  bool delivery = true;
  for (const bool write : {true, false})
    for (auto size : o.sizes) {
      const std::uint32_t w = window_for(size, o.window);
      const std::string kind = write ? "direct write" : "direct read";
      if (!rma) {
        part.rows.push_back({size, kind, false, 0, w, 0});
        continue;
      }
      part.rows.push_back(measure_windows(size, kind, w, o.windows, [&] { rma_window(p, target, write, size, w, delivery); },
                                          [](std::uint64_t) {}));
    }
  if (!rma) part.notes = "direct write and read: the provider has no FI_RMA";
  else if (delivery) part.notes = "direct write completion: FI_DELIVERY_COMPLETE (bytes placed at the target)";
  else part.notes = "direct write completion: the provider refused FI_DELIVERY_COMPLETE; a fenced 8-byte read ends each window";
  const char stop = 1;
  if (!fabric_util::write_all(fd, &stop, 1)) die("socketpair", "direct target gone");
  int st = 0;
  ::waitpid(child, &st, 0);
  ::close(fd);
  p.ep.close_endpoint();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("direct target", "exited with an error");
  return part;
}

}  // namespace chanpool::tools
