// Setup and I/O errors: std::error_code in the chanpool category, carried by result<T>.
#pragma once

#include <optional>
#include <system_error>
#include <utility>

namespace chanpool {

enum class errc {
  invalid_name = 1,   // channel or job name empty, too long, or with characters outside [A-Za-z0-9_-]
  invalid_config,     // capacity not a power of two, slot size not a multiple of 64, ...
  not_found,          // no channel of that name for this user and job
  already_exists,     // create() of a name that exists
  permission_denied,  // the segment belongs to another user or mode forbids access
  version_mismatch,   // segment written by an incompatible chanpool version
  layout_mismatch,    // header sizes/offsets disagree with the segment size
  corrupted,          // bad magic or checksum in the header
  not_ready,          // creator has not finished initialising the segment (or died doing so)
  out_of_memory,      // the segment could not be sized or mapped
  peer_unreachable,   // transport: the node's agent (local or remote) is gone or never answered
  timed_out,          // transport: a setup step did not finish within its timeout
};

const std::error_category& chanpool_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), chanpool_category()}; }

// Either a value or an error_code. Setup paths return this; they never throw across the API.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}
  result(std::error_code error) : error_(error) {}
  result(errc e) : error_(make_error_code(e)) {}

  bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  const std::error_code& error() const noexcept { return error_; }

  // Throws std::system_error carrying error() when there is no value: for callers that
  // prefer exceptions at setup time.
  T& value() & { check(); return *value_; }
  T&& value() && { check(); return std::move(*value_); }
  T* operator->() { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  void check() const {
    if (!value_) throw std::system_error(error_);
  }
  std::optional<T> value_;
  std::error_code error_;
};

}  // namespace chanpool

template <>
struct std::is_error_code_enum<chanpool::errc> : std::true_type {};
