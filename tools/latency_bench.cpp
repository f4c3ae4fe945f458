// latency_bench: ping-pong between two processes over two chanpool channels.
// One-way latency = round trip / 2; see common/latency_report.hpp for the method.
#include <sys/prctl.h>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/transport/diagnostics.hpp"
#include "chanpool/channels/channel.hpp"
#include "latency_bandwidth.hpp"
#include "latency_bench_cli.hpp"
#include "latency_fabric.hpp"
#include "latency_report.hpp"
#include "pinning.hpp"

namespace ch = chanpool::channels;
using chanpool::status;

namespace {

using options = chanpool::tools::latency_bench_cli::options;

std::uint64_t iterations_for(const options& o, std::size_t size) {
  return size >= chanpool::tools::large_message_bytes ? std::min(o.iterations, o.large_iterations) : o.iterations;
}
std::uint64_t warmup_for(const options& o, std::size_t size) { return chanpool::tools::warm_up_for(iterations_for(o, size)); }

bool zero_copy_for(const options& o, const ch::channel& c, std::size_t size) {
  return o.path == "zerocopy" || (o.path == "auto" && size > c.inline_capacity());
}

[[noreturn]] void fail(const char* what, status st) {
  std::fprintf(stderr, "latency_bench: %s failed: %s\n", what, std::string(chanpool::to_string(st)).c_str());
  std::exit(1);
}

// One message from `out`, built from `source`; copy or zero-copy as chosen.
void send_one(ch::channel& out, const std::byte* source, std::size_t size, bool zero_copy) {
  if (zero_copy) {
    ch::send_claim claim;
    if (auto st = out.claim_send(size, claim); st != status::ok) fail("claim_send", st);
    std::memcpy(claim.data().data(), source, size);  // build the message in place
    if (auto st = out.commit(claim); st != status::ok) fail("commit", st);
  } else if (auto st = out.send({source, size}); st != status::ok) {
    fail("send", st);
  }
}

// Receives one message; the ponger answers with a message of the same size built from it.
void recv_one(ch::channel& in, std::vector<std::byte>& buffer, bool zero_copy, ch::channel* reply_to) {
  if (zero_copy) {
    ch::recv_claim claim;
    if (auto st = in.claim_recv(claim); st != status::ok) fail("claim_recv", st);
    if (reply_to) send_one(*reply_to, claim.data().data(), claim.data().size(), true);
    if (auto st = in.release(claim); st != status::ok) fail("release", st);
  } else {
    std::size_t length = 0;
    if (auto st = in.recv(buffer, length); st != status::ok) fail("recv", st);
    if (reply_to) send_one(*reply_to, buffer.data(), length, false);
  }
}

double memcpy_ns(std::size_t size) {
  std::vector<std::byte> a(size, std::byte{1}), b(size);
  std::vector<double> samples;
  const int reps = size >= 65536 ? 200 : 20000;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      std::memcpy(b.data(), a.data(), size);
      asm volatile("" : : "r"(b.data()) : "memory");
    }
    samples.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / reps);
  }
  return chanpool::tools::percentile(samples, 0.5);
}

int run_fabric(const options& o, const std::vector<std::size_t>& sizes) {
  chanpool::tools::fabric_latency_options fo;
  fo.sizes = sizes;
  // A fabric round trip costs microseconds, not nanoseconds: fewer by default.
  fo.iterations = o.iterations_given ? o.iterations : 10000;
  fo.batch = o.batch;
  fo.mode = o.fabric_mode;
  fo.provider = o.provider;
  fo.agent_spin_us = o.agent_spin_us;
  fo.receiver_spin_us = o.receiver_spin_us;
  fo.pin = o.pin;
  fo.json = o.json;
  fo.hops = o.hops;
  return chanpool::tools::run_fabric_latency(fo);
}

// --bandwidth (the parser checked its flags and sizes): --iterations as timed windows.
int run_bandwidth(const options& o) {
  chanpool::tools::fabric_bandwidth_options bo;
  bo.sizes = o.sizes;
  bo.window = o.window;
  bo.windows = o.iterations_given ? o.iterations : 0;
  bo.mode = o.fabric_mode;
  bo.provider = o.provider;
  bo.agent_spin_us = o.agent_spin_us;
  bo.receiver_spin_us = o.receiver_spin_us;
  bo.pin = o.pin;
  bo.json = o.json;
  return chanpool::tools::run_fabric_bandwidth(bo);
}

ch::channel_config shm_channel_config(const options& o, std::size_t largest) {
  ch::channel_config config;
  config.capacity = 64;
  config.slot_bytes = 128;
  config.single_producer = config.single_consumer = o.channel_kind == "spsc";
  // Room for a message in flight each way plus one being built.
  const std::uint64_t block = config.heap_block_bytes;
  config.heap_bytes = std::max<std::uint64_t>(1u << 20, (4 * largest + block - 1) / block * block);
  return config;
}

void set_receiver_wait(const options& o, ch::channel& ping, ch::channel& pong) {
  ch::wait_config wait;
  wait.mode = o.wait == "spin" ? ch::wait_mode::spin : o.wait == "idle" ? ch::wait_mode::idle : ch::wait_mode::adaptive;
  wait.spin_for = std::chrono::nanoseconds(static_cast<std::int64_t>(o.spin_us * 1000));
  ping.set_wait(wait);
  pong.set_wait(wait);
}

// The forked ponger: answers every round trip the pinger will make, then exits.
[[noreturn]] void run_ponger(const options& o, ch::channel& ping, ch::channel& pong,
                             const std::vector<std::size_t>& sizes, std::size_t largest) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring parent
  if (o.pin) chanpool::tools::pin_to_core(1);
  std::vector<std::byte> buffer(largest);
  for (auto size : sizes) {
    const bool zc = zero_copy_for(o, ping, size);
    const std::uint64_t n = warmup_for(o, size) + chanpool::tools::round_trips_per_size(iterations_for(o, size));
    for (std::uint64_t i = 0; i < n; ++i) recv_one(ping, buffer, zc, &pong);
  }
  std::_Exit(0);
}

// Pins the pinger to core 0 (unless --no-pin) and says how the two processes are placed.
std::string pin_pinger(const options& o) {
  if (!o.pin) return "not pinned";
  if (auto why = chanpool::tools::pin_to_core(0); !why.empty()) return "not pinned: " + why;
  return "pinned to cores 0 and 1 (hwloc)";
}

void report_shm(const options& o, const ch::channel& ping, const std::vector<chanpool::tools::latency_row>& rows,
                const std::vector<double>& memcpy_anchor, const std::string& pin_note) {
  if (o.json) {
    auto j = chanpool::tools::to_json("latency_bench", o.transport, rows);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      j["results"][i]["memcpy_ns"] = memcpy_anchor[i];
      j["results"][i]["path"] = zero_copy_for(o, ping, rows[i].size) ? "zerocopy" : "copy";
    }
    j["wait"] = o.wait;
    j["channel"] = o.channel_kind;
    j["pinning"] = pin_note;
    std::printf("%s\n", j.dump().c_str());
  } else {
    chanpool::tools::print_table("latency_bench", o.transport, rows,
                                 "channel " + o.channel_kind + ", wait " + o.wait + ", path " + o.path + ", " + pin_note);
    std::printf("# anchor: memcpy of the same size in this process (ns): ");
    for (std::size_t i = 0; i < rows.size(); ++i) std::printf("%zu B %.1f%s", rows[i].size, memcpy_anchor[i], i + 1 < rows.size() ? ", " : "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  chanpool::transport::write_diagnostics_to_stderr();  // the library itself prints nothing
  const auto cli = chanpool::tools::latency_bench_cli::parse_command_line(argc, argv);
  chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& o = cli.options;

  if (o.bandwidth) return run_bandwidth(o);
  const std::vector<std::size_t>& sizes = o.sizes;
  std::size_t largest = 0;
  for (auto s : sizes) largest = std::max(largest, s);
  if (o.transport == "fabric") return run_fabric(o, sizes);

  const ch::channel_config config = shm_channel_config(o, largest);
  const ch::open_options where{.job = "latbench" + std::to_string(::getpid())};
  auto unlink_channels = [&] {
    ch::channel::unlink("ping", where);
    ch::channel::unlink("pong", where);
  };
  auto ping = ch::channel::create("ping", config, where);
  auto pong = ch::channel::create("pong", config, where);
  if (!ping || !pong) {
    std::fprintf(stderr, "latency_bench: cannot create channels: %s\n",
                 (!ping ? ping.error() : pong.error()).message().c_str());
    unlink_channels();
    return 1;
  }
  set_receiver_wait(o, *ping, *pong);
  for (auto s : sizes)
    if (s > ping->max_message_bytes()) {
      std::fprintf(stderr, "latency_bench: size %zu exceeds the channel's max message size %zu\n", s, ping->max_message_bytes());
      unlink_channels();
      return 2;
    }

  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("latency_bench: fork");
    unlink_channels();
    return 1;
  }
  if (child == 0) run_ponger(o, *ping, *pong, sizes, largest);

  const std::string pin_note = pin_pinger(o);
  std::vector<std::byte> source(largest, std::byte{0x5a}), buffer(largest);
  std::vector<chanpool::tools::latency_row> rows;
  std::vector<double> memcpy_anchor;
  for (auto size : sizes) {
    const bool zc = zero_copy_for(o, *ping, size);
    auto round_trip = [&] {
      send_one(*ping, source.data(), size, zc);
      recv_one(*pong, buffer, zc, nullptr);
    };
    for (std::uint64_t i = 0; i < warmup_for(o, size); ++i) round_trip();
    rows.push_back(chanpool::tools::measure_round_trips(size, iterations_for(o, size), o.batch, round_trip));
    memcpy_anchor.push_back(memcpy_ns(size));
  }
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  unlink_channels();
  report_shm(o, *ping, rows, memcpy_anchor, pin_note);
  return WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0 ? 0 : 1;
}
