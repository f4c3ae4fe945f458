// Fuzz target: the Pool's messages (pool/src/wire_decode.hpp). The first byte says which side
// reads the rest: the orchestrator (a results or control message from a worker or supervisor of
// a 4-node pool) or a worker (a message from its node's task channel).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "wire_decode.hpp"

namespace {
namespace w = chanpool::pool::wire;
volatile std::uint64_t sink;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view message(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    const auto h = w::decode_result_header(message, 4);
    if (!h || h->kind != w::result_kind::results) return 0;
    const std::string_view body = message.substr(sizeof *h);
    std::vector<chanpool::pool::detail::job::item_bytes> items;
    if (!w::decode_result_items(*h, body, items)) return 0;
    for (const auto& it : items) {
      if (it.offset > body.size() || it.length > body.size() - it.offset) __builtin_trap();  // outside the body
      sink = chanpool::fuzz::touch(body.data() + it.offset, it.length);
    }
  } else {
    const auto h = w::decode_task_header(message);
    if (!h || h->kind != w::task_kind::chunk) return 0;
    std::vector<std::string_view> args;
    if (!w::decode_task_items(h->item_count, message.substr(sizeof *h), args)) return 0;
    if (args.size() != h->item_count) __builtin_trap();
    for (const auto a : args) sink = chanpool::fuzz::touch(a.data(), a.size());
  }
  return 0;
}
