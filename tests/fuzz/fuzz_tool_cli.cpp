// Fuzz target: every tool's command line (the parsers in tools/*_cli.cpp, mpi_compare/*_cli.cpp,
// bench/*_cli.cpp and version_flag.hpp). The first byte picks the tool; the rest is split into
// argv words at '\n' and '\0' (at most max_words words of at most max_word_bytes bytes). A byte
// from 0x80 to 0xfe is a word of its own, a token (an option name or an edge value, kTokens); 0xff
// takes the next byte as it is. A value such as "nan" in the place of a number gets no new
// coverage of its own, so byte-level mutations alone rarely put it there; with tokens every
// option-value pairing is a changed byte or two away.
//
// Beyond sanitizer reports and exceptions let out, it checks: a parse gives the same result twice;
// a stop is exit 0 with something on stdout only (--help, --version) or exit 2 with a reason on
// stderr only; options accepted are within what the tool's later code relies on
// (tool_cli_properties.hpp).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
#include "tool_cli_properties.hpp"
#include "version_flag.hpp"

namespace {

namespace props = chanpool::fuzz::tool_cli;
using props::require;

constexpr std::size_t max_words = 32;
constexpr std::size_t max_word_bytes = 256;

// Every tool's option names, and values at the edges of what CLI11 and the tools read: non-finite
// and huge doubles, "-1" (CLI11 wraps it into an unsigned count), octal and hex (strtoull base 0),
// counts past 32 and 64 bits, empty and odd lists, the words the tools compare with.
constexpr const char* kTokens[] = {
    "--imbalance_factor", "--items_per_worker", "--num_iters", "--nodes", "--workers_per_node", "--min_time",
    "--mpi", "--mpi_args", "--mpi_timeout", "--seed", "--chunksize", "--prefetch", "--provider", "--python",
    "--apply_latency", "--from_json", "--json", "--csv", "--plot", "--senders_per_node", "--msg_size",
    "--messages_per_sender", "--duration", "--aggregation", "--bootstrap", "--mpi_fanin", "--flush_bytes",
    "--flush_deadline_us", "--credits", "--agent_spin_us", "--receiver_spin_us", "--sink_capacity",
    "--rxm_buffer_bytes", "--rxm_queue_depth", "--stall_timeout", "--transport", "--sizes", "--iterations",
    "--batch", "--no-pin", "--large-iterations", "--wait", "--spin-us", "--path", "--channel", "--fabric-mode",
    "--agent-spin-us", "--receiver-spin-us", "--hops", "--bandwidth", "--window", "--job", "--dry-run", "-n",
    "--list", "-l", "--kinds", "--seconds", "--warmup", "--inject_fault", "--print_items", "--help", "--version",
    "nan", "inf", "-inf", "-nan", "1e999", "-1e999", "1e300", "-1", "-0", "0", "1", "2", "8", "0x10", "010", "0.5",
    "1e-999", "4294967295", "4294967296", "18446744073709551615", "18446744073709551616", "9223372036854775808",
    "1099511627777", "16777217", "1073741825", "4194305", "", ",", "1,,2", "8,-1", "1,8", "-1,2", "none", "off",
    "on", "auto", "fabric", "shm", "agent", "direct", "both", "embedded", "mpi", "spsc", "idle", "spin",
    "zerocopy", "send,put,get", "corrupt", "round"};
constexpr std::size_t kTokenCount = sizeof kTokens / sizeof kTokens[0];
// Escapes a byte from 0x80 up: the byte after it goes into the word as it is.
constexpr std::uint8_t raw_byte = 0xff;

std::vector<std::string> split_words(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  auto end_word = [&] {
    words.push_back(std::move(word));
    word.clear();
    in_word = false;
  };
  for (std::size_t i = 0; i < size && words.size() < max_words; ++i) {
    const auto b = data[i];
    if (b == '\n' || b == '\0') {
      end_word();
    } else if (b >= 0x80 && b != raw_byte) {  // a token: a word of its own
      if (in_word) end_word();
      if (words.size() < max_words) words.emplace_back(kTokens[(b - 0x80u) % kTokenCount]);
    } else {
      if (b == raw_byte && i + 1 < size) ++i;  // the next byte as it is
      if (word.size() < max_word_bytes) word += static_cast<char>(data[i]);
      in_word = true;
    }
  }
  if (in_word && words.size() < max_words) words.push_back(std::move(word));
  return words;
}

// argv as a tool's main() gets it: the program, the words, a null pointer.
struct argv_words {
  argv_words(const char* program, const std::vector<std::string>& words) {
    ptrs.push_back(program);
    for (const auto& w : words) ptrs.push_back(w.c_str());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(ptrs.size() - 1); }
  const char* const* argv() const { return ptrs.data(); }
  std::vector<const char*> ptrs;
};

// Parses twice, checks what every parser promises, then the tool's own properties.
template <class Parse, class Check>
void run(const char* program, const std::vector<std::string>& words, Parse parse, Check check) {
  const argv_words a(program, words);
  const auto r = parse(a.argc(), a.argv());
  const auto again = parse(a.argc(), a.argv());
  if (r.exit_now) {
    require(r.exit_code == 0 || r.exit_code == 2, "a stop with an exit status other than 0 or 2");
    if (r.exit_code == 0) require(!r.out.empty() && r.err.empty(), "exit 0 without stdout, or with stderr");
    if (r.exit_code == 2) require(r.out.empty() && !r.err.empty(), "exit 2 without a reason on stderr");
  } else {
    require(r.exit_code == 0 && r.out.empty() && r.err.empty(), "accepted, yet something to print");
    check(r.options);
  }
  // After the properties: a NaN that got through would make a defaulted == say "different".
  require(again.exit_now == r.exit_now && again.exit_code == r.exit_code && again.out == r.out &&
              again.err == r.err && (r.exit_now || again.options == r.options),
          "the same command line parsed differently twice");
}

// The MPI pools' parser with the texts of either tool (the texts only change --help).
chanpool::mpi_compare::pool::tool_text pool_text(const char* name) {
  return {name, "fuzzed summary", "fuzzed description\n"};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto words = split_words(data + 1, size - 1);
  namespace mc = chanpool::mpi_compare;
  switch (data[0] % 11) {
    case 0: run("pool_map", words, chanpool::tools::pool_map_cli::parse_command_line, props::check_pool_map); break;
    case 1: run("fanin_bench", words, chanpool::tools::fanin::parse_command_line, props::check_fanin_bench); break;
    case 2:
      run("latency_bench", words, chanpool::tools::latency_bench_cli::parse_command_line, props::check_latency_bench);
      break;
    case 3: run("chanpool_cleanup", words, chanpool::tools::cleanup_cli::parse_command_line, props::check_cleanup); break;
    case 4: run("mpi_latency", words, mc::latency_cli::parse_command_line, props::check_mpi_latency); break;
    case 5: run("mpi_bandwidth", words, mc::bandwidth_cli::parse_command_line, props::check_mpi_bandwidth); break;
    case 6: run("mpi_fanin", words, mc::fanin_cli::parse_command_line, props::check_mpi_fanin); break;
    case 7:
    case 8: {
      const char* name = data[0] % 11 == 7 ? "mpi_pool_round" : "mpi_pool_dynamic";
      const auto text = pool_text(name);
      run(name, words, [&](int argc, const char* const* argv) { return mc::pool::parse_command_line(argc, argv, text); },
          props::check_mpi_pool);
      break;
    }
    case 9:
      run("boost_mq_latency", words, chanpool::bench::boost_mq_cli::parse_command_line, props::check_boost_mq_latency);
      break;
    default: {  // ring_floor, wake_floor: --version is their only flag
      const argv_words a("ring_floor", words);
      bool asked = false;
      for (const auto& w : words) asked = asked || w == "--version";
      require(chanpool::tools::asks_for_version(a.argc(), a.argv()) == asked, "--version seen wrongly");
      break;
    }
  }
  return 0;
}
