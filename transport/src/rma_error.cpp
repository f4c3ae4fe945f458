#include "chanpool/transport/rma.hpp"

namespace chanpool::transport {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "chanpool.rma"; }
  std::string message(int code) const override {
    switch (static_cast<rma_errc>(code)) {
      case rma_errc::out_of_range: return "the transfer reaches outside the region or its descriptor";
      case rma_errc::no_rights: return "the descriptor does not grant this direction (put needs write, get needs read)";
      case rma_errc::stale_region:
        return "the region was closed (or closed and created again): the descriptor is stale; ask its owner for a new one";
      case rma_errc::region_closed: return "the region handle was closed";
      case rma_errc::peer_dead: return "the region's node (or this node's agent) is gone: the transfer did not complete";
      case rma_errc::wrong_job: return "the descriptor belongs to another job";
      case rma_errc::rma_unsupported:
        return "the libfabric provider has no one-sided RMA (FI_RMA); choose one that has, e.g. tcp;ofi_rxm, shm, verbs;ofi_rxm";
      case rma_errc::not_local: return "the local region of a transfer must be this client's node's";
      case rma_errc::invalid_descriptor: return "empty or malformed region descriptor";
      case rma_errc::cancelled: return "the transfer was cancelled";
      case rma_errc::timed_out: return "timed out waiting for the transfer (it may still complete; wait again)";
      case rma_errc::registration_failed: return "the provider refused to register the region's memory (fi_mr_reg)";
      case rma_errc::too_large: return "longer than the provider moves in one operation";
      case rma_errc::notify_failed:
        return "the bytes landed but the notification was not delivered (channel full or not open at the target)";
      case rma_errc::too_many_regions: return "the node's region table is full (agent_config::max_regions)";
    }
    return "unknown rma error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& rma_category() noexcept {
  static const category instance;
  return instance;
}

result<region_descriptor> narrow(const region_descriptor& d, std::uint64_t offset, std::uint64_t length,
                                 std::uint32_t rights) {
  if (d.generation == 0) return make_error_code(rma_errc::invalid_descriptor);
  if (offset > d.length || length > d.length - offset) return make_error_code(rma_errc::out_of_range);
  if ((d.rights & rights) != rights) return make_error_code(rma_errc::no_rights);
  region_descriptor out = d;
  out.offset = d.offset + offset;
  out.length = length;
  out.rights = rights;
  return out;
}

}  // namespace chanpool::transport
