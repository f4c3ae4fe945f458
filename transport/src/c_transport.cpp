// The C API of the transport (chanpool/transport.h) over virtual_cluster, client and
// remote_channel. Built into libchanpool_c.so with the channels' C API (c_api_support.hpp).
#include "chanpool/transport.h"

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "c_api_support.hpp"
#include "chanpool/transport/bootstrap.hpp"
#include "chanpool/transport/client.hpp"
#include "chanpool/transport/rma.hpp"

namespace tr = chanpool::transport;
using chanpool::status;
using chanpool::capi::code;
using chanpool::capi::guarded;
using chanpool::capi::to_timeout;

struct chanpool_cluster {
  tr::virtual_cluster cluster;
};

struct chanpool_client {
  tr::client client;
};

struct chanpool_remote {
  tr::remote_channel remote;
};

namespace {

static_assert(CHANPOOL_NODE_UNKNOWN == static_cast<int>(tr::peer_state::unknown));
static_assert(CHANPOOL_NODE_ALIVE == static_cast<int>(tr::peer_state::alive));
static_assert(CHANPOOL_NODE_DEAD == static_cast<int>(tr::peer_state::dead));
static_assert(CHANPOOL_NODE_LEFT == static_cast<int>(tr::peer_state::left));
static_assert(CHANPOOL_ROUTE_DIRECT_IF_LOCAL == static_cast<int>(tr::route::direct_if_local));
static_assert(CHANPOOL_ROUTE_VIA_AGENT == static_cast<int>(tr::route::via_agent));
static_assert(CHANPOOL_SEND_BUFFERED == static_cast<int>(tr::send_mode::buffered));
static_assert(CHANPOOL_SEND_DEPOSITED == static_cast<int>(tr::send_mode::deposited));

// Copies `text` with its NUL into buffer when it fits; *length gets its length either way.
int copy_out(std::string_view text, char* buffer, std::size_t capacity, std::size_t* length) noexcept {
  if (length) *length = text.size();
  if (capacity <= text.size()) return CHANPOOL_TOO_LARGE;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  return CHANPOOL_OK;
}

}  // namespace

namespace {

// Commits or abandons the remote_claim kept in a C claim, then zeroes the C claim.
template <class Finish>
int finish_remote_claim(chanpool_remote_t* remote, chanpool_send_claim_t* claim, Finish finish) {
  if (!remote || !claim) return CHANPOOL_INVALID;
  tr::remote_claim c;
  std::memcpy(static_cast<void*>(&c), claim->internal, sizeof c);
  if (!c.active()) return CHANPOOL_INVALID;
  const int rc = code(finish(c));
  std::memset(claim, 0, sizeof *claim);
  return rc;
}
}  // namespace

extern "C" {

void chanpool_cluster_config_init(chanpool_cluster_config_t* config) {
  if (!config) return;
  const tr::cluster_config d;
  *config = {.nodes = d.nodes,
             .job = nullptr,
             .provider = nullptr,
             .start_timeout_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.start_timeout).count()};
}

int chanpool_cluster_start(const chanpool_cluster_config_t* config, chanpool_cluster_t** out) {
  if (out) *out = nullptr;
  chanpool_cluster_config_t c;
  chanpool_cluster_config_init(&c);
  if (config) c = *config;
  if (!out || c.nodes == 0 || c.start_timeout_ns < 0) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    tr::cluster_config cfg;
    cfg.nodes = c.nodes;
    cfg.job = c.job ? c.job : "";
    if (c.provider) cfg.agent.provider = c.provider;
    cfg.start_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(c.start_timeout_ns));
    auto handle = std::make_unique<chanpool_cluster>();
    auto started = tr::virtual_cluster::start(cfg);
    if (!started) return code(started.error());
    handle->cluster = std::move(*started);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

void chanpool_cluster_stop(chanpool_cluster_t* cluster) {
  guarded([&]() -> int {
    delete cluster;  // ~virtual_cluster() stops and reaps the agents
    return CHANPOOL_OK;
  });
}

uint32_t chanpool_cluster_nodes(const chanpool_cluster_t* cluster) { return cluster ? cluster->cluster.nodes() : 0; }

int chanpool_cluster_node_job(const chanpool_cluster_t* cluster, uint32_t node, char* buffer, size_t capacity,
                              size_t* length) {
  if (length) *length = 0;
  if (!cluster || node >= cluster->cluster.nodes() || (!buffer && capacity)) return CHANPOOL_INVALID;
  return guarded([&]() -> int { return copy_out(cluster->cluster.node_job(node), buffer, capacity, length); });
}

int chanpool_virtual_node_job(const char* job, uint32_t node, char* buffer, size_t capacity, size_t* length) {
  if (length) *length = 0;
  if (!job || (!buffer && capacity)) return CHANPOOL_INVALID;
  return guarded([&]() -> int { return copy_out(tr::virtual_node_job(job, node), buffer, capacity, length); });
}

int chanpool_client_attach(const char* node_job, int64_t wait_ns, chanpool_client_t** out) {
  if (out) *out = nullptr;
  chanpool::channels::timeout t;
  if (!node_job || !out || wait_ns == CHANPOOL_TRY_ONCE || !to_timeout(wait_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto handle = std::make_unique<chanpool_client>();
    auto attached = tr::client::attach(node_job, t);
    if (!attached) return code(attached.error());
    handle->client = std::move(*attached);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

void chanpool_client_detach(chanpool_client_t* client) {
  guarded([&]() -> int {
    delete client;
    return CHANPOOL_OK;
  });
}

uint32_t chanpool_client_node(const chanpool_client_t* client) { return client ? client->client.node() : 0; }

uint32_t chanpool_client_node_count(const chanpool_client_t* client) {
  return client ? client->client.node_count() : 0;
}

int chanpool_client_peer_state(const chanpool_client_t* client, uint32_t node) {
  return client ? static_cast<int>(client->client.peer(node)) : CHANPOOL_NODE_UNKNOWN;
}

int chanpool_client_flush(chanpool_client_t* client) {
  if (!client) return CHANPOOL_INVALID;
  return code(client->client.flush());
}

void chanpool_remote_options_init(chanpool_remote_options_t* options) {
  if (!options) return;
  const tr::remote_open_options d;
  *options = {.route = static_cast<int>(d.routing), .resolve_timeout_ns = d.resolve_timeout.count()};
}

int chanpool_remote_open(chanpool_client_t* client, uint32_t node, const char* name,
                         const chanpool_remote_options_t* options, chanpool_remote_t** out) {
  if (out) *out = nullptr;
  chanpool_remote_options_t o;
  chanpool_remote_options_init(&o);
  if (options) o = *options;
  chanpool::channels::timeout resolve;
  if (!client || !name || !out || o.route < CHANPOOL_ROUTE_DIRECT_IF_LOCAL || o.route > CHANPOOL_ROUTE_VIA_AGENT ||
      !to_timeout(o.resolve_timeout_ns, resolve))
    return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto handle = std::make_unique<chanpool_remote>();
    auto opened = client->client.open({node, name}, {.routing = static_cast<tr::route>(o.route), .resolve_timeout = resolve});
    if (!opened) return code(opened.error());
    handle->remote = std::move(*opened);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

void chanpool_remote_close(chanpool_remote_t* remote) {
  guarded([&]() -> int {
    delete remote;
    return CHANPOOL_OK;
  });
}

int chanpool_remote_send(chanpool_remote_t* remote, const void* data, size_t size, int64_t timeout_ns, int mode) {
  chanpool::channels::timeout t;
  if (!remote || (!data && size) || !to_timeout(timeout_ns, t) || mode < CHANPOOL_SEND_BUFFERED ||
      mode > CHANPOOL_SEND_DEPOSITED)
    return CHANPOOL_INVALID;
  return code(remote->remote.send({static_cast<const std::byte*>(data), size}, t, static_cast<tr::send_mode>(mode)));
}

// A remote_claim lives in the C struct's `internal` words (trivially copyable, checked here).
static_assert(sizeof(tr::remote_claim) <= sizeof(chanpool_send_claim_t::internal) &&
              alignof(tr::remote_claim) <= alignof(std::uint64_t));

int chanpool_remote_claim(chanpool_remote_t* remote, size_t size, chanpool_send_claim_t* claim, int64_t timeout_ns) {
  if (claim) std::memset(claim, 0, sizeof *claim);
  chanpool::channels::timeout t;
  if (!remote || !claim || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  tr::remote_claim c;
  const chanpool::status st = remote->remote.claim(size, c, t);
  if (st == chanpool::status::ok) {
    claim->data = c.data().data();
    claim->size = c.data().size();
    std::memcpy(claim->internal, static_cast<const void*>(&c), sizeof c);
  }
  return code(st);
}

int chanpool_remote_commit(chanpool_remote_t* remote, chanpool_send_claim_t* claim) {
  return finish_remote_claim(remote, claim, [&](tr::remote_claim& c) { return remote->remote.commit(c); });
}

int chanpool_remote_abandon(chanpool_remote_t* remote, chanpool_send_claim_t* claim) {
  return finish_remote_claim(remote, claim, [&](tr::remote_claim& c) { return remote->remote.abandon(c); });
}

size_t chanpool_remote_max_message_bytes(const chanpool_remote_t* remote) {
  return remote ? remote->remote.max_message_bytes() : 0;
}

int chanpool_remote_is_local(const chanpool_remote_t* remote) { return remote && remote->remote.is_local() ? 1 : 0; }

}  // extern "C"

// ---- one-sided transfers ---------------------------------------------------------------------

struct chanpool_region {
  tr::region region;
};

struct chanpool_rma_op {
  tr::rma_op op;
};

namespace {

static_assert(sizeof(chanpool_region_descriptor_t) == sizeof(tr::region_descriptor));
static_assert(offsetof(chanpool_region_descriptor_t, generation) == offsetof(tr::region_descriptor, generation));
static_assert(offsetof(chanpool_region_descriptor_t, rights) == offsetof(tr::region_descriptor, rights));
static_assert(offsetof(chanpool_region_descriptor_t, job_tag) == offsetof(tr::region_descriptor, job_tag));
static_assert(CHANPOOL_RMA_READ == tr::rma_read && CHANPOOL_RMA_WRITE == tr::rma_write);
static_assert(CHANPOOL_E_RMA_TOO_MANY_REGIONS == -200 - static_cast<int>(tr::rma_errc::too_many_regions));

constexpr int rma_base = -200;

int rma_code(const std::error_code& ec) noexcept {
  if (ec && ec.category() == tr::rma_category()) return rma_base - ec.value();
  return code(ec);
}

const char* rma_strerror(int c) noexcept {
  const int e = rma_base - c;
  if (e < 1 || e > static_cast<int>(tr::rma_errc::too_many_regions)) return nullptr;
  try {
    static const std::vector<std::string> texts = [] {
      std::vector<std::string> t;
      for (int i = 1; i <= static_cast<int>(tr::rma_errc::too_many_regions); ++i)
        t.push_back(make_error_code(static_cast<tr::rma_errc>(i)).message());
      return t;
    }();
    return texts[static_cast<std::size_t>(e - 1)].c_str();
  } catch (...) {
    return "chanpool one-sided transfer error";
  }
}

// Registers the transport's codes with chanpool_strerror() when the library is loaded.
const bool rma_codes_registered = [] {
  chanpool::capi::set_strerror_extension(&rma_strerror);
  return true;
}();

tr::region_descriptor from_c(const chanpool_region_descriptor_t& d) noexcept {
  return {d.node, d.region_id, d.generation, d.offset, d.length, d.rights, d.job_tag, d.reserved};
}
void to_c(const tr::region_descriptor& d, chanpool_region_descriptor_t& out) noexcept {
  out = {d.node, d.region_id, d.generation, d.offset, d.length, d.rights, d.job_tag, d.reserved};
}

}  // namespace

extern "C" {

int chanpool_region_create(chanpool_client_t* client, size_t bytes, uint32_t rights, int64_t timeout_ns,
                           chanpool_region_t** out) {
  if (out) *out = nullptr;
  chanpool::channels::timeout t;
  if (!client || !out || !to_timeout(timeout_ns, t) || timeout_ns == CHANPOOL_TRY_ONCE) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto r = tr::region::create(client->client, bytes, rights, t);
    if (!r) return rma_code(r.error());
    auto handle = std::make_unique<chanpool_region>();
    handle->region = std::move(*r);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

int chanpool_region_close(chanpool_region_t* region, int64_t timeout_ns) {
  std::unique_ptr<chanpool_region> owned(region);
  chanpool::channels::timeout t;
  if (!region || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int { return rma_code(owned->region.close(t)); });
}

void* chanpool_region_data(const chanpool_region_t* region) { return region ? region->region.bytes().data() : nullptr; }
size_t chanpool_region_size(const chanpool_region_t* region) { return region ? region->region.size() : 0; }

int chanpool_region_descriptor(const chanpool_region_t* region, chanpool_region_descriptor_t* out) {
  if (!region || !out) return CHANPOOL_INVALID;
  to_c(region->region.descriptor(), *out);
  return CHANPOOL_OK;
}

int chanpool_region_narrow(const chanpool_region_descriptor_t* d, uint64_t offset, uint64_t length, uint32_t rights,
                           chanpool_region_descriptor_t* out) {
  if (!d || !out) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto n = tr::narrow(from_c(*d), offset, length, rights);
    if (!n) return rma_code(n.error());
    to_c(*n, *out);
    return CHANPOOL_OK;
  });
}

int chanpool_put(chanpool_client_t* client, const chanpool_region_t* src, uint64_t src_offset, uint64_t length,
                 const chanpool_region_descriptor_t* dst, uint64_t dst_offset, int64_t timeout_ns,
                 const chanpool_remote_t* notify, uint64_t tag) {
  chanpool::channels::timeout t;
  if (!client || !src || !dst || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    return rma_code(client->client.put(src->region, src_offset, length, from_c(*dst), dst_offset, t,
                                       notify ? &notify->remote : nullptr, tag));
  });
}

int chanpool_get(chanpool_client_t* client, const chanpool_region_descriptor_t* src, uint64_t src_offset, uint64_t length,
                 const chanpool_region_t* dst, uint64_t dst_offset, int64_t timeout_ns) {
  chanpool::channels::timeout t;
  if (!client || !src || !dst || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    return rma_code(client->client.get(from_c(*src), src_offset, length, dst->region, dst_offset, t));
  });
}

int chanpool_put_async(chanpool_client_t* client, const chanpool_region_t* src, uint64_t src_offset, uint64_t length,
                       const chanpool_region_descriptor_t* dst, uint64_t dst_offset, const chanpool_remote_t* notify,
                       uint64_t tag, chanpool_rma_op_t** out) {
  if (out) *out = nullptr;
  if (!client || !src || !dst || !out) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto op = client->client.put_async(src->region, src_offset, length, from_c(*dst), dst_offset,
                                       notify ? &notify->remote : nullptr, tag);
    if (!op) return rma_code(op.error());
    auto handle = std::make_unique<chanpool_rma_op>();
    handle->op = std::move(*op);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

int chanpool_get_async(chanpool_client_t* client, const chanpool_region_descriptor_t* src, uint64_t src_offset,
                       uint64_t length, const chanpool_region_t* dst, uint64_t dst_offset, chanpool_rma_op_t** out) {
  if (out) *out = nullptr;
  if (!client || !src || !dst || !out) return CHANPOOL_INVALID;
  return guarded([&]() -> int {
    auto op = client->client.get_async(from_c(*src), src_offset, length, dst->region, dst_offset);
    if (!op) return rma_code(op.error());
    auto handle = std::make_unique<chanpool_rma_op>();
    handle->op = std::move(*op);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

int chanpool_rma_test(chanpool_rma_op_t* op, int* done) {
  if (!op || !done) return CHANPOOL_INVALID;
  std::error_code ec;
  *done = op->op.test(ec) ? 1 : 0;
  return *done ? rma_code(ec) : CHANPOOL_OK;
}

int chanpool_rma_wait(chanpool_rma_op_t* op, int64_t timeout_ns) {
  chanpool::channels::timeout t;
  if (!op || !to_timeout(timeout_ns, t)) return CHANPOOL_INVALID;
  return rma_code(op->op.wait(t));
}

void chanpool_rma_free(chanpool_rma_op_t* op) { delete op; }

}  // extern "C"
