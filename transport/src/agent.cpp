// The node agent: see agent.hpp for what it does; the comments here say how.
//
// Threads: TX drains the inbox and owns each destination's partial batch; RX owns the completion
// queue, the receive buffers, the table of target channels and everything inbound. They share
// per-destination queues (under a mutex per destination) and the control backlog.
#include "chanpool/transport/agent.hpp"

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <sys/random.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/wire.hpp"
#include "frame_check.hpp"
#include "node_state.hpp"
#include "futex.hpp"
#include "process.hpp"

namespace chanpool::transport {

using channels::channel;
using clock_type = std::chrono::steady_clock;
namespace w = wire;

namespace {

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

// Every context handed to libfabric starts with this, so a completion says what it finished.
enum class op_kind : std::uint8_t { batch_send, control_send, large_send, multi_recv, large_recv };
struct operation {
  explicit operation(op_kind k) : kind(k) {}
  op_kind kind;
};

}  // namespace

// --- per-destination outbound state -----------------------------------------------------------

struct frame_buffer : operation {
  frame_buffer(std::uint32_t dest_node, std::size_t capacity) : operation(op_kind::batch_send), dest(dest_node), bytes(capacity) {}
  std::uint32_t dest;
  std::vector<std::byte> bytes;
  std::size_t used = 0;
  std::uint32_t count = 0;
  memory_registration mr;
};

struct destination {
  std::uint32_t node = 0;
  std::mutex mu;                                  // guards free, ready, credits, next_sequence
  std::vector<std::unique_ptr<frame_buffer>> owned;
  std::vector<frame_buffer*> free;
  std::deque<frame_buffer*> ready;                // sealed, waiting for credit or for the provider
  std::uint32_t credits = 0;
  std::uint32_t next_sequence = 0;                // of the next batch frame sent
  frame_buffer* current = nullptr;                // TX thread only
  std::uint64_t current_since_ns = 0;             // TX thread only
  std::atomic<bool> has_partial{false};           // TX sets; RX reads to nudge TX on credit
  std::atomic<bool> dead{false};
  std::uint64_t next_tag = 1;                     // TX thread only
  bool listed_partial = false;                    // TX thread only: in impl::partials
};

// A control frame (credit, ack, resolve, heartbeat...) in its own buffer; freed on completion.
struct control_frame : operation {
  control_frame() : operation(op_kind::control_send) {}
  std::uint32_t dest = 0;
  std::vector<std::byte> bytes;
  memory_registration mr;
};

struct large_send : operation {
  large_send() : operation(op_kind::large_send) {}
  std::uint32_t dest = 0;
  std::vector<std::byte> payload;
  memory_registration mr;
};

// --- inbound state ------------------------------------------------------------------------------

struct recv_buffer : operation {
  explicit recv_buffer(std::size_t n) : operation(op_kind::multi_recv), bytes(new std::byte[n]), size(n) {}
  // Not value-initialised: pages are touched only when frames land in them, so the many idle
  // agents of a fan-in do not each fault in megabytes they never use.
  std::unique_ptr<std::byte[]> bytes;
  std::size_t size;
  memory_registration mr;
};

struct large_recv : operation {
  large_recv() : operation(op_kind::large_recv) {}
  std::uint32_t source = 0;
  std::uint32_t channel_id = 0;
  std::uint16_t flags = 0;
  std::uint32_t src_pid = 0;
  std::uint64_t token = 0;
  channels::send_claim claim;
  std::vector<std::byte> discard;  // where an undeliverable large message lands
  memory_registration mr;
};

// What is left of a source's batch when a target channel was full or a large message is
// arriving: delivered in order before anything newer from that source.
struct pending_fragment {
  std::vector<std::byte> messages;
  std::size_t offset = 0;
  bool returns_credit = false;  // the last fragment of a batch: its credit is owed once done
};

struct source_state {
  std::deque<pending_fragment> pending;
  large_recv* awaiting_large = nullptr;     // a tagged receive in progress blocks the source
  std::uint32_t credits_owed = 0;
  std::vector<w::ack_record> acks;
  std::uint64_t last_heard_ns = 0;
  std::uint64_t told_dead_ns = 0;  // when it was last told that this node declared it dead
  bool hello_seen = false;
  std::uint32_t next_sequence = 0;                          // batch frame expected next
  std::map<std::uint32_t, std::vector<std::byte>> early;    // batches that overtook it
};

struct target_entry {
  std::string name;
  channel ch;
};

// Channels of this node that processes write reply records into, by pid; one cache per thread.
class reply_cache {
 public:
  explicit reply_cache(const std::string& job) : job_(job) {}
  void deliver(std::uint32_t pid, const void* record, std::size_t bytes, w::reply_kind kind) {
    std::byte buf[64];
    w::reply_envelope env{static_cast<std::uint32_t>(kind), 0};
    std::memcpy(buf, &env, sizeof env);
    std::memcpy(buf + sizeof env, record, bytes);
    auto it = channels_.find(pid);
    if (it == channels_.end()) {
      auto opened = channel::open("reply-" + std::to_string(pid), {job_});
      if (!opened) return;  // the process is gone: nobody to tell
      it = channels_.emplace(pid, std::move(*opened)).first;
    }
    // A reply channel is drained by a process that waits for exactly this: a short wait is
    // enough; a process that stopped reading loses its confirmation, not the agent's progress.
    const status st = it->second.send({buf, sizeof env + bytes}, std::chrono::milliseconds(10));
    if (st == status::closed || st == status::invalid) channels_.erase(it);
  }
  void forget(std::uint32_t pid) { channels_.erase(pid); }

 private:
  std::string job_;
  std::unordered_map<std::uint32_t, channel> channels_;
};

struct agent::impl {
  impl(std::uint32_t node_index, std::uint32_t nodes, std::string job, agent_config cfg)
      : node(node_index), node_count(nodes), node_job(std::move(job)), config(std::move(cfg)),
        tx_replies(node_job), rx_replies(node_job) {}

  // --- identity and resources
  std::uint32_t node;
  std::uint32_t node_count;
  std::string node_job;
  agent_config config;
  std::uint64_t job_key = 0;
  fabric_endpoint endpoint;
  detail::node_state_mapping shared;
  channel inbox;
  std::vector<std::unique_ptr<destination>> destinations;
  // TX thread only: destinations that may hold a partial batch. The idle-time and deadline
  // checks walk this, not all node_count destinations (a fan-in sends to one of 32).
  std::vector<destination*> partials;
  std::vector<source_state> sources;
  std::vector<std::unique_ptr<recv_buffer>> recv_buffers;
  std::vector<target_entry> targets;                       // by channel id (RX thread)
  std::unordered_map<std::string, std::uint32_t> target_ids;  // RX thread
  reply_cache tx_replies;
  reply_cache rx_replies;
  std::size_t max_frame_bytes = 0;   // hard limit of a frame (see create())
  std::size_t large_threshold = 0;   // payloads above it go point to point

  // --- thread control
  std::thread tx_thread;
  std::thread rx_thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> evicted{false};  // stopped for longer than peer_timeout (frozen_for)
  // TX waits here for credit, buffers or a dead peer. Whoever changes one of those bumps
  // stall_epoch and notifies (wake_stalled); TX waits only while the epoch it saw before
  // checking is unchanged, so a notification between its check and its wait is not lost.
  // The mutex and the notification are paid only while TX waits (stall_waiters): every send
  // completion calls wake_stalled(), and most find nobody waiting.
  std::mutex stall_mu;
  std::condition_variable stall_cv;
  std::atomic<std::uint64_t> stall_epoch{0};
  std::atomic<std::uint32_t> stall_waiters{0};

  void wake_stalled() {
    // seq_cst pair with wait_stalled(): the epoch moves before the waiter count is read, the
    // count rises before the waiter reads the epoch, so one of the two sees the other.
    stall_epoch.fetch_add(1, std::memory_order_seq_cst);
    if (stall_waiters.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard lock(stall_mu); }  // a waiter between its check and its sleep finishes first
    stall_cv.notify_all();
  }
  void wait_stalled(std::uint64_t seen) {
    stall_waiters.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock lock(stall_mu);
      stall_cv.wait_for(lock, std::chrono::milliseconds(100),
                        [&] { return stall_epoch.load(std::memory_order_seq_cst) != seen || stopping.load(); });
    }
    stall_waiters.fetch_sub(1, std::memory_order_relaxed);
  }
  std::mutex backlog_mu;
  // Control frames the provider refused for now, per destination: one unreachable peer must
  // not hold back the heartbeats and credits of the others.
  std::vector<std::deque<std::unique_ptr<control_frame>>> backlog;
  std::atomic<std::uint32_t> backlog_size{0};
  std::atomic<std::uint32_t> hellos{0};
  // Sealed frames waiting in any destination's ready queue: RX looks at this, not at every
  // destination's queue under its mutex, before deciding how long it may sleep.
  std::atomic<std::uint32_t> ready_total{0};
  // A batch send got -FI_EAGAIN: RX must retry soon. Frames that wait for credit need no retry
  // (the credit frame pumps them), so RX may sleep long while they wait.
  std::atomic<bool> provider_busy{false};
  std::atomic<std::uint32_t> large_in_flight{0};
  // Deposited large sends awaiting their ack: (destination, tag) -> the sender's token. TX adds,
  // RX takes on the ack (or TX again when the send is dropped); guarded by the mutex.
  std::mutex large_tokens_mu;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> large_tokens;

  detail::node_counters& counters() noexcept { return shared.state->counters; }

  // ======================== sending frames (any thread) ========================

  void fill_header(w::frame_header& h, w::frame_kind kind, std::size_t bytes, std::uint32_t count) const noexcept {
    h.magic = w::frame_magic;
    h.version = w::protocol_version;
    h.kind = static_cast<std::uint16_t>(kind);
    h.job_key = job_key;
    h.src_node = node;
    h.bytes = static_cast<std::uint32_t>(bytes);
    h.count = count;
    h.sequence = 0;
  }

  // Sends a control frame; if the provider is busy it waits in the backlog that RX retries.
  void send_control(std::uint32_t dest, w::frame_kind kind, std::uint32_t count, const void* body, std::size_t body_bytes,
                    const void* tail = nullptr, std::size_t tail_bytes = 0) {
    auto f = std::make_unique<control_frame>();
    f->dest = dest;
    f->bytes.resize(sizeof(w::frame_header) + body_bytes + tail_bytes);
    w::frame_header h{};
    fill_header(h, kind, f->bytes.size(), count);
    std::memcpy(f->bytes.data(), &h, sizeof h);
    if (body_bytes) std::memcpy(f->bytes.data() + sizeof h, body, body_bytes);
    if (tail_bytes) std::memcpy(f->bytes.data() + sizeof h + body_bytes, tail, tail_bytes);
    if (auto mr = endpoint.register_memory(f->bytes.data(), f->bytes.size())) f->mr = std::move(*mr);
    post_control(std::move(f));
  }

  void post_control(std::unique_ptr<control_frame> f) {
    {
      std::lock_guard lock(backlog_mu);
      auto& q = backlog[f->dest];
      if (!q.empty()) {  // keep order behind what is already waiting for that peer
        q.push_back(std::move(f));
        backlog_size.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    const ssize_t rc = fi_send(endpoint.ep(), f->bytes.data(), f->bytes.size(), f->mr.desc(), f->dest, f.get());
    if (rc == 0) {
      f.release();  // owned by the completion now
    } else if (rc == -FI_EAGAIN) {
      std::lock_guard lock(backlog_mu);
      backlog[f->dest].push_back(std::move(f));
      backlog_size.fetch_add(1, std::memory_order_relaxed);
    } else {
      mark_dead(f->dest, "control send refused", rc);
    }
  }

  // RX thread: retries control frames, in order per destination.
  void retry_backlog() {
    if (backlog_size.load(std::memory_order_relaxed) == 0) return;
    std::vector<std::pair<std::uint32_t, long>> refused;
    {
      std::lock_guard lock(backlog_mu);
      for (auto& q : backlog) {
        while (!q.empty()) {
          auto& f = q.front();
          if (!destinations[f->dest]->dead.load(std::memory_order_relaxed)) {
            const ssize_t rc = fi_send(endpoint.ep(), f->bytes.data(), f->bytes.size(), f->mr.desc(), f->dest, f.get());
            if (rc == -FI_EAGAIN) break;
            if (rc == 0) {
              f.release();
            } else {
              refused.emplace_back(f->dest, rc);
            }
          }
          q.pop_front();
          backlog_size.fetch_sub(1, std::memory_order_relaxed);
        }
      }
    }
    for (auto [d, rc] : refused) mark_dead(d, "control send refused", rc);
  }

  // Sends ready frames of `d` while it has credit. Caller holds d.mu.
  void pump_locked(destination& d) {
    while (!d.ready.empty() && d.credits > 0 && !d.dead.load(std::memory_order_relaxed)) {
      frame_buffer* fb = d.ready.front();
      auto* h = reinterpret_cast<w::frame_header*>(fb->bytes.data());
      fill_header(*h, w::frame_kind::batch, fb->used, fb->count);
      h->sequence = d.next_sequence;
      const ssize_t rc = fi_send(endpoint.ep(), fb->bytes.data(), fb->used, fb->mr.desc(), d.node, fb);
      if (rc == -FI_EAGAIN) {  // RX retries after progressing
        provider_busy.store(true, std::memory_order_relaxed);
        return;
      }
      if (rc != 0) {
        mark_dead_locked(d, "batch send refused", rc);
        return;
      }
      d.ready.pop_front();
      ready_total.fetch_sub(1, std::memory_order_relaxed);
      ++d.next_sequence;
      --d.credits;
      detail::relaxed_add(counters().frames_sent, 1);
      detail::relaxed_add(counters().messages_sent, fb->count);
      detail::relaxed_add(counters().bytes_sent, fb->used);
    }
  }

  void pump(destination& d) {
    std::lock_guard lock(d.mu);
    pump_locked(d);
  }

  // ======================== TX thread ========================

  frame_buffer* take_buffer_locked(destination& d) {
    if (!d.free.empty()) {
      frame_buffer* fb = d.free.back();
      d.free.pop_back();
      return fb;
    }
    const std::size_t limit = config.credits + config.ready_batches + 1;
    if (d.owned.size() >= limit) return nullptr;
    auto fb = std::make_unique<frame_buffer>(d.node, max_frame_bytes);
    if (auto mr = endpoint.register_memory(fb->bytes.data(), fb->bytes.size())) fb->mr = std::move(*mr);
    d.owned.push_back(std::move(fb));
    return d.owned.back().get();
  }

  // Makes d.current a buffer with room, waiting for credit/buffers if all are in use. False if
  // the destination died or the agent is stopping meanwhile.
  bool ensure_current(destination& d) {
    if (d.current) return true;
    bool counted = false;
    std::uint64_t seen = stall_epoch.load(std::memory_order_acquire);
    std::unique_lock lock(d.mu);
    while (true) {
      if (d.dead.load(std::memory_order_relaxed) || stopping.load(std::memory_order_relaxed)) return false;
      if (d.ready.size() < config.ready_batches) {
        if (frame_buffer* fb = take_buffer_locked(d)) {
          fb->used = sizeof(w::frame_header);
          fb->count = 0;
          d.current = fb;
          return true;
        }
      }
      if (!counted) {
        detail::relaxed_add(counters().credit_stalls, 1);
        counted = true;
      }
      lock.unlock();
      wait_stalled(seen);
      seen = stall_epoch.load(std::memory_order_acquire);
      lock.lock();
      pump_locked(d);
    }
  }

  // Moves d.current to the ready queue and sends what credit allows.
  void seal(destination& d) {
    if (!d.current || d.current->count == 0) return;
    std::lock_guard lock(d.mu);
    d.ready.push_back(d.current);
    ready_total.fetch_add(1, std::memory_order_relaxed);
    d.current = nullptr;
    d.has_partial.store(false, std::memory_order_relaxed);
    pump_locked(d);
  }

  // Nagle's rule for a partial batch: send it at once only when nothing is in flight to that
  // destination (an idle pipe: latency wins); otherwise it keeps filling until the deadline or
  // until a credit comes back (throughput wins, and frames grow with the load).
  bool idle_pipe(destination& d) {
    std::lock_guard lock(d.mu);
    return d.ready.empty() && d.credits == config.credits;
  }
  bool can_send_now(destination& d) {
    std::lock_guard lock(d.mu);
    return d.credits > d.ready.size();
  }

  void drop_for_dead(const w::inbox_header& h) {
    detail::relaxed_add(counters().dropped_peer_dead, 1);
    if (h.flags & w::deposited) {
      w::ack_record a{h.src_pid, static_cast<std::uint8_t>(status::peer_dead), 0, {}, h.token};
      tx_replies.deliver(h.src_pid, &a, sizeof a, w::reply_kind::ack);
    }
  }

  void handle_inbox_record(std::span<const std::byte> rec) {
    if (rec.size() < sizeof(w::inbox_header)) {
      detail::relaxed_add(counters().inbox_malformed, 1);
      return;
    }
    w::inbox_header h;
    std::memcpy(&h, rec.data(), sizeof h);
    const auto payload = rec.subspan(sizeof h);
    const auto kind = static_cast<w::inbox_kind>(h.kind);
    if (kind == w::inbox_kind::flush) {
      for (destination* d : partials) seal(*d);
      return;
    }
    if (h.dest_node >= node_count || (kind != w::inbox_kind::data && kind != w::inbox_kind::resolve)) {
      detail::relaxed_add(counters().inbox_malformed, 1);
      return;
    }
    destination& d = *destinations[h.dest_node];
    if (d.dead.load(std::memory_order_relaxed)) {
      if (kind == w::inbox_kind::resolve) {
        w::resolve_reply r{h.src_pid, -1, h.token, 0, 0, 0};
        tx_replies.deliver(h.src_pid, &r, sizeof r, w::reply_kind::resolve);
      } else {
        drop_for_dead(h);
      }
      return;
    }
    if (kind == w::inbox_kind::resolve) {
      w::resolve_request req{h.src_pid, static_cast<std::uint32_t>(payload.size()), h.token};
      send_control(h.dest_node, w::frame_kind::resolve, 1, &req, sizeof req, payload.data(), payload.size());
      return;
    }
    if (payload.size() > large_threshold) {
      send_large(d, h, payload);
      return;
    }
    const std::size_t need = sizeof(w::message_header) + w::padded(payload.size());
    if (d.current && d.current->used + need > d.current->bytes.size()) seal(d);
    if (!ensure_current(d)) {
      drop_for_dead(h);
      return;
    }
    frame_buffer* fb = d.current;
    w::message_header m{static_cast<std::uint32_t>(payload.size()), h.channel_id, h.flags, 0, h.src_pid, h.token};
    std::memcpy(fb->bytes.data() + fb->used, &m, sizeof m);
    std::memcpy(fb->bytes.data() + fb->used + sizeof m, payload.data(), payload.size());
    fb->used += need;
    if (fb->count++ == 0) {
      d.current_since_ns = now_ns();
      d.has_partial.store(true, std::memory_order_relaxed);
      list_partial(d);
    }
    if (!config.aggregation || fb->used + sizeof(w::message_header) > config.flush_bytes) seal(d);
  }

  // A large payload: a descriptor in the batch (keeps the source's order at the receiver), the
  // bytes as a tagged message the receiver takes straight into the target channel.
  void send_large(destination& d, const w::inbox_header& h, std::span<const std::byte> payload) {
    while (true) {
      const std::uint64_t seen = stall_epoch.load(std::memory_order_acquire);
      if (large_in_flight.load(std::memory_order_acquire) < 2 * config.credits || stopping.load()) break;
      wait_stalled(seen);
    }
    const std::uint64_t tag = (static_cast<std::uint64_t>(node) << 40) | d.next_tag++;
    if (d.current && d.current->used + sizeof(w::message_header) > d.current->bytes.size()) seal(d);
    if (!ensure_current(d)) {
      drop_for_dead(h);
      return;
    }
    if (h.flags & w::deposited) {
      std::lock_guard lock(large_tokens_mu);
      large_tokens[{d.node, tag}] = h.token;
    }
    w::message_header m{static_cast<std::uint32_t>(payload.size()), h.channel_id,
                        static_cast<std::uint16_t>(h.flags | w::large), 0, h.src_pid, tag};
    std::memcpy(d.current->bytes.data() + d.current->used, &m, sizeof m);
    d.current->used += sizeof m;
    if (d.current->count++ == 0) d.current_since_ns = now_ns();
    seal(d);
    auto ls = std::make_unique<large_send>();
    ls->dest = d.node;
    ls->payload.assign(payload.begin(), payload.end());
    if (auto mr = endpoint.register_memory(ls->payload.data(), ls->payload.size())) ls->mr = std::move(*mr);
    while (true) {
      const ssize_t rc = fi_tsend(endpoint.ep(), ls->payload.data(), ls->payload.size(), ls->mr.desc(), d.node, tag, ls.get());
      if (rc == 0) break;
      if (rc != -FI_EAGAIN || d.dead.load() || stopping.load()) {
        {
          std::lock_guard lock(large_tokens_mu);
          large_tokens.erase({d.node, tag});
        }
        drop_for_dead(h);
        return;
      }
      std::this_thread::yield();
    }
    large_in_flight.fetch_add(1, std::memory_order_relaxed);
    detail::relaxed_add(counters().large_sent, 1);
    detail::relaxed_add(counters().bytes_sent, payload.size());
    ls.release();
  }

  void list_partial(destination& d) {
    if (d.listed_partial) return;
    d.listed_partial = true;
    partials.push_back(&d);
  }

  // idle: the inbox ran dry (producers idle): send partial batches to idle pipes. Otherwise:
  // send partial batches older than flush_deadline if credit allows. A partial batch that
  // stays keeps filling; a returning credit nudges us (flush record) to look again. Drops from
  // `partials` the destinations left without one.
  void flush_partials(bool idle) {
    const std::uint64_t now = now_ns();
    const std::uint64_t deadline = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.flush_deadline).count());
    std::size_t kept = 0;
    for (destination* dp : partials) {
      destination& d = *dp;
      if (d.current && d.current->count != 0) {
        const bool old = now - d.current_since_ns >= deadline;
        if (idle ? (old ? can_send_now(d) : idle_pipe(d)) : (old && can_send_now(d))) seal(d);
      }
      if (d.current && d.current->count != 0) {
        partials[kept++] = &d;
      } else {
        d.listed_partial = false;
      }
    }
    partials.resize(kept);
  }

  // A partial batch that credit would let go now: TX must wake for its deadline.
  bool partial_due() {
    for (destination* d : partials)
      if (d->current && d->current->count && can_send_now(*d)) return true;
    return false;
  }

  // Wakes senders waiting for inbox room once it is at least half empty (see client put()).
  void wake_room_waiters() noexcept {
    if (std::atomic_ref<std::uint32_t>(shared.state->inbox_waiters).load(std::memory_order_seq_cst) == 0) return;
    if (inbox.poll().count > config.inbox_capacity / 2) return;
    std::atomic_ref<std::uint32_t>(shared.state->inbox_room).fetch_add(1, std::memory_order_release);
    channels::detail::futex_wake(&shared.state->inbox_room, INT32_MAX);
  }

  void tx_loop() {
    channels::recv_claim claim;
    std::uint32_t since_check = 0;
    while (!stopping.load(std::memory_order_relaxed)) {
      status st = inbox.claim_recv(claim, channels::try_once);
      if (st == status::empty) {
        wake_room_waiters();
        flush_partials(true);
        // Sleep on the inbox. A partial batch that credit would let go is looked at again by its
        // deadline; one waiting for credit is not (the credit's arrival posts a flush record):
        // waking every few µs for it would burn the core its producers need.
        const bool due = partial_due();
        st = inbox.claim_recv(claim, due ? std::chrono::duration_cast<std::chrono::nanoseconds>(config.flush_deadline)
                                         : std::chrono::nanoseconds(100'000'000));
        if (st == status::timeout) flush_partials(true);
        if (st != status::ok) continue;
      } else if (st != status::ok) {
        if (st == status::closed) return;
        continue;
      }
      handle_inbox_record(claim.data());
      inbox.release(claim);
      if (++since_check == 64) {
        since_check = 0;
        flush_partials(false);
        wake_room_waiters();
      }
    }
  }

  // ======================== RX thread ========================

  std::error_code post_recv_buffer(recv_buffer& rb) {
    iovec iov{rb.bytes.get(), rb.size};
    void* desc = rb.mr.desc();
    fi_msg msg{};
    msg.msg_iov = &iov;
    msg.desc = &desc;
    msg.iov_count = 1;
    msg.addr = FI_ADDR_UNSPEC;
    msg.context = &rb;
    while (true) {
      const ssize_t rc = fi_recvmsg(endpoint.ep(), &msg, FI_MULTI_RECV);
      if (rc == 0) return {};
      if (rc != -FI_EAGAIN) return fabric_error(rc);
      fi_cq_data_entry e;
      fi_cq_read(endpoint.cq(), &e, 0);  // progress only
    }
  }

  // A frame from a peer this node declared dead: it came back (stopped or cut off for longer
  // than peer_timeout). Its work has been given to others, so nothing it sends now is used;
  // it is told so, at most once per heartbeat interval, and leaves (declared_dead_by).
  void drop_late_frame(std::uint32_t s, source_state& src) {
    detail::relaxed_add(counters().dropped_from_dead, 1);
    if (detail::load_peer(shared.state, s) != peer_state::dead) return;  // it left: nothing to tell
    const std::uint64_t now = now_ns();
    const auto interval = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.heartbeat_interval).count());
    if (src.told_dead_ns != 0 && now - src.told_dead_ns < interval) return;
    src.told_dead_ns = now;
    send_control(s, w::frame_kind::declared_dead, 0, nullptr, 0);
  }

  // Peer s declared this node dead and drops its frames: s is dead to this node too (a node
  // whose orchestrator did this sees peer_dead and leaves). Views stay symmetric; a survivor told
  // so by a node that came back already had that node dead, so nothing changes there.
  void declared_dead_by(std::uint32_t s) {
    detail::relaxed_add(counters().declared_dead_by_peer, 1);
    mark_dead(s, "it declared this node dead");
  }

  // The RX thread was not scheduled for longer than peer_timeout (the process was stopped, or
  // starved): every peer has declared this node dead by now. It leaves before handling anything
  // that arrived meanwhile, rather than act on a view the others no longer share.
  void frozen_for(std::uint64_t ns) {
    if (evicted.exchange(true, std::memory_order_relaxed)) return;
    std::fprintf(stderr, "chanpool agent (node %u): this node was stopped for %.1f s, longer than peer_timeout: "
                 "its peers have declared it dead; it leaves the job\n", node, static_cast<double>(ns) * 1e-9);
    for (std::uint32_t p = 0; p < node_count; ++p)
      if (p != node) mark_dead(p, "this node was stopped for longer than peer_timeout");
  }

  void mark_dead(std::uint32_t peer, const char* why, long code = 0) {
    if (peer >= node_count || peer == node) return;
    destination& d = *destinations[peer];
    {
      std::lock_guard lock(d.mu);
      mark_dead_locked(d, why, code);
    }
    wake_stalled();
  }

  // Caller holds d.mu. Frames queued for a dead peer are dropped and counted; senders learn
  // of it from the peer state (status::peer_dead).
  void mark_dead_locked(destination& d, const char* why, long code = 0) {
    if (d.node == node || d.dead.exchange(true)) return;
    // An orderly goodbye is not news; anything else is worth a line on the agent's stderr.
    if (std::strcmp(why, "left") != 0)
      std::fprintf(stderr, "chanpool agent (node %u): node %u is unreachable: %s%s%s\n", node, d.node, why,
                   code ? ": " : "", code ? fi_strerror(static_cast<int>(code < 0 ? -code : code)) : "");
    if (detail::load_peer(shared.state, d.node) != peer_state::left) detail::store_peer(shared.state, d.node, peer_state::dead);
    detail::relaxed_add(counters().peers_dead, 1);
    std::uint64_t dropped = 0;
    for (frame_buffer* fb : d.ready) {
      dropped += fb->count;
      d.free.push_back(fb);
    }
    ready_total.fetch_sub(static_cast<std::uint32_t>(d.ready.size()), std::memory_order_relaxed);
    d.ready.clear();
    detail::relaxed_add(counters().dropped_peer_dead, dropped);
  }

  // Acks go out at once (a deposited sender waits for them). Credits go out in batches of a
  // quarter window while completions keep coming, and all of them when the CQ runs dry
  // (all = true): under load that is a quarter of the credit frames, and of the wake-ups they
  // cost the sending agents, and an idle receiver still returns every credit at once.
  void send_acks_and_credits(std::uint32_t s, bool all) {
    source_state& src = sources[s];
    if (!src.acks.empty()) {
      send_control(s, w::frame_kind::ack, static_cast<std::uint32_t>(src.acks.size()), src.acks.data(),
                   src.acks.size() * sizeof(w::ack_record));
      src.acks.clear();
    }
    if (src.credits_owed && (all || src.credits_owed >= std::max(1u, config.credits / 4))) {
      send_control(s, w::frame_kind::credit, src.credits_owed, nullptr, 0);
      src.credits_owed = 0;
    }
  }

  void return_all_credits() {
    for (std::uint32_t s = 0; s < node_count; ++s)
      if (sources[s].credits_owed) send_acks_and_credits(s, true);
  }

  void ack(std::uint32_t s, const w::message_header& m, status st) {
    if (!(m.flags & w::deposited)) return;
    const std::uint8_t flags = (m.flags & w::large) ? w::ack_of_large : 0;
    sources[s].acks.push_back({m.src_pid, static_cast<std::uint8_t>(st), flags, {}, m.token});
  }

  // Delivers messages from [p, end) of source s until one cannot be delivered now. Returns the
  // position reached (end when all went, or nullptr for a malformed batch).
  const std::byte* deliver(std::uint32_t s, const std::byte* p, const std::byte* end) {
    std::uint64_t delivered = 0;
    while (p < end) {
      w::message_header m;
      std::size_t body = 0;
      if (detail::next_message(p, end, m, body) != detail::batch_step::message) {
        p = nullptr;
        break;
      }
      const bool large = m.flags & w::large;
      if (m.channel_id >= targets.size() || !targets[m.channel_id].ch.is_open()) {
        detail::relaxed_add(counters().dropped_unknown_channel, 1);
        ack(s, m, status::invalid);
        p += sizeof m + body;
        continue;
      }
      channel& ch = targets[m.channel_id].ch;
      if (large) {
        if (!start_large_recv(s, m, ch)) {  // channel full: try again later
          detail::relaxed_add(counters().delivery_holds, 1);
          break;
        }
        p += sizeof m;
        break;  // the source waits for the tagged message before anything after it
      }
      const status st = ch.try_send({p + sizeof m, m.length});
      if (st == status::full) {
        detail::relaxed_add(counters().delivery_holds, 1);
        break;
      }
      if (st == status::ok) {
        ++delivered;
      } else {
        detail::relaxed_add(counters().dropped_undeliverable, 1);
      }
      ack(s, m, st);
      p += sizeof m + body;
    }
    detail::relaxed_add(counters().messages_delivered, delivered);
    return p;
  }

  bool start_large_recv(std::uint32_t s, const w::message_header& m, channel& ch) {
    auto lr = std::make_unique<large_recv>();
    const status st = ch.claim_send(m.length, lr->claim, channels::try_once);
    if (st == status::full) return false;
    lr->source = s;
    lr->channel_id = m.channel_id;
    lr->flags = m.flags;
    lr->src_pid = m.src_pid;
    lr->token = m.token;
    if (st != status::ok) {
      // Cannot take it (too large, closed): receive it anyway so the sender's tagged send
      // completes, then drop it.
      detail::relaxed_add(counters().dropped_undeliverable, 1);
      ack(s, m, st);
    }
    std::byte* dst = nullptr;
    if (lr->claim.active()) {
      dst = lr->claim.data().data();
    } else {
      lr->discard.resize(m.length);
      dst = lr->discard.data();
    }
    if (auto mr = endpoint.register_memory(dst, m.length)) lr->mr = std::move(*mr);
    while (true) {
      const ssize_t rc = fi_trecv(endpoint.ep(), dst, m.length, lr->mr.desc(), s, m.token, 0, lr.get());
      if (rc == 0) break;
      if (rc != -FI_EAGAIN) {
        if (lr->claim.active()) ch.abandon(lr->claim);
        detail::relaxed_add(counters().dropped_malformed, 1);
        return true;  // skip it
      }
      fi_cq_data_entry e;
      fi_cq_read(endpoint.cq(), &e, 0);
    }
    sources[s].awaiting_large = lr.release();
    return true;
  }

  void finish_large_recv(large_recv* lr, bool ok) {
    std::unique_ptr<large_recv> owner(lr);
    source_state& src = sources[lr->source];
    if (src.awaiting_large == lr) src.awaiting_large = nullptr;
    if (lr->claim.active()) {
      channel& ch = targets[lr->channel_id].ch;
      if (ok) {
        ch.commit(lr->claim);
        detail::relaxed_add(counters().messages_delivered, 1);
      } else {
        ch.abandon(lr->claim);
      }
      w::message_header m{0, lr->channel_id, lr->flags, 0, lr->src_pid, lr->token};
      ack(lr->source, m, ok ? status::ok : status::peer_dead);
    }
    drain_pending(lr->source);
  }

  // Delivers the source's held-back messages in order; stops at the first that cannot go yet.
  void drain_pending(std::uint32_t s) {
    source_state& src = sources[s];
    while (!src.pending.empty() && !src.awaiting_large) {
      pending_fragment& f = src.pending.front();
      const std::byte* begin = f.messages.data() + f.offset;
      const std::byte* end = f.messages.data() + f.messages.size();
      const std::byte* reached = deliver(s, begin, end);
      if (!reached) {
        detail::relaxed_add(counters().dropped_malformed, 1);
        reached = end;
      }
      f.offset = static_cast<std::size_t>(reached - f.messages.data());
      if (reached != end) return;
      if (f.returns_credit) ++src.credits_owed;
      src.pending.pop_front();
    }
  }

  // An in-sequence batch: deliver what can go now, keep the rest in order behind it.
  void accept_batch(std::uint32_t s, const std::byte* body, const std::byte* end, std::size_t frame_bytes) {
    source_state& src = sources[s];
    ++src.next_sequence;
    detail::relaxed_add(counters().frames_received, 1);
    detail::relaxed_add(counters().bytes_received, frame_bytes);
    if (!src.pending.empty() || src.awaiting_large) {
      src.pending.push_back({std::vector<std::byte>(body, end), 0, true});
      return;
    }
    const std::byte* reached = deliver(s, body, end);
    if (!reached) {
      detail::relaxed_add(counters().dropped_malformed, 1);
      ++src.credits_owed;
    } else if (reached == end && !src.awaiting_large) {
      ++src.credits_owed;
    } else {
      src.pending.push_back({std::vector<std::byte>(reached, end), 0, true});
    }
  }

  // Checks a frame and dispatches it. Everything in it is untrusted.
  void handle_frame(const std::byte* data, std::size_t len) {
    detail::frame_view f;
    const detail::frame_verdict verdict = detail::check_frame(data, len, node_count, job_key, f);
    if (verdict != detail::frame_verdict::ok) {
      detail::relaxed_add(verdict == detail::frame_verdict::bad_key ? counters().dropped_bad_key : counters().dropped_malformed, 1);
      return;
    }
    const w::frame_header& h = f.header;
    const std::uint32_t s = h.src_node;
    source_state& src = sources[s];
    const auto kind = static_cast<w::frame_kind>(h.kind);
    if (kind != w::frame_kind::goodbye && kind != w::frame_kind::declared_dead &&
        destinations[s]->dead.load(std::memory_order_relaxed)) {
      drop_late_frame(s, src);
      return;
    }
    src.last_heard_ns = now_ns();
    const std::byte* body = f.body;
    const std::byte* end = data + len;
    switch (kind) {
      case w::frame_kind::hello:
        if (!src.hello_seen) {
          src.hello_seen = true;
          detail::store_peer(shared.state, s, peer_state::alive);
          hellos.fetch_add(1, std::memory_order_release);
        }
        return;
      case w::frame_kind::heartbeat:
        return;
      case w::frame_kind::goodbye:
        detail::store_peer(shared.state, s, peer_state::left);
        mark_dead(s, "left");
        return;
      case w::frame_kind::declared_dead:
        declared_dead_by(s);
        return;
      case w::frame_kind::credit: {
        destination& d = *destinations[s];
        {
          std::lock_guard lock(d.mu);
          // Never above the window: a forged or duplicated credit frame cannot unbound it.
          d.credits = std::min(d.credits + h.count, config.credits);
          pump_locked(d);
        }
        wake_stalled();
        // A partial batch held back for lack of credit can go now: wake TX if it sleeps.
        if (d.has_partial.load(std::memory_order_relaxed)) {
          w::inbox_header f{0, 0, static_cast<std::uint16_t>(w::inbox_kind::flush), 0, 0, 0};
          (void)inbox.try_send({reinterpret_cast<const std::byte*>(&f), sizeof f});
        }
        return;
      }
      case w::frame_kind::batch: {
        if (h.sequence != src.next_sequence) {
          // Overtaken: keep it until the ones before it are in. At most a window's worth can
          // be ahead; anything further is not from a well-behaved peer.
          const std::uint32_t ahead = h.sequence - src.next_sequence;
          if (ahead > 4 * config.credits + 4 || src.early.count(h.sequence)) break;
          src.early.emplace(h.sequence, std::vector<std::byte>(body, end));
          return;
        }
        accept_batch(s, body, end, len);
        while (true) {
          auto it = src.early.find(src.next_sequence);
          if (it == src.early.end()) break;
          const std::vector<std::byte> held = std::move(it->second);
          src.early.erase(it);
          accept_batch(s, held.data(), held.data() + held.size(), held.size() + sizeof h);
        }
        return;
      }
      case w::frame_kind::resolve: {
        w::resolve_request req;
        std::string_view requested;
        if (!detail::decode_resolve(f, req, requested)) break;
        const std::string name(requested);
        w::resolve_reply rep{req.src_pid, 0, req.token, 0, 0, 0};
        auto opened = channel::open(name, {node_job});
        if (!opened) {
          rep.error = opened.error().value();
        } else {
          auto [it, fresh] = target_ids.try_emplace(name, static_cast<std::uint32_t>(targets.size()));
          if (fresh) targets.push_back({name, {}});
          // Re-opened at every resolve: a channel re-created under the same name is picked up.
          targets[it->second].ch = std::move(*opened);
          rep.channel_id = it->second;
          rep.max_message_bytes = targets[it->second].ch.max_message_bytes();
        }
        send_control(s, w::frame_kind::resolve_reply, 1, &rep, sizeof rep);
        return;
      }
      case w::frame_kind::resolve_reply: {
        w::resolve_reply rep;
        if (!detail::decode_resolve_reply(f, rep)) break;
        rx_replies.deliver(rep.src_pid, &rep, sizeof rep, w::reply_kind::resolve);
        return;
      }
      case w::frame_kind::ack: {
        if (!detail::check_acks(f)) break;
        for (std::uint32_t i = 0; i < h.count; ++i) {
          w::ack_record a = detail::ack_at(f, i);
          if (a.flags & w::ack_of_large) {
            std::lock_guard lock(large_tokens_mu);
            const auto it = large_tokens.find({s, a.token});
            if (it == large_tokens.end()) {  // not a deposited large send of ours to that node
              detail::relaxed_add(counters().dropped_malformed, 1);
              continue;
            }
            a.token = it->second;
            a.flags = 0;
            large_tokens.erase(it);
          }
          rx_replies.deliver(a.src_pid, &a, sizeof a, w::reply_kind::ack);
        }
        return;
      }
    }
    detail::relaxed_add(counters().dropped_malformed, 1);
  }

  std::vector<recv_buffer*> released;  // RX thread: buffers to repost after the current CQ read

  void handle_completion(const fi_cq_data_entry& e, std::vector<std::uint32_t>& touched) {
    auto* op = static_cast<operation*>(e.op_context);
    if (!op) return;
    switch (op->kind) {
      case op_kind::multi_recv: {
        auto* rb = static_cast<recv_buffer*>(op);
        if (e.len) {
          // Frames name their source; note it so credits/acks go out after this CQ read.
          w::frame_header h;
          if (e.len >= sizeof h) {
            std::memcpy(&h, e.buf, sizeof h);
            if (h.src_node < node_count) touched.push_back(h.src_node);
          }
          handle_frame(static_cast<const std::byte*>(e.buf), e.len);
        }
        // Released: repost once every completion of this read is handled (a release may be
        // reported ahead of completions that still point into the buffer).
        if (e.flags & FI_MULTI_RECV) released.push_back(rb);
        return;
      }
      case op_kind::batch_send: {
        auto* fb = static_cast<frame_buffer*>(op);
        destination& d = *destinations[fb->dest];
        {
          std::lock_guard lock(d.mu);
          d.free.push_back(fb);
        }
        wake_stalled();
        return;
      }
      case op_kind::control_send:
        delete static_cast<control_frame*>(op);
        return;
      case op_kind::large_send:
        delete static_cast<large_send*>(op);
        large_in_flight.fetch_sub(1, std::memory_order_release);
        wake_stalled();
        return;
      case op_kind::large_recv: {
        auto* lr = static_cast<large_recv*>(op);
        touched.push_back(lr->source);
        finish_large_recv(lr, true);
        return;
      }
    }
  }

  void handle_error_completion() {
    fi_cq_err_entry err{};
    if (fi_cq_readerr(endpoint.cq(), &err, 0) <= 0) return;
    auto* op = static_cast<operation*>(err.op_context);
    if (!op) return;
    switch (op->kind) {
      case op_kind::batch_send: {
        auto* fb = static_cast<frame_buffer*>(op);
        destination& d = *destinations[fb->dest];
        {
          std::lock_guard lock(d.mu);
          d.free.push_back(fb);
          detail::relaxed_add(counters().dropped_peer_dead, fb->count);
        }
        mark_dead(fb->dest, "batch send failed", err.err);
        return;
      }
      case op_kind::control_send: {
        auto* f = static_cast<control_frame*>(op);
        const std::uint32_t d = f->dest;
        delete f;
        mark_dead(d, "control send failed", err.err);
        return;
      }
      case op_kind::large_send: {
        auto* ls = static_cast<large_send*>(op);
        const std::uint32_t d = ls->dest;
        delete ls;
        large_in_flight.fetch_sub(1, std::memory_order_release);
        mark_dead(d, "large send failed", err.err);
        return;
      }
      case op_kind::multi_recv: {
        auto* rb = static_cast<recv_buffer*>(op);
        // A frame larger than what is left of a buffer, or a cancel at shutdown.
        if (err.err != FI_ECANCELED) {
          detail::relaxed_add(counters().dropped_malformed, 1);
          if (err.flags & FI_MULTI_RECV) (void)post_recv_buffer(*rb);
        }
        return;
      }
      case op_kind::large_recv: {
        auto* lr = static_cast<large_recv*>(op);
        if (err.err != FI_ECANCELED) finish_large_recv(lr, false);
        return;
      }
    }
  }

  [[noreturn]] void fatal(const char* what, std::error_code ec) {
    std::fprintf(stderr, "chanpool agent (node %u): %s: %s\n", node, what, ec.message().c_str());
    std::abort();
  }

  void tick(std::uint64_t now, std::uint64_t& next_heartbeat) {
    retry_backlog();
    if (provider_busy.exchange(false, std::memory_order_relaxed) && any_ready())
      for (auto& d : destinations) {
        std::lock_guard lock(d->mu);
        if (!d->ready.empty()) pump_locked(*d);
      }
    for (std::uint32_t s = 0; s < node_count; ++s)
      if (!sources[s].pending.empty()) {
        drain_pending(s);
        send_acks_and_credits(s, true);
      }
    if (now < next_heartbeat) return;
    const auto interval = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.heartbeat_interval).count());
    const auto timeout = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.peer_timeout).count());
    next_heartbeat = now + interval;
    for (std::uint32_t p = 0; p < node_count; ++p) {
      if (p == node || destinations[p]->dead.load(std::memory_order_relaxed)) continue;
      // last_heard may be later than `now` (set while handling completions after it was read).
      const std::uint64_t heard = sources[p].last_heard_ns;
      if (heard && now > heard && now - heard > timeout) {
        mark_dead(p, "no frame within peer_timeout");
        continue;
      }
      send_control(p, w::frame_kind::heartbeat, 0, nullptr, 0);
    }
  }

  bool any_ready() const noexcept { return ready_total.load(std::memory_order_relaxed) != 0; }

  bool rx_has_pending() const {
    for (const auto& s : sources)
      if (!s.pending.empty()) return true;
    return false;
  }

  void rx_loop() {
    constexpr std::size_t batch = 64;
    fi_cq_data_entry entries[batch];
    std::vector<std::uint32_t> touched;
    std::uint64_t next_heartbeat = now_ns();
    std::uint64_t last_activity = now_ns();
    std::uint64_t next_tick = 0;
    const auto spin_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.spin).count());
    const auto timeout_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(config.peer_timeout).count());
    std::uint64_t last_pass = now_ns();  // a pass waits at most 50 ms
    while (!stopping.load(std::memory_order_relaxed)) {
      ssize_t n = fi_cq_read(endpoint.cq(), entries, batch);
      std::uint64_t now = now_ns();
      if (n == -FI_EAGAIN) {
        return_all_credits();
        if (now - last_activity > spin_ns && !rx_has_pending()) {
          // Sleep until a completion arrives (the CQ's wait object) or a tick is due: soon when
          // something waits to be retried, else at the next heartbeat (at most 50 ms).
          const bool retry_soon =
              backlog_size.load(std::memory_order_relaxed) > 0 || provider_busy.load(std::memory_order_relaxed);
          const std::uint64_t until_heartbeat = next_heartbeat > now ? (next_heartbeat - now) / 1'000'000 : 0;
          const int ms = retry_soon ? 1 : static_cast<int>(std::clamp<std::uint64_t>(until_heartbeat, 1, 50));
          if (endpoint.info().cq_fd_wait) {
            n = fi_cq_sread(endpoint.cq(), entries, batch, nullptr, ms);
          } else {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
            n = fi_cq_read(endpoint.cq(), entries, batch);
          }
          now = now_ns();
        } else if (rx_has_pending()) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      }
      if (now - last_pass > timeout_ns) frozen_for(now - last_pass);  // before what arrived meanwhile
      last_pass = now;
      if (n > 0) {
        last_activity = now;
        touched.clear();
        for (ssize_t i = 0; i < n; ++i) handle_completion(entries[i], touched);
        for (recv_buffer* rb : released)
          if (auto ec = post_recv_buffer(*rb); ec) fatal("reposting a receive buffer", ec);
        released.clear();
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (std::uint32_t s : touched) send_acks_and_credits(s, false);
      } else if (n == -FI_EAVAIL) {
        handle_error_completion();
      }
      if (now >= next_tick) {
        next_tick = now + 1'000'000;  // 1 ms
        tick(now, next_heartbeat);
      }
    }
  }
};

// ======================== public surface ========================

agent::agent(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

agent::~agent() {
  stop();
  if (impl_) {
    // The endpoint first (the provider lets go of posted and in-flight buffers), then the
    // buffers and their registrations, then the domain.
    impl_->endpoint.close_endpoint();
    for (auto& d : impl_->destinations) d->owned.clear();
    impl_->recv_buffers.clear();
    {
      std::lock_guard lock(impl_->backlog_mu);
      impl_->backlog.clear();
    }

    impl_->endpoint.close();
    channel::unlink(detail::inbox_name, {impl_->node_job});
    detail::unlink_node_state(impl_->node_job);
  }
}

result<std::unique_ptr<agent>> agent::create(std::uint32_t node, std::uint32_t node_count, const std::string& node_job,
                                             const agent_config& config) {
  if (node_count == 0 || node_count > detail::max_nodes || node >= node_count) return errc::invalid_config;
  if (config.flush_bytes < 256 || config.credits == 0 || config.recv_buffers == 0 ||
      config.recv_buffer_bytes < 2 * (config.flush_bytes + 4096))
    return errc::invalid_config;
  auto p = std::make_unique<impl>(node, node_count, node_job, config);

  auto shared = detail::create_node_state(node_job);
  if (!shared) return shared.error();
  p->shared = std::move(*shared);

  endpoint_config ec;
  ec.provider = config.provider;
  ec.node = config.listen_address;
  auto ep = fabric_endpoint::open(ec);
  if (!ep) return ep.error();
  p->endpoint = std::move(*ep);
  if (p->endpoint.address().size() > sizeof(p->shared.state->address)) return errc::invalid_config;

  channels::channel_config inbox_cfg;
  inbox_cfg.capacity = config.inbox_capacity;
  inbox_cfg.slot_bytes = 128;  // a 64 B payload plus the 24 B inbox header stays inline
  inbox_cfg.heap_bytes = 64u << 20;
  inbox_cfg.single_consumer = true;
  channel::unlink(detail::inbox_name, {node_job});  // a dead agent's; the node state was free
  auto inbox = channel::create(detail::inbox_name, inbox_cfg, {node_job});
  if (!inbox) return inbox.error();
  p->inbox = std::move(*inbox);
  channels::wait_config wc;
  wc.spin_for = config.spin;
  p->inbox.set_wait(wc);

  // Frames: a batch of flush_bytes plus one message that overflowed it, rounded.
  // A frame never exceeds the provider's eager size. RxM (tcp, verbs) moves larger messages by
  // segmentation or rendezvous, and on those paths libfabric 1.17 can report a FI_MULTI_RECV
  // buffer as released while a message into it is still arriving: reposting it then corrupts
  // frames (seen here at 32 nodes; see docs/transport.md). RxM's eager size is
  // FI_OFI_RXM_BUFFER_SIZE (16 KiB by default) including its own header.
  std::size_t frame_limit = config.flush_bytes;
  if (p->endpoint.info().provider.find("ofi_rxm") != std::string::npos) {
    std::size_t eager = 16384;
    if (const char* env = std::getenv("FI_OFI_RXM_BUFFER_SIZE"); env && std::atoll(env) > 0)
      eager = static_cast<std::size_t>(std::atoll(env));
    frame_limit = std::min(frame_limit, eager - 256);
  }
  p->config.flush_bytes = frame_limit;
  p->max_frame_bytes = frame_limit;
  // Rounded down to 8 so that a payload at the threshold plus its padding still fits a frame.
  p->large_threshold = std::min(config.large_threshold,
                                (frame_limit - sizeof(wire::frame_header) - sizeof(wire::message_header)) & ~std::size_t{7});
  for (std::uint32_t i = 0; i < node_count; ++i) {
    p->destinations.push_back(std::make_unique<destination>());
    p->destinations.back()->node = i;
    p->destinations.back()->credits = config.credits;
  }
  p->sources.resize(node_count);
  p->backlog.resize(node_count);

  detail::node_state* s = p->shared.state;
  s->node = node;
  s->node_count = node_count;
  s->address_bytes = static_cast<std::uint32_t>(p->endpoint.address().size());
  std::memcpy(s->address, p->endpoint.address().data(), s->address_bytes);
  std::snprintf(s->provider, sizeof s->provider, "%s", p->endpoint.info().provider.c_str());
  detail::publish_node_state(s);
  return std::unique_ptr<agent>(new agent(std::move(p)));
}

const std::vector<std::byte>& agent::address() const noexcept { return impl_->endpoint.address(); }
const endpoint_info& agent::fabric_info() const noexcept { return impl_->endpoint.info(); }
const agent_config& agent::config() const noexcept { return impl_->config; }
std::uint32_t agent::node() const noexcept { return impl_->node; }
std::uint32_t agent::node_count() const noexcept { return impl_->node_count; }
agent_stats agent::stats() const noexcept { return detail::stats_from(impl_->shared.state->counters); }

std::error_code agent::connect(const std::vector<std::vector<std::byte>>& peers, std::uint64_t job_key,
                               std::chrono::milliseconds timeout) {
  impl& p = *impl_;
  if (peers.size() != p.node_count) return errc::invalid_config;
  p.job_key = job_key;
  if (auto ec = p.endpoint.insert_peers(peers); ec) return ec;

  // Receive buffers: the provider fills each with many frames and releases it when less than
  // the largest frame is left.
  std::size_t min_left = p.max_frame_bytes;
  fi_setopt(&p.endpoint.ep()->fid, FI_OPT_ENDPOINT, FI_OPT_MIN_MULTI_RECV, &min_left, sizeof min_left);
  for (std::uint32_t i = 0; i < p.config.recv_buffers; ++i) {
    auto rb = std::make_unique<recv_buffer>(p.config.recv_buffer_bytes);
    if (auto mr = p.endpoint.register_memory(rb->bytes.get(), rb->size); mr) {
      rb->mr = std::move(*mr);
    } else {
      return mr.error();
    }
    if (auto ec = p.post_recv_buffer(*rb); ec) return ec;
    p.recv_buffers.push_back(std::move(rb));
  }
  std::atomic_ref<std::uint32_t>(p.shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::connecting), std::memory_order_release);
  detail::store_peer(p.shared.state, p.node, peer_state::alive);
  p.sources[p.node].hello_seen = true;

  p.rx_thread = std::thread([&p] { p.rx_loop(); });
  for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
    if (peer != p.node) p.send_control(peer, wire::frame_kind::hello, 0, nullptr, 0);

  const auto deadline = clock_type::now() + timeout;
  while (p.hellos.load(std::memory_order_acquire) < p.node_count - 1) {
    if (clock_type::now() > deadline) {
      std::string missing;
      for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
        if (detail::load_peer(p.shared.state, peer) != peer_state::alive) missing.append(" ").append(std::to_string(peer));
      std::fprintf(stderr, "chanpool agent (node %u): no hello within %lld ms from node(s)%s\n", p.node,
                   static_cast<long long>(timeout.count()), missing.c_str());
      return fabric_error(-FI_ETIMEDOUT);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  p.tx_thread = std::thread([&p] { p.tx_loop(); });
  std::atomic_ref<std::uint32_t>(p.shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::ready), std::memory_order_release);
  return {};
}

void agent::stop() noexcept {
  if (!impl_) return;
  impl& p = *impl_;
  if (p.stopped.exchange(true)) return;
  if (p.rx_thread.joinable()) {
    for (std::uint32_t peer = 0; peer < p.node_count; ++peer)
      if (peer != p.node && !p.destinations[peer]->dead.load()) p.send_control(peer, wire::frame_kind::goodbye, 0, nullptr, 0);
    // Give the goodbyes a moment to leave before the endpoint closes.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  p.stopping.store(true);
  p.wake_stalled();
  p.inbox.seal();
  if (p.tx_thread.joinable()) p.tx_thread.join();
  if (p.rx_thread.joinable()) p.rx_thread.join();
  std::atomic_ref<std::uint32_t>(p.shared.state->phase)
      .store(static_cast<std::uint32_t>(detail::node_phase::stopped), std::memory_order_release);
}

result<agent_stats> read_agent_stats(const std::string& node_job) {
  auto m = detail::open_node_state(node_job);
  if (!m) return m.error();
  return detail::stats_from(m->state->counters);
}

result<std::vector<std::byte>> read_agent_address(const std::string& node_job) {
  auto m = detail::open_node_state(node_job);
  if (!m) return m.error();
  const detail::node_state* st = m->state;
  if (st->address_bytes > sizeof st->address) return errc::corrupted;
  const auto* p = reinterpret_cast<const std::byte*>(st->address);
  return std::vector<std::byte>(p, p + st->address_bytes);
}

std::uint64_t make_job_key() {
  std::uint64_t key = 0;
  while (key == 0)
    if (getrandom(&key, sizeof key, 0) != sizeof key) key = static_cast<std::uint64_t>(now_ns()) * 0x9e3779b97f4a7c15ull;
  return key;
}

}  // namespace chanpool::transport
