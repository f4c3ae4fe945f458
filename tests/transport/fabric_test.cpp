// fabric_endpoint on its own: an endpoint opens with every RDM provider Debian's libfabric 1.17
// ships, and it says the CQ sleeps on file descriptors exactly when its wait object is an fd or a
// pollfd set.
// (Reading a non-fd wait object as an int once let `net`'s pollfd set overwrite the caller's
// stack; the address-sanitized agents then crashed in fi_freeinfo.)
#include <gtest/gtest.h>
#include <rdma/fabric.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include <cstdio>
#include <string>

#include "chanpool/transport/fabric.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace chanpool::test {
namespace {

namespace tr = chanpool::transport;

// libfabric 1.17's `net` RDM endpoint duplicates its fi_info for the passive endpoint it listens
// on and never frees it (one fi_info per endpoint): LeakSanitizer is told to leave that open alone.
chanpool::result<tr::fabric_endpoint> open_endpoint(const tr::endpoint_config& config) {
#if defined(__SANITIZE_ADDRESS__)
  if (config.provider == "net") {
    __lsan_disable();
    auto ep = tr::fabric_endpoint::open(config);
    __lsan_enable();
    return ep;
  }
#endif
  return tr::fabric_endpoint::open(config);
}

bool cq_wait_object_is_fd(fid_cq* cq) {
  fi_wait_obj kind = FI_WAIT_NONE;
  return fi_control(&cq->fid, FI_GETWAITOBJ, &kind) == 0 && (kind == FI_WAIT_FD || kind == FI_WAIT_POLLFD);
}

TEST(Fabric, EveryRdmProviderOpensAnEndpoint) {
  int opened = 0;
  for (const char* provider : {"tcp;ofi_rxm", "net", "shm", "sockets", "udp;ofi_rxd"}) {
    SCOPED_TRACE(provider);
    tr::endpoint_config config;
    config.provider = provider;
    // Twice: each open builds hints and frees them with the provider's list when it returns.
    for (int round = 0; round < 2; ++round) {
      auto ep = open_endpoint(config);
      if (!ep && ep.error().value() == FI_ENODATA) {
        std::printf("provider %s: not available here (%s)\n", provider, ep.error().message().c_str());
        break;
      }
      ASSERT_TRUE(ep) << ep.error().message();
      EXPECT_EQ(ep->info().provider, provider);
      EXPECT_FALSE(ep->address().empty());
      EXPECT_EQ(ep->info().cq_fd_wait, cq_wait_object_is_fd(ep->cq()));
      ++opened;
    }
  }
  if (opened == 0) GTEST_SKIP() << "no libfabric RDM provider available on this machine";
}

TEST(Fabric, DefaultProviderSleepsOnAFileDescriptor) {
  tr::endpoint_config config;
  config.provider = tr::default_provider;
  auto ep = tr::fabric_endpoint::open(config);
  if (!ep && ep.error().value() == FI_ENODATA) GTEST_SKIP() << "provider " << tr::default_provider << " not available";
  ASSERT_TRUE(ep) << ep.error().message();
  // The agents sleep in fi_cq_sread (epoll) with this provider rather than polling with naps.
  EXPECT_TRUE(ep->info().cq_fd_wait);
}

TEST(Fabric, NoWaitObjectMeansNoFdWait) {
  tr::endpoint_config config;
  config.wait_object = false;
  auto ep = tr::fabric_endpoint::open(config);
  if (!ep && ep.error().value() == FI_ENODATA) GTEST_SKIP() << "default provider not available";
  ASSERT_TRUE(ep) << ep.error().message();
  EXPECT_FALSE(ep->info().cq_fd_wait);
}

}  // namespace
}  // namespace chanpool::test
