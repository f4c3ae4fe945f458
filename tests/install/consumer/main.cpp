// Sends one message through a channel and receives it: proves headers and library link.
#include <chanpool/channels/channel.hpp>

#include <cstdio>
#include <span>
#include <string>
#include <unistd.h>

int main() {
  namespace ch = chanpool::channels;
  const ch::open_options where{.job = "consumer" + std::to_string(::getpid())};
  auto c = ch::channel::create("smoke", {}, where);
  if (!c) {
    std::fprintf(stderr, "create: %s\n", c.error().message().c_str());
    return 1;
  }
  const char text[] = "hello";
  const chanpool::status sent = c->send(std::as_bytes(std::span(text)));
  std::vector<std::byte> got;
  const chanpool::status received = c->recv(got, ch::try_once);
  ch::channel::unlink("smoke", where);
  const bool ok = sent == chanpool::status::ok && received == chanpool::status::ok && got.size() == sizeof text;
  std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
