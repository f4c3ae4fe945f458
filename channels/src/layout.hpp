// The shared-memory layout of one channel segment, version 5. Read this as the protocol spec.
//
//   offset 0                     segment_header       (320 B, published last: state = ready)
//   header.control_offset        control_block        (4 cache lines: tail | head | wait | stats)
//   header.registry_offset       registry_entry[registry_entries]
//   waiter_table_offset(...)     waiter_record[registry_entries] (derived from the registry's)
//   header.ring_offset           capacity x slot of header.slot_bytes (16 B slot_header + inline)
//   header.heap_owner_offset     u32 owner word per heap block (heap_blocks of them)
//   header.heap_offset           heap_blocks x heap_block_bytes (page aligned)
//
// Every field is fixed width; cross-references are byte offsets from the segment start, never
// pointers. Fields changed concurrently are accessed only through std::atomic_ref.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace chanpool::channels::detail {

inline constexpr std::uint64_t segment_magic = 0x4C4F4F504E414843ull;  // "CHANPOOL" little-endian
// 2: data_seq/space_seq carry the armed bit. 3: per-process waiter records (waiter_record).
// 4: 16-byte slot_header (heap block fields moved into the payload area). 5: the futex words
// carry the single-side fence mode (futex_fence_* bits, epoch step 16).
inline constexpr std::uint32_t layout_version = 5;
inline constexpr std::uint32_t cache_line = 64;
// The futex words data_seq and space_seq: bit 0 says a waiter armed the word before sleeping on
// it; publishers move the epoch above the low four bits in steps of 16 (see notify() in ring.hpp).
// Bits 1-3 are the fence mode of a single-side publisher on that word (fence.hpp):
//   fence_publishers  the publisher runs a full fence before it reads the waiter state;
//   fence_confirmed   ... and a membarrier has passed since that bit was set, so sleepers that
//                     see both bits need no membarrier of their own;
//   fence_switching   held by the one sleeper setting the two bits (between its membarrier and
//                     `confirmed`); nobody clears the mode while it is set.
inline constexpr std::uint32_t futex_armed = 1;
inline constexpr std::uint32_t futex_fence_publishers = 2;
inline constexpr std::uint32_t futex_fence_confirmed = 4;
inline constexpr std::uint32_t futex_fence_switching = 8;
inline constexpr std::uint32_t futex_epoch_step = 16;

enum segment_state : std::uint32_t { state_initializing = 0, state_ready = 1 };

// A side declared single (one handle at a time, enforced by a lease) claims slots with plain
// stores instead of CAS, and publishes without a full fence: see channel.cpp.
enum segment_mode : std::uint32_t { mode_single_producer = 1u, mode_single_consumer = 2u };

// control_block::closed values. seal() stores `sealing`, runs an asymmetric fence so that every
// single-side claim in flight is visible, then stores `sealed`; receivers act on `sealed` only.
enum closed_state : std::uint32_t { open_state = 0, sealing = 1, sealed = 2 };

struct segment_header {
  std::uint64_t magic;              // written last, together with state
  std::uint32_t version;            // layout_version
  std::uint32_t state;              // segment_state (atomic), release-stored last
  std::uint32_t header_bytes;       // sizeof(segment_header)
  std::uint32_t creator_pid;
  std::uint64_t creator_start_time; // /proc/<pid>/stat starttime, guards against pid reuse
  std::uint64_t created_unix_ns;
  std::uint64_t total_bytes;        // must equal the segment size
  std::uint32_t capacity;           // slots, power of two
  std::uint32_t slot_bytes;         // multiple of 64, >= 64
  std::uint64_t heap_bytes;         // heap_blocks * heap_block_bytes
  std::uint32_t heap_block_bytes;
  std::uint32_t heap_blocks;
  std::uint32_t registry_entries;
  std::uint32_t mode_flags;         // segment_mode bits, fixed at create
  std::uint64_t control_offset;
  std::uint64_t registry_offset;
  std::uint64_t ring_offset;
  std::uint64_t heap_owner_offset;
  std::uint64_t heap_offset;
  std::uint64_t layout_checksum;    // FNV-1a over version..heap_offset (see layout_checksum_of)
  char job[48];                     // NUL-terminated copies, for listings
  char name[144];
};
static_assert(sizeof(segment_header) == 320);
static_assert(offsetof(segment_header, version) == 8);
static_assert(offsetof(segment_header, control_offset) == 80);
static_assert(offsetof(segment_header, layout_checksum) == 120);
static_assert(std::is_trivially_copyable_v<segment_header>);

// The four contended words live on separate cache lines.
struct alignas(cache_line) control_block {
  // line 0: producers
  std::uint64_t tail;               // next position to claim for sending (monotonic)
  std::uint8_t pad0[cache_line - 8];
  // line 1: consumers
  std::uint64_t head;               // next position to claim for receiving (monotonic)
  std::uint8_t pad1[cache_line - 8];
  // line 2: sleeping. Read on every send/release, written only when somebody sleeps.
  std::uint32_t data_seq;           // futex word | epoch:28 | fence mode:3 | armed:1 |: receivers arm, publishers wake
  std::uint32_t space_seq;          // futex word | epoch:28 | fence mode:3 | armed:1 |: senders arm, releases wake
  // Totals of the waiter records' counts (see waiter_record), kept so that publishers read one
  // word. A dead process's share is taken off by whoever finds it dead.
  std::uint32_t recv_waiters;       // receivers sleeping on data_seq
  std::uint32_t send_waiters;       // senders sleeping on space_seq
  std::uint32_t poll_waiters;       // poll_set waiters (on either word): wake all, not one
  std::uint32_t closed;             // closed_state: `sealing` while seal() runs, `sealed` after
  std::uint32_t heap_cursor;        // next-fit hint for the heap allocator past its low window (heap.cpp)
  std::uint32_t heap_used_top;      // hint: blocks below it have held a message (touched memory; heap.cpp)
  std::uint8_t pad2[cache_line - 32];
  // line 3: repair counters (rarely written)
  std::uint64_t lost_messages;
  std::uint64_t repaired_slots;
  std::uint64_t reclaimed_heap_blocks;
  std::uint64_t corrupted_messages;
  // Leases of a single-producer / single-consumer channel: (pid << 32 | handle token), 0 = free.
  std::uint64_t producer_lease;
  std::uint64_t consumer_lease;
  // steady_clock (CLOCK_MONOTONIC, shared by all processes) nanoseconds of the last scan of the
  // waiter records for dead processes; rate-limits scans that are not asked for explicitly.
  std::uint64_t waiters_scanned_ns;
  std::uint8_t pad3[cache_line - 56];
};
static_assert(sizeof(control_block) == 4 * cache_line);
static_assert(offsetof(control_block, head) == cache_line);
static_assert(offsetof(control_block, data_seq) == 2 * cache_line);
static_assert(offsetof(control_block, heap_used_top) == 2 * cache_line + 28, "heap_used_top took zeroed padding");
static_assert(offsetof(control_block, lost_messages) == 3 * cache_line);
static_assert(std::is_trivially_copyable_v<control_block>);

// One attached process. pid 0 = free entry.
struct registry_entry {
  std::uint32_t pid;        // atomic; claimed by CAS 0 -> pid
  std::uint32_t reserved;
  std::uint64_t start_time; // atomic; 0 until written (then liveness falls back to kill(pid, 0))
};
static_assert(sizeof(registry_entry) == 16);
static_assert(std::is_trivially_copyable_v<registry_entry>);

// How many of one process's threads sleep on the channel, per side. A process claims a free
// record (pid 0) by CAS and keeps it while it lives; it adds to its own count before the total in
// control_block and takes from the total before its own count, so a record never holds less than
// the process put into the total. A process that finds the owner dead CASes pid to
// waiter_record_reaping, takes the counts off the totals (never below 0), and frees the record.
struct waiter_record {
  std::uint32_t pid;          // atomic; 0 = free, waiter_record_reaping while being taken back
  std::uint32_t receivers;    // atomic; threads in recv waits (control_block::recv_waiters)
  std::uint32_t senders;      // atomic; threads in send waits (control_block::send_waiters)
  std::uint32_t pollers;      // atomic; poll_set waits (control_block::poll_waiters)
  std::uint64_t start_time;   // atomic; 0 until written after the claim
  std::uint64_t reserved;
};
static_assert(sizeof(waiter_record) == 32, "waiter_record is part of the segment layout");
static_assert(std::is_trivially_copyable_v<waiter_record>);
inline constexpr std::uint32_t waiter_record_reaping = 0xFFFFFFFFu;  // not a pid (pid_max <= 2^22)

// The waiter table follows the registry, one record per registry entry, cache-line aligned.
constexpr std::uint64_t waiter_table_offset(std::uint64_t registry_offset, std::uint32_t registry_entries) noexcept {
  return (registry_offset + std::uint64_t{registry_entries} * sizeof(registry_entry) + cache_line - 1) / cache_line *
         cache_line;
}

// Slot control word: | sequence (40) | state (2) | pid (22) |.
// The sequence is the ring position the slot serves in this lap (mod 2^40); the pid is the
// process that holds the slot while it is WRITING or READING, so a claim and the stamp of its
// owner are one CAS and a holder that dies is always identifiable.
enum slot_state : std::uint64_t { slot_empty = 0, slot_writing = 1, slot_full = 2, slot_reading = 3 };

inline constexpr unsigned ctrl_pid_bits = 22;      // Linux pid_max is at most 2^22
inline constexpr unsigned ctrl_state_shift = 22;
inline constexpr unsigned ctrl_seq_shift = 24;
inline constexpr std::uint64_t ctrl_seq_mask = (1ull << 40) - 1;

constexpr std::uint64_t make_ctrl(std::uint64_t position, std::uint64_t state, std::uint32_t pid) noexcept {
  return ((position & ctrl_seq_mask) << ctrl_seq_shift) | (state << ctrl_state_shift) |
         (pid & ((1u << ctrl_pid_bits) - 1));
}
constexpr std::uint64_t ctrl_state(std::uint64_t c) noexcept { return (c >> ctrl_state_shift) & 3u; }
constexpr std::uint32_t ctrl_pid(std::uint64_t c) noexcept {
  return static_cast<std::uint32_t>(c & ((1u << ctrl_pid_bits) - 1));
}
// Signed distance from `position` to the slot's sequence, modulo 2^40.
constexpr std::int64_t ctrl_seq_diff(std::uint64_t c, std::uint64_t position) noexcept {
  const std::uint64_t d = ((c >> ctrl_seq_shift) - position) & ctrl_seq_mask;
  return static_cast<std::int64_t>(d << 24) >> 24;
}

enum slot_flags : std::uint32_t {
  slot_flag_heap = 1u,       // payload lives in heap blocks [heap_first(), heap_first() + heap_count())
  slot_flag_abandoned = 2u,  // claim given back without a message; receivers skip it
};

// 16 bytes, so that the first 48 payload bytes share the cache line of the control word the
// receiver polls: a message of up to 48 bytes costs one line transfer, not two.
struct slot_header {
  std::uint64_t ctrl;        // atomic; see make_ctrl
  std::uint32_t length;      // payload bytes
  std::uint32_t flags;       // slot_flags
  // inline payload follows, slot_bytes - 16 bytes. A heap message (slot_flag_heap) has no inline
  // payload: its first 8 bytes hold the message's heap blocks, heap_first() and heap_count().
  std::uint32_t& heap_first() noexcept { return reinterpret_cast<std::uint32_t*>(this + 1)[0]; }
  std::uint32_t& heap_count() noexcept { return reinterpret_cast<std::uint32_t*>(this + 1)[1]; }
};
static_assert(sizeof(slot_header) == 16, "slot_header is part of the segment layout");
static_assert(offsetof(slot_header, length) == 8);
static_assert(std::is_trivially_copyable_v<slot_header>);

// Heap owner words: 0 = free; heap_owner_slot(i) = attached to ring slot i (survives its
// sender); heap_owner_pid(p) = held by process p while it builds a message.
inline constexpr std::uint32_t heap_owner_pid_bit = 0x80000000u;
constexpr std::uint32_t heap_owner_slot(std::uint32_t slot_index) noexcept { return slot_index + 1; }
constexpr std::uint32_t heap_owner_pid(std::uint32_t pid) noexcept { return heap_owner_pid_bit | pid; }

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

}  // namespace chanpool::channels::detail
