// The agent's region table without libfabric: generations, ranges, rights, leases that defer
// the freeing of a closed region, and regions of dead owners.
#include <sys/wait.h>
#include <unistd.h>

#include "channels/test_util.hpp"
#include "region_table.hpp"

namespace chanpool::test {
namespace {

namespace tr = chanpool::transport;
namespace td = chanpool::transport::detail;
using tr::rma_errc;

struct table_fixture : ::testing::Test {
  std::string job = test_job("rt");
  int registered = 0;
  td::region_table table{job, static_cast<std::uint32_t>(getpid()), 4,
                         [this](std::byte*, std::size_t, std::uint64_t) -> result<tr::rma_registration> {
                           ++registered;
                           return tr::rma_registration{};
                         }};
  ~table_fixture() override { remove_job_segments(job); }
  std::uint32_t me = static_cast<std::uint32_t>(getpid());
};

TEST_F(table_fixture, LeasesCheckGenerationRangeAndRights) {
  auto r = table.create(me, 0, 8192, tr::rma_write).value();
  EXPECT_EQ(registered, 1);
  EXPECT_TRUE(table.lease(r.id, r.generation, 0, 8192, tr::rma_write));
  EXPECT_EQ(table.lease(r.id, r.generation, 1, 8192, tr::rma_write).error(), rma_errc::out_of_range);
  EXPECT_EQ(table.lease(r.id, r.generation, 8193, 0, 0).error(), rma_errc::out_of_range);
  EXPECT_EQ(table.lease(r.id, r.generation, ~0ull, 2, 0).error(), rma_errc::out_of_range);  // no wrap-around
  EXPECT_EQ(table.lease(r.id, r.generation, 0, 1, tr::rma_read).error(), rma_errc::no_rights);
  EXPECT_EQ(table.lease(r.id, r.generation + 1, 0, 1, 0).error(), rma_errc::stale_region);
  EXPECT_EQ(table.lease(99, r.generation, 0, 1, 0).error(), rma_errc::stale_region);
  auto l = table.lease(r.id, r.generation, 100, 10, 0).value();
  EXPECT_EQ(l.address, 100u);  // no FI_MR_VIRT_ADDR from this registration: offsets
}

TEST_F(table_fixture, ClosedRegionIsStaleAtOnceAndFreedAfterItsLastLease) {
  auto r = table.create(me, 0, 4096, tr::rma_read_write).value();
  auto l = table.lease(r.id, r.generation, 0, 4096, tr::rma_read).value();
  l.data[0] = std::byte{42};
  ASSERT_FALSE(table.close(r.id, r.generation));
  EXPECT_EQ(table.lease(r.id, r.generation, 0, 1, 0).error(), rma_errc::stale_region);
  EXPECT_EQ(table.close(r.id, r.generation), rma_errc::stale_region);
  EXPECT_EQ(table.open_count(), 0u);
  EXPECT_EQ(l.data[0], std::byte{42}) << "memory freed while leased";
  // Its id is not taken while the lease holds the memory.
  auto other = table.create(me, 0, 4096, 0).value();
  EXPECT_NE(other.id, r.id);
  table.release(l);
  auto again = table.create(me, 0, 4096, 0).value();
  EXPECT_EQ(again.id, r.id);
  EXPECT_GT(again.generation, r.generation);
}

TEST_F(table_fixture, FullTableAndFailedRegistrationLeaveNothingBehind) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(table.create(me, 0, 4096, 0));
  EXPECT_EQ(table.create(me, 0, 4096, 0).error(), rma_errc::too_many_regions);
  td::region_table refusing{job + "x", me, 4, [](std::byte*, std::size_t, std::uint64_t) -> result<tr::rma_registration> {
                              return make_error_code(rma_errc::registration_failed);
                            }};
  EXPECT_EQ(refusing.create(me, 0, 4096, 0).error(), rma_errc::registration_failed);
  EXPECT_EQ(refusing.open_count(), 0u);
  remove_job_segments(job + "x");
}

TEST_F(table_fixture, RegionsOfDeadOwnersAreReapedZombiesIncluded) {
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  auto mine = table.create(me, 0, 4096, 0).value();
  auto theirs = table.create(static_cast<std::uint32_t>(child), 0, 4096, 0).value();
  EXPECT_EQ(table.reap_dead_owners(), 0u);
  kill(child, SIGKILL);
  // A zombie (killed, not reaped) is dead.
  const auto until = std::chrono::steady_clock::now() + 5s;
  std::size_t reaped = 0;
  while ((reaped = table.reap_dead_owners()) == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(reaped, 1u);
  EXPECT_EQ(table.lease(theirs.id, theirs.generation, 0, 1, 0).error(), rma_errc::stale_region);
  EXPECT_TRUE(table.lease(mine.id, mine.generation, 0, 1, 0));
  waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace chanpool::test
