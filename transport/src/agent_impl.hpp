// The node agent's state and the parts that work on it (agent.hpp says what the agent does).
//
//   outbound.*       per destination: batching, the credit window, sealed frames (no libfabric)
//   inbound.*        per source: sequence order, delivery into channels, credits owed (no libfabric)
//   reply_cache.*    the reply channels of this node's processes
//   agent_control.cpp  control frames and their backlog, peer death, failure
//   agent_progress.cpp the progress thread: one loop over the completion queue and the inbox,
//                    and its sleep on both (doorbell.hpp)
//   agent_tx.cpp     the outbound side of that loop: the inbox, batches
//   agent_large.cpp  large messages: read by the receiver from the inbox's heap, or sent tagged
//   agent_frames.cpp one handler per frame kind
//   agent_rx.cpp     the inbound side: completions, receive buffers, heartbeats
//   agent_rma.cpp    regions and one-sided transfers (region_table.* keeps the regions)
//   agent.cpp        the public surface: create, connect, stop
//
// Threads: one progress thread per agent does all the agent's work: it drains the inbox, owns
// each destination's partial batch, the completion queue, the receive buffers and everything
// inbound. A second thread would hand every message over (a wake-up) and contend with the first
// for the provider's locks; on a host with fewer cores than threads both cost more than the
// work. The owner's thread (create, connect, stop) touches the destinations, the control
// backlog and the failure record too, so those keep their mutexes. "TX" and "RX" below name the
// outbound and inbound halves of the progress thread's work.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rdma/fi_eq.h>

#include "agent_ops.hpp"
#include "chanpool/channels/channel.hpp"
#include "chanpool/transport/agent.hpp"
#include "chanpool/transport/wire.hpp"
#include "doorbell.hpp"
#include "frame_check.hpp"
#include "hop_log.hpp"
#include "inbound.hpp"
#include "node_state.hpp"
#include "outbound.hpp"
#include "reply_cache.hpp"

namespace chanpool::transport {

namespace detail {

std::uint64_t now_ns() noexcept;

template <class Duration>
std::uint64_t as_ns(Duration d) noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// Why a peer is dead to this node. `left` is an orderly goodbye, not news; the rest are reported.
enum class death_cause : std::uint8_t {
  left,
  control_send_refused,
  batch_send_refused,
  control_send_failed,
  batch_send_failed,
  large_send_failed,
  silent,              // no frame within peer_timeout
  declared_this_dead,  // it declared this node dead
  this_node_evicted,   // this node was stopped for longer than peer_timeout
  agent_failed,        // this agent failed (see agent::failure())
};
const char* describe(death_cause c) noexcept;

}  // namespace detail

struct agent::impl {
  impl(std::uint32_t node_index, std::uint32_t nodes, std::string job, agent_config cfg);

  // --- identity and resources (set before the threads start, then read-only) ---
  std::uint32_t node;
  std::uint32_t node_count;
  std::string node_job;
  agent_config config;
  std::uint64_t job_key = 0;
  fabric_endpoint endpoint;
  detail::node_state_mapping shared;
  channels::channel inbox;
  // The inbox's heap, registered once for remote read where the provider has FI_RMA (and
  // config.large_by_read): large payloads stay there until their receiver has read them.
  // Declared after `endpoint` and `inbox`, so it is closed before either goes.
  rma_registration inbox_heap;
  pid_t keeper = -1;  // the node keeper (node_keeper.hpp) when config.node_keeper; ended by ~agent
  std::uint64_t key_salt = 0;  // random; remote keys we choose are key_salt ^ something (create())
  const std::byte* inbox_heap_base = nullptr;
  std::size_t max_frame_bytes = 0;   // hard limit of a frame (see create())
  std::size_t large_threshold = 0;   // payloads above it go point to point
  std::vector<std::unique_ptr<detail::destination>> destinations;  // the vector is fixed; see outbound.hpp
  std::unique_ptr<detail::recv_arena> recv_memory;                 // the receive slots' memory
  std::vector<std::unique_ptr<detail::recv_slot>> recv_slots;      // each posted to the provider

  // --- progress thread, outbound half ---
  // Destinations that may hold a partial batch: the idle-time and deadline checks walk this,
  // not all node_count destinations (a fan-in sends to one of 32).
  std::vector<detail::destination*> partials;
  detail::reply_cache tx_replies;

  // --- progress thread, inbound half ---
  std::unique_ptr<detail::inbound> in;  // made in create(), once the counters are mapped
  detail::reply_cache rx_replies;

  // --- hop trace (config.hop_trace_file set, else null): one log per half, written by stop() ---
  std::unique_ptr<detail::hop_log> tx_hops;
  std::unique_ptr<detail::hop_log> rx_hops;

  // --- one-sided transfers (agent_rma.cpp) ---
  std::unique_ptr<detail::region_table> regions;  // made in create(); threadsafe itself
  std::uint32_t rma_job_tag = 0;                  // wire::job_tag(job_key), set by connect()
  // Transfers started here, by this agent's token (rma_mu): TX adds, RX finishes, a peer's
  // death fails them from whichever thread noticed it. rma_replies is used under rma_mu too.
  std::mutex rma_mu;
  std::uint64_t next_rma_token = 1;
  std::unordered_map<std::uint64_t, detail::pending_rma> rma_pending;
  detail::reply_cache rma_replies;
  // Transfers this node serves as target, posted to the provider (RX thread only).
  std::unordered_map<detail::rma_target_op*, std::unique_ptr<detail::rma_target_op>> rma_serving;

  // --- thread control ---
  std::thread progress_thread;
  detail::doorbell bell;   // the node's processes wake the sleeping progress thread with it
  int cq_wait_fd = -1;     // the CQ's wait file descriptor (FI_WAIT_FD), or -1: then naps
  // The inbox is drained once every peer said hello (connect()); before, the progress thread
  // only answers the fabric.
  std::atomic<bool> inbox_open{false};
  // Progress thread: when it last did work, and when its periodic duties are due.
  struct progress_clock {
    std::uint64_t last_activity = 0;
    std::uint64_t last_pass = 0;  // a pass waits at most 50 ms; longer means the process was stopped
    std::uint64_t next_tick = 0;
    std::uint64_t next_heartbeat = 0;
    std::uint32_t since_room_check = 0;  // inbox records since the last flush/room check
  } clock;
  std::vector<std::uint32_t> touched;  // progress thread: sources that sent frames this CQ read
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> evicted{false};  // stopped for longer than peer_timeout (frozen_for)
  std::atomic<std::uint32_t> hellos{0};
  // The outbound half waits for credit, buffers or a dead peer by making progress
  // (wait_stalled) until stall_epoch moves: whoever changes one of those bumps it (wake_stalled).
  std::atomic<std::uint64_t> stall_epoch{0};

  // --- shared by the progress thread and the owner's thread ---
  std::mutex backlog_mu;
  // Control frames the provider refused for now, per destination (backlog_mu): one unreachable
  // peer must not hold back the heartbeats and credits of the others.
  std::vector<std::deque<std::unique_ptr<detail::control_frame>>> backlog;
  std::atomic<std::uint32_t> backlog_size{0};
  // Sealed frames waiting in any destination's ready queue: RX looks at this, not at every
  // destination's queue under its mutex, before deciding how long it may sleep.
  std::atomic<std::uint32_t> ready_total{0};
  // A batch send got -FI_EAGAIN: RX must retry soon. Frames that wait for credit need no retry
  // (the credit frame pumps them), so RX may sleep long while they wait.
  std::atomic<bool> provider_busy{false};
  std::atomic<std::uint32_t> large_in_flight{0};
  // Deposited large sends awaiting their ack: (destination, tag) -> the sender's token. TX adds,
  // RX takes on the ack (or TX again when the send is dropped); guarded by large_tokens_mu.
  std::mutex large_tokens_mu;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> large_tokens;
  // remote_read payloads kept in the inbox's heap until their receiver says large_done:
  // (destination, tag) -> the payload. TX adds; RX frees on large_done, whoever marks the
  // destination dead frees its part, stop() the rest; guarded by kept_mu.
  std::mutex kept_mu;
  std::map<std::pair<std::uint32_t, std::uint64_t>, channels::kept_payload> kept_reads;
  // Why the agent failed or could not connect (failure_mu): agent::failure(), failure_reason().
  std::mutex failure_mu;
  std::error_code failure_code;
  std::string failure_text;

  detail::node_counters& counters() noexcept { return shared.state->counters; }
  void wake_stalled() noexcept;
  void wait_stalled(std::uint64_t seen);  // progress thread, handling an inbox record

  // agent_progress.cpp (progress thread)
  void progress_loop();
  // One CQ read and its handling, the periodic duties; true if it did work. *drained: the read
  // returned less than a full batch (the CQ was empty at that moment).
  bool poll_completions(bool* drained = nullptr);
  bool drain_inbox();       // a few runs of inbox records; true if it took any
  void idle_duties();       // the inbox and the CQ ran dry: partial batches, credits, room
  std::uint64_t idle_sleep_ns();
  // Sleeps until a completion, a ring of the doorbell, or timeout_ns. With watch_inbox, only
  // while the inbox is empty (and a sender that publishes meanwhile rings).
  // Returns true when the CQ's descriptor fired (or may have: no descriptor, or no sleep).
  bool sleep_until_work(std::uint64_t timeout_ns, bool watch_inbox);

  // agent_control.cpp (any thread)
  void fill_header(wire::frame_header& h, wire::frame_kind kind, std::size_t bytes, std::uint32_t count) const noexcept;
  void send_control(std::uint32_t dest, wire::frame_kind kind, std::uint32_t count, const void* body, std::size_t body_bytes,
                    const void* tail = nullptr, std::size_t tail_bytes = 0);
  void post_control(std::unique_ptr<detail::control_frame> f);
  void retry_backlog();  // RX
  // Caller holds d.mu; `hops`: the calling thread's hop log (tx_hops or rx_hops).
  void pump_locked(detail::destination& d, detail::hop_log* hops);
  void mark_dead(std::uint32_t peer, detail::death_cause why, long code = 0);
  void mark_dead_locked(detail::destination& d, detail::death_cause why, long code = 0);  // caller holds d.mu
  void send_owed(std::uint32_t s, bool all);  // RX
  void return_all_credits();                  // RX
  void fail(const char* what, std::error_code ec);  // RX: the agent cannot go on
  void record_failure(std::error_code ec, std::string text);

  // agent_tx.cpp (progress thread, outbound)
  void handle_inbox_record(channels::recv_run& run, std::size_t i);
  bool ensure_current(detail::destination& d);
  void append_message(detail::destination& d, const wire::message_header& m, std::span<const std::byte> body);
  void seal(detail::destination& d);
  void drop_for_dead(const wire::inbox_header& h);
  void flush_partials(bool idle);
  bool partial_due();
  void wake_room_waiters() noexcept;

  // agent_frames.cpp (progress thread, inbound); a handler returns false for a malformed frame.
  void handle_frame(const std::byte* data, std::size_t len);
  bool on_hello(std::uint32_t s);
  bool on_goodbye(std::uint32_t s);
  bool on_credit(std::uint32_t s, std::uint32_t count);
  bool on_batch(std::uint32_t s, const wire::frame_header& h, const std::byte* body, const std::byte* end, std::size_t len);
  bool on_resolve(std::uint32_t s, const detail::frame_view& f);
  bool on_resolve_reply(const detail::frame_view& f);
  bool on_ack(std::uint32_t s, const detail::frame_view& f);
  void drop_late_frame(std::uint32_t s, detail::source_state& src);
  void frozen_for(std::uint64_t ns);

  // agent_large.cpp: large messages, both ways
  void register_inbox_heap();                                                 // create()
  void send_large(detail::destination& d, const wire::inbox_header& h, channels::recv_run& run, std::size_t i,
                  std::span<const std::byte> payload);                        // TX
  bool send_large_read(detail::destination& d, const wire::inbox_header& h, channels::recv_run& run, std::size_t i,
                       std::span<const std::byte> payload);                   // TX
  void send_large_copy(detail::destination& d, const wire::inbox_header& h, std::span<const std::byte> payload);  // TX
  void wait_large_room();                                                     // TX
  std::uint64_t open_large(detail::destination& d, const wire::inbox_header& h, std::size_t body_bytes);  // TX
  bool start_large_recv(std::uint32_t s, const wire::message_header& m, const wire::large_source& where,
                        channels::channel& ch);                               // RX
  bool start_large_read(std::uint32_t s, const wire::message_header& m, const wire::large_source& where,
                        std::unique_ptr<detail::large_recv> lr, channels::channel& ch);  // RX
  bool on_large_done(std::uint32_t s, const detail::frame_view& f);            // RX
  void release_reads_to(std::uint32_t peer);  // any thread: the peer is dead
  void release_all_reads();                   // at stop

  // agent_rma.cpp
  void handle_region_create(const wire::inbox_header& h, std::span<const std::byte> payload);  // TX
  void handle_region_close(const wire::inbox_header& h, std::span<const std::byte> payload);   // TX
  void handle_rma(const wire::inbox_header& h, std::span<const std::byte> payload);            // TX
  bool on_rma_request(std::uint32_t s, const detail::frame_view& f);                           // RX
  bool on_rma_done(std::uint32_t s, const detail::frame_view& f);                              // RX
  void finish_rma_target(detail::rma_target_op* op, bool ok);                                  // RX
  void fail_rma_to(std::uint32_t peer);  // any thread: the peer is dead
  void fail_all_rma();                   // at stop
  void reply_rma(std::uint32_t pid, std::uint64_t token, std::error_code ec);  // caller holds rma_mu

  // agent_rx.cpp (progress thread, inbound)
  std::error_code post_recv(detail::recv_slot& slot);
  void handle_completion(const fi_cq_data_entry& e, std::vector<std::uint32_t>& touched);
  void handle_error_completion();
  void tick(std::uint64_t now, std::uint64_t& next_heartbeat);
  bool any_ready() const noexcept { return ready_total.load(std::memory_order_relaxed) != 0; }
};

}  // namespace chanpool::transport
