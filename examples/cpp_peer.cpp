// The C++ side of the C and Python examples: an echo server.
//
// Creates the channels "requests" and "replies" in the job $CHANPOOL_JOB (else "default"),
// receives every request, checks it, and sends it back unchanged on "replies". When the client
// seals "requests" and it is drained, seals "replies" (the client's cue that all replies are
// out), removes both names and exits.
//
//   cpp_peer [--expect N] [--idle-timeout SECONDS]
//
// Message format shared with examples/c and examples/python: bytes [0, 8) are the sequence
// number (0, 1, 2, ...) as a little-endian u64; every later byte i is (seq * 7 + i) % 251.
// Exit status: 0 on success; 1 on a bad message, a wrong count (--expect) or a channel error;
// 2 on bad arguments; 3 when no request came for --idle-timeout seconds (default 30).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"

namespace ch = chanpool::channels;
using chanpool::status;

namespace {

// Checks one request; prints why not and returns false if it is malformed or out of order.
bool check(const std::vector<std::byte>& m, std::uint64_t expected_seq) {
  if (m.size() < 8) {
    std::fprintf(stderr, "cpp_peer: message %llu has %zu bytes, fewer than the 8-byte header\n",
                 static_cast<unsigned long long>(expected_seq), m.size());
    return false;
  }
  std::uint64_t seq = 0;
  for (int i = 7; i >= 0; --i) seq = (seq << 8) | static_cast<std::uint8_t>(m[static_cast<std::size_t>(i)]);
  if (seq != expected_seq) {
    std::fprintf(stderr, "cpp_peer: expected message %llu, got %llu (lost or reordered)\n",
                 static_cast<unsigned long long>(expected_seq), static_cast<unsigned long long>(seq));
    return false;
  }
  for (std::size_t i = 8; i < m.size(); ++i) {
    if (static_cast<std::uint8_t>(m[i]) != (seq * 7 + i) % 251) {
      std::fprintf(stderr, "cpp_peer: message %llu is corrupt at byte %zu\n", static_cast<unsigned long long>(seq), i);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long long expect = -1;
  long long idle_s = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--expect" || arg == "--idle-timeout") && i + 1 < argc) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || v < 0) {
        std::fprintf(stderr, "cpp_peer: %s needs a non-negative integer\n", arg.c_str());
        return 2;
      }
      (arg == "--expect" ? expect : idle_s) = v;
    } else {
      std::fprintf(stderr, "usage: cpp_peer [--expect N] [--idle-timeout SECONDS]\n");
      return 2;
    }
  }

  // A previous run that was killed may have left the names behind: start afresh.
  (void)ch::channel::unlink("requests");
  (void)ch::channel::unlink("replies");
  const ch::channel_config config{.capacity = 64, .heap_bytes = 1u << 20};
  auto replies = ch::channel::create("replies", config);
  auto requests = ch::channel::create("requests", config);  // last: clients wait for this one
  if (!replies || !requests) {
    std::fprintf(stderr, "cpp_peer: cannot create the channels: %s\n",
                 (!replies ? replies.error() : requests.error()).message().c_str());
    return 1;
  }
  std::printf("cpp_peer: ready\n");
  std::fflush(stdout);

  int rc = 0;
  std::uint64_t echoed = 0;
  std::vector<std::byte> message;
  for (;;) {
    const status st = requests->recv(message, std::chrono::seconds(idle_s));
    if (st == status::closed) break;  // sealed by the client and drained
    if (st != status::ok) {
      std::fprintf(stderr, "cpp_peer: recv: %s\n", std::string(chanpool::to_string(st)).c_str());
      rc = st == status::timeout ? 3 : 1;
      break;
    }
    if (!check(message, echoed)) {
      rc = 1;
      break;
    }
    if (const status sent = replies->send(message, std::chrono::seconds(idle_s)); sent != status::ok) {
      std::fprintf(stderr, "cpp_peer: send: %s\n", std::string(chanpool::to_string(sent)).c_str());
      rc = 1;
      break;
    }
    ++echoed;
  }
  // Sealing tells the client that every reply is out; queued replies stay readable.
  replies->seal();
  (void)ch::channel::unlink("requests");
  (void)ch::channel::unlink("replies");
  if (rc == 0 && expect >= 0 && echoed != static_cast<std::uint64_t>(expect)) {
    std::fprintf(stderr, "cpp_peer: echoed %llu messages, expected %lld\n", static_cast<unsigned long long>(echoed),
                 expect);
    rc = 1;
  }
  std::printf("cpp_peer: echoed %llu messages\n", static_cast<unsigned long long>(echoed));
  return rc;
}
