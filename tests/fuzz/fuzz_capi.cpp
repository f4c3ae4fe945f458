// Fuzz target: the C API's argument checks (channels/include/chanpool/channels.h).
//
// The input is a little program: each op byte picks a call, the bytes after it its arguments
// (names, configs, sizes, null or real pointers, timeouts of try-once or a few nanoseconds).
// Up to 32 calls; up to 4 channels and 2 poll sets are live at a time; all of them are closed at the end.
// Every call must return a documented status for any argument, and nothing may wait long.
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chanpool/channels.h"
#include "fuzz_input.hpp"

namespace {

volatile std::uint64_t sink;

struct state {
  std::array<chanpool_channel_t*, 4> channels{};
  std::array<chanpool_poll_set_t*, 2> sets{};
  std::array<chanpool_send_claim_t, 4> send_claims{};
  std::array<chanpool_recv_claim_t, 4> recv_claims{};
  std::array<chanpool_send_run_t, 4> send_runs{};
  std::array<chanpool_recv_run_t, 4> recv_runs{};
  std::string job = "fuzzc" + std::to_string(::getpid());
  std::vector<std::byte> buffer = std::vector<std::byte>(1 << 16);

  ~state() {
    for (auto*& s : sets) chanpool_poll_set_destroy(s);
    for (auto*& c : channels) chanpool_channel_close(c);
    for (int i = 0; i < 4; ++i) (void)chanpool_channel_unlink(("c" + std::to_string(i)).c_str(), job.c_str());
  }
};

// A poll set must not outlive its channels, and a claim belongs to the handle that made it: both
// are the caller's contract, not argument checks, so a channel is never swapped under them.
void replace_channel(state& s, std::size_t i, chanpool_channel_t* with) {
  for (auto*& set : s.sets) {
    chanpool_poll_set_destroy(set);
    set = nullptr;
  }
  chanpool_channel_close(s.channels[i]);
  s.channels[i] = with;
  s.send_claims[i] = {};
  s.recv_claims[i] = {};
  s.send_runs[i] = {};
  s.recv_runs[i] = {};
}

// A name: usually one of four good ones, sometimes raw bytes from the input (maybe bad). Only
// the four are ever created (`creatable`), so that ~state() can remove every segment made.
std::string pick_name(chanpool::fuzz::input& in, bool creatable = false) {
  const std::uint8_t k = in.take<std::uint8_t>();
  if (k < 200 || creatable) return "c" + std::to_string(k % 4);
  return in.bytes(k - 195);
}

std::int64_t pick_timeout(chanpool::fuzz::input& in) {
  const std::int8_t t = in.take<std::int8_t>();
  return t < -100 ? t : (t < 0 ? 0 : t);  // invalid negatives, try once, or t ns
}

void run_op(chanpool::fuzz::input& in, state& s) {
  const std::uint8_t op = in.take<std::uint8_t>();
  const std::size_t i = in.take<std::uint8_t>() % 4;
  chanpool_channel_t* c = s.channels[i];
  switch (op % 18) {
    case 0: {
      chanpool_channel_config_t cfg;
      chanpool_channel_config_init(&cfg);
      cfg.capacity = 64;  // the defaults but for a smaller ring and heap
      cfg.heap_bytes = 1u << 18;
      if (in.take<std::uint8_t>() & 1) {
        // Small sizes: the checks do not depend on magnitude, and writing a large ring at every
        // create slowed the target to a few hundred inputs a second.
        cfg.capacity = in.take<std::uint32_t>() % 1024;
        cfg.slot_bytes = in.take<std::uint32_t>() % 2048;
        cfg.heap_bytes = in.take<std::uint32_t>() % (1u << 18);
        cfg.heap_block_bytes = in.take<std::uint32_t>() % 8192;
        cfg.single_producer = in.take<std::uint8_t>() & 1;
        cfg.single_consumer = in.take<std::uint8_t>() & 1;
      }
      const std::string bad = pick_name(in);  // a create with any name: only its checks run
      chanpool_channel_t* made = nullptr;
      if (bad.rfind('c', 0) != 0 && chanpool_channel_create(bad.c_str(), s.job.c_str(), &cfg, &made) == CHANPOOL_OK) {
        chanpool_channel_close(made);
        (void)chanpool_channel_unlink(bad.c_str(), s.job.c_str());
        made = nullptr;
      }
      const std::string name = pick_name(in, true);
      if (chanpool_channel_create(name.c_str(), s.job.c_str(), &cfg, &made) == CHANPOOL_OK) replace_channel(s, i, made);
      return;
    }
    case 1: {
      const std::string name = pick_name(in);
      chanpool_channel_t* opened = nullptr;
      if (chanpool_channel_open(name.c_str(), (in.take<std::uint8_t>() & 1) ? nullptr : s.job.c_str(), &opened) ==
          CHANPOOL_OK)
        replace_channel(s, i, opened);
      return;
    }
    case 2: {
      const std::size_t size = in.take<std::uint16_t>();
      const bool null_data = in.take<std::uint8_t>() == 0;
      sink = chanpool_channel_send(c, null_data ? nullptr : s.buffer.data(), size, pick_timeout(in));
      return;
    }
    case 3: {
      std::size_t length = 0;
      const std::size_t capacity = in.take<std::uint16_t>();
      const bool null_buffer = in.take<std::uint8_t>() == 0;
      const bool null_length = in.take<std::uint8_t>() == 0;
      sink = chanpool_channel_recv(c, null_buffer ? nullptr : s.buffer.data(), capacity,
                                   null_length ? nullptr : &length, pick_timeout(in));
      if (length > capacity && sink == CHANPOOL_OK) __builtin_trap();
      return;
    }
    case 4: {
      chanpool_send_claim_t& claim = s.send_claims[i];
      const std::size_t size = in.take<std::uint16_t>();
      if (chanpool_channel_claim_send(c, size, &claim, pick_timeout(in)) == CHANPOOL_OK)
        sink = chanpool::fuzz::touch(claim.data, claim.size);
      return;
    }
    case 5: sink = chanpool_channel_commit(c, &s.send_claims[i], in.take<std::uint16_t>()); return;
    case 6: sink = chanpool_channel_abandon(c, &s.send_claims[i]); return;
    case 7: {
      chanpool_recv_claim_t& claim = s.recv_claims[i];
      if (chanpool_channel_claim_recv(c, &claim, pick_timeout(in)) == CHANPOOL_OK)
        sink = chanpool::fuzz::touch(claim.data, claim.size);
      return;
    }
    case 8: sink = chanpool_channel_release(c, &s.recv_claims[i]); return;
    case 9: {
      chanpool_poll_info_t info;
      chanpool_channel_stats_t stats;
      chanpool_channel_config_t cfg;
      const bool null_out = in.take<std::uint8_t>() == 0;
      sink = chanpool_channel_poll(c, null_out ? nullptr : &info) + chanpool_channel_stats(c, null_out ? nullptr : &stats) +
             chanpool_channel_get_config(c, null_out ? nullptr : &cfg);
      sink = chanpool_channel_max_message_bytes(c) + chanpool_channel_inline_capacity(c);
      return;
    }
    case 10: {
      chanpool_wait_config_t w;
      chanpool_wait_config_init(&w);
      w.mode = in.take<std::int8_t>();
      w.spin_ns = in.take<std::int16_t>();
      w.liveness_check_ns = in.take<std::int32_t>();
      sink = chanpool_channel_set_wait(c, (in.take<std::uint8_t>() & 1) ? nullptr : &w);
      return;
    }
    case 11: sink = chanpool_channel_seal(c) + chanpool_channel_repair(c); return;
    case 12: {
      const std::string name = pick_name(in);
      sink = chanpool_channel_unlink(name.c_str(), s.job.c_str());
      return;
    }
    case 13: {
      chanpool_poll_set_t*& set = s.sets[i % 2];
      if (!set) {
        sink = chanpool_poll_set_create(&set);
        return;
      }
      std::size_t index = 0;
      sink = chanpool_poll_set_add(set, c, in.take<std::uint8_t>(), (in.take<std::uint8_t>() & 1) ? nullptr : &index);
      return;
    }
    case 14: {
      chanpool_poll_set_t* set = s.sets[i % 2];
      std::array<chanpool_poll_event_t, 8> ready{};
      std::size_t count = 0;
      const std::size_t capacity = in.take<std::uint8_t>() % 10;
      sink = chanpool_poll_set_set_spin(set, in.take<std::int8_t>());
      sink = chanpool_poll_set_wait(set, capacity ? ready.data() : nullptr, capacity > 8 ? 8 : capacity, &count,
                                    pick_timeout(in));
      if (count > 8) __builtin_trap();
      return;
    }
    case 15: {  // a send run: claim, or commit some of it with fuzzed lengths, or abandon it
      chanpool_send_run_t& run = s.send_runs[i];
      const std::uint8_t what = in.take<std::uint8_t>() % 3;
      if (what == 0) {
        if (chanpool_channel_claim_send_run(c, in.take<std::uint8_t>(), &run, pick_timeout(in)) == CHANPOOL_OK)
          for (std::size_t k = 0; k < run.count; ++k) sink = chanpool::fuzz::touch(run.data[k], run.slot_capacity);
      } else if (what == 1) {
        std::array<size_t, 70> lengths{};
        for (auto& l : lengths) l = in.take<std::uint8_t>() & 1 ? in.take<std::uint16_t>() : in.take<std::uint8_t>();
        const std::size_t n = in.take<std::uint8_t>() % lengths.size();
        sink = chanpool_channel_commit_run(c, &run, (in.take<std::uint8_t>() & 1) ? nullptr : lengths.data(), n);
        if (run.count > CHANPOOL_MAX_RUN) __builtin_trap();
      } else {
        sink = chanpool_channel_abandon_run(c, &run);
      }
      return;
    }
    case 16: {  // a receive run: claim (reading every message) or release
      chanpool_recv_run_t& run = s.recv_runs[i];
      if (in.take<std::uint8_t>() & 1) {
        if (chanpool_channel_claim_recv_run(c, in.take<std::uint8_t>(), &run, pick_timeout(in)) == CHANPOOL_OK) {
          if (run.count == 0 || run.count > CHANPOOL_MAX_RUN) __builtin_trap();
          for (std::size_t k = 0; k < run.count; ++k) sink = chanpool::fuzz::touch(run.data[k], run.size[k]);
        }
      } else {
        sink = chanpool_channel_release_run(c, &run);
      }
      return;
    }
    default: replace_channel(s, i, nullptr); return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  chanpool::fuzz::input in(data, size);
  state s;
  for (int ops = 0; ops < 32 && !in.empty(); ++ops) run_op(in, s);
  return 0;
}
