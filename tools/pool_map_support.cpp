#include "pool_map_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace chanpool::tools::pool_map {

namespace fs = std::filesystem;

namespace {

void require_workers(std::size_t workers) {
  if (workers == 0) throw std::invalid_argument("pool_map: the number of workers must be at least 1");
}

// Shortest text that reads back as the same double: exact in CSV and on the mpirun command
// line (the MPI tools must regenerate the very same work list), yet "0.1" rather than
// "0.10000000000000001".
std::string number(double value) {
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return std::to_string(value);
  return std::string(buf.data(), end);
}

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
  if (r.timed_out) {
    // SIGTERM first: mpirun then tears its ranks down itself (also on other nodes); SIGKILL
    // whatever is left of the group after a grace period.
    ::kill(-pid, SIGTERM);
    const auto grace_end = clock::now() + std::chrono::seconds(5);
    while (!has_exited(pid) && clock::now() < grace_end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(-pid, SIGKILL);
  }
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

// --- Zero-overhead references -------------------------------------------------------------------

double ideal_makespan(const std::vector<double>& items, std::size_t workers) {
  require_workers(workers);
  // Min-heap of the times at which each worker becomes free; only min(workers, items) of them
  // can ever be used, so no more are created (the Pool may have far more workers than items).
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (std::size_t w = 0; w < std::min(workers, items.size()); ++w) free_at.push(0.0);
  double makespan = 0;
  for (const double item : items) {
    const double start = free_at.top();
    free_at.pop();
    free_at.push(start + item);
    makespan = std::max(makespan, start + item);
  }
  return makespan;
}

double round_makespan(const std::vector<double>& items, std::size_t workers) {
  require_workers(workers);
  double total = 0;
  for (std::size_t first = 0; first < items.size(); first += workers) {
    const auto begin = items.begin() + static_cast<std::ptrdiff_t>(first);
    const auto end = items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), first + workers));
    total += *std::max_element(begin, end);
  }
  return total;
}

double bound(const std::vector<double>& items, std::size_t workers) {
  require_workers(workers);
  if (items.empty()) return 0;
  const double total = std::accumulate(items.begin(), items.end(), 0.0);
  return std::max(total / static_cast<double>(workers), *std::max_element(items.begin(), items.end()));
}

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

// --- Outputs -------------------------------------------------------------------------------------

std::optional<double> speedup(std::optional<double> mpi_runtime_s, double pool_runtime_s) {
  if (!mpi_runtime_s || !(pool_runtime_s > 0) || !std::isfinite(*mpi_runtime_s)) return std::nullopt;
  return *mpi_runtime_s / pool_runtime_s;
}

std::optional<double> efficiency(const row& r) {
  if (!(r.pool_runtime_s > 0)) return std::nullopt;
  return r.ideal_s / r.pool_runtime_s;
}

namespace {

nlohmann::ordered_json optional_number(std::optional<double> v) {
  return v && std::isfinite(*v) ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

// Integral values (the usual imbalance factors 1 and 8) as integers, as the issue writes them.
nlohmann::ordered_json factor_json(double k) {
  if (std::isfinite(k) && k == std::floor(k) && std::fabs(k) < 9.0e15) return static_cast<std::int64_t>(k);
  return k;
}

// Closes the file on every path; close() reports the delayed write errors fclose() can return.
class output_file {
 public:
  explicit output_file(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "w")) {
    if (!f_) fail();
  }
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;
  ~output_file() {
    if (f_) std::fclose(f_);
  }
  void write(const std::string& text) {
    if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) fail();
  }
  void close() {
    const bool had_error = std::ferror(f_) != 0;
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (had_error || rc != 0) fail();
  }

 private:
  [[noreturn]] void fail() const {
    const int e = errno ? errno : EIO;
    throw std::runtime_error("cannot write " + path_ + ": " + std::strerror(e));
  }
  std::string path_;
  std::FILE* f_;
};

std::string csv_cell(std::optional<double> v) { return v && std::isfinite(*v) ? number(*v) : std::string(); }

std::string xml_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int decimals = 1) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.*f", decimals, v);
  return buf.data();
}

// A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `top`.
double tick_step(double top, int ticks) {
  const double raw = top / ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

}  // namespace

nlohmann::ordered_json to_json(const row& r) {
  nlohmann::ordered_json j;
  j["tool"] = "pool_map";
  j["nodes"] = r.nodes;
  j["workers_per_node"] = r.workers_per_node;
  j["workers"] = r.workers;
  j["imbalance_factor"] = factor_json(r.imbalance_factor);
  j["ideal_s"] = r.ideal_s;
  j["bound_s"] = r.bound_s;
  j["pool"] = {{"runtime_s", r.pool_runtime_s}, {"startup_s", r.pool_startup_s}, {"efficiency", optional_number(efficiency(r))}};
  if (r.mpi_round_s)
    j["mpi_round"] = {{"runtime_s", *r.mpi_round_s}, {"speedup", optional_number(speedup(r.mpi_round_s, r.pool_runtime_s))}};
  if (r.mpi_dynamic_s)
    j["mpi_dynamic"] = {{"runtime_s", *r.mpi_dynamic_s},
                        {"speedup", optional_number(speedup(r.mpi_dynamic_s, r.pool_runtime_s))}};
  return j;
}

void write_csv(const std::string& path, const std::vector<row>& rows) {
  output_file f(path);
  f.write(
      "nodes,workers_per_node,workers,imbalance_factor,ideal_s,bound_s,pool_runtime_s,pool_startup_s,efficiency,"
      "mpi_round_s,mpi_dynamic_s,speedup_vs_round,speedup_vs_dynamic\n");
  for (const row& r : rows) {
    f.write(std::to_string(r.nodes) + "," + std::to_string(r.workers_per_node) + "," + std::to_string(r.workers) + "," +
            number(r.imbalance_factor) + "," + number(r.ideal_s) + "," + number(r.bound_s) + "," +
            number(r.pool_runtime_s) + "," + number(r.pool_startup_s) + "," + csv_cell(efficiency(r)) + "," +
            csv_cell(r.mpi_round_s) + "," + csv_cell(r.mpi_dynamic_s) + "," +
            csv_cell(speedup(r.mpi_round_s, r.pool_runtime_s)) + "," +
            csv_cell(speedup(r.mpi_dynamic_s, r.pool_runtime_s)) + "\n");
  }
  f.close();
}

void write_svg_plot(const std::string& path, const std::vector<row>& rows) {
  // One series per (imbalance factor, contender); contender 0 = mpi_pool_round, 1 = dynamic.
  const std::array<const char*, 2> contender_names{"mpi_pool_round", "mpi_pool_dynamic"};
  std::map<std::pair<double, int>, std::vector<std::pair<unsigned, double>>> series;
  std::vector<unsigned> node_counts;
  std::vector<unsigned> per_node;
  for (const row& r : rows) {
    if (r.nodes == 0) continue;  // no place on a log axis
    const std::array<std::optional<double>, 2> s{speedup(r.mpi_round_s, r.pool_runtime_s),
                                                  speedup(r.mpi_dynamic_s, r.pool_runtime_s)};
    for (int c = 0; c < 2; ++c) {
      if (!s[static_cast<std::size_t>(c)]) continue;
      series[{r.imbalance_factor, c}].emplace_back(r.nodes, *s[static_cast<std::size_t>(c)]);
      node_counts.push_back(r.nodes);
    }
    per_node.push_back(r.workers_per_node);
  }
  for (auto& [key, points] : series) std::stable_sort(points.begin(), points.end());
  std::sort(node_counts.begin(), node_counts.end());
  node_counts.erase(std::unique(node_counts.begin(), node_counts.end()), node_counts.end());
  std::sort(per_node.begin(), per_node.end());
  per_node.erase(std::unique(per_node.begin(), per_node.end()), per_node.end());

  // Geometry: plot area on the left, legend on the right.
  const double width = 880, height = 500;
  const double left = 80, right = 580, top = 70, bottom = 430;
  double x_lo = node_counts.empty() ? 0 : std::log2(node_counts.front());
  double x_hi = node_counts.empty() ? 5 : std::log2(node_counts.back());
  const double pad = 0.08 * std::max(1.0, x_hi - x_lo);
  x_lo -= pad;
  x_hi += pad;
  double y_max = 1.0;  // the reference line at 1 is always in view
  for (const auto& [key, points] : series)
    for (const auto& [n, s] : points) y_max = std::max(y_max, s);
  const double step = tick_step(y_max * 1.05, 5);
  const double y_top = std::ceil(y_max * 1.05 / step) * step;
  const auto x_of = [&](double nodes) { return left + (std::log2(nodes) - x_lo) / (x_hi - x_lo) * (right - left); };
  const auto y_of = [&](double s) { return bottom - s / y_top * (bottom - top); };

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\">"
      << "chanpool Pool vs MPI pools: speedup by nodes</text>\n";
  std::string subtitle = "speedup = MPI runtime / Pool runtime (higher: the Pool is faster)";
  if (per_node.size() == 1) subtitle += "; " + std::to_string(per_node.front()) + " workers per node";
  svg << "<text x=\"" << width / 2 << "\" y=\"50\" text-anchor=\"middle\" fill=\"#444\">" << xml_escape(subtitle)
      << "</text>\n";

  // Axes, grid and ticks.
  svg << "<g stroke=\"#ddd\" stroke-width=\"1\">\n";
  for (double y = 0; y <= y_top + step / 2; y += step)
    svg << "<line x1=\"" << left << "\" y1=\"" << fixed(y_of(y)) << "\" x2=\"" << right << "\" y2=\"" << fixed(y_of(y))
        << "\"/>\n";
  svg << "</g>\n<g font-size=\"12\" fill=\"#222\">\n";
  for (double y = 0; y <= y_top + step / 2; y += step)
    svg << "<text x=\"" << left - 8 << "\" y=\"" << fixed(y_of(y) + 4) << "\" text-anchor=\"end\">"
        << fixed(y, step < 1 ? (step < 0.1 ? 2 : 1) : 0) << "</text>\n";
  for (const unsigned n : node_counts)
    svg << "<line x1=\"" << fixed(x_of(n)) << "\" y1=\"" << bottom << "\" x2=\"" << fixed(x_of(n)) << "\" y2=\""
        << bottom + 5 << "\" stroke=\"#222\"/>\n"
        << "<text x=\"" << fixed(x_of(n)) << "\" y=\"" << bottom + 20 << "\" text-anchor=\"middle\">" << n << "</text>\n";
  svg << "</g>\n"
      << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left << "\" height=\"" << bottom - top
      << "\" fill=\"none\" stroke=\"#222\"/>\n"
      << "<text x=\"" << (left + right) / 2 << "\" y=\"" << bottom + 45 << "\" text-anchor=\"middle\">nodes (log2 scale)</text>\n"
      << "<text transform=\"translate(" << left - 50 << " " << (top + bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">speedup over MPI pool (x)</text>\n";

  // Equal runtime.
  svg << "<line class=\"equal\" x1=\"" << left << "\" y1=\"" << fixed(y_of(1)) << "\" x2=\"" << right << "\" y2=\""
      << fixed(y_of(1)) << "\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";

  // Colour by imbalance factor; line style and marker by contender.
  const std::array<const char*, 6> palette{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  std::map<double, std::size_t> colour_of;
  for (const auto& [key, points] : series) colour_of.emplace(key.first, colour_of.size());
  double legend_y = top + 10;
  for (const auto& [key, points] : series) {
    const auto& [factor, contender] = key;
    const std::string colour = palette[colour_of[factor] % palette.size()];
    const std::string label = "imbalance " + number(factor) + " vs " + contender_names[static_cast<std::size_t>(contender)];
    const std::string dash = contender == 0 ? "" : " stroke-dasharray=\"12,3,3,3\"";
    svg << "<polyline class=\"series\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"" << dash
        << " points=\"";
    for (std::size_t i = 0; i < points.size(); ++i)
      svg << (i ? " " : "") << fixed(x_of(points[i].first)) << "," << fixed(y_of(points[i].second));
    svg << "\"><title>" << xml_escape(label) << "</title></polyline>\n";
    // A point marker, with a tooltip on the plot (not in the legend).
    const auto marker = [&](double x, double y, const std::string& tooltip) {
      std::ostringstream m;
      const std::string end = tooltip.empty() ? "/>" : "><title>" + xml_escape(tooltip) + "</title></";
      if (contender == 0)
        m << "<circle cx=\"" << fixed(x) << "\" cy=\"" << fixed(y) << "\" r=\"4\" fill=\"" << colour << "\""
          << end << (tooltip.empty() ? "" : "circle>");
      else
        m << "<rect x=\"" << fixed(x - 4) << "\" y=\"" << fixed(y - 4)
          << "\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"" << colour << "\" stroke-width=\"2\"" << end
          << (tooltip.empty() ? "" : "rect>");
      return m.str();
    };
    for (const auto& [n, s] : points)
      svg << marker(x_of(n), y_of(s), std::to_string(n) + " nodes: " + fixed(s, 2) + "x") << "\n";
    // Legend entry.
    svg << "<line x1=\"" << right + 20 << "\" y1=\"" << legend_y << "\" x2=\"" << right + 50 << "\" y2=\"" << legend_y
        << "\" stroke=\"" << colour << "\" stroke-width=\"2\"" << dash << "/>\n"
        << marker(right + 35, legend_y, "") << "\n"
        << "<text x=\"" << right + 58 << "\" y=\"" << legend_y + 4 << "\" font-size=\"12\">" << xml_escape(label)
        << "</text>\n";
    legend_y += 22;
  }
  svg << "<line x1=\"" << right + 20 << "\" y1=\"" << legend_y << "\" x2=\"" << right + 50 << "\" y2=\"" << legend_y
      << "\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n"
      << "<text x=\"" << right + 58 << "\" y=\"" << legend_y + 4 << "\" font-size=\"12\">1 = same runtime</text>\n";
  if (series.empty())
    svg << "<text x=\"" << (left + right) / 2 << "\" y=\"" << (top + bottom) / 2
        << "\" text-anchor=\"middle\" fill=\"#888\">no MPI runtimes to compare with</text>\n";
  svg << "</svg>\n";

  output_file f(path);
  f.write(svg.str());
  f.close();
}

}  // namespace chanpool::tools::pool_map
