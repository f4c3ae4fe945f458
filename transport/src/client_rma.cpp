// The process side of regions and one-sided transfers (rma.hpp): requests go through the
// node's inbox like messages, outcomes come back in the process's reply channel.
#include <cstring>

#include "chanpool/transport/rma.hpp"
#include "client_state.hpp"
#include "region_segment.hpp"

namespace chanpool::transport {

namespace w = wire;
using detail::clock_type;

namespace {

std::error_code from_reply(const w::region_reply& r) noexcept {
  if (r.error == 0) return {};
  switch (r.category) {
    case 0: return {r.error, rma_category()};
    case 1: return {r.error, chanpool_category()};
    default: return {r.error, fabric_category()};
  }
}

std::error_code from_rma_reply(std::int32_t error) noexcept {
  return error == 0 ? std::error_code() : make_error_code(static_cast<rma_errc>(error));
}

timeout left_of(timeout t, clock_type::time_point start) noexcept {
  if (t == channels::forever) return t;
  return std::max(timeout::zero(), std::chrono::duration_cast<timeout>(t - (clock_type::now() - start)));
}

}  // namespace

struct region::mapping {
  detail::region_mapping memory;
};

region::region() noexcept = default;

region::region(region&& o) noexcept
    : client_(std::move(o.client_)),
      map_(std::move(o.map_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      desc_(std::exchange(o.desc_, region_descriptor{})) {}
region& region::operator=(region&& o) noexcept {
  if (this != &o) {
    if (is_open()) (void)close(std::chrono::milliseconds(100));
    client_ = std::move(o.client_);
    map_ = std::move(o.map_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    desc_ = std::exchange(o.desc_, region_descriptor{});
  }
  return *this;
}

region::~region() {
  // Without waiting long: a region whose close is lost is closed when this process is gone.
  if (is_open()) (void)close(std::chrono::milliseconds(100));
}

result<region> region::create(client& c, std::size_t bytes, std::uint32_t remote_rights, timeout t) {
  auto& sh = c.shared_;
  if (!sh) return errc::invalid_config;
  if (bytes == 0) return errc::invalid_config;
  const auto start = clock_type::now();
  std::lock_guard lock(sh->reply_mu);
  const std::uint64_t token = sh->next_token.fetch_add(1, std::memory_order_relaxed);
  const w::inbox_header h{c.node(), 0, static_cast<std::uint16_t>(w::inbox_kind::region_create), 0, sh->pid, token};
  const w::region_create req{bytes, remote_rights & rma_read_write, 0};
  const status put = sh->put(h, std::as_bytes(std::span(&req, 1)), t);
  if (put == status::peer_dead) return errc::peer_unreachable;
  if (put != status::ok) return errc::timed_out;
  w::region_reply rep{};
  const status st = sh->await_reply(w::reply_kind::region, token, c.node(), left_of(t, start), &rep, sizeof rep);
  if (st == status::peer_dead) return errc::peer_unreachable;
  if (st != status::ok) return errc::timed_out;
  if (auto ec = from_reply(rep); ec) return ec;
  auto mem = detail::open_region_segment(sh->node_job, rep.region_id, rep.generation, bytes);
  if (!mem) return mem.error();
  region r;
  r.client_ = sh;
  r.map_ = std::make_unique<mapping>();
  r.map_->memory = std::move(*mem);
  r.data_ = r.map_->memory.data;
  r.size_ = bytes;
  r.desc_ = region_descriptor{c.node(), rep.region_id, rep.generation, 0, bytes, remote_rights & rma_read_write,
                              rep.job_tag, 0};
  return r;
}

std::error_code region::close(timeout t) {
  if (!is_open()) return rma_errc::region_closed;
  auto sh = std::move(client_);
  const region_descriptor d = std::exchange(desc_, region_descriptor{});
  data_ = nullptr;
  size_ = 0;
  map_.reset();  // this process's mapping; the agent frees the segment once no transfer uses it
  const auto start = clock_type::now();
  std::lock_guard lock(sh->reply_mu);
  const std::uint64_t token = sh->next_token.fetch_add(1, std::memory_order_relaxed);
  const w::inbox_header h{d.node, d.region_id, static_cast<std::uint16_t>(w::inbox_kind::region_close), 0, sh->pid, token};
  const status put = sh->put(h, std::as_bytes(std::span(&d.generation, 1)), t);
  if (put == status::peer_dead) return errc::peer_unreachable;
  if (put != status::ok) return errc::timed_out;
  w::region_reply rep{};
  const status st = sh->await_reply(w::reply_kind::region, token, d.node, left_of(t, start), &rep, sizeof rep);
  if (st == status::peer_dead) return errc::peer_unreachable;
  if (st != status::ok) return errc::timed_out;
  return rep.error == 0 ? std::error_code() : std::error_code(rep.error, rma_category());
}

// ---- transfers ---------------------------------------------------------------------------------

result<rma_op> client::start_transfer(std::uint16_t op, const region& local, std::uint64_t local_offset,
                                      std::uint64_t length, const region_descriptor& remote, std::uint64_t remote_offset,
                                      const remote_channel* notify, std::uint64_t tag) noexcept {
  if (!shared_) return errc::invalid_config;
  if (!local.is_open()) return make_error_code(rma_errc::region_closed);
  if (local.client_->node_job != shared_->node_job) return make_error_code(rma_errc::not_local);
  if (remote.generation == 0 || remote.job_tag == 0) return make_error_code(rma_errc::invalid_descriptor);
  if (remote.node >= node_count()) return make_error_code(rma_errc::invalid_descriptor);
  const bool is_put = op == static_cast<std::uint16_t>(w::rma_op_kind::put);
  if ((remote.rights & (is_put ? rma_write : rma_read)) == 0) return make_error_code(rma_errc::no_rights);
  if (local_offset > local.size() || length > local.size() - local_offset) return make_error_code(rma_errc::out_of_range);
  if (remote_offset > remote.length || length > remote.length - remote_offset)
    return make_error_code(rma_errc::out_of_range);
  std::uint32_t notify_channel = w::no_notify;
  if (notify) {
    // The notification is resolved by the target's agent: the channel must be on that node.
    if (remote.node == node() || notify->is_local() || notify->address().node != remote.node || !notify->client_)
      return make_error_code(rma_errc::invalid_descriptor);
    notify_channel = notify->channel_id_;
  }
  if (shared_->marked_gone(remote.node)) return make_error_code(rma_errc::peer_dead);
  const std::uint64_t token = shared_->next_token.fetch_add(1, std::memory_order_relaxed);
  {
    // Before the request leaves: a reply read by another waiter is then kept for this handle.
    std::lock_guard lock(shared_->reply_mu);
    shared_->rma_waiting.insert(token);
  }
  w::rma_local l{};
  l.op = op;
  l.local_region = local.desc_.region_id;
  l.local_generation = local.desc_.generation;
  l.local_offset = local_offset;
  l.length = length;
  l.remote_node = remote.node;
  l.remote_region = remote.region_id;
  l.remote_generation = remote.generation;
  l.remote_offset = remote.offset + remote_offset;
  l.notify_channel = notify_channel;
  l.job_tag = remote.job_tag;
  l.notify_tag = tag;
  const w::inbox_header h{node(), 0, static_cast<std::uint16_t>(w::inbox_kind::rma), 0, shared_->pid, token};
  if (const status st = shared_->put(h, std::as_bytes(std::span(&l, 1)), channels::forever); st != status::ok) {
    std::lock_guard lock(shared_->reply_mu);
    shared_->rma_waiting.erase(token);
    return make_error_code(st == status::peer_dead ? rma_errc::peer_dead : rma_errc::invalid_descriptor);
  }
  rma_op handle;
  handle.client_ = shared_;
  handle.token_ = token;
  handle.node_ = remote.node;
  return handle;
}

result<rma_op> client::put_async(const region& src, std::uint64_t src_offset, std::uint64_t length,
                                 const region_descriptor& dst, std::uint64_t dst_offset, const remote_channel* notify,
                                 std::uint64_t tag) noexcept {
  return start_transfer(static_cast<std::uint16_t>(w::rma_op_kind::put), src, src_offset, length, dst, dst_offset, notify,
                        tag);
}

result<rma_op> client::get_async(const region_descriptor& src, std::uint64_t src_offset, std::uint64_t length,
                                 const region& dst, std::uint64_t dst_offset) noexcept {
  return start_transfer(static_cast<std::uint16_t>(w::rma_op_kind::get), dst, dst_offset, length, src, src_offset, nullptr,
                        0);
}

std::error_code client::put(const region& src, std::uint64_t src_offset, std::uint64_t length, const region_descriptor& dst,
                            std::uint64_t dst_offset, timeout t, const remote_channel* notify, std::uint64_t tag) noexcept {
  auto op = put_async(src, src_offset, length, dst, dst_offset, notify, tag);
  if (!op) return op.error();
  return op->wait(t);
}

std::error_code client::get(const region_descriptor& src, std::uint64_t src_offset, std::uint64_t length,
                            const region& dst, std::uint64_t dst_offset, timeout t) noexcept {
  auto op = get_async(src, src_offset, length, dst, dst_offset);
  if (!op) return op.error();
  return op->wait(t);
}

// ---- rma_op --------------------------------------------------------------------------------------

rma_op::rma_op(rma_op&& o) noexcept { *this = std::move(o); }

rma_op& rma_op::operator=(rma_op&& o) noexcept {
  if (this != &o) {
    cancel();
    client_ = std::move(o.client_);
    token_ = std::exchange(o.token_, 0);
    node_ = o.node_;
    done_ = std::exchange(o.done_, false);
    outcome_ = o.outcome_;
  }
  return *this;
}

rma_op::~rma_op() { cancel(); }

void rma_op::cancel() noexcept {
  if (!client_ || done_) return;
  {
    std::lock_guard lock(client_->reply_mu);
    client_->rma_waiting.erase(token_);
    client_->rma_finished.erase(token_);
  }
  done_ = true;
  outcome_ = rma_errc::cancelled;
}

std::error_code rma_op::wait(timeout t) noexcept {
  if (!client_) return rma_errc::invalid_descriptor;
  if (done_) return outcome_;
  std::lock_guard lock(client_->reply_mu);
  std::error_code outcome;
  if (auto it = client_->rma_finished.find(token_); it != client_->rma_finished.end()) {
    outcome = from_rma_reply(it->second);
  } else {
    w::rma_reply r{};
    const status st = client_->await_reply(w::reply_kind::rma, token_, node_, t, &r, sizeof r);
    if (st == status::timeout) return rma_errc::timed_out;
    outcome = st == status::ok ? from_rma_reply(r.error) : make_error_code(rma_errc::peer_dead);
  }
  client_->rma_waiting.erase(token_);
  client_->rma_finished.erase(token_);
  done_ = true;
  outcome_ = outcome;
  return outcome_;
}

bool rma_op::test(std::error_code& ec) noexcept {
  if (!client_) {
    ec = rma_errc::invalid_descriptor;
    return true;
  }
  if (!done_) {
    const std::error_code r = wait(timeout::zero());
    if (r == rma_errc::timed_out) return false;
  }
  ec = outcome_;
  return true;
}

}  // namespace chanpool::transport
