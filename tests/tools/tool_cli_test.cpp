// Tests of every tool's command-line parser (tools/cli.cmake), without running a tool: what each
// accepts, what it refuses, and that a refusal says why with exit status 2. The cases marked
// "fuzz_tool_cli" are what the fuzz target found (docs/fuzzing.md).
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "boost_mq_latency_cli.hpp"
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
  EXPECT_EQ(k.options.kinds, (std::vector<mc::bandwidth_cli::kind>{mc::bandwidth_cli::kind::put, mc::bandwidth_cli::kind::send}));
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

}  // namespace
