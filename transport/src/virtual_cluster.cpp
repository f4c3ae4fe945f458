#include <dirent.h>
#include <poll.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/transport/limits.hpp"
#include "process.hpp"  // channels/src: following the parent

namespace chanpool::transport {
namespace {

// Socketpair messages: a u32 length, then that many bytes.
bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n, int timeout_ms) {
  auto* p = static_cast<char*>(data);
  while (n) {
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

bool send_blob(int fd, const void* data, std::size_t n) {
  const auto len = static_cast<std::uint32_t>(n);
  return write_all(fd, &len, sizeof len) && write_all(fd, data, n);
}

bool recv_blob(int fd, std::vector<std::byte>& out, int timeout_ms) {
  std::uint32_t len = 0;
  if (!read_all(fd, &len, sizeof len, timeout_ms) || len > (1u << 20)) return false;
  out.resize(len);
  return read_all(fd, out.data(), len, timeout_ms);
}

// The agent process of one virtual node. Never returns.
[[noreturn]] void run_agent_process(std::uint32_t node, const cluster_config& config, const std::string& job, int fd,
                                    pid_t parent) {
  // Stop in order on SIGTERM/SIGINT and when the parent is gone (taken by sigwait below; blocked
  // before the agent starts its threads so none of them gets it).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, channels::detail::parent_death_signal);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (!channels::detail::follow_parent_death(static_cast<std::uint32_t>(parent))) ::_exit(1);
  // Named for ps, top and perf: "cp-agent-<node>" (the kernel keeps 15 characters).
  const std::string name = "cp-agent-" + std::to_string(node);
  ::prctl(PR_SET_NAME, name.c_str());

  const int timeout_ms = static_cast<int>(config.start_timeout.count());
  auto fail = [&](const std::string& what) {
    const std::string msg = "node " + std::to_string(node) + ": " + what;
    send_blob(fd, msg.data(), msg.size());
    ::_exit(1);
  };
  auto created = agent::create(node, config.nodes, virtual_node_job(job, node), config.agent);
  if (!created) fail("cannot start the agent: " + created.error().message());
  std::unique_ptr<agent> a = std::move(*created);
  // "A" + address, then the summary of the fabric it got.
  std::vector<std::byte> hello(1 + a->address().size());
  hello[0] = std::byte{'A'};
  std::memcpy(hello.data() + 1, a->address().data(), a->address().size());
  const std::string summary = a->fabric_info().summary();
  if (!send_blob(fd, hello.data(), hello.size()) || !send_blob(fd, summary.data(), summary.size())) ::_exit(1);

  std::vector<std::byte> key_blob;
  if (!recv_blob(fd, key_blob, timeout_ms) || key_blob.size() != sizeof(std::uint64_t)) ::_exit(1);
  std::uint64_t key = 0;
  std::memcpy(&key, key_blob.data(), sizeof key);
  std::vector<std::vector<std::byte>> peers(config.nodes);
  for (auto& p : peers)
    if (!recv_blob(fd, p, timeout_ms)) ::_exit(1);

  if (auto ec = a->connect(peers, key, config.start_timeout); ec) fail("cannot reach every peer: " + ec.message() + " (" + a->failure_reason() + ")");
  const char ready = 'R';
  if (!send_blob(fd, &ready, 1)) ::_exit(1);

  // parent_death_signal only says that the thread which started this node ended (process.hpp):
  // a parent that lives on keeps its nodes.
  int sig = 0;
  do sigwait(&stop_signals, &sig);
  while (sig == channels::detail::parent_death_signal && !channels::detail::parent_gone(static_cast<std::uint32_t>(parent)));
  a->stop();
  a.reset();
  ::_exit(0);
}

}  // namespace

virtual_cluster::virtual_cluster(virtual_cluster&& o) noexcept { *this = std::move(o); }

virtual_cluster& virtual_cluster::operator=(virtual_cluster&& o) noexcept {
  if (this != &o) {
    stop();
    job_ = std::move(o.job_);
    agents_ = std::move(o.agents_);
    fabric_summary_ = std::move(o.fabric_summary_);
    job_key_ = o.job_key_;
    o.agents_.clear();
  }
  return *this;
}

virtual_cluster::~virtual_cluster() { stop(); }

std::string virtual_cluster::node_job(std::uint32_t node) const { return virtual_node_job(job_, node); }

bool virtual_cluster::signal_agent(std::uint32_t node, int signal) noexcept {
  if (node >= agents_.size() || agents_[node].pid <= 0) return false;
  return ::kill(agents_[node].pid, signal) == 0;
}

void virtual_cluster::stop() noexcept {
  const std::uint32_t n = static_cast<std::uint32_t>(agents_.size());
  for (auto& a : agents_)
    if (a.pid > 0) ::kill(a.pid, SIGTERM);
  for (auto& a : agents_) {
    if (a.pid > 0) {
      // An agent that does not stop within 5 s is killed: stop() must not hang.
      for (int i = 0; i < 500; ++i) {
        if (::waitpid(a.pid, nullptr, WNOHANG) != 0) {
          a.pid = -1;
          break;
        }
        ::usleep(10'000);
      }
      if (a.pid > 0) {
        ::kill(a.pid, SIGKILL);
        ::waitpid(a.pid, nullptr, 0);
        a.pid = -1;
      }
    }
    if (a.fd >= 0) ::close(a.fd);
    a.fd = -1;
  }
  agents_.clear();
  // The nodes' namespaces belong to this job: whatever is left in them (channels of processes
  // that were killed or exited without closing, a killed agent's state) goes with it.
  for (std::uint32_t k = 0; k < n; ++k) {
    const std::string prefix = "chanpool." + std::to_string(::getuid()) + "." + node_job(k) + ".";
    if (DIR* dir = ::opendir("/dev/shm")) {
      std::vector<std::string> doomed;
      while (dirent* e = ::readdir(dir))
        if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) doomed.emplace_back(e->d_name);
      ::closedir(dir);
      for (const auto& name : doomed) ::shm_unlink(("/" + name).c_str());
    }
  }
}

result<virtual_cluster> virtual_cluster::start(const cluster_config& config) {
  if (config.nodes == 0) return errc::invalid_config;
  // Before anything is forked or opened: a size this host cannot take fails here, at once.
  if (auto ec = check_cluster_fits(config)) return ec;
  virtual_cluster vc;
  vc.job_ = config.job.empty() ? "vc" + std::to_string(::getpid()) : config.job;
  const int timeout_ms = static_cast<int>(config.start_timeout.count());
  // Once here rather than once per agent: the children inherit the initialised providers.
  endpoint_config probe;
  probe.provider = config.agent.provider;
  probe.node = config.agent.listen_address;
  if (auto ec = preload_providers(probe); ec) {
    diagnose("chanpool: no usable libfabric provider '" + choose_provider(probe.provider) + "': " + ec.message());
    return ec;
  }
  const pid_t self = ::getpid();
  for (std::uint32_t k = 0; k < config.nodes; ++k) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return std::error_code(errno, std::generic_category());
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      return std::error_code(errno, std::generic_category());
    }
    if (pid == 0) {
      ::close(sv[0]);
      for (auto& a : vc.agents_) ::close(a.fd);
      run_agent_process(k, config, vc.job_, sv[1], self);
    }
    ::close(sv[1]);
    vc.agents_.push_back({pid, sv[0]});
  }

  // A child that failed sends text instead of "A"+address: report it and give up.
  auto failed = [&](std::uint32_t k, const std::vector<std::byte>& blob) {
    std::string why = blob.empty() ? "node " + std::to_string(k) + ": agent exited or timed out during start-up"
                                   : std::string(reinterpret_cast<const char*>(blob.data()), blob.size());
    diagnose("chanpool: virtual cluster start failed: " + why);
    return std::error_code(errc::peer_unreachable);
  };
  std::vector<std::vector<std::byte>> addresses(config.nodes);
  for (std::uint32_t k = 0; k < config.nodes; ++k) {
    std::vector<std::byte> blob, summary;
    if (!recv_blob(vc.agents_[k].fd, blob, timeout_ms) || blob.empty() || blob[0] != std::byte{'A'}) return failed(k, blob);
    if (!recv_blob(vc.agents_[k].fd, summary, timeout_ms)) return failed(k, {});
    addresses[k].assign(blob.begin() + 1, blob.end());
    if (k == 0) vc.fabric_summary_.assign(reinterpret_cast<const char*>(summary.data()), summary.size());
  }
  const std::uint64_t key = make_job_key();
  vc.job_key_ = key;
  for (auto& a : vc.agents_) {
    if (!send_blob(a.fd, &key, sizeof key)) return failed(static_cast<std::uint32_t>(&a - vc.agents_.data()), {});
    for (auto& addr : addresses)
      if (!send_blob(a.fd, addr.data(), addr.size())) return failed(static_cast<std::uint32_t>(&a - vc.agents_.data()), {});
  }
  for (std::uint32_t k = 0; k < config.nodes; ++k) {
    std::vector<std::byte> blob;
    if (!recv_blob(vc.agents_[k].fd, blob, timeout_ms) || blob.size() != 1 || blob[0] != std::byte{'R'}) return failed(k, blob);
  }
  return vc;
}

}  // namespace chanpool::transport
