// mpi_fanin: the many-to-one baseline written the way an MPI user writes it. Ranks 1..P-1 each
// MPI_Send messages to rank 0, which receives them all with MPI_Recv(MPI_ANY_SOURCE) into one
// buffer, verifies every one and reports messages/s, bytes/s and the send-to-receive latency.
// chanpool's aggregating transport is compared against this.
//
//   mpirun -np 5 mpi_fanin --msg_size 64 --messages_per_sender 100000 [--json]
//   mpirun -np 5 mpi_fanin --duration 2 --json
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpi_common.hpp"
#include "mpi_fanin_cli.hpp"

namespace {

namespace cli_ns = chanpool::mpi_compare::fanin_cli;
using cli_ns::exit_usage;
using cli_ns::fault;
using cli_ns::options;
using cli_ns::tool_name;

constexpr int exit_failure = 1;  // lost, duplicated or corrupt messages; a stalled run

constexpr int receiver_rank = 0;
constexpr int fanin_tag = 11;

// The first bytes of every message. The rest of the message (the payload) is a pattern that
// depends on the sender; `checksum` covers the payload and the other header fields.
struct message_header {
  std::uint32_t sender = 0;  // the sending rank
  std::uint32_t flags = 0;   // final_message: the sender's last one; its seq + 1 is its count
  std::uint64_t seq = 0;     // per sender, from 0 without gaps
  std::uint64_t send_ns = 0; // CLOCK_MONOTONIC at the sender just before MPI_Send
  std::uint64_t checksum = 0;
};
static_assert(sizeof(message_header) == cli_ns::header_bytes, "the header is the documented 32 bytes");
using cli_ns::header_bytes;
constexpr std::uint32_t final_message = 1;


std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// A 64-bit multiply-xorshift hash, 8 bytes per step: cheap enough to run on every received
// message (the receiver verifies all of them, and that cost is part of the measured rate).
std::uint64_t hash_bytes(const std::byte* data, std::size_t size) {
  constexpr std::uint64_t multiplier = 0xff51afd7ed558ccdULL;
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, data + i, 8);
    h = (h ^ word) * multiplier;
    h ^= h >> 32;
  }
  for (; i < size; ++i) h = (h ^ static_cast<std::uint64_t>(data[i])) * 0x100000001b3ULL;
  return h;
}

std::uint64_t mix(std::uint64_t h, std::uint64_t value) {
  h = (h ^ value) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 29);
}

// The checksum of a message: its payload's hash sealed with every other header field, so that
// a corrupt sequence number, flag or timestamp is caught as well as a corrupt payload.
std::uint64_t seal(std::uint64_t payload_hash, const message_header& h) {
  std::uint64_t c = mix(payload_hash, h.sender);
  c = mix(c, h.flags);
  c = mix(c, h.seq);
  return mix(c, h.send_ns);
}

// Latencies go into a log-linear histogram (128 buckets per power of two, < 0.8 % relative
// error) so that a long --duration run needs no memory per message.
class latency_histogram {
 public:
  void add(std::uint64_t ns) {
    ++counts_[index_of(ns)];
    ++total_;
  }
  std::uint64_t total() const { return total_; }
  // The q-quantile (0 < q <= 1) in ns: the midpoint of the bucket holding the ceil(q * n)-th value.
  double quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return midpoint_of(i);
    }
    return midpoint_of(counts_.size() - 1);
  }

 private:
  static constexpr unsigned sub_bits = 7;
  static constexpr std::uint64_t exact_below = std::uint64_t{1} << sub_bits;  // 128 ns: one bucket per ns
  static constexpr std::size_t bucket_count = exact_below + (64 - sub_bits) * exact_below;

  static std::size_t index_of(std::uint64_t v) {
    if (v < exact_below) return static_cast<std::size_t>(v);
    const unsigned exponent = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= sub_bits
    const unsigned shift = exponent - sub_bits;
    const auto sub = (v >> shift) - exact_below;  // 0..127
    return static_cast<std::size_t>(exact_below + (exponent - sub_bits) * exact_below + sub);
  }
  static double midpoint_of(std::size_t index) {
    if (index < exact_below) return static_cast<double>(index);
    const auto group = (index - exact_below) / exact_below;  // exponent - sub_bits
    const auto sub = (index - exact_below) % exact_below;
    const double width = std::ldexp(1.0, static_cast<int>(group));
    const double low = static_cast<double>(exact_below + sub) * width;
    return low + (width - 1) / 2;
  }

  std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(bucket_count);
  std::uint64_t total_ = 0;
};

// Parsed before MPI_Init so that --help and flag errors need no MPI start-up; mpirun's
// environment tells which rank this is, so that only rank 0 prints them.
bool is_printing_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(variable)) return std::string_view(value) == "0";
  return true;  // started without a launcher
}

using chanpool::mpi_compare::mpi_library_name;

void fill_payload(std::vector<std::byte>& buffer, int rank) {
  for (std::size_t i = header_bytes; i < buffer.size(); ++i)
    buffer[i] = static_cast<std::byte>((i * 131 + static_cast<std::size_t>(rank) * 7 + 1) & 0xff);
}

// Performs the test hook's damage; returns true when it replaced the normal send.
template <class Send>
bool inject_fault(fault kind, bool last, bool at_fault_seq, std::vector<std::byte>& buffer, const Send& send) {
  if (kind == fault::lose_final) return last;
  if (!at_fault_seq || last) return false;
  switch (kind) {
    case fault::skip:
      return true;
    case fault::duplicate:
      send();
      send();
      return true;
    case fault::corrupt:
      buffer.back() ^= std::byte{0x5a};
      send();
      buffer.back() ^= std::byte{0x5a};
      return true;
    default:
      return false;
  }
}

// Sends and receives need no error checks: MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL.
void run_sender(const options& opts, int rank) {
  std::vector<std::byte> buffer(opts.msg_size);
  fill_payload(buffer, rank);
  const auto payload_hash = hash_bytes(buffer.data() + header_bytes, buffer.size() - header_bytes);
  message_header header;
  header.sender = static_cast<std::uint32_t>(rank);

  MPI_Barrier(MPI_COMM_WORLD);
  const bool timed = opts.duration_s > 0;
  const auto deadline_ns = monotonic_ns() + static_cast<std::uint64_t>(opts.duration_s * 1e9);
  const auto send = [&] {
    MPI_Send(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, receiver_rank, fanin_tag, MPI_COMM_WORLD);
  };
  const fault inject = rank == 1 ? opts.inject : fault::none;
  const std::uint64_t fault_seq = timed ? 100 : opts.messages_per_sender / 2;
  for (std::uint64_t seq = 0;; ++seq) {
    header.seq = seq;
    header.send_ns = monotonic_ns();
    const bool last = timed ? header.send_ns >= deadline_ns : seq + 1 == opts.messages_per_sender;
    header.flags = last ? final_message : 0;
    header.checksum = seal(payload_hash, header);
    std::memcpy(buffer.data(), &header, header_bytes);
    if (inject != fault::none) [[unlikely]] {
      if (inject_fault(inject, last, seq == fault_seq, buffer, send)) {
        if (last) break;
        continue;
      }
    }
    send();
    if (last) break;
  }
}

struct sender_state {
  std::uint64_t next_seq = 0;  // the sequence number expected next
  std::uint64_t received = 0;  // intact messages in order
  bool finished = false;       // its final message arrived
  std::uint64_t announced = 0; // count carried by the final message
};

struct fanin_result {
  std::uint64_t messages = 0;  // every message received, good or bad
  double elapsed_s = 0;
  latency_histogram latency;
  std::uint64_t negative_latencies = 0;
  std::uint64_t lost = 0, duplicated = 0, corrupt = 0, after_final = 0, wrong_count = 0;
  std::uint64_t min_per_sender = 0, max_per_sender = 0;
  std::vector<std::string> problems;  // the first few, for stderr

  std::uint64_t errors() const { return lost + duplicated + corrupt + after_final + wrong_count; }
  void problem(std::string text) {
    constexpr std::size_t max_listed = 10;
    if (problems.size() < max_listed) problems.push_back(std::move(text));
  }
};

// Watches rank 0's progress from a second thread that makes no MPI call: if no message arrives
// for --stall_timeout seconds (a lost final message would otherwise hang MPI_Recv forever), it
// reports what arrived and ends the process with status 1; mpirun then stops the other ranks.
class stall_watchdog {
 public:
  stall_watchdog(double timeout_s, std::uint64_t senders) : timeout_s_(timeout_s), senders_(senders) {
    if (timeout_s_ > 0) thread_ = std::thread([this] { watch(); });
  }
  ~stall_watchdog() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  stall_watchdog(const stall_watchdog&) = delete;
  stall_watchdog& operator=(const stall_watchdog&) = delete;

  // Called by the receiving thread: relaxed stores, no lock on the receive path.
  void received(std::uint64_t messages) { messages_.store(messages, std::memory_order_relaxed); }
  void finished(std::uint64_t senders_done) { finished_.store(senders_done, std::memory_order_relaxed); }

 private:
  void watch() {
    using namespace std::chrono;
    const auto timeout = duration_cast<steady_clock::duration>(duration<double>(timeout_s_));
    std::uint64_t last_seen = 0;
    auto last_change = steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, milliseconds(200), [this] { return stop_; })) {
      const auto now = steady_clock::now();
      const auto seen = messages_.load(std::memory_order_relaxed);
      if (seen != last_seen) {
        last_seen = seen;
        last_change = now;
      } else if (now - last_change >= timeout) {
        std::fprintf(stderr,
                     "%s: FAILED: no message for %.1f s; received %llu messages, %llu of %llu senders "
                     "sent their final message (a final message was lost or a sender is stuck)\n",
                     tool_name, timeout_s_, static_cast<unsigned long long>(seen),
                     static_cast<unsigned long long>(finished_.load(std::memory_order_relaxed)),
                     static_cast<unsigned long long>(senders_));
        std::fflush(stderr);
        std::_Exit(exit_failure);
      }
    }
  }

  double timeout_s_;
  std::uint64_t senders_;
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> finished_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

fanin_result run_receiver(const options& opts, int ranks) {
  const auto senders = static_cast<std::uint64_t>(ranks - 1);
  std::vector<sender_state> state(static_cast<std::size_t>(ranks));
  std::vector<std::byte> buffer(opts.msg_size);
  fanin_result result;
  stall_watchdog watchdog(opts.stall_timeout_s, senders);

  MPI_Barrier(MPI_COMM_WORLD);
  const auto start_ns = monotonic_ns();
  auto last_receive_ns = start_ns;
  std::uint64_t senders_done = 0;
  while (senders_done < senders) {
    MPI_Status status;
    MPI_Recv(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, MPI_ANY_SOURCE, fanin_tag, MPI_COMM_WORLD,
             &status);
    const auto now = monotonic_ns();
    last_receive_ns = now;
    ++result.messages;
    watchdog.received(result.messages);

    const int source = status.MPI_SOURCE;
    auto& from = state[static_cast<std::size_t>(source)];
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    message_header header;
    if (static_cast<std::size_t>(bytes) != opts.msg_size) {
      // Too short to hold the header we expect: nothing in it can be trusted.
      ++result.corrupt;
      result.problem("rank " + std::to_string(source) + " sent " + std::to_string(bytes) + " bytes, expected " +
                     std::to_string(opts.msg_size));
      continue;
    }
    std::memcpy(&header, buffer.data(), header_bytes);
    const auto payload_hash = hash_bytes(buffer.data() + header_bytes, buffer.size() - header_bytes);
    if (header.sender != static_cast<std::uint32_t>(source) || seal(payload_hash, header) != header.checksum) {
      ++result.corrupt;
      result.problem("corrupt message from rank " + std::to_string(source) + " (header says sender " +
                     std::to_string(header.sender) + ", seq " + std::to_string(header.seq) +
                     "): checksum or sender mismatch");
      continue;  // its seq and flags cannot be trusted; a missing final is caught by the stall timeout
    }
    if (from.finished) {
      ++result.after_final;
      result.problem("rank " + std::to_string(source) + ": message seq " + std::to_string(header.seq) +
                     " after its final message");
      continue;
    }
    if (header.seq < from.next_seq) {
      ++result.duplicated;
      result.problem("rank " + std::to_string(source) + ": seq " + std::to_string(header.seq) +
                     " again or out of order (expected " + std::to_string(from.next_seq) + ")");
      continue;
    }
    if (header.seq > from.next_seq) {
      result.lost += header.seq - from.next_seq;
      const auto missing = header.seq - from.next_seq == 1
                               ? std::to_string(from.next_seq)
                               : std::to_string(from.next_seq) + ".." + std::to_string(header.seq - 1);
      result.problem("rank " + std::to_string(source) + ": seq " + missing + " missing");
    }
    from.next_seq = header.seq + 1;
    ++from.received;
    if (now >= header.send_ns) {
      result.latency.add(now - header.send_ns);
    } else {
      result.latency.add(0);
      ++result.negative_latencies;
    }
    if (header.flags & final_message) {
      from.finished = true;
      from.announced = header.seq + 1;
      ++senders_done;
      watchdog.finished(senders_done);
    }
  }
  result.elapsed_s = static_cast<double>(last_receive_ns - start_ns) / 1e9;

  result.min_per_sender = UINT64_MAX;
  for (int rank = 1; rank < ranks; ++rank) {
    const auto& from = state[static_cast<std::size_t>(rank)];
    result.min_per_sender = std::min(result.min_per_sender, from.received);
    result.max_per_sender = std::max(result.max_per_sender, from.received);
    if (opts.duration_s <= 0 && from.announced != opts.messages_per_sender) {
      ++result.wrong_count;
      result.problem("rank " + std::to_string(rank) + ": final message says " + std::to_string(from.announced) +
                     " messages, expected " + std::to_string(opts.messages_per_sender));
    }
  }
  return result;
}

void report(const options& opts, int ranks, const fanin_result& r) {
  const auto senders = ranks - 1;
  const double elapsed = r.elapsed_s > 0 ? r.elapsed_s : 1e-9;
  const double msgs_per_s = static_cast<double>(r.messages) / elapsed;
  const double bytes_per_s = msgs_per_s * static_cast<double>(opts.msg_size);
  const double p50_us = r.latency.quantile(0.50) / 1e3;
  const double p99_us = r.latency.quantile(0.99) / 1e3;
  if (opts.json) {
    // ordered_json keeps the documented key order.
    nlohmann::ordered_json j;
    j["tool"] = tool_name;
    j["senders"] = senders;
    j["msg_size"] = opts.msg_size;
    j["messages"] = r.messages;
    j["msgs_per_s"] = msgs_per_s;
    j["bytes_per_s"] = bytes_per_s;
    j["p50_us"] = p50_us;
    j["p99_us"] = p99_us;
    j["elapsed_s"] = r.elapsed_s;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("# %s: %s, %d senders -> rank 0, MPI_Send / MPI_Recv(MPI_ANY_SOURCE), %zu B messages\n",
                tool_name, mpi_library_name().c_str(), senders, opts.msg_size);
    if (opts.duration_s > 0)
      std::printf("# mode: --duration %g s per sender\n", opts.duration_s);
    else
      std::printf("# mode: --messages_per_sender %llu\n", static_cast<unsigned long long>(opts.messages_per_sender));
    std::printf("messages      %llu (per sender %llu..%llu), every one verified\n",
                static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.min_per_sender),
                static_cast<unsigned long long>(r.max_per_sender));
    std::printf("elapsed       %.6f s (barrier before the first send -> last receive)\n", r.elapsed_s);
    std::printf("rate          %.0f msgs/s, %.1f MB/s\n", msgs_per_s, bytes_per_s / 1e6);
    std::printf("latency       p50 %.2f us, p99 %.2f us (receive - send time, same host clock)\n", p50_us, p99_us);
    if (r.negative_latencies > 0)
      std::printf("note          %llu messages arrived before their send time (clocks differ?): counted as 0\n",
                  static_cast<unsigned long long>(r.negative_latencies));
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const auto cli = cli_ns::parse_command_line(argc, argv);
  if (is_printing_rank()) chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& opts = cli.options;

  // Funneled: rank 0's stall watchdog is a second thread, though it never calls MPI.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0;
  int ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks < 2) {
    if (rank == 0)
      std::fprintf(stderr, "%s: needs at least 2 ranks (1 receiver, >= 1 sender), got %d (run: mpirun -np 5 %s ...)\n",
                   tool_name, ranks, tool_name);
    MPI_Abort(MPI_COMM_WORLD, exit_usage);
  }

  int exit_code = EXIT_SUCCESS;
  if (rank == receiver_rank) {
    const auto result = run_receiver(opts, ranks);
    if (result.errors() > 0) {
      for (const auto& line : result.problems) std::fprintf(stderr, "%s: %s\n", tool_name, line.c_str());
      std::fprintf(stderr,
                   "%s: FAILED: %llu lost, %llu duplicated or out of order, %llu corrupt, %llu after a final "
                   "message, %llu senders with a wrong count (of %llu messages received)\n",
                   tool_name, static_cast<unsigned long long>(result.lost),
                   static_cast<unsigned long long>(result.duplicated), static_cast<unsigned long long>(result.corrupt),
                   static_cast<unsigned long long>(result.after_final),
                   static_cast<unsigned long long>(result.wrong_count),
                   static_cast<unsigned long long>(result.messages));
      exit_code = exit_failure;
    } else {
      report(opts, ranks, result);
    }
  } else {
    run_sender(opts, rank);
  }
  MPI_Finalize();
  return exit_code;
}
