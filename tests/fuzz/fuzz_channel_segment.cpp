// Fuzz target: a channel segment that another process wrote over (channels/src/layout.hpp).
//
// The first input byte picks the mode; the rest is a list of patches {u32 offset, u8 width,
// u64 value} applied to a pristine segment image of a small channel (inline and heap messages
// queued, one receive claimed):
//   even: open   - validate_header() on a patched private copy, with a patched mapping size;
//   odd:  use    - the patches go into the live segment past its header (control block,
//                  registry, waiter records, ring, heap owner words), then a handle receives,
//                  sends, polls, repairs and reads stats on it, never waiting.
// Nothing may read or write outside the segment, and nothing may loop without end.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "fuzz_input.hpp"
#include "segment.hpp"

namespace {

namespace ch = chanpool::channels;
namespace d = chanpool::channels::detail;
volatile std::uint64_t sink;

struct fixture {
  ch::channel handle;
  std::byte* live = nullptr;  // our own mapping of the segment file
  std::size_t bytes = 0;
  std::vector<std::byte> pristine;
  std::string name = "fuzzseg";
  ch::open_options options{.job = "fuzz" + std::to_string(::getpid())};

  fixture() {
    (void)ch::channel::unlink(name, options);
    auto c = ch::channel::create(name, {.capacity = 8, .slot_bytes = 128, .heap_bytes = 8192, .heap_block_bytes = 1024},
                                 options);
    if (!c) std::abort();
    handle = std::move(*c);
    handle.set_wait({.mode = ch::wait_mode::spin, .spin_for = {}, .liveness_check = std::chrono::milliseconds(1)});
    const std::vector<std::byte> small(40, std::byte{7}), large(1500, std::byte{9});
    if (handle.send(small, ch::try_once) != chanpool::status::ok ||
        handle.send(large, ch::try_once) != chanpool::status::ok)
      std::abort();
    auto shm_name = ch::channel::segment_name(name, options);
    if (!shm_name) std::abort();
    const std::string path = "/dev/shm" + shm_name.value();
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) std::abort();
    bytes = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) std::abort();
    live = static_cast<std::byte*>(m);
    pristine.assign(live, live + bytes);
    // The segment name is gone at exit; the mapping stays valid while we run.
    (void)ch::channel::unlink(name, options);
  }
};

fixture& the_fixture() {
  static fixture f;
  return f;
}

// Applies the patches in `in` to `image` (of `size` bytes), at offsets from `floor` on.
void apply_patches(chanpool::fuzz::input& in, std::byte* image, std::size_t size, std::size_t floor) {
  while (in.left() >= 13) {
    const std::uint32_t raw = in.take<std::uint32_t>();
    const unsigned width = 1u << (in.take<std::uint8_t>() & 3u);
    const std::uint64_t value = in.take<std::uint64_t>();
    if (size <= floor + width) return;
    const std::size_t at = floor + raw % (size - floor - width);
    std::memcpy(image + at, &value, width);
  }
}

void open_mode(chanpool::fuzz::input& in, const fixture& f) {
  std::vector<std::byte> image(f.pristine);
  const std::int32_t size_delta = in.take<std::int8_t>() * 64;
  apply_patches(in, image.data(), image.size(), 0);
  std::size_t mapped = image.size();
  if (size_delta < 0 && static_cast<std::size_t>(-size_delta) < mapped) mapped -= static_cast<std::size_t>(-size_delta);
  d::channel_view view;
  if (d::validate_header(image.data(), mapped, view)) return;
  // Accepted: every region the view names must lie inside the mapping.
  const auto end = image.data() + mapped;
  auto inside = [&](const void* p, std::uint64_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= image.data() && b <= end && n <= static_cast<std::uint64_t>(end - b);
  };
  if (!inside(view.ring, std::uint64_t{view.capacity} * view.slot_bytes) ||
      !inside(view.heap, std::uint64_t{view.heap_blocks} * view.heap_block_bytes) ||
      !inside(view.heap_owner, std::uint64_t{view.heap_blocks} * 4) ||
      !inside(view.waiters, std::uint64_t{view.registry_entries} * sizeof(d::waiter_record)))
    __builtin_trap();
}

void use_mode(chanpool::fuzz::input& in, fixture& f) {
  std::memcpy(f.live, f.pristine.data(), f.bytes);
  apply_patches(in, f.live, f.bytes, sizeof(d::segment_header));
  std::vector<std::byte> buf(f.handle.max_message_bytes());
  for (int i = 0; i < 24; ++i) {
    std::size_t len = 0;
    const chanpool::status st = f.handle.try_recv(buf, len);
    if (st == chanpool::status::ok && len > buf.size()) __builtin_trap();
    if (st != chanpool::status::ok && st != chanpool::status::too_large) break;
  }
  ch::recv_claim rc;
  if (f.handle.claim_recv(rc, ch::try_once) == chanpool::status::ok) {
    sink = chanpool::fuzz::touch(rc.data().data(), rc.data().size());
    (void)f.handle.release(rc);
  }
  const std::vector<std::byte> small(20, std::byte{1}), large(3000, std::byte{2});
  (void)f.handle.send(small, ch::try_once);
  (void)f.handle.send(large, ch::try_once);
  const auto p = f.handle.poll();
  sink = p.count + p.blocked_receivers + p.blocked_senders;
  sink = f.handle.repair();
  sink = f.handle.stats().attached_processes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fixture& f = the_fixture();
  chanpool::fuzz::input in(data + 1, size - 1);
  if (data[0] & 1)
    use_mode(in, f);
  else
    open_mode(in, f);
  return 0;
}
