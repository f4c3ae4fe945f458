// fanin_bench: the receiver's side: every message checked (sender, sequence: exactly once, in
// order per sender), latencies sampled, failed senders and lost nodes noticed.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fanin_bench.hpp"

namespace chanpool::tools::fanin {

using chanpool::status;

namespace {

// Checks each message against its sender's sequence, samples latencies, and learns from every
// sender's final message how many it sent (--duration runs).
class sender_order {
 public:
  sender_order(std::size_t msg_size, std::uint32_t senders)
      : msg_size_(msg_size), senders_(senders), next_(senders, 0), final_count_(senders, -1) {}

  // `buf` holds a received message of `len` bytes (and is at least 64 bytes long).
  void check(const std::vector<std::byte>& buf, std::size_t len, receive_result& r) {
    std::uint32_t id, flags;
    std::uint64_t seq, sent;
    std::memcpy(&id, buf.data(), 4);
    std::memcpy(&flags, buf.data() + 4, 4);
    std::memcpy(&seq, buf.data() + 8, 8);
    std::memcpy(&sent, buf.data() + 16, 8);
    if (len != msg_size_ || id >= senders_ || seq != next_[id]) {
      if (r.errors++ < 10)
        std::fprintf(stderr, "fanin_bench: bad message: size %zu sender %u seq %llu (expected %llu)\n", len, id,
                     static_cast<unsigned long long>(seq), id < senders_ ? static_cast<unsigned long long>(next_[id]) : 0ull);
      if (id < senders_) next_[id] = seq + 1;
    } else {
      ++next_[id];
    }
    ++r.received;
    if ((seq & latency_sample_mask) == 0) r.latency_us.push_back(static_cast<double>(now_ns() - sent) / 1e3);
    if (flags & final_flag && id < senders_ && final_count_[id] < 0) {
      final_count_[id] = static_cast<std::int64_t>(seq + 1);
      if (++finals_ == senders_)
        for (auto f : final_count_) total_ += static_cast<std::uint64_t>(f);
    }
  }

  // The messages to expect: `so_far` until every sender's final message is in, then their sum.
  std::uint64_t expected(std::uint64_t so_far) const { return finals_ == senders_ ? total_ : so_far; }

 private:
  std::size_t msg_size_;
  std::uint32_t senders_;
  std::vector<std::uint64_t> next_;
  std::vector<std::int64_t> final_count_;
  std::uint32_t finals_ = 0;
  std::uint64_t total_ = 0;
};

// Reaps the senders that have exited; returns how many of them failed (and says so on stderr).
std::uint64_t reap_failed_senders(std::vector<pid_t>& pids) {
  std::uint64_t failed = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    int ws = 0;
    if (pids[i] > 0 && ::waitpid(pids[i], &ws, WNOHANG) == pids[i]) {
      pids[i] = -1;
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        std::fprintf(stderr, "fanin_bench: sender %zu failed (status %d)\n", i, ws);
        failed++;
      }
    }
  }
  return failed;
}

}  // namespace

// Receives until every sender's messages are in (or a stall/error), checking each message.
// open_gate() releases the senders; `pids` are the senders this process forked (reaped here);
// lost_node() names a node found unreachable (empty while all are alive).
receive_result receive_all(const options& o, ch::channel& sink, std::uint32_t senders, std::vector<pid_t>& pids,
                           const std::function<void()>& open_gate, const std::function<std::string()>& lost_node) {
  sender_order order(o.msg_size, senders);
  std::uint64_t expected = o.duration > 0 ? UINT64_MAX : senders * o.messages_per_sender;
  receive_result r;
  std::uint64_t& received = r.received;
  std::uint64_t& errors = r.errors;
  r.latency_us.reserve(1 << 20);
  std::vector<std::byte> buf(std::max<std::size_t>(o.msg_size, 64));

  const auto t0 = clock_type::now();
  open_gate();  // every sender starts now
  auto last_progress = t0;
  auto last_arrival = t0;
  auto last_node_check = t0;
  // The clock is read for sampled messages, every 4096 messages and after a wait that ended
  // without one, not for every message (it would be a tenth of the receiver's work).
  auto now = t0;
  while (received < expected) {
    std::size_t len = 0;
    const status st = sink.recv(buf, len, std::chrono::milliseconds(200));
    if (st != status::ok || (received & 4095) == 0) now = clock_type::now();
    if (st == status::ok) {
      last_arrival = now;
      order.check(buf, len, r);
      expected = order.expected(expected);
    } else if (st != status::timeout) {
      std::fprintf(stderr, "fanin_bench: receive failed: %s\n", std::string(chanpool::to_string(st)).c_str());
      errors++;
      break;
    }
    if (now - last_progress > std::chrono::seconds(2) && !o.json) {
      last_progress = now;
      std::fprintf(stderr, "  ... %llu messages received (%.1f s)\n", static_cast<unsigned long long>(received),
                   std::chrono::duration<double>(now - t0).count());
    }
    // A lost node: checked after a wait and at least every 100 ms while messages flow.
    if ((st != status::ok || (received & 4095) == 0) && now - last_node_check > std::chrono::milliseconds(100)) {
      last_node_check = now;
      if (r.lost_node = lost_node(); !r.lost_node.empty()) {
        std::fprintf(stderr, "fanin_bench: %s: %llu messages received, the rest of its senders' cannot arrive\n",
                     r.lost_node.c_str(), static_cast<unsigned long long>(received));
        errors++;
        break;
      }
    }
    if (st != status::ok) {
      // A sender that died will never finish: say so instead of waiting for the stall timeout.
      errors += reap_failed_senders(pids);
      if (now - last_arrival > std::chrono::duration<double>(o.stall_timeout)) {
        std::fprintf(stderr, "fanin_bench: nothing arrived for %.0f s; %llu of %llu received\n", o.stall_timeout,
                     static_cast<unsigned long long>(received), static_cast<unsigned long long>(expected));
        errors++;
        break;
      }
    }
  }
  r.elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (!r.lost_node.empty()) return r;  // the senders may still be sending: the caller ends them
  for (pid_t p : pids)
    if (p > 0) {
      int ws = 0;
      ::waitpid(p, &ws, 0);
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) r.errors++;
    }
  return r;
}

}  // namespace chanpool::tools::fanin
