// A cursor over a fuzzer's input: typed reads that return 0 once the bytes run out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace chanpool::fuzz {

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : p_(data), left_(size) {}
  template <class T>
  T take() {
    T v{};
    const std::size_t n = left_ < sizeof v ? left_ : sizeof v;
    if (n) std::memcpy(&v, p_, n);
    p_ += n;
    left_ -= n;
    return v;
  }
  // Up to `max` bytes as a string.
  std::string bytes(std::size_t max) {
    const std::size_t n = left_ < max ? left_ : max;
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return s;
  }
  bool empty() const { return left_ == 0; }
  std::size_t left() const { return left_; }
  const std::uint8_t* data() const { return p_; }

 private:
  const std::uint8_t* p_;
  std::size_t left_;
};

// Reads every byte of [p, p + n): an out-of-bounds span shows up under AddressSanitizer.
inline std::uint64_t touch(const void* p, std::size_t n) {
  std::uint64_t sum = 0;
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) sum += b[i];
  return sum;
}

}  // namespace chanpool::fuzz
