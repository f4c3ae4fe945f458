// The head of every context the agent hands to libfabric, so a completion says what it finished.
#pragma once

#include <cstdint>

namespace chanpool::transport::detail {

enum class op_kind : std::uint8_t { batch_send, control_send, large_send, frame_recv, large_recv, rma_target };

struct operation {
  explicit operation(op_kind k) : kind(k) {}
  op_kind kind;
};

}  // namespace chanpool::transport::detail
