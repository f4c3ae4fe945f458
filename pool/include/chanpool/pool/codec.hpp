// How task arguments and results travel: bytes in a channel message.
//
// A trivially copyable type is copied as its object representation (the fast path: an int, a
// double, a struct of them). Anything else goes through cereal's binary archive, so the type
// needs a cereal serialize() (the standard containers and strings have one once their
// cereal/types/*.hpp header is included; this header includes the common ones).
//
// Both ends are the same binary (tasks are registered by name in every process), so layouts
// agree; the encoding is not meant to cross architectures.
#pragma once

#include <cstddef>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/vector.hpp>

namespace chanpool::pool {

// Thrown while decoding bytes that do not hold a value of the expected type (a truncated or
// foreign message). Never crosses a process boundary: workers turn it into an error result.
struct decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
inline constexpr bool is_raw_copyable_v =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;

// Appends the encoding of `value` to `out`.
template <class T>
void encode(const T& value, std::string& out) {
  if constexpr (is_raw_copyable_v<T>) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  } else {
    std::ostringstream stream(std::ios::binary);
    {
      cereal::BinaryOutputArchive archive(stream);
      archive(value);
    }
    out += stream.str();
  }
}

// Decodes a value that occupies all of `bytes`.
template <class T>
T decode(std::string_view bytes) {
  if constexpr (is_raw_copyable_v<T>) {
    static_assert(std::is_default_constructible_v<T>, "raw-copied task types must be default constructible");
    if (bytes.size() != sizeof(T))
      throw decode_error("expected " + std::to_string(sizeof(T)) + " bytes, got " + std::to_string(bytes.size()));
    T value;
    std::memcpy(static_cast<void*>(&value), bytes.data(), sizeof(T));
    return value;
  } else {
    std::istringstream stream(std::string(bytes), std::ios::binary);
    T value{};
    try {
      cereal::BinaryInputArchive archive(stream);
      archive(value);
    } catch (const cereal::Exception& e) {
      throw decode_error(std::string("cereal: ") + e.what());
    }
    return value;
  }
}

// An argument list is encoded as one value: a tuple. Single trivially copyable arguments (the
// common map(f, vector<int>) case) stay raw; mixed lists go through cereal's tuple support.
template <class... Args>
void encode_args(std::string& out, const Args&... args) {
  if constexpr (sizeof...(Args) == 1) {
    (encode(args, out), ...);
  } else if constexpr (sizeof...(Args) == 0) {
    (void)out;
  } else {
    encode(std::tuple<Args...>(args...), out);
  }
}

template <class... Args>
std::tuple<Args...> decode_args(std::string_view bytes) {
  if constexpr (sizeof...(Args) == 1) {
    return std::tuple<Args...>(decode<Args...>(bytes));
  } else if constexpr (sizeof...(Args) == 0) {
    if (!bytes.empty()) throw decode_error("a task without arguments got " + std::to_string(bytes.size()) + " bytes");
    return {};
  } else {
    return decode<std::tuple<Args...>>(bytes);
  }
}

}  // namespace chanpool::pool
