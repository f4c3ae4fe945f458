// Tests of every tool's command-line parser (tools/cli.cmake), without running a tool: what each
// accepts, what it refuses, and that a refusal says why with exit status 2. The cases marked
// "fuzz_tool_cli" are what the fuzz target found (docs/fuzzing.md).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "boost_mq_latency_cli.hpp"
#include "chanpool/transport/agent.hpp"
#include "chanpool_cleanup_cli.hpp"
#include "fanin_bench_cli.hpp"
#include "latency_bench_cli.hpp"
#include "mpi_bandwidth_cli.hpp"
#include "mpi_fanin_cli.hpp"
#include "mpi_latency_cli.hpp"
#include "mpi_pool_cli.hpp"
#include "pool_map_cli.hpp"

namespace {

namespace mc = chanpool::mpi_compare;

// Calls `parse` with argv = {program, words...}.
template <class Parse>
auto parse_words(Parse parse, const char* program, std::initializer_list<const char*> words) {
  std::vector<const char*> argv{program};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.push_back(nullptr);
  return parse(static_cast<int>(argv.size() - 1), argv.data());
}

auto pool_map(std::initializer_list<const char*> w) {
  return parse_words(chanpool::tools::pool_map_cli::parse_command_line, "pool_map", w);
}
auto fanin(std::initializer_list<const char*> w) {
  return parse_words(chanpool::tools::fanin::parse_command_line, "fanin_bench", w);
}
auto latency(std::initializer_list<const char*> w) {
  return parse_words(chanpool::tools::latency_bench_cli::parse_command_line, "latency_bench", w);
}
auto cleanup(std::initializer_list<const char*> w) {
  return parse_words(chanpool::tools::cleanup_cli::parse_command_line, "chanpool_cleanup", w);
}
auto mpi_latency(std::initializer_list<const char*> w) {
  return parse_words(mc::latency_cli::parse_command_line, "mpi_latency", w);
}
auto mpi_bandwidth(std::initializer_list<const char*> w) {
  return parse_words(mc::bandwidth_cli::parse_command_line, "mpi_bandwidth", w);
}
auto mpi_fanin(std::initializer_list<const char*> w) {
  return parse_words(mc::fanin_cli::parse_command_line, "mpi_fanin", w);
}
auto mpi_pool(std::initializer_list<const char*> w) {
  const mc::pool::tool_text text{"mpi_pool_round", "a summary", "a description\n"};
  return parse_words([&](int argc, const char* const* argv) { return mc::pool::parse_command_line(argc, argv, text); },
                     "mpi_pool_round", w);
}
auto boost_mq(std::initializer_list<const char*> w) {
  return parse_words(chanpool::bench::boost_mq_cli::parse_command_line, "boost_mq_latency", w);
}

// A refusal: exit 2, nothing on stdout, a reason on stderr that mentions `flag`.
template <class Result>
void expect_refused(const Result& r, const std::string& flag) {
  EXPECT_TRUE(r.exit_now);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
}

TEST(ToolCli, HelpAndVersionStopWithZeroAndPrintOnStdout) {
  for (const char* flag : {"--help", "--version"}) {
    const auto r = pool_map({flag});
    EXPECT_TRUE(r.exit_now);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.err.empty());
    EXPECT_NE(r.out.find("pool_map"), std::string::npos);
  }
  EXPECT_NE(mpi_fanin({"--help"}).out.find("EXIT STATUS"), std::string::npos);
  EXPECT_NE(latency({"-h"}).out.find("OPTIONS"), std::string::npos);
}

TEST(ToolCli, DefaultsAreAccepted) {
  EXPECT_FALSE(pool_map({}).exit_now);
  EXPECT_FALSE(fanin({}).exit_now);
  EXPECT_FALSE(latency({}).exit_now);
  EXPECT_FALSE(cleanup({}).exit_now);
  EXPECT_FALSE(mpi_latency({}).exit_now);
  EXPECT_FALSE(mpi_bandwidth({}).exit_now);
  EXPECT_FALSE(mpi_fanin({}).exit_now);
  EXPECT_FALSE(mpi_pool({}).exit_now);
  EXPECT_FALSE(boost_mq({}).exit_now);
  EXPECT_EQ(latency({}).options.sizes, (std::vector<std::size_t>{8, 64, 1024, 65536, 1048576}));
}

TEST(ToolCli, ListsAreParsed) {
  const auto p = pool_map({"--nodes", "1,2,4", "--imbalance_factor", "1,8"});
  ASSERT_FALSE(p.exit_now) << p.err;
  EXPECT_EQ(p.options.nodes, (std::vector<unsigned>{1, 2, 4}));
  EXPECT_EQ(p.options.imbalance_factors, (std::vector<double>{1, 8}));
  // A plot without a chosen K draws both standard factors.
  EXPECT_EQ(pool_map({"--plot", "x.svg"}).options.imbalance_factors, (std::vector<double>{1, 8}));
  const auto b = latency({"--transport", "fabric", "--bandwidth", "--sizes", "65536,4096,65536"});
  ASSERT_FALSE(b.exit_now) << b.err;
  EXPECT_EQ(b.options.sizes, (std::vector<std::size_t>{4096, 65536}));  // sorted, without repeats
  const auto k = mpi_bandwidth({"--kinds", "put,send"});
  ASSERT_FALSE(k.exit_now) << k.err;
  using mc::bandwidth_cli::kind;
  EXPECT_EQ(k.options.kinds, (std::vector<kind>{kind::put, kind::send}));
}

TEST(ToolCli, BadCommandLinesAreRefusedWithExitTwo) {
  expect_refused(pool_map({"--nodes", "0"}), "--nodes");
  expect_refused(pool_map({"--imbalance_factor", "0.5"}), "--imbalance_factor");
  expect_refused(pool_map({"--mpi", "foo"}), "--mpi");
  expect_refused(fanin({"--msg_size", "8"}), "--msg_size");
  expect_refused(fanin({"--duration", "1", "--messages_per_sender", "5"}), "--duration");
  expect_refused(latency({"--sizes", "8,-1"}), "--sizes");
  expect_refused(latency({"--bandwidth"}), "--bandwidth");
  expect_refused(latency({"--transport", "fabric", "--sizes", "8,64", "--hops"}), "--hops");
  expect_refused(cleanup({"--job"}), "--job");
  expect_refused(mpi_latency({"--sizes", "0"}), "--sizes");
  expect_refused(mpi_bandwidth({"--kinds", "foo"}), "--kinds");
  expect_refused(mpi_fanin({"--msg_size", "8"}), "--msg_size");
  expect_refused(mpi_pool({"--num_iters", "0"}), "--num_iters");
  expect_refused(boost_mq({"--iterations", "0"}), "--iterations");
}

// fuzz_tool_cli: CLI11 reads "nan" as a double and its Range lets NaN through; these tools cast
// the value to a duration or a window count.
TEST(ToolCli, NotANumberIsRefusedWhereARangeChecked) {
  expect_refused(mpi_bandwidth({"--seconds", "nan"}), "--seconds");
  expect_refused(mpi_fanin({"--duration", "nan"}), "--duration");
  expect_refused(mpi_fanin({"--stall_timeout", "nan"}), "--stall_timeout");
  expect_refused(mpi_pool({"--imbalance_factor", "nan"}), "--imbalance_factor");
  expect_refused(mpi_pool({"--min_time", "nan"}), "--min_time");
  expect_refused(latency({"--spin-us", "nan"}), "--spin-us");
  EXPECT_FALSE(mpi_bandwidth({"--seconds", "0.5"}).exit_now);
  EXPECT_FALSE(mpi_fanin({"--duration", "2", "--stall_timeout", "0"}).exit_now);
}

// latency_bench measures the agents as a user gets them: their own spin unless told otherwise.
TEST(ToolCli, LatencyBenchAgentsKeepTheirDefaultSpin) {
  const auto plain = latency({"--transport", "fabric"});
  ASSERT_FALSE(plain.exit_now) << plain.err;
  const std::chrono::duration<double, std::micro> library = chanpool::transport::agent_config{}.spin;
  EXPECT_EQ(plain.options.agent_spin_us, library.count());
  EXPECT_EQ(plain.options.receiver_spin_us, 0);
  EXPECT_EQ(latency({"--transport", "fabric", "--agent-spin-us", "0"}).options.agent_spin_us, 0);
}

// fuzz_tool_cli: seconds and microseconds that were not checked at all, then cast to long or
// added to the clock (undefined for NaN, infinities and numbers past the target type).
TEST(ToolCli, DurationsMustBeFiniteAndInRange) {
  for (const char* v : {"nan", "inf", "1e300", "-1"}) {
    expect_refused(fanin({"--duration", v}), "--duration");
    expect_refused(fanin({"--flush_deadline_us", v}), "--flush_deadline_us");
    expect_refused(fanin({"--agent_spin_us", v}), "--agent_spin_us");
    expect_refused(fanin({"--stall_timeout", v}), "--stall_timeout");
    expect_refused(latency({"--agent-spin-us", v}), "--agent-spin-us");
    expect_refused(latency({"--receiver-spin-us", v}), "--receiver-spin-us");
    expect_refused(pool_map({"--mpi_timeout", v}), "--mpi_timeout");
  }
  expect_refused(fanin({"--receiver_spin_us", "nan"}), "--receiver_spin_us");
  // Negative: the receiver never sleeps (documented).
  const auto spin = fanin({"--receiver_spin_us", "-1", "--agent_spin_us", "0", "--duration", "2.5"});
  ASSERT_FALSE(spin.exit_now) << spin.err;
  EXPECT_EQ(*spin.options.receiver_spin_us, -1);
  EXPECT_EQ(spin.options.duration, 2.5);
}

// fuzz_tool_cli: CLI11 reads "-1" into an unsigned 64-bit count as 2^64 - 1.
TEST(ToolCli, NegativeCountsAreRefusedNotWrapped) {
  expect_refused(fanin({"--messages_per_sender", "-1"}), "--messages_per_sender");
  expect_refused(fanin({"--messages_per_sender", "0"}), "--messages_per_sender");
  expect_refused(pool_map({"--items_per_worker", "-1"}), "--items_per_worker");
  // fuzz_tool_cli (the long run): CLI11 reads an empty value as 0, which the check let through.
  expect_refused(fanin({"--messages_per_sender", ""}), "--messages_per_sender");
  EXPECT_EQ(fanin({"--duration", ""}).options.duration, 0);  // 0 is in --duration's range
  EXPECT_EQ(fanin({"--messages_per_sender", "1099511627776"}).options.messages_per_sender, std::uint64_t{1} << 40);
}

// Found while moving the parsing out: pool_map's --nodes list read "-1" as 4294967295 nodes.
TEST(ToolCli, PoolMapNodeListRefusesNegativeNumbers) {
  expect_refused(pool_map({"--nodes", "-1"}), "--nodes");
  expect_refused(pool_map({"--nodes", "2,-3"}), "--nodes");
  EXPECT_EQ(pool_map({"--nodes", "2,3"}).options.nodes, (std::vector<unsigned>{2, 3}));
}

// fuzz_tool_cli: pool_map hands --imbalance_factor, --min_time and --items_per_worker to the MPI
// pools, which refuse what is past their ranges (after the Pool's run, as exit 3); pool_map
// now refuses them itself. Item durations stay finite (min_time * K of 1e308 each slept inf).
TEST(ToolCli, PoolMapKeepsToTheMpiPoolsRanges) {
  expect_refused(pool_map({"--imbalance_factor", "1e7"}), "--imbalance_factor");
  expect_refused(pool_map({"--min_time", "1e308"}), "--min_time");
  expect_refused(pool_map({"--items_per_worker", "16777217"}), "--items_per_worker");
  const auto r = pool_map({"--imbalance_factor", "1000000", "--min_time", "3600", "--items_per_worker", "16777216"});
  EXPECT_FALSE(r.exit_now) << r.err;
  // The message for a negative --min_time is the one tests/tools/check_pool_map_limits.py expects.
  EXPECT_NE(pool_map({"--min_time", "-1"}).err.find("must be a number of seconds, 0 or more"), std::string::npos);
}

// fuzz_tool_cli: latency_bench allocated the largest --sizes value at both ends without a bound
// (std::length_error or bad_alloc ended the process); now 1 GiB as the other ping-pong
// tools, 0 still allowed (an empty message).
TEST(ToolCli, LatencyBenchSizesAreBounded) {
  expect_refused(latency({"--sizes", "1073741825"}), "--sizes");
  expect_refused(latency({"--transport", "fabric", "--sizes", "99999999999"}), "--sizes");
  const auto r = latency({"--sizes", "0,1073741824"});
  ASSERT_FALSE(r.exit_now) << r.err;
  EXPECT_EQ(r.options.sizes, (std::vector<std::size_t>{0, std::size_t{1} << 30}));
}

// fuzz_tool_cli: the hidden --print_items generated that many items before printing them.
TEST(ToolCli, MpiPoolPrintItemsIsBounded) {
  expect_refused(mpi_pool({"--print_items", "18446744073709551615"}), "not in range");  // hidden: no name
  EXPECT_EQ(mpi_pool({"--print_items", "3"}).options.print_items, 3u);
}

}  // namespace
