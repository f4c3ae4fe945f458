// Starts two virtual nodes and sends one message from node 1 to a channel on node 0: proves the
// installed transport headers, library and its libfabric dependency.
#include <chanpool/transport/bootstrap.hpp>
#include <chanpool/transport/client.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <span>
#include <string>

int main() {
  namespace ch = chanpool::channels;
  namespace tr = chanpool::transport;
  tr::cluster_config cc;
  cc.nodes = 2;
  cc.job = "tconsumer" + std::to_string(::getpid());
  auto job = tr::virtual_cluster::start(cc);
  if (!job) {
    std::fprintf(stderr, "start: %s\n", job.error().message().c_str());
    return 1;
  }
  auto sink = ch::channel::create("sink", {}, {job->node_job(0)});
  if (!sink) return 1;
  const pid_t child = ::fork();
  if (child == 0) {
    auto c = tr::client::attach(job->node_job(1));
    if (!c) std::_Exit(2);
    auto to = c->open({0, "sink"});
    if (!to) std::_Exit(3);
    const char text[] = "hello";
    std::_Exit(to->send(std::as_bytes(std::span(text)), std::chrono::seconds(10), tr::send_mode::deposited) ==
                       chanpool::status::ok
                   ? 0
                   : 4);
  }
  std::vector<std::byte> got;
  const chanpool::status received = sink->recv(got, std::chrono::seconds(10));
  int st = 0;
  ::waitpid(child, &st, 0);
  const bool ok = received == chanpool::status::ok && got.size() == 6 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  std::printf("transport consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
