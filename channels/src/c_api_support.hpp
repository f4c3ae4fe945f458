// What every C API source (c_api.cpp, the transport's c_transport.cpp) needs at the boundary:
// exceptions turned into codes, C++ results into chanpool_code values, C timeouts into C++ ones.
#pragma once

#include <cerrno>
#include <cstdint>
#include <new>
#include <system_error>

#include "chanpool/channels.h"
#include "chanpool/channels/channel.hpp"
#include "chanpool/channels/error.hpp"
#include "chanpool/channels/status.hpp"

// What a chanpool_channel_t handle is (c_api.cpp makes them; c_api_run.cpp uses them too).
struct chanpool_channel {
  chanpool::channels::channel channel;
};

namespace chanpool::capi {

// The last errc: a new one needs its CHANPOOL_E_* in channels.h and in c_api.cpp's checks.
inline constexpr int last_errc = static_cast<int>(errc::timed_out);

// Runs `f`, turning any exception into a code.
template <class F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return CHANPOOL_E_NO_MEMORY;
  } catch (...) {
    return CHANPOOL_E_INTERNAL;
  }
}

inline int code(status s) noexcept { return static_cast<int>(s); }

// Codes of a layer above the channels (the transport's CHANPOOL_E_RMA_*): that layer's C API sets
// this at load time so chanpool_strerror() can describe them. Returns nullptr for codes not its own.
using strerror_extension_fn = const char* (*)(int code) noexcept;
void set_strerror_extension(strerror_extension_fn f) noexcept;

inline int code(const std::error_code& ec) noexcept {
  if (!ec) return CHANPOOL_OK;
  if (ec.category() == chanpool::chanpool_category()) {
    const int e = ec.value();
    return e >= 1 && e <= last_errc ? -e : CHANPOOL_E_INTERNAL;
  }
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) {
    errno = ec.value();  // what CHANPOOL_E_SYSTEM promises
    return CHANPOOL_E_SYSTEM;
  }
  return CHANPOOL_E_INTERNAL;
}

// -1 = forever, 0 = try once, positive = a deadline; other negatives are a caller's bug.
inline bool to_timeout(std::int64_t ns, channels::timeout& t) noexcept {
  if (ns == CHANPOOL_FOREVER) {
    t = channels::forever;
    return true;
  }
  if (ns < 0) return false;
  t = channels::timeout(ns);
  return true;
}

}  // namespace chanpool::capi
