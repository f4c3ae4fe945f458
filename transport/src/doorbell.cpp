#include "doorbell.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace chanpool::transport::detail {

doorbell_address make_doorbell_address(const std::string& node_job) noexcept {
  doorbell_address a;
  a.addr.sun_family = AF_UNIX;
  std::string name = "chanpool-doorbell/" + node_job;
  if (name.size() > sizeof(a.addr.sun_path) - 2) {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: long job names stay distinct
    for (unsigned char c : node_job) h = (h ^ c) * 0x100000001b3ull;
    char hex[17];
    for (int i = 15; i >= 0; --i, h >>= 4) hex[i] = "0123456789abcdef"[h & 15];
    hex[16] = '\0';
    name = std::string("chanpool-doorbell/#") + hex;
  }
  a.addr.sun_path[0] = '\0';  // abstract namespace
  std::memcpy(a.addr.sun_path + 1, name.data(), name.size());
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

doorbell& doorbell::operator=(doorbell&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

doorbell::~doorbell() {
  if (fd_ >= 0) ::close(fd_);
}

result<doorbell> doorbell::open(const std::string& node_job) {
  doorbell d;
  d.fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (d.fd_ < 0) return std::error_code(errno, std::generic_category());
  const doorbell_address a = make_doorbell_address(node_job);
  if (::bind(d.fd_, reinterpret_cast<const sockaddr*>(&a.addr), a.length) != 0)
    return std::error_code(errno, std::generic_category());
  return d;
}

std::uint32_t doorbell::drain() noexcept {
  // One system call for up to 16 rings (usually there is one: a sleep is rung at most once);
  // more left over make the next poll return at once, and are read then.
  constexpr unsigned batch = 16;
  char bytes[batch];
  iovec iov[batch];
  mmsghdr msgs[batch];
  for (unsigned i = 0; i < batch; ++i) {
    iov[i] = {&bytes[i], 1};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int n = ::recvmmsg(fd_, msgs, batch, MSG_DONTWAIT, nullptr);
  return n > 0 ? static_cast<std::uint32_t>(n) : 0;
}

doorbell_ringer::~doorbell_ringer() {
  if (const int fd = fd_.load(std::memory_order_relaxed); fd >= 0) ::close(fd);
}

void doorbell_ringer::ring() noexcept {
  int fd = fd_.load(std::memory_order_acquire);
  if (fd < 0) {
    const int made = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (made < 0) return;
    int expected = -1;
    if (fd_.compare_exchange_strong(expected, made, std::memory_order_acq_rel)) {
      fd = made;
    } else {
      ::close(made);  // another thread made one first
      fd = expected;
    }
  }
  const char one = 1;
  (void)::sendto(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address_.addr),
                 address_.length);
}

}  // namespace chanpool::transport::detail
