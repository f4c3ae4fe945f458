// Decoding the Pool's messages (wire.hpp) from bytes that another process wrote.
//
// Pure functions: no I/O and no Pool state, so the engine, the workers and the fuzz target
// (tests/fuzz/fuzz_pool_wire.cpp) share them. Every count and length is checked against the
// message size before it is used; a message that fails is reported as malformed, never trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "chanpool/pool/job.hpp"
#include "wire.hpp"

namespace chanpool::pool::wire {

// A message to the orchestrator: magic, version and a node index below `nodes`.
std::optional<result_header> decode_result_header(std::string_view message, std::size_t nodes) noexcept;

// Splits a results message's body (after the header) into exactly h.item_count records, item
// indices from h.first_item, offsets into `body`. False (and `items` cleared) otherwise.
bool decode_result_items(const result_header& h, std::string_view body, std::vector<detail::job::item_bytes>& items);

// A message from the node's task channel: magic and version.
std::optional<task_header> decode_task_header(std::string_view message) noexcept;

// Splits a chunk's payload (after the header) into exactly `item_count` argument strings. False
// (and `args` cleared) when the records do not fill the payload exactly.
bool decode_task_items(std::uint32_t item_count, std::string_view payload, std::vector<std::string_view>& args);

// Whether a payload of `payload_bytes` could hold `item_count` records at all (each has a 4-byte
// length): a count beyond that is forged, and answering it item by item would be a flood.
constexpr bool plausible_item_count(std::uint32_t item_count, std::size_t payload_bytes) noexcept {
  return item_count <= payload_bytes / sizeof(std::uint32_t);
}

}  // namespace chanpool::pool::wire
