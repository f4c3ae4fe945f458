// latency_bench --hops: where the one-way time of the agent path goes. The two processes note
// when they send and receive each message; the two agents note, in a hop trace
// (chanpool/transport/hop_trace.hpp), when they take it from the inbox, post its frame, see the
// frame arrive and have delivered it. All are steady_clock times on one host, so the n-th
// message of one direction can be followed through every stage.
//
// The analysis is pure: tests/tools/latency_hops_test.cpp drives it with made-up traces.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chanpool/transport/hop_trace.hpp"

namespace chanpool::tools {

// What one process of the ping-pong noted, in order: when it called send() for each message it
// sent, and when recv() returned each message it received.
struct process_marks {
  std::vector<std::uint64_t> sent_ns;
  std::vector<std::uint64_t> received_ns;
};

struct hop_stat {
  std::string name;  // e.g. "process -> agent TX"
  std::string holds; // what the interval contains
  std::int64_t median_ns = 0;
  std::int64_t p99_ns = 0;
};

struct hop_breakdown {
  std::size_t size = 0;           // message size traced
  std::uint64_t messages = 0;     // one-way messages in the figures (both directions)
  std::vector<hop_stat> hops;     // in path order; the last is the whole one-way trip
};

// node0/node1: the processes on the two nodes (node 0's sends go to node 1 and back);
// trace0/trace1: the records of each node's agent. The first `skip` messages of each direction
// (the warm-up) are left out. Returns false, with `error` saying why, when the traces do not
// follow the messages one to one (a message went point to point, or a frame carried two).
bool analyze_hops(const process_marks& node0, const process_marks& node1, const std::vector<transport::hop_record>& trace0,
                  const std::vector<transport::hop_record>& trace1, std::uint64_t skip, hop_breakdown& out,
                  std::string& error);

void print_hops(const hop_breakdown& b);
nlohmann::json hops_json(const hop_breakdown& b);

// The ponger hands its marks to the pinger through a file.
bool write_marks(const std::string& path, const process_marks& m);
bool read_marks(const std::string& path, process_marks& m);

}  // namespace chanpool::tools
