#include "chanpool/transport/fabric.hpp"

#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace chanpool::transport {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "chanpool.fabric"; }
  std::string message(int code) const override {
    std::string text = fi_strerror(code);
    switch (code) {
      case FI_ENODATA:
        return text + ": no libfabric provider matches (check --provider / FI_PROVIDER and `fi_info -p <name>`)";
      case FI_ECONNREFUSED:
        return text + ": the peer's endpoint is not listening (its agent is gone or not started yet)";
      case FI_EAGAIN:
        return text + ": the provider is out of resources for now; retry after progressing the CQ";
      default:
        return text;
    }
  }
};

// Owns an fi_info allocated by libfabric.
struct info_ptr {
  fi_info* p = nullptr;
  ~info_ptr() {
    if (p) fi_freeinfo(p);
  }
};

}  // namespace

const std::error_category& fabric_category() noexcept {
  static const category instance;
  return instance;
}

std::string choose_provider(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (const char* env = std::getenv("FI_PROVIDER"); env && *env) return env;
  return default_provider;
}

std::string endpoint_info::summary() const {
  std::string out = "provider " + provider + ", fabric " + fabric + ", domain " + domain + ", libfabric " +
                    std::to_string(FI_MAJOR(api_version)) + "." + std::to_string(FI_MINOR(api_version)) +
                    ", inject " + std::to_string(inject_size) + " B" + (tagged ? ", tagged" : "") + (rma ? ", rma" : "");
  // What fi_getinfo asked of registrations (and so what register_rma does), where it asked anything.
  static constexpr std::pair<std::uint64_t, const char*> bits[] = {{FI_MR_LOCAL, "local"},
                                                                   {FI_MR_VIRT_ADDR, "virt_addr"},
                                                                   {FI_MR_ALLOCATED, "allocated"},
                                                                   {FI_MR_PROV_KEY, "prov_key"},
                                                                   {FI_MR_ENDPOINT, "endpoint"}};
  std::string modes;
  for (const auto& [bit, name] : bits)
    if (mr_mode & bit) modes += (modes.empty() ? "" : " ") + std::string(name);
  if (!modes.empty()) out += " (mr_mode " + modes + ")";
  return out;
}

fabric_endpoint::fabric_endpoint(fabric_endpoint&& o) noexcept { *this = std::move(o); }

fabric_endpoint& fabric_endpoint::operator=(fabric_endpoint&& o) noexcept {
  if (this != &o) {
    close();
    fabric_ = std::exchange(o.fabric_, nullptr);
    domain_ = std::exchange(o.domain_, nullptr);
    av_ = std::exchange(o.av_, nullptr);
    cq_ = std::exchange(o.cq_, nullptr);
    ep_ = std::exchange(o.ep_, nullptr);
    address_ = std::move(o.address_);
    info_ = std::move(o.info_);
  }
  return *this;
}

fabric_endpoint::~fabric_endpoint() { close(); }

void fabric_endpoint::close_endpoint() noexcept {
  if (ep_) fi_close(&ep_->fid);
  ep_ = nullptr;
}

void fabric_endpoint::close() noexcept {
  // Reverse order of creation: the endpoint before what it is bound to.
  if (ep_) fi_close(&ep_->fid);
  if (av_) fi_close(&av_->fid);
  if (cq_) fi_close(&cq_->fid);
  if (domain_) fi_close(&domain_->fid);
  if (fabric_) fi_close(&fabric_->fid);
  ep_ = nullptr;
  av_ = nullptr;
  cq_ = nullptr;
  domain_ = nullptr;
  fabric_ = nullptr;
}

namespace {
// The hints every chanpool endpoint asks for.
result<fi_info*> make_hints(const endpoint_config& config) {
  fi_info* hints = fi_allocinfo();
  if (!hints) return fabric_error(-FI_ENOMEM);
  const std::string provider = choose_provider(config.provider);
  hints->ep_attr->type = FI_EP_RDM;
  hints->caps = FI_MSG | (config.tagged ? FI_TAGGED : 0) | (config.multi_recv ? FI_MULTI_RECV : 0) |
                (config.rma ? FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE : 0);
  // No mode bits: chanpool supplies no per-operation context or prefix space.
  hints->mode = 0;
  hints->domain_attr->threading = FI_THREAD_SAFE;
  // The MR modes chanpool can honour: providers that need local registration (verbs, cxi) get
  // registered buffers (see register_memory); tcp;ofi_rxm needs none and returns 0.
  // FI_MR_ENDPOINT (cxi, efa) is honoured by binding each registration to the endpoint.
  // FI_MR_RMA_EVENT is not asked for: chanpool wants no events from the target's side.
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  // Asked for, but completions may still be reported out of order (comp_order NONE on
  // tcp;ofi_rxm): the agent sequences its batch frames itself.
  hints->tx_attr->msg_order = FI_ORDER_SAS;
  hints->rx_attr->msg_order = FI_ORDER_SAS;
  hints->fabric_attr->prov_name = strdup(provider.c_str());  // freed by fi_freeinfo
  return hints;
}
// FI_GETWAIT writes the wait object itself, whose type depends on the kind the provider chose
// for FI_WAIT_UNSPEC: an int for FI_WAIT_FD, but a struct fi_wait_pollfd (24 bytes, and the
// pollfd array is copied to the pointer it holds) for FI_WAIT_POLLFD, which `net` chooses, or a
// struct fi_mutex_cond. So the kind is asked first and an int is read only from an FI_WAIT_FD CQ.
// A pollfd set also sleeps in the kernel (poll) in fi_cq_sread, with the timeout honoured.
bool cq_waits_on_fd(fid_cq* cq) {
  fi_wait_obj kind = FI_WAIT_NONE;
  if (fi_control(&cq->fid, FI_GETWAITOBJ, &kind) != 0) return false;
  if (kind == FI_WAIT_POLLFD) return true;
  if (kind != FI_WAIT_FD) return false;
  int fd = -1;
  return fi_control(&cq->fid, FI_GETWAIT, &fd) == 0 && fd >= 0;
}
}  // namespace

void set_rxm_defaults(std::uint32_t eager_bytes, std::uint32_t queue_depth) {
  auto set = [](const char* name, std::uint32_t value) {
    if (value != 0) ::setenv(name, std::to_string(value).c_str(), /*overwrite=*/0);
  };
  set("FI_OFI_RXM_BUFFER_SIZE", eager_bytes);
  set("FI_OFI_RXM_MSG_TX_SIZE", queue_depth);
  set("FI_OFI_RXM_MSG_RX_SIZE", queue_depth);
}

std::size_t eager_message_limit(const std::string& provider_name) noexcept {
  if (provider_name.find("ofi_rxm") == std::string::npos) return SIZE_MAX;
  constexpr std::size_t rxm_default = 16384, rxm_header = 256;
  std::size_t eager = rxm_default;
  if (const char* env = std::getenv("FI_OFI_RXM_BUFFER_SIZE"); env && std::atoll(env) > 0)
    eager = static_cast<std::size_t>(std::atoll(env));
  return eager > rxm_header ? eager - rxm_header : 0;
}

std::error_code preload_providers(const endpoint_config& config) {
  auto hints = make_hints(config);
  if (!hints) return hints.error();
  info_ptr h{*hints};
  info_ptr info;
  const bool shm = choose_provider(config.provider).rfind("shm", 0) == 0;  // see open()
  const char* node = config.node.empty() || shm ? nullptr : config.node.c_str();
  if (int rc = fi_getinfo(FI_VERSION(1, 9), node, nullptr, node ? FI_SOURCE : 0, h.p, &info.p); rc) {
    if (rc != -FI_ENODATA || !config.rma) return fabric_error(rc);
    endpoint_config plain = config;
    plain.rma = false;
    return preload_providers(plain);
  }
  return {};
}

result<fabric_endpoint> fabric_endpoint::open(const endpoint_config& config) {
  auto made = make_hints(config);
  if (!made) return made.error();
  info_ptr hints{*made};
  const std::string provider = choose_provider(config.provider);
  info_ptr info;
  // FI_SOURCE: `node` is the local address to listen on, not a peer to reach. Not for shm: it
  // names its endpoint after that address, so every agent would take the same name; without one
  // it picks a unique name per endpoint (shm is single-host: there is no interface to choose).
  const bool shm = provider.rfind("shm", 0) == 0;
  const char* node = config.node.empty() || shm ? nullptr : config.node.c_str();
  if (int rc = fi_getinfo(FI_VERSION(1, 9), node, nullptr, node ? FI_SOURCE : 0, hints.p, &info.p); rc) {
    // A provider without FI_RMA still carries channels: open it without, regions then say why.
    if (rc != -FI_ENODATA || !config.rma) return fabric_error(rc);
    endpoint_config plain = config;
    plain.rma = false;
    return open(plain);
  }

  fabric_endpoint out;
  out.info_.provider = info.p->fabric_attr->prov_name ? info.p->fabric_attr->prov_name : "";
  out.info_.fabric = info.p->fabric_attr->name ? info.p->fabric_attr->name : "";
  out.info_.domain = info.p->domain_attr->name ? info.p->domain_attr->name : "";
  out.info_.api_version = fi_version();
  out.info_.inject_size = info.p->tx_attr->inject_size;
  out.info_.max_msg_size = info.p->ep_attr->max_msg_size;
  out.info_.multi_recv = (info.p->caps & FI_MULTI_RECV) != 0;
  out.info_.tagged = (info.p->caps & FI_TAGGED) != 0;
  out.info_.rx_size = info.p->rx_attr->size;
  out.info_.local_mr = (info.p->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
  out.info_.rma = (info.p->caps & FI_RMA) != 0 && (info.p->caps & FI_READ) != 0 && (info.p->caps & FI_WRITE) != 0;
  out.info_.mr_mode = static_cast<std::uint64_t>(info.p->domain_attr->mr_mode);
  out.info_.mr_key_size = info.p->domain_attr->mr_key_size;

  if (int rc = fi_fabric(info.p->fabric_attr, &out.fabric_, nullptr); rc) return fabric_error(rc);
  if (int rc = fi_domain(out.fabric_, info.p, &out.domain_, nullptr); rc) return fabric_error(rc);

  fi_cq_attr cq_attr{};
  cq_attr.size = config.cq_size;
  cq_attr.format = FI_CQ_FORMAT_DATA;
  cq_attr.wait_obj = config.wait_object ? FI_WAIT_UNSPEC : FI_WAIT_NONE;
  if (int rc = fi_cq_open(out.domain_, &cq_attr, &out.cq_, nullptr); rc) return fabric_error(rc);
  // A CQ whose wait object is a file descriptor sleeps in the kernel in fi_cq_sread. Others (shm's
  // is a sched_yield loop that does not honour the timeout in 1.17) are polled with naps instead.
  if (config.wait_object) out.info_.cq_fd_wait = cq_waits_on_fd(out.cq_);

  fi_av_attr av_attr{};
  av_attr.type = FI_AV_TABLE;
  if (int rc = fi_av_open(out.domain_, &av_attr, &out.av_, nullptr); rc) return fabric_error(rc);

  if (int rc = fi_endpoint(out.domain_, info.p, &out.ep_, nullptr); rc) return fabric_error(rc);
  if (int rc = fi_ep_bind(out.ep_, &out.cq_->fid, FI_TRANSMIT | FI_RECV); rc) return fabric_error(rc);
  if (int rc = fi_ep_bind(out.ep_, &out.av_->fid, 0); rc) return fabric_error(rc);
  if (int rc = fi_enable(out.ep_); rc) return fabric_error(rc);

  std::size_t len = 0;
  fi_getname(&out.ep_->fid, nullptr, &len);  // -FI_ETOOSMALL, sets len
  out.address_.resize(len);
  if (int rc = fi_getname(&out.ep_->fid, out.address_.data(), &len); rc) return fabric_error(rc);
  out.address_.resize(len);
  return out;
}

std::error_code fabric_endpoint::insert_peers(const std::vector<std::vector<std::byte>>& names) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto r = insert_peer(names[i]);
    if (!r) return r.error();
    if (*r != i) return fabric_error(-FI_EINVAL);  // FI_AV_TABLE must hand out 0, 1, 2, ...
  }
  return {};
}

result<std::uint64_t> fabric_endpoint::insert_peer(std::span<const std::byte> name) {
  fi_addr_t addr = FI_ADDR_NOTAVAIL;
  const int n = fi_av_insert(av_, name.data(), 1, &addr, 0, nullptr);
  if (n != 1) return fabric_error(n < 0 ? n : -FI_EINVAL);
  return static_cast<std::uint64_t>(addr);
}

result<memory_registration> fabric_endpoint::register_memory(void* buffer, std::size_t bytes, std::uint64_t access) {
  memory_registration reg;
  if (!info_.local_mr) return reg;
  fid_mr* mr = nullptr;
  if (int rc = fi_mr_reg(domain_, buffer, bytes, access, 0, 0, 0, &mr, nullptr); rc) return fabric_error(rc);
  reg.mr_ = mr;
  reg.desc_ = fi_mr_desc(mr);
  if (auto ec = bind_to_endpoint(mr); ec) return ec;  // reg closes mr
  return reg;
}

std::error_code fabric_endpoint::bind_to_endpoint(fid_mr* mr) noexcept {
  if (!(info_.mr_mode & FI_MR_ENDPOINT)) return {};
  if (int rc = fi_mr_bind(mr, &ep_->fid, 0); rc) return fabric_error(rc);
  if (int rc = fi_mr_enable(mr); rc) return fabric_error(rc);
  return {};
}

result<rma_registration> fabric_endpoint::register_rma(void* buffer, std::size_t bytes, std::uint64_t requested_key) {
  if (!info_.rma) return fabric_error(-FI_EOPNOTSUPP);
  rma_registration reg;
  fid_mr* mr = nullptr;
  const std::uint64_t access = FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
  // Without FI_MR_PROV_KEY the key is ours to pick; it must fit the provider's key size.
  std::uint64_t key = requested_key;
  if (info_.mr_key_size > 0 && info_.mr_key_size < 8) key &= (std::uint64_t{1} << (8 * info_.mr_key_size)) - 1;
  if (int rc = fi_mr_reg(domain_, buffer, bytes, access, 0, key, 0, &mr, nullptr); rc) return fabric_error(rc);
  reg.mr_ = mr;
  reg.desc_ = fi_mr_desc(mr);
  if (auto ec = bind_to_endpoint(mr); ec) return ec;
  // fi_mr_key is valid only once the registration is enabled (FI_MR_ENDPOINT).
  reg.key_ = (info_.mr_mode & FI_MR_PROV_KEY) ? fi_mr_key(mr) : key;
  if (reg.key_ == FI_KEY_NOTAVAIL) return fabric_error(-FI_EKEYREJECTED);  // a raw key (FI_MR_RAW) is not supported
  reg.base_ = (info_.mr_mode & FI_MR_VIRT_ADDR) ? reinterpret_cast<std::uintptr_t>(buffer) : 0;
  return reg;
}

rma_registration::rma_registration(rma_registration&& o) noexcept
    : mr_(std::exchange(o.mr_, nullptr)), desc_(std::exchange(o.desc_, nullptr)), key_(o.key_), base_(o.base_) {}

rma_registration& rma_registration::operator=(rma_registration&& o) noexcept {
  if (this != &o) {
    reset();
    mr_ = std::exchange(o.mr_, nullptr);
    desc_ = std::exchange(o.desc_, nullptr);
    key_ = o.key_;
    base_ = o.base_;
  }
  return *this;
}

void rma_registration::reset() noexcept {
  if (mr_) fi_close(&mr_->fid);
  mr_ = nullptr;
  desc_ = nullptr;
}

memory_registration::memory_registration(memory_registration&& o) noexcept
    : mr_(std::exchange(o.mr_, nullptr)), desc_(std::exchange(o.desc_, nullptr)) {}

memory_registration& memory_registration::operator=(memory_registration&& o) noexcept {
  if (this != &o) {
    reset();
    mr_ = std::exchange(o.mr_, nullptr);
    desc_ = std::exchange(o.desc_, nullptr);
  }
  return *this;
}

void memory_registration::reset() noexcept {
  if (mr_) fi_close(&mr_->fid);
  mr_ = nullptr;
  desc_ = nullptr;
}

}  // namespace chanpool::transport
