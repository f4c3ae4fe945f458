// boost_mq_latency: ping-pong between two processes over two boost::interprocess::message_queue
// objects (one per direction), the "blocking shared-memory queue" baseline that chanpool's
// `latency_bench --transport shm` is compared against. Timing, statistics and output come from
// tools/common/latency_report.hpp so that every contender is measured the same way.
//
//   boost_mq_latency --sizes 8,64,1024 --iterations 100000 [--json]
#include <sched.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/version.hpp>

#include "boost_mq_latency_cli.hpp"
#include "latency_report.hpp"

namespace {

namespace report = chanpool::tools;
namespace bip = boost::interprocess;
namespace cli_ns = chanpool::bench::boost_mq_cli;
using cli_ns::options;
using cli_ns::tool_name;

constexpr const char* transport_name = "boost_mq";

// Large messages are slow per round trip; capping them keeps a full size sweep short while
// still giving thousands of samples. Every ping-pong tool applies the same cap.
// Each queue holds queue_depth messages of the largest size in shared memory.
// measure_round_trips keeps one double per iteration for the p99 pass: 100 M = 800 MB.
// A ping-pong never has more than one message in flight per direction.
constexpr bip::message_queue::size_type queue_depth = 1;

// Which synchronisation message_queue was compiled with, for the table header: on Linux Boost
// uses pthread mutexes and condition variables marked PTHREAD_PROCESS_SHARED; the fallback is
// Boost's own spin-and-yield emulation, which would measure something else.
#if defined(BOOST_INTERPROCESS_POSIX_PROCESS_SHARED) && !defined(BOOST_INTERPROCESS_FORCE_GENERIC_EMULATION)
constexpr const char* queue_synchronisation = "pthread process-shared mutex + condition variables";
#else
constexpr const char* queue_synchronisation = "Boost generic (spin/yield) mutex + condition emulation";
#endif

// Removes the queue names when it goes out of scope, whichever way that happens.
class queue_names_guard {
 public:
  explicit queue_names_guard(std::vector<std::string> names) : names_(std::move(names)) {
    // A leftover from an earlier run that died with our pid cannot belong to a live process.
    remove_all();
  }
  ~queue_names_guard() { remove_all(); }
  queue_names_guard(const queue_names_guard&) = delete;
  queue_names_guard& operator=(const queue_names_guard&) = delete;

  void remove_all() noexcept {
    for (const auto& name : names_) bip::message_queue::remove(name.c_str());
  }

 private:
  std::vector<std::string> names_;
};

struct queue_pair {
  queue_pair(const std::string& ping_name, const std::string& pong_name, std::size_t largest)
      : ping(bip::create_only, ping_name.c_str(), queue_depth, largest),
        pong(bip::create_only, pong_name.c_str(), queue_depth, largest) {}

  bip::message_queue ping;  // parent -> child
  bip::message_queue pong;  // child -> parent
};

// Set just before the parent tells the ponger to quit, so that SIGCHLD means failure before it.
volatile std::sig_atomic_t ponger_exit_expected = 0;

// The parent would otherwise block forever in receive() once the ponger is gone.
extern "C" void on_child_exit(int) {
  if (ponger_exit_expected != 0) return;
  constexpr char message[] = "boost_mq_latency: ponger process exited unexpectedly\n";
  [[maybe_unused]] const auto written = write(STDERR_FILENO, message, sizeof message - 1);
  _exit(EXIT_FAILURE);
}

void install_child_exit_handler() {
  struct sigaction action {};
  action.sa_handler = on_child_exit;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &action, nullptr) != 0)
    throw std::runtime_error(std::string("sigaction: ") + std::strerror(errno));
}

struct cpu_placement {
  int pinger_cpu = -1;  // -1: not pinned
  int ponger_cpu = -1;
};

// The first two CPUs of this process's affinity mask; not pinned when fewer are allowed.
cpu_placement first_two_allowed_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return {};
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu)
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  if (cpus.size() < 2) return {};
  return {cpus[0], cpus[1]};
}

bool pin_to_cpu(int cpu) noexcept {
  cpu_set_t only;
  CPU_ZERO(&only);
  CPU_SET(cpu, &only);
  return sched_setaffinity(0, sizeof only, &only) == 0;
}

std::size_t receive_into(bip::message_queue& queue, std::vector<char>& buffer) {
  bip::message_queue::size_type received = 0;
  unsigned int priority = 0;
  queue.receive(buffer.data(), buffer.size(), received, priority);
  return static_cast<std::size_t>(received);
}

// Child: echoes every message back, size for size, then waits for the parent's quit message so
// that it never exits before the parent expects it to.
int run_ponger(const options& opts, queue_pair& queues, std::vector<char>& buffer) noexcept {
  try {
    for (const auto size : opts.sizes) {
      const auto iterations = report::iterations_for(size, opts.iterations);
      const auto answers = report::warm_up_for(iterations) + report::round_trips_per_size(iterations);
      for (std::uint64_t i = 0; i < answers; ++i) {
        const auto received = receive_into(queues.ping, buffer);
        if (received != size)
          throw std::runtime_error("ponger got " + std::to_string(received) + " B, expected " + std::to_string(size));
        queues.pong.send(buffer.data(), received, 0);
      }
    }
    receive_into(queues.ping, buffer);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s (ponger): %s\n", tool_name, e.what());
    return EXIT_FAILURE;
  }
}

std::vector<report::latency_row> run_pinger(const options& opts, queue_pair& queues, std::vector<char>& buffer) {
  std::vector<report::latency_row> rows;
  for (const auto size : opts.sizes) {
    const auto iterations = report::iterations_for(size, opts.iterations);
    auto round_trip = [&] {
      queues.ping.send(buffer.data(), size, 0);
      const auto received = receive_into(queues.pong, buffer);
      if (received != size)
        throw std::runtime_error("pinger got " + std::to_string(received) + " B, expected " + std::to_string(size));
    };
    for (std::uint64_t i = 0; i < report::warm_up_for(iterations); ++i) round_trip();
    rows.push_back(report::measure_round_trips(size, iterations, opts.batch, round_trip));
  }
  return rows;
}

int wait_for_ponger(pid_t ponger) {
  int status = 0;
  while (waitpid(ponger, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run(const options& opts) {
  const auto largest = *std::max_element(opts.sizes.begin(), opts.sizes.end());
  const auto name_prefix = "chanpool_boost_mq_latency_" + std::to_string(getpid());
  const std::string ping_name = name_prefix + "_ping";
  const std::string pong_name = name_prefix + "_pong";

  queue_names_guard names({ping_name, pong_name});
  queue_pair queues(ping_name, pong_name, largest);
  // The parent's mappings survive the unlink and fork() hands them to the child, so the names
  // can go now: nothing is left behind in /dev/shm even if either process is killed.
  names.remove_all();

  // Pinned like latency_bench (one core each) so that the scheduler cannot vary the placement
  // from run to run: a wake-up on the same core and one across cores differ several-fold.
  const auto cpus = opts.pin ? first_two_allowed_cpus() : cpu_placement{};
  std::string placement = "not pinned";
  if (cpus.pinger_cpu >= 0) {
    if (!pin_to_cpu(cpus.pinger_cpu))
      throw std::runtime_error("sched_setaffinity(" + std::to_string(cpus.pinger_cpu) + "): " + std::strerror(errno));
    placement = "pinned to CPUs " + std::to_string(cpus.pinger_cpu) + " and " + std::to_string(cpus.ponger_cpu);
  } else if (opts.pin) {
    placement = "not pinned (fewer than 2 CPUs allowed)";
  }

  // Touched once so that page faults stay out of the timed loops; the child touches its
  // copy-on-write copy again right after fork() for the same reason.
  std::vector<char> buffer(largest, 'x');
  install_child_exit_handler();
  std::fflush(nullptr);  // nothing buffered may be written twice by the child
  const pid_t parent = getpid();
  const pid_t ponger = fork();
  if (ponger < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (ponger == 0) {
    std::signal(SIGCHLD, SIG_DFL);
    // An orphaned ponger would block in receive() forever.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(EXIT_FAILURE);
    if (cpus.ponger_cpu >= 0 && !pin_to_cpu(cpus.ponger_cpu)) {
      std::fprintf(stderr, "%s (ponger): sched_setaffinity(%d): %s\n", tool_name, cpus.ponger_cpu,
                   std::strerror(errno));
      _exit(EXIT_FAILURE);
    }
    std::fill(buffer.begin(), buffer.end(), 'y');
    _exit(run_ponger(opts, queues, buffer));  // _exit: the parent's atexit work is not ours
  }

  std::vector<report::latency_row> rows;
  try {
    rows = run_pinger(opts, queues, buffer);
    ponger_exit_expected = 1;
    queues.ping.send(buffer.data(), 0, 0);  // quit
  } catch (...) {
    ponger_exit_expected = 1;
    kill(ponger, SIGKILL);
    wait_for_ponger(ponger);
    throw;
  }
  if (const int ponger_status = wait_for_ponger(ponger); ponger_status != 0)
    throw std::runtime_error("ponger process failed with status " + std::to_string(ponger_status));

  if (opts.json) {
    std::printf("%s\n", report::to_json(tool_name, transport_name, rows).dump(2).c_str());
  } else {
    const auto header = std::string("Boost ") + BOOST_LIB_VERSION + " message_queue x2 (depth " +
                        std::to_string(queue_depth) + ", max " + std::to_string(largest) + " B), fork()ed ponger " +
                        placement + ", " + queue_synchronisation + ", warm-up min(iterations, " +
                        std::to_string(report::max_warm_up_round_trips) + ") round trips per size";
    report::print_table(tool_name, transport_name, rows, header);
  }
  return EXIT_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  const auto cli = cli_ns::parse_command_line(argc, argv);
  chanpool::tools::print_cli_messages(cli);
  if (cli.exit_now) return cli.exit_code;
  const options& opts = cli.options;
  try {
    return run(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool_name, e.what());
    return EXIT_FAILURE;
  }
}
