#include "chanpool/channels/error.hpp"

#include <string>

namespace chanpool {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "chanpool"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::invalid_name:
        return "invalid channel or job name: use 1-100 (job: 1-32) characters from [A-Za-z0-9_-]";
      case errc::invalid_config:
        return "invalid channel configuration: capacity must be a power of two in [2, 2^24], slot_bytes a "
               "multiple of 64 in [64, 65536], heap_block_bytes a power of two >= 64 dividing into heap_bytes";
      case errc::not_found:
        return "no such channel for this user and job: check the name and job (CHANPOOL_JOB), or create it first";
      case errc::already_exists:
        return "a channel of that name already exists for this user and job: open it, or unlink it first "
               "(chanpool_cleanup removes stale ones)";
      case errc::permission_denied:
        return "permission denied on the channel segment: it belongs to another user or its mode forbids access";
      case errc::version_mismatch:
        return "channel segment was created by an incompatible chanpool version: unlink it and recreate it";
      case errc::layout_mismatch:
        return "channel segment size or layout does not match its header (truncated or foreign file): unlink "
               "it and recreate it";
      case errc::corrupted:
        return "channel segment header is corrupted (bad magic or checksum): unlink it (chanpool_cleanup) "
               "and recreate it";
      case errc::not_ready:
        return "channel segment is still being initialised by its creator (or the creator died while "
               "creating it): retry, or unlink it if its creator is gone";
      case errc::out_of_memory:
        return "could not size or map the channel segment: /dev/shm may be full, or the size exceeds limits";
      case errc::peer_unreachable:
        return "the node's agent is gone or unreachable: check that the job's agents run (their node is "
               "reported dead after peer_timeout), and that the node index is within the job";
      case errc::timed_out:
        return "the operation did not complete in time: the agent may be overloaded or a peer is stuck; "
               "retry with a longer timeout";
    }
    return "unknown chanpool error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& chanpool_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace chanpool
