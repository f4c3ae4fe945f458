#include "wire_decode.hpp"

#include <cstring>

namespace chanpool::pool::wire {

std::optional<result_header> decode_result_header(std::string_view message, std::size_t nodes) noexcept {
  const auto h = read_header<result_header>(message);
  if (!h || h->magic != result_magic || h->version != version || h->node >= nodes) return std::nullopt;
  return h;
}

bool decode_result_items(const result_header& h, std::string_view body, std::vector<detail::job::item_bytes>& items) {
  items.clear();
  // Never reserve what the header claims: each record takes at least sizeof(item_record).
  if (h.item_count > body.size() / sizeof(item_record)) return false;
  items.reserve(h.item_count);
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < h.item_count; ++i) {
    item_record rec;
    if (body.size() - at < sizeof rec) break;
    std::memcpy(&rec, body.data() + at, sizeof rec);
    at += sizeof rec;
    if (body.size() - at < rec.length) break;
    items.push_back({h.first_item + i, static_cast<std::uint32_t>(at), rec.length, rec.ok != 0});
    at += rec.length;
  }
  if (items.size() == h.item_count && at == body.size()) return true;
  items.clear();
  return false;
}

std::optional<task_header> decode_task_header(std::string_view message) noexcept {
  const auto h = read_header<task_header>(message);
  if (!h || h->magic != task_magic || h->version != version) return std::nullopt;
  if (h->kind != task_kind::chunk && h->kind != task_kind::stop) return std::nullopt;
  return h;
}

bool decode_task_items(std::uint32_t item_count, std::string_view payload, std::vector<std::string_view>& args) {
  args.clear();
  if (!plausible_item_count(item_count, payload.size())) return false;
  args.reserve(item_count);
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < item_count; ++i) {
    std::uint32_t length = 0;
    if (payload.size() - at < sizeof length) break;
    std::memcpy(&length, payload.data() + at, sizeof length);
    at += sizeof length;
    if (payload.size() - at < length) break;
    args.push_back(payload.substr(at, length));
    at += length;
  }
  if (args.size() == item_count && at == payload.size()) return true;
  args.clear();
  return false;
}

}  // namespace chanpool::pool::wire
