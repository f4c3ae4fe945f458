// latency_bench: ping-pong between two processes over two chanpool channels.
// One-way latency = round trip / 2; see common/latency_report.hpp for the method.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "latency_fabric.hpp"
#include "latency_report.hpp"
#include "pinning.hpp"

namespace ch = chanpool::channels;
using chanpool::status;

namespace {

struct options {
  std::string transport = "shm";
  std::string sizes_text = "8,64,1024,65536,1048576";
  std::uint64_t iterations = 100000;
  std::uint64_t large_iterations = 2000;
  std::uint64_t batch = 100;
  std::string wait = "adaptive";
  double spin_us = 50;
  std::string path = "auto";
  std::string channel_kind = "mpmc";
  bool pin = true;
  bool json = false;
  std::string fabric_mode = "both";
  std::string provider;
  double agent_spin_us = 0;
  double receiver_spin_us = 0;
};

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

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{
      "latency_bench - one-way latency between two processes over chanpool channels (ping-pong).\n\n"
      "Two processes exchange one message at a time over two channels; one-way latency is half the\n"
      "round trip: the median of batch means, and the p99 of individually timed round trips.\n"
      "Large messages (> inline capacity) use the zero-copy claim/commit path by default; the\n"
      "table also prints a plain memcpy of the same size, measured in the same run, as an anchor.\n\n"
      "Example: latency_bench --transport shm --sizes 8,64,1024,65536,1048576 --iterations 100000 --json"};
  app.add_option("--transport", o.transport,
                 "shm: two processes, two channels. fabric: two virtual nodes through libfabric (see --fabric-mode)")
      ->check(CLI::IsMember({"shm", "fabric"}));
  app.add_option("--fabric-mode", o.fabric_mode,
                 "fabric only: agent (process -> agent -> fabric -> agent -> channel -> process), direct (two "
                 "endpoints, fi_send/fi_recv, busy-polled CQ: what fi_pingpong measures) or both")
      ->check(CLI::IsMember({"agent", "direct", "both"}));
  app.add_option("--provider", o.provider, "fabric only: libfabric provider (default $FI_PROVIDER, else tcp;ofi_rxm)");
  // Defaults 0: with two cores and six threads on the path, a spinning thread only takes the
  // core from the one that has work (measured: longer spins give longer latencies here).
  app.add_option("--agent-spin-us", o.agent_spin_us, "fabric only: agent threads poll this long before sleeping");
  app.add_option("--receiver-spin-us", o.receiver_spin_us, "fabric only: the processes poll their channel this long before sleeping");
  app.add_option("--sizes", o.sizes_text, "comma-separated message sizes in bytes");
  app.add_option("--iterations", o.iterations, "round trips per size and pass")->check(CLI::Range(1ull, 1ull << 40));
  app.add_option("--large-iterations", o.large_iterations, "cap on round trips for sizes >= 64 KiB")
      ->check(CLI::Range(1ull, 1ull << 40));
  app.add_option("--batch", o.batch, "round trips per batch mean")->check(CLI::Range(1ull, 1ull << 30));
  app.add_option("--wait", o.wait, "receiver wait: spin, adaptive (spin, then futex) or idle (futex at once)")
      ->check(CLI::IsMember({"spin", "adaptive", "idle"}));
  app.add_option("--spin-us", o.spin_us, "adaptive wait: spin this long before sleeping")->check(CLI::Range(0.0, 1e7));
  app.add_option("--path", o.path, "copy (send/recv), zerocopy (claim/commit) or auto (zerocopy above inline)")
      ->check(CLI::IsMember({"copy", "zerocopy", "auto"}));
  app.add_option("--channel", o.channel_kind,
                 "mpmc (any number of senders and receivers) or spsc (declared single producer and consumer: "
                 "plain-store fast paths)")
      ->check(CLI::IsMember({"mpmc", "spsc"}));
  app.add_flag("!--no-pin", o.pin, "do not pin the two processes to distinct cores (hwloc)");
  app.add_flag("--json", o.json, "print one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::size_t> sizes;
  if (!chanpool::tools::parse_sizes(o.sizes_text, sizes)) {
    std::fprintf(stderr, "latency_bench: --sizes must be a comma-separated list of byte counts, got '%s'\n",
                 o.sizes_text.c_str());
    return 2;
  }
  std::size_t largest = 0;
  for (auto s : sizes) largest = std::max(largest, s);
  if (o.transport == "fabric") {
    chanpool::tools::fabric_latency_options fo;
    fo.sizes = sizes;
    // A fabric round trip costs microseconds, not nanoseconds: fewer by default.
    fo.iterations = app.count("--iterations") ? o.iterations : 10000;
    fo.batch = o.batch;
    fo.mode = o.fabric_mode;
    fo.provider = o.provider;
    fo.agent_spin_us = o.agent_spin_us;
    fo.receiver_spin_us = o.receiver_spin_us;
    fo.pin = o.pin;
    fo.json = o.json;
    return chanpool::tools::run_fabric_latency(fo);
  }

  ch::channel_config config;
  config.capacity = 64;
  config.slot_bytes = 128;
  config.single_producer = config.single_consumer = o.channel_kind == "spsc";
  // Room for a message in flight each way plus one being built.
  const std::uint64_t block = config.heap_block_bytes;
  config.heap_bytes = std::max<std::uint64_t>(1u << 20, (4 * largest + block - 1) / block * block);
  const ch::open_options where{.job = "latbench" + std::to_string(::getpid())};
  auto ping = ch::channel::create("ping", config, where);
  auto pong = ch::channel::create("pong", config, where);
  if (!ping || !pong) {
    std::fprintf(stderr, "latency_bench: cannot create channels: %s\n",
                 (!ping ? ping.error() : pong.error()).message().c_str());
    ch::channel::unlink("ping", where);
    ch::channel::unlink("pong", where);
    return 1;
  }
  ch::wait_config wait;
  wait.mode = o.wait == "spin" ? ch::wait_mode::spin : o.wait == "idle" ? ch::wait_mode::idle : ch::wait_mode::adaptive;
  wait.spin_for = std::chrono::nanoseconds(static_cast<std::int64_t>(o.spin_us * 1000));
  ping->set_wait(wait);
  pong->set_wait(wait);
  for (auto s : sizes)
    if (s > ping->max_message_bytes()) {
      std::fprintf(stderr, "latency_bench: size %zu exceeds the channel's max message size %zu\n", s, ping->max_message_bytes());
      return 2;
    }

  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("latency_bench: fork");
    return 1;
  }
  if (child == 0) {
    if (o.pin) chanpool::tools::pin_to_core(1);
    std::vector<std::byte> buffer(largest);
    for (auto size : sizes) {
      const bool zc = zero_copy_for(o, *ping, size);
      const std::uint64_t n = warmup_for(o, size) + chanpool::tools::round_trips_per_size(iterations_for(o, size));
      for (std::uint64_t i = 0; i < n; ++i) recv_one(*ping, buffer, zc, &*pong);
    }
    std::_Exit(0);
  }

  std::string pin_note = "pinned to cores 0 and 1 (hwloc)";
  if (o.pin) {
    if (auto why = chanpool::tools::pin_to_core(0); !why.empty()) pin_note = "not pinned: " + why;
  } else {
    pin_note = "not pinned";
  }
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
  ch::channel::unlink("ping", where);
  ch::channel::unlink("pong", where);

  if (o.json) {
    auto j = chanpool::tools::to_json("latency_bench", o.transport, rows);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      j["results"][i]["memcpy_ns"] = memcpy_anchor[i];
      j["results"][i]["path"] = zero_copy_for(o, *ping, rows[i].size) ? "zerocopy" : "copy";
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
  return WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0 ? 0 : 1;
}
