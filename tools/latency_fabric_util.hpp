// What latency_bench's fabric modes share (latency_fabric.cpp, latency_bandwidth*.cpp): dying
// with a message, whole reads and writes on the socketpair between the two processes, and
// opening a bare endpoint connected to the peer process at the other end of that socketpair.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "chanpool/transport/fabric.hpp"

namespace chanpool::tools::fabric_util {

[[noreturn]] inline void die(const char* what, const std::string& why) {
  std::fprintf(stderr, "latency_bench: %s: %s\n", what, why.c_str());
  std::_Exit(1);
}

inline bool write_all(int fd, const void* p, std::size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n) {
    const ssize_t r = ::write(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

inline bool read_all(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n) {
    const ssize_t r = ::read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// A trivially copyable value through the socketpair; dies if the peer is gone.
template <class T>
void send_value(int fd, const T& v) {
  if (!write_all(fd, &v, sizeof v)) die("socketpair", "peer gone");
}
template <class T>
T receive_value(int fd) {
  T v{};
  if (!read_all(fd, &v, sizeof v)) die("socketpair", "peer gone");
  return v;
}

// Forks the peer process, which runs child(fd) on its end of a new socketpair and must not return
// (it ends with _Exit). Returns the parent's end of the socketpair and the child's pid.
template <class Child>
std::pair<int, pid_t> fork_peer(Child&& child) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair", std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) die("fork", std::strerror(errno));
  if (pid == 0) {
    ::close(sv[0]);
    child(sv[1]);
    std::_Exit(1);  // not reached: the child ends itself
  }
  ::close(sv[1]);
  return {sv[0], pid};
}

// Opens an endpoint, exchanges names with the process at the other end of `fd` (which does the
// same) and inserts it: returns the endpoint and the peer's fi_addr_t.
inline std::pair<transport::fabric_endpoint, std::uint64_t> open_connected(const transport::endpoint_config& ec,
                                                                          int fd) {
  auto ep = transport::fabric_endpoint::open(ec);
  if (!ep) die("opening an endpoint", ep.error().message());
  const auto& mine = ep->address();
  const auto len = static_cast<std::uint32_t>(mine.size());
  std::uint32_t peer_len = 0;
  if (!write_all(fd, &len, 4) || !write_all(fd, mine.data(), len) || !read_all(fd, &peer_len, 4))
    die("address exchange", "peer gone");
  std::vector<std::byte> theirs(peer_len);
  if (!read_all(fd, theirs.data(), peer_len)) die("address exchange", "peer gone");
  auto addr = ep->insert_peer(theirs);
  if (!addr) die("fi_av_insert", addr.error().message());
  return {std::move(*ep), *addr};
}

}  // namespace chanpool::tools::fabric_util
