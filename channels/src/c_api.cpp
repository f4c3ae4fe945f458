// The C API (chanpool/channels.h) over channel and poll_set. Every entry point that calls more
// than a noexcept accessor runs inside guarded(): no exception may unwind into C.
#include "chanpool/channels.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/channels/error.hpp"
#include "chanpool/channels/poll_set.hpp"
#include "chanpool/channels/status.hpp"
#include "chanpool/version.hpp"
#include "c_api_support.hpp"

namespace ch = chanpool::channels;
using chanpool::capi::code;
using chanpool::capi::guarded;
using chanpool::capi::last_errc;
using chanpool::capi::to_timeout;
using chanpool::errc;
using chanpool::status;

struct chanpool_poll_set {
  ch::poll_set set;
  std::vector<ch::poll_event> ready;  // reserved by add(): a wait does not allocate
};

namespace {

// The C codes are the C++ enumerators' values (negated for errc): pinned so neither side drifts.
static_assert(CHANPOOL_OK == static_cast<int>(status::ok));
static_assert(CHANPOOL_FULL == static_cast<int>(status::full));
static_assert(CHANPOOL_EMPTY == static_cast<int>(status::empty));
static_assert(CHANPOOL_TIMEOUT == static_cast<int>(status::timeout));
static_assert(CHANPOOL_CLOSED == static_cast<int>(status::closed));
static_assert(CHANPOOL_PEER_DEAD == static_cast<int>(status::peer_dead));
static_assert(CHANPOOL_TOO_LARGE == static_cast<int>(status::too_large));
static_assert(CHANPOOL_INVALID == static_cast<int>(status::invalid));
static_assert(-CHANPOOL_E_INVALID_NAME == static_cast<int>(errc::invalid_name));
static_assert(-CHANPOOL_E_INVALID_CONFIG == static_cast<int>(errc::invalid_config));
static_assert(-CHANPOOL_E_NOT_FOUND == static_cast<int>(errc::not_found));
static_assert(-CHANPOOL_E_ALREADY_EXISTS == static_cast<int>(errc::already_exists));
static_assert(-CHANPOOL_E_PERMISSION_DENIED == static_cast<int>(errc::permission_denied));
static_assert(-CHANPOOL_E_VERSION_MISMATCH == static_cast<int>(errc::version_mismatch));
static_assert(-CHANPOOL_E_LAYOUT_MISMATCH == static_cast<int>(errc::layout_mismatch));
static_assert(-CHANPOOL_E_CORRUPTED == static_cast<int>(errc::corrupted));
static_assert(-CHANPOOL_E_NOT_READY == static_cast<int>(errc::not_ready));
static_assert(-CHANPOOL_E_OUT_OF_MEMORY == static_cast<int>(errc::out_of_memory));
static_assert(-CHANPOOL_E_PEER_UNREACHABLE == static_cast<int>(errc::peer_unreachable));
static_assert(-CHANPOOL_E_TIMED_OUT == static_cast<int>(errc::timed_out));
// The last errc (c_api_support.hpp): a new one needs its CHANPOOL_E_* here (capi_unit checks).
static_assert(-CHANPOOL_E_TIMED_OUT == chanpool::capi::last_errc);
static_assert(CHANPOOL_WAIT_SPIN == static_cast<int>(ch::wait_mode::spin));
static_assert(CHANPOOL_WAIT_IDLE == static_cast<int>(ch::wait_mode::idle));
static_assert(CHANPOOL_WAIT_ADAPTIVE == static_cast<int>(ch::wait_mode::adaptive));
static_assert(CHANPOOL_READABLE == ch::readable && CHANPOOL_WRITABLE == ch::writable);

// A claim lives in its C struct's `internal` words, copied in and out around each call, so the
// C caller can keep it on its stack and a claim costs no allocation.
template <class Claim, class CClaim>
constexpr bool fits_in = std::is_trivially_copyable_v<Claim> && sizeof(Claim) <= sizeof(CClaim::internal) &&
                         alignof(Claim) <= alignof(std::uint64_t);
static_assert(fits_in<ch::send_claim, chanpool_send_claim_t>);
static_assert(fits_in<ch::recv_claim, chanpool_recv_claim_t>);

template <class Claim, class CClaim>
Claim load_claim(const CClaim& c) noexcept {
  Claim claim;
  std::memcpy(static_cast<void*>(&claim), c.internal, sizeof claim);
  return claim;
}

void store_claim(const ch::send_claim& claim, chanpool_send_claim_t& c) noexcept {
  c.data = claim.data().data();
  c.size = claim.data().size();
  std::memcpy(c.internal, static_cast<const void*>(&claim), sizeof claim);
}

void store_claim(const ch::recv_claim& claim, chanpool_recv_claim_t& c) noexcept {
  c.data = claim.data().data();
  c.size = claim.data().size();
  std::memcpy(c.internal, static_cast<const void*>(&claim), sizeof claim);
}

ch::open_options options_for(const char* job) { return ch::open_options{.job = job ? job : ""}; }

void to_c(const ch::channel_config& in, chanpool_channel_config_t& out) noexcept {
  out.capacity = in.capacity;
  out.slot_bytes = in.slot_bytes;
  out.heap_bytes = in.heap_bytes;
  out.heap_block_bytes = in.heap_block_bytes;
  out.single_producer = in.single_producer;
  out.single_consumer = in.single_consumer;
}

// Kept for the life of the process: chanpool_strerror hands out pointers into them.
const char* setup_message(int e) {
  static const std::vector<std::string> messages = [] {
    std::vector<std::string> m;
    for (int i = 1; i <= last_errc; ++i) m.push_back(chanpool::make_error_code(static_cast<errc>(i)).message());
    return m;
  }();
  return messages[static_cast<std::size_t>(e - 1)].c_str();
}

}  // namespace

namespace {
std::atomic<chanpool::capi::strerror_extension_fn> strerror_extension{nullptr};
}  // namespace

void chanpool::capi::set_strerror_extension(strerror_extension_fn f) noexcept {
  strerror_extension.store(f, std::memory_order_release);
}

extern "C" {

const char* chanpool_version(void) { return chanpool::version().data(); }

const char* chanpool_strerror(int code) {
  switch (code) {
    case CHANPOOL_OK: return "ok: success";
    case CHANPOOL_FULL: return "full: no free slot (or heap space) and the call did not wait";
    case CHANPOOL_EMPTY: return "empty: nothing to receive and the call did not wait";
    case CHANPOOL_TIMEOUT: return "timeout: the wait's deadline passed";
    case CHANPOOL_CLOSED: return "closed: the channel was sealed (receivers: and drained)";
    case CHANPOOL_PEER_DEAD: return "peer_dead: the peer this operation depends on is gone";
    case CHANPOOL_TOO_LARGE:
      return "too_large: message larger than the channel's maximum, or than the receive buffer (it stays queued)";
    case CHANPOOL_INVALID:
      return "invalid: bad argument (NULL handle or pointer, claim not live, bad timeout) or a single-side "
             "lease held by another handle";
    case CHANPOOL_E_SYSTEM: return "operating system error (see errno)";
    case CHANPOOL_E_NO_MEMORY: return "out of memory: could not allocate a handle in this process";
    case CHANPOOL_E_INTERNAL: return "internal error: an unexpected C++ exception was caught at the C API boundary";
    default: break;
  }
  if (code < 0 && code >= -last_errc) {
    try {
      return setup_message(-code);
    } catch (...) {
      return "chanpool setup error (its description could not be allocated)";
    }
  }
  if (const chanpool::capi::strerror_extension_fn f = strerror_extension.load(std::memory_order_acquire))
    if (const char* text = f(code)) return text;
  return "unknown chanpool code";
}

void chanpool_channel_config_init(chanpool_channel_config_t* config) {
  if (config) to_c(ch::channel_config{}, *config);
}

void chanpool_wait_config_init(chanpool_wait_config_t* config) {
  if (!config) return;
  const ch::wait_config w;
  config->mode = static_cast<int>(w.mode);
  config->spin_ns = w.spin_for.count();
  config->liveness_check_ns = w.liveness_check.count();
}

int chanpool_channel_create(const char* name, const char* job, const chanpool_channel_config_t* config,
                            chanpool_channel_t** out) {
  if (out) *out = nullptr;
  if (!name || !out) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    ch::channel_config cfg;
    if (config) {
      cfg = {.capacity = config->capacity,
             .slot_bytes = config->slot_bytes,
             .heap_bytes = config->heap_bytes,
             .heap_block_bytes = config->heap_block_bytes,
             .single_producer = config->single_producer,
             .single_consumer = config->single_consumer};
    }
    // Allocate first: failing after create() would leave a segment nobody can report.
    auto handle = std::make_unique<chanpool_channel>();
    auto created = ch::channel::create(name, cfg, options_for(job));
    if (!created) return code(created.error());
    handle->channel = std::move(*created);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

int chanpool_channel_open(const char* name, const char* job, chanpool_channel_t** out) {
  if (out) *out = nullptr;
  if (!name || !out) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto handle = std::make_unique<chanpool_channel>();
    auto opened = ch::channel::open(name, options_for(job));
    if (!opened) return code(opened.error());
    handle->channel = std::move(*opened);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

void chanpool_channel_close(chanpool_channel_t* channel) {
  guarded([&]() -> int {
    delete channel;  // ~channel() closes
    return CHANPOOL_OK;
  });
}

int chanpool_channel_unlink(const char* name, const char* job) {
  if (!name) return CHANPOOL_INVALID;
  return guarded([&]() -> int { return code(ch::channel::unlink(name, options_for(job))); });
}

int chanpool_channel_set_wait(chanpool_channel_t* channel, const chanpool_wait_config_t* config) {
  if (!channel || !config) return CHANPOOL_INVALID;
  if (config->mode < CHANPOOL_WAIT_SPIN || config->mode > CHANPOOL_WAIT_ADAPTIVE || config->spin_ns < 0 ||
      config->liveness_check_ns < 0)
    return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    channel->channel.set_wait({.mode = static_cast<ch::wait_mode>(config->mode),
                               .spin_for = std::chrono::nanoseconds(config->spin_ns),
                               .liveness_check = std::chrono::nanoseconds(config->liveness_check_ns)});
    return CHANPOOL_OK;
  });
}

int chanpool_channel_send(chanpool_channel_t* channel, const void* data, size_t size, int64_t timeout_ns) {
  ch::timeout t;
  if (!channel || (!data && size) || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int { return code(channel->channel.send({static_cast<const std::byte*>(data), size}, t)); });
}

int chanpool_channel_claim_send(chanpool_channel_t* channel, size_t size, chanpool_send_claim_t* claim,
                                int64_t timeout_ns) {
  if (claim) std::memset(claim, 0, sizeof *claim);
  ch::timeout t;
  if (!channel || !claim || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    ch::send_claim c;
    const status st = channel->channel.claim_send(size, c, t);
    if (st == status::ok) store_claim(c, *claim);
    return code(st);
  });
}

int chanpool_channel_commit(chanpool_channel_t* channel, chanpool_send_claim_t* claim, size_t size) {
  if (!channel || !claim) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto c = load_claim<ch::send_claim>(*claim);
    const status st = channel->channel.commit(c, size);
    if (st == status::ok) std::memset(claim, 0, sizeof *claim);
    return code(st);
  });
}

int chanpool_channel_abandon(chanpool_channel_t* channel, chanpool_send_claim_t* claim) {
  if (!channel || !claim) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto c = load_claim<ch::send_claim>(*claim);
    const status st = channel->channel.abandon(c);
    if (st == status::ok) std::memset(claim, 0, sizeof *claim);
    return code(st);
  });
}

int chanpool_channel_recv(chanpool_channel_t* channel, void* buffer, size_t capacity, size_t* length,
                          int64_t timeout_ns) {
  if (length) *length = 0;
  ch::timeout t;
  if (!channel || (!buffer && capacity) || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    std::size_t n = 0;
    const status st = channel->channel.recv({static_cast<std::byte*>(buffer), capacity}, n, t);
    if (length && (st == status::ok || st == status::too_large)) *length = n;
    return code(st);
  });
}

int chanpool_channel_send_many(chanpool_channel_t* channel, const void* const* messages, const size_t* sizes,
                               size_t count, size_t* sent, int64_t timeout_ns) {
  if (sent) *sent = 0;
  ch::timeout t;
  if (!channel || !sent || (count && (!messages || !sizes)) || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  for (size_t i = 0; i < count; ++i)
    if (!messages[i] && sizes[i]) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    std::vector<std::span<const std::byte>> spans(count);
    for (size_t i = 0; i < count; ++i) spans[i] = {static_cast<const std::byte*>(messages[i]), sizes[i]};
    return code(channel->channel.send_many(spans, *sent, t));
  });
}

int chanpool_channel_recv_many(chanpool_channel_t* channel, void* buffer, size_t capacity, size_t* lengths,
                               size_t max_messages, size_t* received, int64_t timeout_ns) {
  if (received) *received = 0;
  ch::timeout t;
  if (!channel || !lengths || !received || !max_messages || (!buffer && capacity) || !to_timeout(timeout_ns, t))
    return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    return code(channel->channel.recv_many({static_cast<std::byte*>(buffer), capacity}, {lengths, max_messages},
                                           *received, t));
  });
}

int chanpool_channel_claim_recv(chanpool_channel_t* channel, chanpool_recv_claim_t* claim, int64_t timeout_ns) {
  if (claim) std::memset(claim, 0, sizeof *claim);
  ch::timeout t;
  if (!channel || !claim || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    ch::recv_claim c;
    const status st = channel->channel.claim_recv(c, t);
    if (st == status::ok) store_claim(c, *claim);
    return code(st);
  });
}

int chanpool_channel_release(chanpool_channel_t* channel, chanpool_recv_claim_t* claim) {
  if (!channel || !claim) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto c = load_claim<ch::recv_claim>(*claim);
    const status st = channel->channel.release(c);
    if (st == status::ok) std::memset(claim, 0, sizeof *claim);
    return code(st);
  });
}

int chanpool_channel_poll(const chanpool_channel_t* channel, chanpool_poll_info_t* info) {
  if (!channel || !info) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    const ch::poll_info p = channel->channel.poll();
    info->readable = p.readable;
    info->writable = p.writable;
    info->closed = p.closed;
    info->count = p.count;
    info->capacity = p.capacity;
    info->blocked_receivers = p.blocked_receivers;
    info->blocked_senders = p.blocked_senders;
    return CHANPOOL_OK;
  });
}

int chanpool_channel_stats(const chanpool_channel_t* channel, chanpool_channel_stats_t* stats) {
  if (!channel || !stats) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    const ch::channel_stats s = channel->channel.stats();
    stats->lost_messages = s.lost_messages;
    stats->repaired_slots = s.repaired_slots;
    stats->reclaimed_heap_blocks = s.reclaimed_heap_blocks;
    stats->corrupted_messages = s.corrupted_messages;
    stats->attached_processes = s.attached_processes;
    return CHANPOOL_OK;
  });
}

int chanpool_channel_get_config(const chanpool_channel_t* channel, chanpool_channel_config_t* config) {
  if (!channel || !config) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    to_c(channel->channel.config(), *config);
    return CHANPOOL_OK;
  });
}

int chanpool_channel_seal(chanpool_channel_t* channel) {
  if (!channel) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    channel->channel.seal();
    return CHANPOOL_OK;
  });
}

size_t chanpool_channel_repair(chanpool_channel_t* channel) {
  if (!channel) return 0;
  std::size_t repaired = 0;
  guarded([&]() -> int {
    repaired = channel->channel.repair();
    return CHANPOOL_OK;
  });
  return repaired;
}

size_t chanpool_channel_max_message_bytes(const chanpool_channel_t* channel) {
  return channel ? channel->channel.max_message_bytes() : 0;
}

size_t chanpool_channel_inline_capacity(const chanpool_channel_t* channel) {
  return channel ? channel->channel.inline_capacity() : 0;
}

int chanpool_poll_set_create(chanpool_poll_set_t** out) {
  if (!out) return CHANPOOL_INVALID;
  *out = nullptr;
  return guarded([&]() -> int {
    *out = new chanpool_poll_set{};
    return CHANPOOL_OK;
  });
}

int chanpool_poll_set_add(chanpool_poll_set_t* set, const chanpool_channel_t* channel, unsigned events,
                          size_t* index) {
  if (!set || !channel || events == 0 || (events & ~(CHANPOOL_READABLE | CHANPOOL_WRITABLE)) != 0)
    return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    set->ready.reserve(set->set.size() + 1);  // first: a failure leaves the set unchanged
    const std::size_t i = set->set.add(channel->channel, events);
    if (index) *index = i;
    return CHANPOOL_OK;
  });
}

int chanpool_poll_set_wait(chanpool_poll_set_t* set, chanpool_poll_event_t* ready, size_t capacity, size_t* count,
                           int64_t timeout_ns) {
  if (count) *count = 0;
  ch::timeout t;
  if (!set || (!ready && capacity) || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    const status st = set->set.wait(set->ready, t);
    if (st == status::ok) {
      const std::size_t n = std::min(capacity, set->ready.size());
      for (std::size_t i = 0; i < n; ++i) ready[i] = {set->ready[i].index, set->ready[i].events};
      if (count) *count = n;
    }
    return code(st);
  });
}

int chanpool_poll_set_set_spin(chanpool_poll_set_t* set, int64_t spin_ns) {
  if (!set || spin_ns < 0) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    set->set.set_spin(std::chrono::nanoseconds(spin_ns));
    return CHANPOOL_OK;
  });
}

void chanpool_poll_set_destroy(chanpool_poll_set_t* set) {
  guarded([&]() -> int {
    delete set;
    return CHANPOOL_OK;
  });
}

}  // extern "C"
