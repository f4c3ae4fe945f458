// Tests of tools/pool_map_support: the reference makespans, running the MPI pool baselines
// (for real when mpi_compare is built, and against small fake tools for the failure paths),
// and the JSON / CSV / SVG outputs.
#include "pool_map_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "chanpool/workload/work_items.hpp"

namespace pm = chanpool::tools::pool_map;
namespace fs = std::filesystem;

namespace {

// A private scratch directory, removed at the end of each test.
class scratch_dir {
 public:
  scratch_dir() {
    path_ = fs::temp_directory_path() /
            ("pool_map_support_test." + std::to_string(::getpid()) + "." +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_executable(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

pm::row sample_row(unsigned nodes, double k, double pool_s, std::optional<double> round_s,
                   std::optional<double> dynamic_s) {
  pm::row r;
  r.nodes = nodes;
  r.workers_per_node = 4;
  r.workers = nodes * 4;
  r.imbalance_factor = k;
  r.ideal_s = 2;
  r.bound_s = 1.5;
  r.pool_runtime_s = pool_s;
  r.pool_startup_s = 0.25;
  r.mpi_round_s = round_s;
  r.mpi_dynamic_s = dynamic_s;
  return r;
}

}  // namespace

// --- Reference makespans --------------------------------------------------------------------------

TEST(PoolMapReference, SmallListsByHand) {
  // 2 workers, items 1..5 in order: w1 1 | w2 2 | item 3 -> w1 (free at 1) ends 4 | item 4 ->
  // w2 (2) ends 6 | item 5 -> w1 (4) ends 9. Rounds: max(1,2) + max(3,4) + 5 = 11.
  const std::vector<double> items{1, 2, 3, 4, 5};
  EXPECT_DOUBLE_EQ(pm::ideal_makespan(items, 2), 9);
  EXPECT_DOUBLE_EQ(pm::round_makespan(items, 2), 11);
  EXPECT_DOUBLE_EQ(pm::bound(items, 2), 7.5);  // total 15 / 2 beats the longest item, 5
  // A long first item: the other worker takes all the short ones meanwhile.
  EXPECT_DOUBLE_EQ(pm::ideal_makespan({3, 1, 1, 1}, 2), 3);
  EXPECT_DOUBLE_EQ(pm::round_makespan({3, 1, 1, 1}, 2), 4);
  EXPECT_DOUBLE_EQ(pm::bound({3, 1, 1, 1}, 2), 3);
  // More workers than items: one round, the longest item.
  EXPECT_DOUBLE_EQ(pm::ideal_makespan({1, 2}, 1000), 2);
  EXPECT_DOUBLE_EQ(pm::round_makespan({1, 2}, 1000), 2);
  EXPECT_DOUBLE_EQ(pm::bound({1, 2}, 1000), 2);
  // One worker: everything in sequence.
  EXPECT_DOUBLE_EQ(pm::ideal_makespan(items, 1), 15);
  EXPECT_DOUBLE_EQ(pm::round_makespan(items, 1), 15);
}

TEST(PoolMapReference, EmptyListAndZeroWorkers) {
  EXPECT_EQ(pm::ideal_makespan({}, 4), 0);
  EXPECT_EQ(pm::round_makespan({}, 4), 0);
  EXPECT_EQ(pm::bound({}, 4), 0);
  EXPECT_THROW(pm::ideal_makespan({1}, 0), std::invalid_argument);
  EXPECT_THROW(pm::round_makespan({1}, 0), std::invalid_argument);
  EXPECT_THROW(pm::bound({1}, 0), std::invalid_argument);
}

TEST(PoolMapReference, SeedCaseImbalance8With128Workers) {
  // The Pool comparison's largest case (32 nodes x 4 workers in docs/benchmarks.md): seed 1, 4
  // items per worker, uniform(0.1, 0.8) s, 128 workers. In theory a perfect dynamic pool takes
  // about 2.27 s and rounds 3.18 s; this list gives 2.30 s and 3.18 s.
  const auto items = chanpool::workload::work_items(1, 512, 0.1, 8.0);
  const double ideal = pm::ideal_makespan(items, 128);
  const double round = pm::round_makespan(items, 128);
  const double lower = pm::bound(items, 128);
  std::printf("seed 1, 512 items, k=8, 128 workers: ideal %.6f s, round %.6f s, bound %.6f s, round/ideal %.3f\n",
              ideal, round, lower, round / ideal);
  EXPECT_NEAR(ideal, 2.27, 0.1);
  EXPECT_NEAR(round, 3.18, 0.1);
  EXPECT_LE(lower, ideal);
  EXPECT_LE(ideal, round);
}

TEST(PoolMapReference, Imbalance1IsFourItemTimes) {
  // Every item takes min_time: 4 per worker is 4 * 0.1 s for both schedules.
  for (const std::size_t workers : {1u, 32u, 128u}) {
    const auto items = chanpool::workload::work_items(1, 4 * workers, 0.1, 1.0);
    EXPECT_DOUBLE_EQ(pm::ideal_makespan(items, workers), 0.4) << workers << " workers";
    EXPECT_DOUBLE_EQ(pm::round_makespan(items, workers), 0.4) << workers << " workers";
    // The bound divides a sum of 4 * workers tenths: rounding, not exactly 0.4.
    EXPECT_NEAR(pm::bound(items, workers), 0.4, 1e-12) << workers << " workers";
  }
}

// --- JSON ----------------------------------------------------------------------------------------

TEST(PoolMapJson, DocumentedLayoutWithBothMpiPools) {
  const auto j = pm::to_json(sample_row(32, 8, 2.5, 5.0, 2.5));
  EXPECT_EQ(j.dump(),
            R"({"tool":"pool_map","nodes":32,"workers_per_node":4,"workers":128,"imbalance_factor":8,)"
            R"("ideal_s":2.0,"bound_s":1.5,"pool":{"runtime_s":2.5,"startup_s":0.25,"efficiency":0.8},)"
            R"("mpi_round":{"runtime_s":5.0,"speedup":2.0},"mpi_dynamic":{"runtime_s":2.5,"speedup":1.0}})");
}

TEST(PoolMapJson, MpiKeysLeftOutWhenNotRun) {
  const auto j = pm::to_json(sample_row(1, 1, 0.5, std::nullopt, std::nullopt));
  EXPECT_FALSE(j.contains("mpi_round"));
  EXPECT_FALSE(j.contains("mpi_dynamic"));
  EXPECT_EQ(j["imbalance_factor"].dump(), "1");
  EXPECT_DOUBLE_EQ(j["pool"]["efficiency"].get<double>(), 4.0);
  // Only the round pool ran; a fractional factor stays a number with its fraction.
  auto r = sample_row(1, 2.5, 0.5, 1.0, std::nullopt);
  const auto k = pm::to_json(r);
  EXPECT_TRUE(k.contains("mpi_round"));
  EXPECT_FALSE(k.contains("mpi_dynamic"));
  EXPECT_EQ(k["imbalance_factor"].dump(), "2.5");
  // A zero Pool runtime has no ratio: null, not inf.
  r.pool_runtime_s = 0;
  EXPECT_TRUE(pm::to_json(r)["pool"]["efficiency"].is_null());
  EXPECT_TRUE(pm::to_json(r)["mpi_round"]["speedup"].is_null());
}

TEST(PoolMapJson, RowsReadBackFromTheirLines) {
  auto r = sample_row(32, 8, 2.5, 5.0, std::nullopt);
  r.python_s = 2.6;
  const auto back = pm::row_from_json(nlohmann::json::parse(pm::to_json(r).dump()));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(pm::to_json(*back).dump(), pm::to_json(r).dump());
  EXPECT_FALSE(pm::row_from_json(nlohmann::json::parse(R"({"tool":"pool_map","mode":"apply_latency"})")));
  EXPECT_FALSE(pm::row_from_json(nlohmann::json::parse(R"({"tool":"mpi_pool_round","runtime_s":1})")));
  EXPECT_FALSE(pm::row_from_json(nlohmann::json::parse(R"({"tool":"pool_map","nodes":1})")));
}

// --- CSV ------------------------------------------------------------------------------------------

TEST(PoolMapCsv, TwoRows) {
  scratch_dir dir;
  const auto path = dir.path() / "out.csv";
  pm::write_csv(path.string(), {sample_row(2, 8, 2.5, 5.0, 2.5), sample_row(4, 1, 0.5, std::nullopt, 1.0)});
  EXPECT_EQ(read_file(path),
            "nodes,workers_per_node,workers,imbalance_factor,ideal_s,bound_s,pool_runtime_s,pool_startup_s,"
            "efficiency,mpi_round_s,mpi_dynamic_s,speedup_vs_round,speedup_vs_dynamic,python_s,speedup_vs_python\n"
            "2,4,8,8,2,1.5,2.5,0.25,0.8,5,2.5,2,1,,\n"
            "4,4,16,1,2,1.5,0.5,0.25,4,,1,,2,,\n");
}

TEST(PoolMapCsv, UnwritablePathThrowsWithPathAndReason) {
  const std::string path = "/nonexistent-pool-map-dir/out.csv";
  try {
    pm::write_csv(path, {sample_row(1, 1, 1, 1.0, 1.0)});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
}

// --- SVG ------------------------------------------------------------------------------------------

namespace {
// Parses the file as XML with Python's minidom; 0 when well-formed.
int xml_parse_status(const fs::path& p) {
  const std::string cmd = std::string(CHANPOOL_TEST_PYTHON3) +
                          " -c \"import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])\" '" + p.string() + "'";
  return std::system(cmd.c_str());
}
}  // namespace

TEST(PoolMapSvg, SpeedupPlotOfTwoFactorsAndBothContenders) {
  scratch_dir dir;
  std::vector<pm::row> rows;
  for (const unsigned nodes : {1u, 2u, 4u, 8u, 16u, 32u}) {
    rows.push_back(sample_row(nodes, 1, 0.41, 0.40 + 0.01 * nodes, 0.42));
    rows.push_back(sample_row(nodes, 8, 2.3, 3.2, 2.35));
    rows.back().python_s = 2.4;
  }
  const auto path = dir.path() / "plot.svg";
  pm::write_svg_plot(path.string(), rows);
  const std::string svg = read_file(path);
  EXPECT_EQ(xml_parse_status(path), 0) << svg;
  EXPECT_EQ(count(svg, "<polyline class=\"series\""), 5u);  // 2 factors x 2 MPI pools, Python at 8
  EXPECT_EQ(count(svg, "<line class=\"equal\""), 1u);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  for (const char* text : {"imbalance 1 vs mpi_pool_round", "imbalance 8 vs mpi_pool_dynamic", "nodes (log2 scale)",
                           "imbalance 8 vs Python Pool", "speedup over the other pool", "4 workers per node", ">32</text>", ">1</text>"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  // One point per node count on each line.
  const auto first = svg.find("points=\"");
  const auto points = svg.substr(first + 8, svg.find('"', first + 8) - first - 8);
  EXPECT_EQ(count(points, ","), 6u) << points;
}

TEST(PoolMapSvg, OnlySomeOrNoMpiResultsStillValid) {
  scratch_dir dir;
  const auto one = dir.path() / "one.svg";
  pm::write_svg_plot(one.string(), {sample_row(4, 8, 2.3, std::nullopt, 2.4)});
  EXPECT_EQ(xml_parse_status(one), 0);
  EXPECT_EQ(count(read_file(one), "<polyline class=\"series\""), 1u);
  const auto none = dir.path() / "none.svg";
  pm::write_svg_plot(none.string(), {sample_row(4, 8, 2.3, std::nullopt, std::nullopt)});
  EXPECT_EQ(xml_parse_status(none), 0);
  EXPECT_EQ(count(read_file(none), "<polyline"), 0u);
  EXPECT_NE(read_file(none).find("no MPI or Python runtimes"), std::string::npos);
}

TEST(PoolMapSvg, UnwritablePathThrows) {
  EXPECT_THROW(pm::write_svg_plot("/nonexistent-pool-map-dir/plot.svg", {}), std::runtime_error);
}

// --- Finding the MPI tools -------------------------------------------------------------------------

TEST(PoolMapFindTool, BuildTreeInstalledTreeAndPath) {
  scratch_dir dir;
  const auto tools = dir.path() / "build" / "tools";
  write_executable(tools / "pool_map", "#!/bin/sh\n");
  const std::string argv0 = (tools / "pool_map").string();
  // Build tree: tools/pool_map and mpi_compare/mpi_pool_round.
  write_executable(dir.path() / "build" / "mpi_compare" / "mpi_pool_round", "#!/bin/sh\n");
  EXPECT_EQ(pm::find_sibling_tool(argv0.c_str(), "mpi_pool_round"),
            (dir.path() / "build" / "mpi_compare" / "mpi_pool_round").string());
  // Installed: next to it, which wins.
  write_executable(tools / "mpi_pool_round", "#!/bin/sh\n");
  EXPECT_EQ(pm::find_sibling_tool(argv0.c_str(), "mpi_pool_round"), (tools / "mpi_pool_round").string());
  // A file that is not executable does not count.
  std::ofstream(tools / "mpi_pool_dynamic") << "not a program\n";
  EXPECT_EQ(pm::find_sibling_tool(argv0.c_str(), "mpi_pool_dynamic"), "");
  // Otherwise PATH.
  const std::string sh = pm::find_sibling_tool(argv0.c_str(), "sh");
  EXPECT_FALSE(sh.empty());
  EXPECT_EQ(fs::path(sh).filename(), "sh");
  EXPECT_EQ(pm::find_sibling_tool(nullptr, "pool_map_no_such_tool_anywhere"), "");
}

// --- Running MPI pools -------------------------------------------------------------------------------

namespace {
pm::mpi_pool_request small_request(const std::string& tool) {
  pm::mpi_pool_request req;
  req.tool = tool;
  req.workers = 3;
  req.items_per_worker = 2;
  req.min_time = 0.01;
  req.imbalance_factor = 4;
  req.seed = 7;
  req.timeout_s = 120;
  return req;
}
// A stand-in for an MPI pool tool: a shell script run by mpirun on every rank; `rank0` runs on
// rank 0 only (where the real tools print).
std::string fake_tool(const scratch_dir& dir, const std::string& name, const std::string& rank0,
                      const std::string& every_rank = "") {
  const auto p = dir.path() / name;
  write_executable(p, "#!/bin/sh\n" + every_rank + "\nif [ \"${OMPI_COMM_WORLD_RANK:-0}\" = 0 ]; then\n" + rank0 +
                          "\nfi\nexit 0\n");
  return p.string();
}
}  // namespace

TEST(PoolMapRunMpi, RealRoundAndDynamicPools) {
#if defined(CHANPOOL_TEST_MPI_POOL_ROUND) && defined(CHANPOOL_TEST_MPI_POOL_DYNAMIC)
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not in PATH";
  for (const char* tool : {CHANPOOL_TEST_MPI_POOL_ROUND, CHANPOOL_TEST_MPI_POOL_DYNAMIC}) {
    auto req = small_request(tool);
    req.num_iters = 2;
    const auto run = pm::run_mpi_pool(req);
    std::printf("%s: %s\n  runtime %.4f s (runtimes %zu)\n", tool, run.command.c_str(), run.runtime_s,
                run.runtimes_s.size());
    ASSERT_TRUE(run.ok) << run.error;
    EXPECT_TRUE(run.error.empty());
    EXPECT_GT(run.runtime_s, 0);
    EXPECT_EQ(run.runtimes_s.size(), 2u);
    EXPECT_NE(run.command.find("mpirun -np 4 --oversubscribe --bind-to none"), std::string::npos) << run.command;
    // The workers really slept: no schedule beats the bound of the same list.
    const auto items = chanpool::workload::work_items(req.seed, 6, req.min_time, req.imbalance_factor);
    EXPECT_GE(run.runtime_s, 0.99 * pm::bound(items, 3));
  }
#else
  GTEST_SKIP() << "mpi_pool_round / mpi_pool_dynamic not built (CHANPOOL_ENABLE_MPI=OFF)";
#endif
}

TEST(PoolMapRunMpi, ParsesTheToolsJsonLine) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not in PATH";
  scratch_dir dir;
  const auto tool = fake_tool(dir, "fake pool's tool",  // a space and a quote: the path is quoted
                              "echo 'some warning {not json'\n"
                              "echo '{\"tool\":\"fake\",\"workers\":3,\"runtime_s\":0.5,\"runtimes_s\":[0.4,0.6]}'");
  auto req = small_request(tool);
  req.mpi_args = "--mca btl self,tcp";  // passed through verbatim
  const auto run = pm::run_mpi_pool(req);
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_DOUBLE_EQ(run.runtime_s, 0.5);
  EXPECT_EQ(run.runtimes_s, (std::vector<double>{0.4, 0.6}));
  EXPECT_NE(run.command.find("--bind-to none --mca btl self,tcp '"), std::string::npos) << run.command;
  EXPECT_NE(run.command.find("--imbalance_factor 4 --items_per_worker 2 --min_time 0.01 --seed 7 --num_iters 1 --json"),
            std::string::npos)
      << run.command;
}

TEST(PoolMapRunMpi, FailuresSayWhatHappened) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not in PATH";
  scratch_dir dir;
  const auto expect_error = [](const pm::mpi_pool_request& req, const std::string& needle) {
    const auto run = pm::run_mpi_pool(req);
    EXPECT_FALSE(run.ok);
    EXPECT_NE(run.error.find(needle), std::string::npos) << "expected '" << needle << "' in: " << run.error;
  };
  expect_error(small_request((dir.path() / "missing").string()), "is not an executable file");
  expect_error(small_request(""), "pass --mpi none");
  expect_error(small_request(fake_tool(dir, "silent", "echo hello")), "printed no JSON line");
  expect_error(small_request(fake_tool(dir, "fails", "", "echo 'rank broke' >&2; exit 3")), "rank broke");
  expect_error(small_request(fake_tool(dir, "fails2", "", "exit 3")), "exited with status");
  expect_error(small_request(fake_tool(
                   dir, "wrong_np", "echo '{\"tool\":\"x\",\"workers\":7,\"runtime_s\":1,\"runtimes_s\":[1]}'")),
               "reports 7 workers, not 3");
}

TEST(PoolMapRunMpi, TimeoutKillsTheRun) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not in PATH";
  scratch_dir dir;
  auto req = small_request(fake_tool(dir, "hangs", "", "sleep 60"));
  req.timeout_s = 2;
  const auto start = std::chrono::steady_clock::now();
  const auto run = pm::run_mpi_pool(req);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("timed out after 2 s"), std::string::npos) << run.error;
  EXPECT_LT(took, 20.0);  // 2 s + at most the 5 s grace before SIGKILL, plus start-up
}

TEST(PoolMapRunMpi, MissingMpirun) {
  scratch_dir dir;
  const auto tool = fake_tool(dir, "tool", "true");
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", dir.path().c_str(), 1);  // holds no mpirun
  const auto run = pm::run_mpi_pool(small_request(tool));
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("mpirun not found"), std::string::npos) << run.error;
  EXPECT_NE(run.error.find("--mpi none"), std::string::npos) << run.error;
}

// --- Python's multiprocessing.Pool ----------------------------------------------------------------

TEST(PoolMapPython, RunsTheSameListAndChecksEveryResult) {
  if (!pm::python_available()) GTEST_SKIP() << "python3 not in PATH";
  pm::python_pool_request req;
  req.workers = 3;
  req.items = {0.01, 0.02, 0.1 / 3, 0.015, 0.01, 0.02};  // 0.1/3 has no short decimal form
  req.num_iters = 2;
  req.timeout_s = 60;
  const auto run = pm::run_python_pool(req);
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(run.runtimes_s.size(), 2u);
  EXPECT_GE(run.runtime_s, 0.03) << "the longest chain of items is at least 2 x 0.015 s";
  EXPECT_LT(run.runtime_s, 30.0);
}

TEST(PoolMapPython, JsonAndCsvCarryIt) {
  auto r = sample_row(2, 8, 2.0, std::nullopt, std::nullopt);
  r.python_s = 3.0;
  const auto j = pm::to_json(r);
  ASSERT_TRUE(j.contains("python_pool"));
  EXPECT_EQ(j["python_pool"].dump(), R"({"runtime_s":3.0,"speedup":1.5})");
  EXPECT_FALSE(pm::to_json(sample_row(2, 8, 2.0, 1.0, 1.0)).contains("python_pool"));
}

TEST(PoolMapPython, FailuresSayWhatHappened) {
  pm::python_pool_request req;
  req.workers = 2;
  req.items = {0.01};
  req.python = "/nonexistent/python3";
  auto run = pm::run_python_pool(req);
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("was not found"), std::string::npos) << run.error;
  EXPECT_NE(run.error.find("--python off"), std::string::npos) << run.error;
  if (!pm::python_available()) return;
  req.python = "python3";
  req.items = {30.0, 30.0};
  req.timeout_s = 2;
  const auto start = std::chrono::steady_clock::now();
  run = pm::run_python_pool(req);
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("timed out after 2 s"), std::string::npos) << run.error;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20.0);
}
