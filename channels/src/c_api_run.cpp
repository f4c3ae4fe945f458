// The C API's zero-copy runs (chanpool_channel_claim_send_run and the rest, channels.h): a run
// lives in its C struct's `internal` words, copied in and out around each call like a claim (no
// allocation), with the slots' addresses and sizes laid out for C beside it.
#include <cstring>
#include <span>
#include <type_traits>

#include "c_api_support.hpp"

namespace ch = chanpool::channels;
using chanpool::capi::code;
using chanpool::capi::guarded;
using chanpool::capi::to_timeout;
using chanpool::status;

namespace {

static_assert(CHANPOOL_MAX_RUN == ch::max_run);
template <class Run, class CRun>
constexpr bool fits_in = std::is_trivially_copyable_v<Run> && sizeof(Run) <= sizeof(CRun::internal) &&
                         alignof(Run) <= alignof(std::uint64_t);
static_assert(fits_in<ch::send_run, chanpool_send_run_t>, "a send run must fit in chanpool_send_run_t::internal");
static_assert(fits_in<ch::recv_run, chanpool_recv_run_t>, "a recv run must fit in chanpool_recv_run_t::internal");

template <class Run, class CRun>
Run load_run(const CRun& c) noexcept {
  Run run;
  std::memcpy(static_cast<void*>(&run), c.internal, sizeof run);
  return run;
}

// Zeroed when the run holds nothing more, so a stale copy is not live.
void store_run(const ch::send_run& run, chanpool_send_run_t& c) noexcept {
  std::memset(&c, 0, sizeof c);
  if (!run.active()) return;
  c.count = run.size();
  c.slot_capacity = run.data(0).size();
  for (std::size_t i = 0; i < run.size(); ++i) c.data[i] = run.data(i).data();
  std::memcpy(c.internal, static_cast<const void*>(&run), sizeof run);
}

void store_run(const ch::recv_run& run, chanpool_recv_run_t& c) noexcept {
  std::memset(&c, 0, sizeof c);
  if (!run.active()) return;
  c.count = run.size();
  for (std::size_t i = 0; i < run.size(); ++i) {
    c.data[i] = run.data(i).data();
    c.size[i] = run.data(i).size();
  }
  std::memcpy(c.internal, static_cast<const void*>(&run), sizeof run);
}

}  // namespace

extern "C" {

int chanpool_channel_claim_send_run(chanpool_channel_t* channel, size_t count, chanpool_send_run_t* run,
                                    int64_t timeout_ns) {
  if (run) std::memset(run, 0, sizeof *run);
  ch::timeout t;
  if (!channel || !run || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    ch::send_run r;
    const status st = channel->channel.claim_send_run(count, r, t);
    if (st == status::ok) store_run(r, *run);
    return code(st);
  });
}

int chanpool_channel_commit_run(chanpool_channel_t* channel, chanpool_send_run_t* run, const size_t* lengths,
                                size_t n) {
  if (!channel || !run || !run->count || (n && !lengths)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto r = load_run<ch::send_run>(*run);
    const status st = channel->channel.commit(r, std::span<const std::size_t>(lengths, n));
    if (st == status::ok) store_run(r, *run);
    return code(st);
  });
}

int chanpool_channel_abandon_run(chanpool_channel_t* channel, chanpool_send_run_t* run) {
  if (!channel || !run || !run->count) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto r = load_run<ch::send_run>(*run);
    const status st = channel->channel.abandon(r);
    if (st == status::ok) std::memset(run, 0, sizeof *run);
    return code(st);
  });
}

int chanpool_channel_claim_recv_run(chanpool_channel_t* channel, size_t count, chanpool_recv_run_t* run,
                                    int64_t timeout_ns) {
  if (run) std::memset(run, 0, sizeof *run);
  ch::timeout t;
  if (!channel || !run || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    ch::recv_run r;
    const status st = channel->channel.claim_recv_run(count, r, t);
    if (st == status::ok) store_run(r, *run);
    return code(st);
  });
}

int chanpool_channel_release_run(chanpool_channel_t* channel, chanpool_recv_run_t* run) {
  if (!channel || !run || !run->count) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto r = load_run<ch::recv_run>(*run);
    const status st = channel->channel.release(r);
    if (st == status::ok) std::memset(run, 0, sizeof *run);
    return code(st);
  });
}

}  // extern "C"
