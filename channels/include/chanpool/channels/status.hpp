// Hot-path outcome of a channel operation. Small, cheap to return, never an exception.
#pragma once

#include <cstdint>
#include <string_view>

namespace chanpool {

enum class status : std::uint8_t {
  ok = 0,
  full,       // no free slot (or no heap space for a large message) and the call did not wait
  empty,      // nothing to receive and the call did not wait
  timeout,    // the wait's deadline passed
  closed,     // the channel was sealed: no more sends; receivers get this once it is drained
  peer_dead,  // the peer this operation depends on is gone (used by remote channels)
  too_large,  // message larger than the channel's max_message_bytes(), or than the receive buffer
  invalid,    // bad argument: empty handle, a claim that is not live, ...
};

constexpr std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::full: return "full";
    case status::empty: return "empty";
    case status::timeout: return "timeout";
    case status::closed: return "closed";
    case status::peer_dead: return "peer_dead";
    case status::too_large: return "too_large";
    case status::invalid: return "invalid";
  }
  return "unknown";
}

}  // namespace chanpool
