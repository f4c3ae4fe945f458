// A named, cross-process, multi-producer multi-consumer message channel in POSIX shared memory.
//
// Concurrency in one sentence: every send/recv/claim method of a channel may be called at the
// same time from any number of threads and processes (lock-free; a waiting call spins, then
// sleeps on a futex in the segment). Setup (create/open/close/unlink/set_wait) is not
// thread-safe on the *same handle*; distinct handles are independent.
//
// Messages up to inline_capacity() bytes are copied into the slot; larger ones (up to
// max_message_bytes()) are side-loaded into a heap inside the segment. Order is FIFO per
// producer, and global FIFO for one channel (claim order).
//
// A process killed at any point cannot wedge the channel: slots carry the pid of the process
// that holds them, waiters probe that pid when they have waited liveness_check, and a dead
// holder's slot is repaired (its one in-flight message is dropped and counted in
// stats().lost_messages).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chanpool/channels/error.hpp"
#include "chanpool/channels/status.hpp"

namespace chanpool::channels {

namespace detail {
struct segment;       // mapped segment (private)
struct channel_view;  // typed pointers into the segment (private)
}  // namespace detail

using timeout = std::chrono::nanoseconds;
inline constexpr timeout try_once{0};
inline constexpr timeout forever = timeout::max();

// Shape of a channel, fixed at create().
struct channel_config {
  std::uint32_t capacity = 1024;              // slots; a power of two, 2 .. 2^24
  std::uint32_t slot_bytes = 128;             // per slot, 16-byte header included; multiple of 64
  std::uint64_t heap_bytes = 16u << 20;       // side-loaded payload heap; 0 = inline messages only
  std::uint32_t heap_block_bytes = 4096;      // heap allocation granule; a power of two >= 64
  // Declares that one handle at a time sends (receives). That side then claims slots with plain
  // stores and publishes without a locked instruction: 2-4x the throughput of the MPMC path,
  // which pays a locked CAS per message on a cache line the other side just wrote. Enforced by a
  // lease: while one handle holds it, sends (receives) through any other handle return
  // status::invalid; closing the handle, or its process dying, frees the lease. The one handle
  // must not be used from two threads at once on that side.
  bool single_producer = false;
  bool single_consumer = false;
};

struct open_options {
  // Segments are named /chanpool.<uid>.<job>.<name>. Empty job: $CHANPOOL_JOB, else "default".
  std::string job;
};

enum class wait_mode : std::uint8_t {
  spin,      // busy-poll until done or deadline (lowest latency, burns a core)
  idle,      // sleep on the futex at once
  adaptive,  // spin for spin_for, then sleep (default)
};

// How this handle waits; per handle, not stored in the segment.
struct wait_config {
  wait_mode mode = wait_mode::adaptive;
  std::chrono::nanoseconds spin_for = std::chrono::microseconds(50);
  // How long a waiter trusts a slot holder before checking that its process is alive. Sleeps
  // are capped at this, so a holder that died without a wake-up is still noticed.
  std::chrono::nanoseconds liveness_check = std::chrono::milliseconds(50);
};

struct poll_info {
  bool readable = false;   // a recv would succeed now (or the channel is sealed: recv says closed)
  bool writable = false;   // a small send would succeed now
  bool closed = false;
  std::uint64_t count = 0;  // messages sent or being sent and not yet claimed by a receiver
  std::uint32_t capacity = 0;
  // Sleeping in recv or poll_set on this channel. A process killed in its sleep is taken off by
  // repair(), by other waiters and by poll() within about a second, by publishers in ~10 ms.
  std::uint32_t blocked_receivers = 0;
  std::uint32_t blocked_senders = 0;
};

struct channel_stats {
  std::uint64_t lost_messages = 0;         // in-flight messages of dead processes, dropped on repair
  std::uint64_t repaired_slots = 0;        // slots taken back from dead holders
  std::uint64_t reclaimed_heap_blocks = 0; // heap blocks taken back from dead processes
  std::uint64_t corrupted_messages = 0;    // slots with impossible length/heap fields, dropped
  std::uint32_t attached_processes = 0;    // live processes registered on the segment
};

// A slot claimed for sending: fill data() in place, then commit() or abandon().
class send_claim {
 public:
  std::span<std::byte> data() const noexcept { return {data_, size_}; }
  bool active() const noexcept { return data_ != nullptr; }

 private:
  friend class channel;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t position_ = 0;
  std::int64_t first_block_ = -1;  // heap blocks held, or -1 for an inline payload
  std::uint32_t block_count_ = 0;
};

// A message claimed for receiving: read data() in place, then release().
class recv_claim {
 public:
  std::span<const std::byte> data() const noexcept { return {data_, size_}; }
  bool active() const noexcept { return data_ != nullptr; }

 private:
  friend class channel;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t position_ = 0;
};

// A heap message taken out of its ring slot (channel::keep): its bytes stay where they are, owned
// by this process, after the slot itself is released, until release(kept_payload&). Made for an
// agent that hands a payload to an RDMA provider and must free the ring meanwhile. If the process
// dies first, the blocks go back to the heap like any block a dead process held.
class kept_payload {
 public:
  std::span<const std::byte> data() const noexcept { return {data_, size_}; }
  bool active() const noexcept { return data_ != nullptr; }

 private:
  friend class channel;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint32_t first_block_ = 0;
  std::uint32_t block_count_ = 0;
};

// The most slots one batch claim holds (claim_send_run, claim_recv_run); send_many and
// recv_many go through the ring in batches of up to this many.
inline constexpr std::size_t max_run = 64;

// Consecutive ring slots claimed for sending in one step (claim_send_run): fill data(i), each of
// inline_capacity() bytes, then commit() the first n (all or part; the rest stay held) or
// abandon() what is left. Receivers behind the run wait until it is published: keep it short.
class send_run {
 public:
  std::size_t size() const noexcept { return count_; }  // slots still held
  bool active() const noexcept { return count_ != 0; }
  std::span<std::byte> data(std::size_t i) const noexcept {
    return {ring_ + ((position_ + i) & mask_) * slot_bytes_ + payload_offset_, payload_bytes_};
  }

 private:
  friend class channel;
  std::byte* ring_ = nullptr;
  std::uint64_t mask_ = 0;
  std::uint64_t position_ = 0;  // ring position of the first slot still held
  std::size_t count_ = 0;
  std::uint32_t slot_bytes_ = 0;
  std::uint32_t payload_offset_ = 0;
  std::uint32_t payload_bytes_ = 0;
};

// Consecutive messages claimed for receiving in one step (claim_recv_run): read data(i) in
// place, then release() them all at once.
class recv_run {
 public:
  std::size_t size() const noexcept { return count_; }
  bool active() const noexcept { return count_ != 0; }
  std::span<const std::byte> data(std::size_t i) const noexcept { return {data_[i], size_[i]}; }

 private:
  friend class channel;
  std::uint64_t position_ = 0;
  std::size_t count_ = 0;
  const std::byte* data_[max_run] = {};
  std::uint32_t size_[max_run] = {};
};

class channel {
 public:
  channel() = default;
  channel(channel&&) noexcept;
  channel& operator=(channel&&) noexcept;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel();  // close()

  // Creates a new segment (mode 0600) and opens it. errc::already_exists if the name is taken.
  static result<channel> create(std::string_view name, const channel_config& config = {},
                                const open_options& options = {});
  // Opens an existing channel; validates magic, version, layout and checksum.
  static result<channel> open(std::string_view name, const open_options& options = {});
  // Removes the name; processes that have it open keep using it until they close.
  static std::error_code unlink(std::string_view name, const open_options& options = {});
  // The POSIX shm name ("/chanpool.<uid>.<job>.<name>") for a channel, or an error for a bad name.
  static result<std::string> segment_name(std::string_view name, const open_options& options = {});

  // Unmaps and deregisters this process. Idempotent. Not thread-safe against other calls on
  // this handle; any claim still held by this handle is abandoned.
  void close() noexcept;
  bool is_open() const noexcept { return view_ != nullptr; }

  // Setup; not thread-safe against concurrent operations on this handle.
  void set_wait(const wait_config& config) noexcept { wait_ = config; }
  const wait_config& wait() const noexcept { return wait_; }

  // --- sending (threadsafe, lock-free; a non-zero timeout may block) ---------------------------
  // ok, full (try_once), timeout, closed, too_large, invalid.
  status send(std::span<const std::byte> message, timeout t = forever) noexcept;
  status try_send(std::span<const std::byte> message) noexcept { return send(message, try_once); }
  // Zero-copy: reserves `bytes` in a slot (inline) or in the heap; the claim holds the slot, so
  // receivers behind it wait until commit()/abandon(). Keep claims short.
  status claim_send(std::size_t bytes, send_claim& claim, timeout t = forever) noexcept;
  // Publishes the first `bytes` of the claim (default: all of it).
  status commit(send_claim& claim, std::size_t bytes = SIZE_MAX) noexcept;
  // Gives the slot back without a message (receivers skip it; it is not counted as lost).
  status abandon(send_claim& claim) noexcept;
  // Batch: sends messages in order, in runs of up to max_run slots, each run claimed, filled
  // and published in one step (one lease and seal check, one index update, one wake-up).
  // `sent` is set to how many were sent; the status says why the rest were not: ok (all sent),
  // full (try_once), timeout (t covers the whole call), closed, too_large (messages[sent] is),
  // invalid. Messages over inline_capacity() go through the heap one at a time, in order.
  status send_many(std::span<const std::span<const std::byte>> messages, std::size_t& sent,
                   timeout t = forever) noexcept;
  // Zero-copy batch: claims between 1 and min(count, max_run) consecutive slots (as many as are
  // free now, waiting up to t for the first). ok, full (try_once), timeout, closed, invalid
  // (count 0, or `run` still active).
  status claim_send_run(std::size_t count, send_run& run, timeout t = forever) noexcept;
  // Publishes the first lengths.size() slots of the run, slot i with lengths[i] bytes; the
  // run keeps the rest. invalid (nothing published) if lengths.size() > run.size() or a length
  // is over inline_capacity().
  status commit(send_run& run, std::span<const std::size_t> lengths) noexcept;
  // Gives back every slot the run still holds (receivers skip them; not counted as lost).
  status abandon(send_run& run) noexcept;

  // --- receiving (threadsafe, lock-free; a non-zero timeout may block) --------------------------
  // Copies the next message into `buffer` and sets `length`. If the message is larger than the
  // buffer it stays queued, `length` is set to its size and the result is too_large.
  // ok, empty (try_once), timeout, closed (sealed and drained), too_large, invalid.
  status recv(std::span<std::byte> buffer, std::size_t& length, timeout t = forever) noexcept;
  status try_recv(std::span<std::byte> buffer, std::size_t& length) noexcept {
    return recv(buffer, length, try_once);
  }
  // Resizes `out` to the message.
  status recv(std::vector<std::byte>& out, timeout t = forever);
  // Zero-copy: the message stays in the segment until release(). The slot is held meanwhile
  // (senders lapping the ring wait on it).
  status claim_recv(recv_claim& claim, timeout t = forever) noexcept;
  status release(recv_claim& claim) noexcept;
  // Batch: waits up to t for the first message, then takes those queued behind it without
  // waiting, up to lengths.size(). Messages are copied back to back into `buffer`; lengths[i] is
  // the size of message i and `received` how many there are. The status says why there are not
  // more: ok (lengths.size() received), empty (no more queued now; with received == 0 only
  // after try_once), timeout (none within t), closed (sealed and drained), too_large (the next
  // message does not fit in what is left of buffer; it stays queued, and with received == 0
  // lengths[0] is its size), invalid.
  status recv_many(std::span<std::byte> buffer, std::span<std::size_t> lengths, std::size_t& received,
                   timeout t = forever) noexcept;
  // Zero-copy batch: claims between 1 and min(count, max_run) consecutive messages in place
  // (waiting up to t for the first). ok, empty (try_once), timeout, closed, invalid.
  status claim_recv_run(std::size_t count, recv_run& run, timeout t = forever) noexcept;
  // Frees every slot of the run at once (one index of work and one wake-up for the run).
  status release(recv_run& run) noexcept;
  // Takes message i of the run (held by this handle) out of its slot, so that release(run) frees
  // the slot but not the message's heap blocks; `kept` then owns them. ok; invalid when message i
  // is inline (not in the heap: copy it instead), i is outside the run, or `kept` is active.
  // Same concurrency as release(run): the thread holding the run.
  status keep(recv_run& run, std::size_t i, kept_payload& kept) noexcept;
  // Gives a kept payload's blocks back to the heap. Any thread of the process that kept it.
  status release(kept_payload& kept) noexcept;
  // The heap's memory (empty for an inline-only channel): every message larger than
  // inline_capacity(), and every kept payload, lies inside it. For registering it with an RDMA
  // provider once, rather than each message. Valid while the handle is open.
  std::span<std::byte> heap_memory() const noexcept;

  // --- state (threadsafe, wait-free) ------------------------------------------------------------
  poll_info poll() const noexcept;
  channel_stats stats() const noexcept;
  // After seal() sends return closed; receivers drain what is queued, then get closed.
  void seal() noexcept;
  // Checks every slot for a holder whose process is gone (killed, or a zombie not reaped yet) and
  // repairs it, returns heap blocks of dead processes, and takes processes killed while asleep
  // in this channel off the waiter counts. Waiters do this by themselves; this is for a
  // supervisor that wants it now. Returns the number of slots repaired plus dead waits removed.
  std::size_t repair() noexcept;

  // True when both handles map the same segment: not merely the same name, which may have been
  // unlinked and created again in between (then the handles see different channels).
  bool same_segment(const channel& other) const noexcept;

  std::size_t inline_capacity() const noexcept;
  std::size_t max_message_bytes() const noexcept;
  std::uint32_t capacity() const noexcept;
  const std::string& name() const noexcept { return name_; }
  channel_config config() const noexcept;

 private:
  // For poll_set (a friend): the futex words, without exposing the segment layout publicly.
  detail::channel_view* view() const noexcept { return view_; }

  // One non-blocking attempt; on full/empty, `blocker` is the control word of the slot in the
  // way when another process holds it (0 otherwise), for the liveness probe.
  status send_once(std::size_t bytes, send_claim& claim, std::uint64_t& blocker) noexcept;
  status recv_once(recv_claim& claim, std::size_t limit, std::size_t& length, std::uint64_t& blocker) noexcept;
  // The copying send()/recv() of a single-side channel: slot written before its claim, read
  // before its release (channel.cpp).
  status send_single(std::span<const std::byte> message, std::uint64_t& blocker) noexcept;
  status recv_single(std::span<std::byte> buffer, std::size_t& length, std::uint64_t& blocker, bool& general) noexcept;
  // Their batch counterparts (batch_single.cpp): a run of inline messages, up to max_run.
  status send_run_single(std::span<const std::span<const std::byte>> messages, std::size_t& sent,
                         std::uint64_t& blocker) noexcept;
  status recv_run_single(std::span<std::byte> buffer, std::size_t& used, std::span<std::size_t> lengths,
                         std::size_t& received, std::uint64_t& blocker, bool& general) noexcept;
  // commit() and release() after their argument checks.
  status publish(send_claim& claim, std::size_t bytes) noexcept;
  status give_back(recv_claim& claim) noexcept;
  // Batch counterparts of send_once / recv_once: claim up to `count` consecutive slots.
  status send_run_once(std::size_t count, send_run& run, std::uint64_t& blocker) noexcept;
  status recv_run_once(std::size_t count, std::size_t budget, recv_run& run, std::size_t& first_length,
                       std::uint64_t& blocker) noexcept;
  template <class Once>
  status wait_until_done(Once&& once, bool sender, timeout t) noexcept;
  // Repairs the slot whose control word was observed as `blocker` if its holder is dead.
  bool repair_if_dead(std::uint64_t blocker) noexcept;
  void attach(detail::segment* segment, std::string_view name) noexcept;
  // Whether this handle holds the single-side `lease`, taking it when it is free or its holder
  // died. The check is inline (wait_loop.hpp: every message of a single-side channel makes it);
  // taking is not.
  bool hold_lease(std::uint64_t& lease) noexcept;
  bool take_lease(std::uint64_t& lease, std::uint64_t mine) noexcept;
  // Probes the slots at head and tail (cheap; for poll_set, which never calls send/recv).
  bool repair_ends() noexcept;
  friend class poll_set;

  detail::segment* segment_ = nullptr;
  detail::channel_view* view_ = nullptr;
  std::string name_;
  wait_config wait_{};
  std::uint32_t registry_slot_ = UINT32_MAX;
  std::uint32_t registered_pid_ = 0;
  std::uint32_t lease_token_ = 0;  // this handle's identity in single-side leases
  // Sleeps of this handle that paid a membarrier, as receiver [0] and sender [1] (the fence mode
  // in channels/src/fence.hpp); atomic_ref: threads may share a handle.
  std::uint32_t paid_sleeps_[2] = {0, 0};
};

}  // namespace chanpool::channels
