// The Pool's messages. They travel in chanpool channels (locally, or through the transport's
// aggregation), so each is one channel message: a fixed header, then per-item records.
//
//   orchestrator -> node "pool-tasks" channel (any idle worker of the node takes it):
//     task_header {kind = chunk}  then item_count x { u32 length, length bytes of arguments }
//     task_header {kind = stop}   one per worker at close(): the worker that takes it exits
//   worker / supervisor -> orchestrator's results channel (on node 0):
//     result_header {kind = results}      item_count x { u32 length, u8 ok, 3 pad, bytes }
//                                         (bytes: the encoded result, or the error message)
//     result_header {kind = worker_ready} a worker started (and ran the initializer)
//     result_header {kind = worker_lost}  from the supervisor: a worker died; if it was running
//                                         a chunk, job/first_item/item_count name it; text after
//     result_header {kind = wake}         the user thread submitted work (local only)
//
// Records are packed without padding between them; readers copy fields out with memcpy and
// check every length against the message size before using it (a malformed message is dropped
// and counted, never trusted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace chanpool::pool::wire {

inline constexpr std::uint32_t task_magic = 0x4b545043;    // "CPTK"
inline constexpr std::uint32_t result_magic = 0x53525043;  // "CPRS"
inline constexpr std::uint16_t version = 1;

enum class task_kind : std::uint16_t { chunk = 1, stop = 2 };

struct task_header {
  std::uint32_t magic = task_magic;
  std::uint16_t version = wire::version;
  task_kind kind = task_kind::chunk;
  std::uint64_t task_id = 0;     // pool::task_id(name)
  std::uint32_t job = 0;
  std::uint32_t attempt = 0;     // 0 first run, then re-runs after a lost worker
  std::uint64_t first_item = 0;  // index in the job of the chunk's first item
  std::uint32_t item_count = 0;
  std::uint32_t chunk = 0;       // the chunk's index in its job
};
static_assert(std::is_trivially_copyable_v<task_header>);
static_assert(sizeof(task_header) == 40);
static_assert(offsetof(task_header, task_id) == 8 && offsetof(task_header, first_item) == 24);

enum class result_kind : std::uint16_t { results = 1, worker_ready = 2, worker_lost = 3, wake = 4 };

struct result_header {
  std::uint32_t magic = result_magic;
  std::uint16_t version = wire::version;
  result_kind kind = result_kind::results;
  std::uint32_t node = 0;
  std::uint32_t worker = 0;      // index of the worker on its node
  std::uint32_t pid = 0;
  std::uint32_t job = 0;
  std::uint64_t first_item = 0;  // results: index of the first record's item; lost: the chunk's
  std::uint32_t item_count = 0;  // records that follow (results) or items in the lost chunk
  std::uint32_t chunk = 0;
  std::uint64_t busy_ns = 0;     // results: time spent running these items (prefetch tuning)
  std::uint32_t attempt = 0;
  std::uint32_t flags = 0;       // worker_lost: lost_flags
};
static_assert(std::is_trivially_copyable_v<result_header>);
static_assert(sizeof(result_header) == 56);
static_assert(offsetof(result_header, first_item) == 24 && offsetof(result_header, busy_ns) == 40);

enum lost_flags : std::uint32_t {
  lost_running_chunk = 1,  // it died running the named chunk
  lost_unknown_chunk = 2,  // it died while taking a message off the node's channel: which one
                           // is unknown, so every chunk outstanding on the node is re-run
};

struct item_record {
  std::uint32_t length = 0;
  std::uint8_t ok = 1;
  std::uint8_t pad[3] = {};
};
static_assert(sizeof(item_record) == 8);

template <class T>
std::optional<T> read_header(std::string_view message) {
  if (message.size() < sizeof(T)) return std::nullopt;
  T h;
  std::memcpy(&h, message.data(), sizeof(T));
  return h;
}

template <class T>
void append_pod(std::string& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

}  // namespace chanpool::pool::wire
