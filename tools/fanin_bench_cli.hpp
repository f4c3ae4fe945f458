// fanin_bench's command line: the options, the message layout they are checked against, and the
// parser that turns argv into them or into what to print and the exit status. CLI11 and the
// standard library only, so that the fuzz target (tests/fuzz/fuzz_tool_cli.cpp) and
// tests/tools/tool_cli_test.cpp link it without the transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cli_result.hpp"

namespace chanpool::tools::fanin {

struct options {
  std::uint32_t nodes = 32;
  std::uint32_t senders_per_node = 4;
  std::size_t msg_size = 64;
  std::uint64_t messages_per_sender = 20000;
  double duration = 0;
  std::string aggregation = "on";
  bool mpi = false;
  std::string mpi_args;
  std::string mpi_fanin;
  bool json = false;
  std::string provider;
  std::size_t flush_bytes = 64 * 1024;
  double flush_deadline_us = 20;
  // 64 frames of 32 KiB in flight per destination: at most 2 MiB per sending node, 62 MiB
  // towards node 0 in a 32-node fan-in. Frames are capped at RxM's eager size, so
  // --rxm_buffer_bytes raises it from 16 KiB: half the frames, and half the per-frame work of
  // the sending agents, which are most of the CPU time of a fan-in. Measured on 2 cores, means
  // of 3-5 alternated runs: 16 KiB frames x 8 credits (the earlier default) 3.15 M msgs/s,
  // x 32: 3.67 M; 32 KiB x 16: 4.51-4.76 M, x 32: 5.16 M, x 64: 5.37 M; with the 64 Ki-slot
  // sink, x 32: 6.32 M, x 48: 6.44 M, x 64: 6.82 M (docs/benchmarks.md).
  std::uint32_t credits = 64;
  std::uint32_t rxm_buffer_bytes = 32 * 1024 + 256;  // 256: RxM's header; frames are 32 KiB
  // RxM's per-connection queues (FI_OFI_RXM_MSG_TX_SIZE/RX_SIZE): every agent connects to every
  // other, and RxM allocates and clears these buffers per connection at start-up.
  std::uint32_t rxm_queue_depth = 64;
  // Unset: 20 and 50 us when this host has a core for every busy thread, else 0 (see
  // choose_spins()). Polling only pays when the poller has a core of its own.
  std::optional<double> agent_spin_us;
  std::optional<double> receiver_spin_us;
  // 8 MiB of 128-byte slots: about 10 ms of messages at 6 M/s. A full sink holds node 0's agent
  // back (it retries every 50 us and returns no credit meanwhile); on 2 cores the receiver is
  // often off its core for milliseconds. 16 Ki slots: 4.81 M msgs/s mean of 4, 3.3-6.0 M;
  // 64 Ki: 5.90 M, 5.86-5.93 M (same credits, alternated runs).
  std::uint32_t sink_capacity = 65536;
  double stall_timeout = 60;
  std::string bootstrap = "auto";  // embedded, mpi, or auto: mpi when started by a launcher

  bool operator==(const options&) const = default;
};

// Message layout: [0,4) sender id | [4,8) flags (1 = final, duration mode) | [8,16) sequence |
// [16,24) send time (steady clock ns; set in messages whose sequence is a multiple of 16, the
// ones whose latency is sampled) | rest: filler.
constexpr std::size_t header_bytes = 24;
constexpr std::uint32_t final_flag = 1;
constexpr std::uint64_t latency_sample_mask = 15;

// argv[0] is the program. Never prints, exits or throws.
cli_result<options> parse_command_line(int argc, const char* const* argv);

}  // namespace chanpool::tools::fanin
