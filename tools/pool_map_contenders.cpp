// Running pool_map's contenders beside the Pool: the MPI pools under mpirun and Python's
// multiprocessing.Pool, each a child process with a deadline whose JSON line is read back.
#include "pool_map_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

namespace chanpool::tools::pool_map {

namespace fs = std::filesystem;

namespace {

// One argument for /bin/sh, quoted so that paths with spaces or quotes pass through intact.
std::string shell_quote(const std::string& word) {
  std::string quoted = "'";
  for (const char c : word) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;  // POSIX: empty entry = cwd
    if (is_executable_file(candidate)) return candidate.lexically_normal().string();
  }
  return {};
}

// The last `max_chars` of `text`, without trailing whitespace: enough of a tool's stderr to
// say what went wrong without flooding the terminal.
std::string tail(const std::string& text, std::size_t max_chars = 2000) {
  std::string t = text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  return t;
}

// --- Running a shell command with a deadline ---------------------------------------------------

struct shell_result {
  std::string out;
  std::string err;
  int wait_status = 0;
  bool timed_out = false;
  std::string spawn_error;  // fork/pipe failed: nothing ran
};

// Has `pid` exited? Does not reap it (WNOWAIT), so that its process group cannot be reused
// before we signal it.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  info.si_pid = 0;
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  return info.si_pid == pid;
}

// Ends a timed-out command's process group. SIGTERM first: mpirun then tears its ranks down
// itself (also on other nodes); SIGKILL whatever is left of the group after a grace period.
void end_process_group(pid_t pid) {
  ::kill(-pid, SIGTERM);
  const auto grace_end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!has_exited(pid) && std::chrono::steady_clock::now() < grace_end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(-pid, SIGKILL);
}

// popen() cannot time out or read stderr separately: fork + exec /bin/sh -c in its own process
// group, read stdout and stderr with poll(), and on the deadline kill the whole group (mpirun
// and the ranks it started locally). stdin is /dev/null: mpirun forwards stdin to rank 0, and
// must not consume the caller's terminal.
shell_result run_shell(const std::string& command, double timeout_s) {
  shell_result r;
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.spawn_error = std::string("pipe: ") + std::strerror(errno);
    for (const int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      if (fd >= 0) ::close(fd);
    return r;
  }
  const char* cmd = command.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.spawn_error = std::string("fork: ") + std::strerror(errno);
    for (const int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return r;
  }
  if (pid == 0) {  // child: async-signal-safe calls only (the parent may have threads)
    ::setpgid(0, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execl("/bin/sh", "sh", "-c", cmd, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no window in which a timeout would signal the wrong group
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  using clock = std::chrono::steady_clock;
  const auto deadline =
      clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(std::max(0.0, timeout_s)));
  const auto ms_left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  };

  std::array<pollfd, 2> fds{pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  std::array<std::string*, 2> sinks{&r.out, &r.err};
  std::array<char, 65536> buf;
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = ms_left();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got > 0) {
        sinks[i]->append(buf.data(), static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;  // poll() ignores negative descriptors
        --open_fds;
      }
    }
  }
  // Both pipes closed: the command is (nearly always) exiting; wait within the deadline too.
  while (!r.timed_out && !has_exited(pid)) {
    if (ms_left() <= 0)
      r.timed_out = true;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (r.timed_out) end_process_group(pid);
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  while (::waitpid(pid, &r.wait_status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" + strsignal(WTERMSIG(wait_status)) +
           ")";
  return "ended with wait status " + std::to_string(wait_status);
}

// The tool's JSON line: the last stdout line that parses as an object with "tool" (Open MPI may
// print warnings on stdout before it).
std::optional<nlohmann::json> find_json_line(const std::string& out) {
  std::size_t end = out.size();
  while (end > 0) {
    const std::size_t start = out.rfind('\n', end - 1);
    const std::size_t from = start == std::string::npos ? 0 : start + 1;
    const std::string line = out.substr(from, end - from);
    if (line.find('{') != std::string::npos) {
      auto j = nlohmann::json::parse(line.substr(line.find('{')), nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("tool")) return j;
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return std::nullopt;
}

// Adds the first problem found with the tool's JSON to `error`; true when it is usable.
bool read_tool_json(const nlohmann::json& j, const mpi_pool_request& req, mpi_pool_run& run) {
  const auto fail = [&](const std::string& what) {
    run.error = "the JSON line of " + req.tool + " " + what + ": " + j.dump();
    return false;
  };
  if (!j.contains("runtime_s") || !j["runtime_s"].is_number()) return fail("has no numeric runtime_s");
  if (!j.contains("runtimes_s") || !j["runtimes_s"].is_array()) return fail("has no runtimes_s list");
  for (const auto& v : j["runtimes_s"])
    if (!v.is_number()) return fail("has a non-numeric entry in runtimes_s");
  // Extra mpirun arguments could change the rank count (a second -np, a hostfile with fewer
  // slots): the comparison would then be against a different pool.
  if (j.contains("workers") && j["workers"].is_number_integer() && j["workers"].get<long long>() != req.workers)
    return fail("reports " + std::to_string(j["workers"].get<long long>()) + " workers, not " +
                std::to_string(req.workers) + " (do the extra mpirun arguments change -np?)");
  run.runtime_s = j["runtime_s"].get<double>();
  run.runtimes_s = j["runtimes_s"].get<std::vector<double>>();
  if (!(run.runtime_s > 0) || !std::isfinite(run.runtime_s)) return fail("has an implausible runtime_s");
  return true;
}


}  // namespace

// --- MPI pools ------------------------------------------------------------------------------------

mpi_pool_run run_mpi_pool(const mpi_pool_request& req) {
  mpi_pool_run run;
  const std::string name = req.tool.empty() ? std::string("the MPI pool tool") : fs::path(req.tool).filename().string();
  if (req.tool.empty() || !is_executable_file(req.tool)) {
    run.error = (req.tool.empty() ? name + " was not found" : req.tool + " is not an executable file") +
                ": build mpi_compare (cmake -DCHANPOOL_ENABLE_MPI=ON, targets mpi_pool_round mpi_pool_dynamic) "
                "or pass --mpi none";
    return run;
  }
  if (req.workers == 0) {
    run.error = "an MPI pool needs at least 1 worker";
    return run;
  }
  run.command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " +
                std::to_string(req.workers + 1) + " --oversubscribe --bind-to none " +
                (req.mpi_args.empty() ? std::string() : req.mpi_args + " ") + shell_quote(req.tool) +
                " --imbalance_factor " + number(req.imbalance_factor) + " --items_per_worker " +
                std::to_string(req.items_per_worker) + " --min_time " + number(req.min_time) + " --seed " +
                std::to_string(req.seed) + " --num_iters " + std::to_string(req.num_iters) + " --json";
  if (find_in_path("mpirun").empty()) {
    run.error = "mpirun not found in PATH: install Open MPI (Debian: apt-get install openmpi-bin, or "
                "scripts/install-deps.sh) or pass --mpi none";
    return run;
  }

  const shell_result r = run_shell(run.command, req.timeout_s);
  const std::string stderr_part = r.err.empty() ? std::string() : "\n--- stderr ---\n" + tail(r.err);
  if (!r.spawn_error.empty()) {
    run.error = "could not start mpirun: " + r.spawn_error;
    return run;
  }
  if (r.timed_out) {
    run.error = name + " timed out after " + number(req.timeout_s) + " s and was killed: " + run.command +
                "\n(Open MPI ranks busy-poll: with far more ranks than cores a map can take much longer than its "
                "items; raise the timeout, use fewer workers, or pass --mpi none)" + stderr_part;
    return run;
  }
  if (!WIFEXITED(r.wait_status) || WEXITSTATUS(r.wait_status) != 0) {
    std::string hint;
    if (WIFEXITED(r.wait_status)) {
      switch (WEXITSTATUS(r.wait_status)) {
        case 1: hint = " (1: an item was not done exactly once, or mpirun failed to start the ranks)"; break;
        case 2: hint = " (2: the tool rejected its command line, or fewer than 2 ranks)"; break;
        case 127: hint = " (127: mpirun or the tool could not be executed)"; break;
        default: break;
      }
    }
    run.error = name + " " + describe_exit(r.wait_status) + hint + ": " + run.command + stderr_part;
    return run;
  }
  const auto j = find_json_line(r.out);
  if (!j) {
    run.error = name + " exited 0 but printed no JSON line on stdout: " + run.command +
                (r.out.empty() ? std::string("\n(stdout was empty)") : "\n--- stdout ---\n" + tail(r.out)) + stderr_part;
    return run;
  }
  if (!read_tool_json(*j, req, run)) return run;
  run.ok = true;
  return run;
}

// --- Python's multiprocessing.Pool -----------------------------------------------------------------

namespace {

// Run as `python3 -c SCRIPT ITEMS_FILE WORKERS NUM_ITERS`; prints one JSON line. The "fork"
// context, as on Linux by default before Python 3.14, so that the worker function is the one
// defined here.
constexpr const char* python_pool_script = R"PY(
import json, multiprocessing, sys, time

def item(seconds):
    if seconds > 0:
        time.sleep(seconds)
    return seconds

def main():
    path, workers, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path) as f:
        items = [float(x) for x in f.read().split()]
    times = []
    correct = True
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(item, [0.0] * workers, chunksize=1)
        for _ in range(iters):
            t0 = time.perf_counter()
            results = pool.map(item, items, chunksize=1)
            times.append(time.perf_counter() - t0)
            correct = correct and results == items
    print(json.dumps({"tool": "python_pool", "workers": workers, "items": len(items),
                      "runtime_s": sum(times) / len(times), "runtimes_s": times, "correct": correct}))
    sys.exit(0 if correct else 1)

main()
)PY";

// A file of the durations, one per line in shortest round-trip form (Python's float() reads
// them back bit for bit), removed when this goes out of scope.
class items_file {
 public:
  explicit items_file(const std::vector<double>& items) {
    std::string path_template = (fs::temp_directory_path() / "pool_map-items-XXXXXX").string();
    const int fd = ::mkstemp(path_template.data());
    if (fd < 0) {
      error_ = std::string("cannot create a temporary file for the items: ") + std::strerror(errno);
      return;
    }
    path_ = path_template;
    std::string text;
    for (const double d : items) text += number(d) + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = "cannot write " + path_ + ": " + std::strerror(errno);
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  ~items_file() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  items_file(const items_file&) = delete;
  items_file& operator=(const items_file&) = delete;
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  std::string error_;
};

std::string resolve_python(const std::string& python) {
  if (python.find('/') != std::string::npos) return is_executable_file(python) ? python : std::string();
  return find_in_path(python);
}

}  // namespace

bool python_available(const std::string& python) { return !resolve_python(python).empty(); }

contender_run run_python_pool(const python_pool_request& req) {
  contender_run run;
  const std::string python = resolve_python(req.python);
  if (python.empty()) {
    run.error = req.python + " was not found: install Python 3 (Debian: apt-get install python3) or pass --python off";
    return run;
  }
  if (req.workers == 0) {
    run.error = "Python's Pool needs at least 1 worker";
    return run;
  }
  const items_file file(req.items);
  if (!file.error().empty()) {
    run.error = file.error();
    return run;
  }
  run.command = shell_quote(python) + " -c " + shell_quote(python_pool_script) + " " + shell_quote(file.path()) + " " +
                std::to_string(req.workers) + " " + std::to_string(req.num_iters);
  const std::string shown = python + " -c '<pool_map's Python Pool script>' " + file.path() + " " +
                            std::to_string(req.workers) + " " + std::to_string(req.num_iters);
  const shell_result r = run_shell(run.command, req.timeout_s);
  run.command = shown;
  const std::string stderr_part = r.err.empty() ? std::string() : "\n--- stderr ---\n" + tail(r.err);
  if (!r.spawn_error.empty()) {
    run.error = "could not start " + python + ": " + r.spawn_error;
    return run;
  }
  if (r.timed_out) {
    run.error = "Python's Pool timed out after " + number(req.timeout_s) + " s and was killed" + stderr_part;
    return run;
  }
  if (!WIFEXITED(r.wait_status) || WEXITSTATUS(r.wait_status) != 0) {
    const bool wrong = WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 1 && r.out.find("\"correct\": false") != std::string::npos;
    run.error = "Python's Pool " + describe_exit(r.wait_status) +
                (wrong ? " (its results differ from the items)" : std::string()) + ": " + shown + stderr_part;
    return run;
  }
  const auto j = find_json_line(r.out);
  if (!j) {
    run.error = "Python's Pool exited 0 but printed no JSON line: " + shown + stderr_part;
    return run;
  }
  mpi_pool_request as_request;
  as_request.tool = "Python's Pool";
  as_request.workers = req.workers;
  if (!read_tool_json(*j, as_request, run)) return run;
  run.ok = true;
  return run;
}

std::string find_sibling_tool(const char* argv0, const std::string& name) {
  std::error_code ec;
  fs::path self;
  if (argv0 && *argv0 && std::strchr(argv0, '/')) {
    self = argv0;
  } else {
    if (argv0 && *argv0) self = find_in_path(argv0);
    if (self.empty()) self = fs::read_symlink("/proc/self/exe", ec);
  }
  if (!self.empty()) {
    const fs::path dir = fs::absolute(self, ec).parent_path();
    for (const fs::path& candidate : {dir / name, dir / ".." / "mpi_compare" / name})
      if (is_executable_file(candidate)) return candidate.lexically_normal().string();
  }
  return find_in_path(name);
}
}  // namespace chanpool::tools::pool_map
