// fanin_bench: a sender process: attaches to its node's agent and sends numbered messages to
// channel "sink" on node 0 until its count or duration is done.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/transport/client.hpp"

#include "fanin_bench.hpp"

namespace chanpool::tools::fanin {

using chanpool::status;

namespace {

// A sender process's work; its exit status.
int sender_main(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd) {
  auto c = tr::client::attach(node_job);
  if (!c) {
    std::fprintf(stderr, "fanin_bench: sender %u: attach: %s\n", id, c.error().message().c_str());
    return 2;
  }
  auto sink = c->open({0, "sink"}, {.routing = tr::route::via_agent});
  if (!sink) {
    std::fprintf(stderr, "fanin_bench: sender %u: open sink: %s\n", id, sink.error().message().c_str());
    return 2;
  }
  std::vector<std::byte> msg(o.msg_size, std::byte{0x5a});
  std::memcpy(msg.data(), &id, 4);
  const char r = 'r';
  if (::write(ready_fd, &r, 1) != 1) return 2;
  char go;
  if (::read(go_fd, &go, 1) < 0) return 2;  // EOF when the receiver opens the gate
  const std::uint64_t end_ns = o.duration > 0 ? now_ns() + static_cast<std::uint64_t>(o.duration * 1e9) : 0;
  std::uint64_t seq = 0;
  auto send = [&](std::uint32_t flags) {
    std::memcpy(msg.data() + 4, &flags, 4);
    std::memcpy(msg.data() + 8, &seq, 8);
    // Only the messages whose latency the receiver samples carry a send time: reading the clock
    // for every message was a sixth of a sender's CPU time, and it is not the transport's.
    if ((seq & latency_sample_mask) == 0) {
      const std::uint64_t t = now_ns();
      std::memcpy(msg.data() + 16, &t, 8);
    }
    const status st = sink->send(msg, std::chrono::seconds(static_cast<long>(o.stall_timeout)));
    if (st != status::ok) {
      std::fprintf(stderr, "fanin_bench: sender %u: send %llu: %s\n", id, static_cast<unsigned long long>(seq),
                   std::string(chanpool::to_string(st)).c_str());
      return false;
    }
    ++seq;
    return true;
  };
  if (end_ns) {
    while (true) {
      for (int i = 0; i < 256; ++i)
        if (!send(0)) return 1;
      if (now_ns() >= end_ns) break;
    }
    if (!send(final_flag)) return 1;
  } else {
    for (std::uint64_t i = 0; i < o.messages_per_sender; ++i)
      if (!send(0)) return 1;
  }
  c->flush();
  return 0;
}

}  // namespace

void run_sender(const options& o, const std::string& node_job, std::uint32_t id, int ready_fd, int go_fd) {
  ::_exit(sender_main(o, node_job, id, ready_fd, go_fd));
}

}  // namespace chanpool::tools::fanin
