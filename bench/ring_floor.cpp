// ring_floor: the throughput floor and ceiling of this machine for a cross-process ring, as an
// anchor for channel_bench (which runs the same ring, ring_floor.hpp, beside every throughput
// case and prints the ratio). Prints messages/s for the plain-store and the CAS ring, and the
// one-way latency of a bare cache-line hand-off between the same two CPUs, the floor of a
// message's one-way latency (--version: the version).
#include <cstdio>

#include "ring_floor.hpp"
#include "version_flag.hpp"

int main(int argc, char** argv) {
  if (chanpool::tools::print_version_if_asked(argc, argv, "ring_floor")) return 0;
  const double plain = chanpool::bench::ring_floor_rate(false);
  const double cas = chanpool::bench::ring_floor_rate(true);
  std::printf("ring_floor: 64 B messages, 128 B slots, 4096 slots, 2 processes on CPUs 0 and 1\n");
  std::printf("plain stores: %6.1f M msgs/s\n", plain / 1e6);
  std::printf("CAS claims:   %6.1f M msgs/s\n", cas / 1e6);
  std::printf("line hand-off: %5.1f ns one way (a 64-byte line bounced between the two CPUs; median of 11 x 100000)\n",
              chanpool::bench::line_handoff_ns());
  return 0;
}
