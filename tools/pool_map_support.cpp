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

}  // namespace

// Shortest text that reads back as the same double: exact in CSV and on the mpirun command
// line (the MPI tools must regenerate the very same work list), yet "0.1" rather than
// "0.10000000000000001".
std::string number(double value) {
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return std::to_string(value);
  return std::string(buf.data(), end);
}

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

// Integral values (the usual imbalance factors 1 and 8) as integers, as the command line writes them.
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
  if (r.python_s)
    j["python_pool"] = {{"runtime_s", *r.python_s}, {"speedup", optional_number(speedup(r.python_s, r.pool_runtime_s))}};
  return j;
}

std::optional<row> row_from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.value("tool", "") != "pool_map" || j.contains("mode")) return std::nullopt;
  const auto number_at = [&](const nlohmann::json& o, const char* key) -> std::optional<double> {
    if (!o.is_object() || !o.contains(key) || !o[key].is_number()) return std::nullopt;
    return o[key].get<double>();
  };
  const auto contender = [&](const char* key) -> std::optional<double> {
    return j.contains(key) ? number_at(j[key], "runtime_s") : std::nullopt;
  };
  row r;
  const auto nodes = number_at(j, "nodes"), per_node = number_at(j, "workers_per_node"), workers = number_at(j, "workers");
  const auto k = number_at(j, "imbalance_factor"), ideal = number_at(j, "ideal_s"), bound_s = number_at(j, "bound_s");
  const auto pool = j.contains("pool") ? number_at(j["pool"], "runtime_s") : std::nullopt;
  const auto startup = j.contains("pool") ? number_at(j["pool"], "startup_s") : std::nullopt;
  if (!nodes || !per_node || !workers || !k || !ideal || !bound_s || !pool || !startup) return std::nullopt;
  r.nodes = static_cast<unsigned>(*nodes);
  r.workers_per_node = static_cast<unsigned>(*per_node);
  r.workers = static_cast<unsigned>(*workers);
  r.imbalance_factor = *k;
  r.ideal_s = *ideal;
  r.bound_s = *bound_s;
  r.pool_runtime_s = *pool;
  r.pool_startup_s = *startup;
  r.mpi_round_s = contender("mpi_round");
  r.mpi_dynamic_s = contender("mpi_dynamic");
  r.python_s = contender("python_pool");
  return r;
}

void write_csv(const std::string& path, const std::vector<row>& rows) {
  output_file f(path);
  f.write(
      "nodes,workers_per_node,workers,imbalance_factor,ideal_s,bound_s,pool_runtime_s,pool_startup_s,efficiency,"
      "mpi_round_s,mpi_dynamic_s,speedup_vs_round,speedup_vs_dynamic,python_s,speedup_vs_python\n");
  for (const row& r : rows) {
    f.write(std::to_string(r.nodes) + "," + std::to_string(r.workers_per_node) + "," + std::to_string(r.workers) + "," +
            number(r.imbalance_factor) + "," + number(r.ideal_s) + "," + number(r.bound_s) + "," +
            number(r.pool_runtime_s) + "," + number(r.pool_startup_s) + "," + csv_cell(efficiency(r)) + "," +
            csv_cell(r.mpi_round_s) + "," + csv_cell(r.mpi_dynamic_s) + "," +
            csv_cell(speedup(r.mpi_round_s, r.pool_runtime_s)) + "," +
            csv_cell(speedup(r.mpi_dynamic_s, r.pool_runtime_s)) + "," + csv_cell(r.python_s) + "," +
            csv_cell(speedup(r.python_s, r.pool_runtime_s)) + "\n");
  }
  f.close();
}

namespace {

// One series per (imbalance factor, contender); contender 0 = mpi_pool_round, 1 = dynamic,
// 2 = Python's multiprocessing.Pool.
const std::array<const char*, 3> contender_names{"mpi_pool_round", "mpi_pool_dynamic", "Python Pool"};

struct plot_data {
  std::map<std::pair<double, int>, std::vector<std::pair<unsigned, double>>> series;  // points (nodes, speedup)
  std::vector<unsigned> node_counts;  // distinct, ascending
  std::vector<unsigned> per_node;     // distinct workers-per-node values
};

plot_data collect_plot_data(const std::vector<row>& rows) {
  plot_data d;
  for (const row& r : rows) {
    if (r.nodes == 0) continue;  // no place on a log axis
    const std::array<std::optional<double>, 3> s{speedup(r.mpi_round_s, r.pool_runtime_s),
                                                  speedup(r.mpi_dynamic_s, r.pool_runtime_s),
                                                  speedup(r.python_s, r.pool_runtime_s)};
    for (int c = 0; c < 3; ++c) {
      if (!s[static_cast<std::size_t>(c)]) continue;
      d.series[{r.imbalance_factor, c}].emplace_back(r.nodes, *s[static_cast<std::size_t>(c)]);
      d.node_counts.push_back(r.nodes);
    }
    d.per_node.push_back(r.workers_per_node);
  }
  for (auto& [key, points] : d.series) std::stable_sort(points.begin(), points.end());
  std::sort(d.node_counts.begin(), d.node_counts.end());
  d.node_counts.erase(std::unique(d.node_counts.begin(), d.node_counts.end()), d.node_counts.end());
  std::sort(d.per_node.begin(), d.per_node.end());
  d.per_node.erase(std::unique(d.per_node.begin(), d.per_node.end()), d.per_node.end());

  return d;
}

// Plot area on the left, legend on the right; a log2 x axis of nodes.
struct plot_frame {
  double width = 880, height = 500;
  double left = 80, right = 580, top = 70, bottom = 430;
  double x_lo = 0, x_hi = 5, y_top = 1, step = 0.2;
  double x(double nodes) const { return left + (std::log2(nodes) - x_lo) / (x_hi - x_lo) * (right - left); }
  double y(double speedup) const { return bottom - speedup / y_top * (bottom - top); }
};

plot_frame frame_for(const plot_data& d) {
  plot_frame f;
  f.x_lo = d.node_counts.empty() ? 0 : std::log2(d.node_counts.front());
  f.x_hi = d.node_counts.empty() ? 5 : std::log2(d.node_counts.back());
  const double pad = 0.08 * std::max(1.0, f.x_hi - f.x_lo);
  f.x_lo -= pad;
  f.x_hi += pad;
  double y_max = 1.0;  // the reference line at 1 is always in view
  for (const auto& [key, points] : d.series)
    for (const auto& [n, s] : points) y_max = std::max(y_max, s);
  f.step = tick_step(y_max * 1.05, 5);
  f.y_top = std::ceil(y_max * 1.05 / f.step) * f.step;
  return f;
}

// Title, grid, ticks, axes and their labels, the dashed line at 1.
void draw_frame(std::ostringstream& svg, const plot_frame& f, const plot_data& d) {
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << f.width << "\" height=\"" << f.height
      << "\" viewBox=\"0 0 " << f.width << " " << f.height << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << f.width / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\">"
      << "chanpool Pool vs other pools: speedup by nodes</text>\n";
  std::string subtitle = "speedup = other pool's runtime / chanpool Pool's runtime (higher: chanpool is faster)";
  if (d.per_node.size() == 1) subtitle += "; " + std::to_string(d.per_node.front()) + " workers per node";
  svg << "<text x=\"" << f.width / 2 << "\" y=\"50\" text-anchor=\"middle\" fill=\"#444\">" << xml_escape(subtitle)
      << "</text>\n";

  // Axes, grid and ticks.
  svg << "<g stroke=\"#ddd\" stroke-width=\"1\">\n";
  for (double y = 0; y <= f.y_top + f.step / 2; y += f.step)
    svg << "<line x1=\"" << f.left << "\" y1=\"" << fixed(f.y(y)) << "\" x2=\"" << f.right << "\" y2=\"" << fixed(f.y(y))
        << "\"/>\n";
  svg << "</g>\n<g font-size=\"12\" fill=\"#222\">\n";
  for (double y = 0; y <= f.y_top + f.step / 2; y += f.step)
    svg << "<text x=\"" << f.left - 8 << "\" y=\"" << fixed(f.y(y) + 4) << "\" text-anchor=\"end\">"
        << fixed(y, f.step < 1 ? (f.step < 0.1 ? 2 : 1) : 0) << "</text>\n";
  for (const unsigned n : d.node_counts)
    svg << "<line x1=\"" << fixed(f.x(n)) << "\" y1=\"" << f.bottom << "\" x2=\"" << fixed(f.x(n)) << "\" y2=\""
        << f.bottom + 5 << "\" stroke=\"#222\"/>\n"
        << "<text x=\"" << fixed(f.x(n)) << "\" y=\"" << f.bottom + 20 << "\" text-anchor=\"middle\">" << n << "</text>\n";
  svg << "</g>\n"
      << "<rect x=\"" << f.left << "\" y=\"" << f.top << "\" width=\"" << f.right - f.left << "\" height=\"" << f.bottom - f.top
      << "\" fill=\"none\" stroke=\"#222\"/>\n"
      << "<text x=\"" << (f.left + f.right) / 2 << "\" y=\"" << f.bottom + 45 << "\" text-anchor=\"middle\">nodes (log2 scale)</text>\n"
      << "<text transform=\"translate(" << f.left - 50 << " " << (f.top + f.bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">speedup over the other pool (x)</text>\n";

  // Equal runtime.
  svg << "<line class=\"equal\" x1=\"" << f.left << "\" y1=\"" << fixed(f.y(1)) << "\" x2=\"" << f.right << "\" y2=\""
      << fixed(f.y(1)) << "\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";

}

// Colour by imbalance factor; line style and marker by contender; a legend entry each.
void draw_series(std::ostringstream& svg, const plot_frame& f, const plot_data& d) {
  // Colour by imbalance factor; line style and marker by contender.
  const std::array<const char*, 6> palette{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  std::map<double, std::size_t> colour_of;
  for (const auto& [key, points] : d.series) colour_of.emplace(key.first, colour_of.size());
  double legend_y = f.top + 10;
  for (const auto& [key, points] : d.series) {
    const auto& [factor, contender] = key;
    const std::string colour = palette[colour_of[factor] % palette.size()];
    const std::string label = "imbalance " + number(factor) + " vs " + contender_names[static_cast<std::size_t>(contender)];
    const std::string dash =
        contender == 0 ? "" : contender == 1 ? " stroke-dasharray=\"12,3,3,3\"" : " stroke-dasharray=\"2,3\"";
    svg << "<polyline class=\"series\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"" << dash
        << " points=\"";
    for (std::size_t i = 0; i < points.size(); ++i)
      svg << (i ? " " : "") << fixed(f.x(points[i].first)) << "," << fixed(f.y(points[i].second));
    svg << "\"><title>" << xml_escape(label) << "</title></polyline>\n";
    // A point marker, with a tooltip on the plot (not in the legend).
    const auto marker = [&](double x, double y, const std::string& tooltip) {
      std::ostringstream m;
      const std::string end = tooltip.empty() ? "/>" : "><title>" + xml_escape(tooltip) + "</title></";
      if (contender != 1)  // filled circle for the round pool, hollow for Python's
        m << "<circle cx=\"" << fixed(x) << "\" cy=\"" << fixed(y) << "\" r=\"4\" fill=\""
          << (contender == 0 ? colour : std::string("white")) << "\" stroke=\"" << colour << "\" stroke-width=\"2\""
          << end << (tooltip.empty() ? "" : "circle>");
      else
        m << "<rect x=\"" << fixed(x - 4) << "\" y=\"" << fixed(y - 4)
          << "\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"" << colour << "\" stroke-width=\"2\"" << end
          << (tooltip.empty() ? "" : "rect>");
      return m.str();
    };
    for (const auto& [n, s] : points)
      svg << marker(f.x(n), f.y(s), std::to_string(n) + " nodes: " + fixed(s, 2) + "x") << "\n";
    // Legend entry.
    svg << "<line x1=\"" << f.right + 20 << "\" y1=\"" << legend_y << "\" x2=\"" << f.right + 50 << "\" y2=\"" << legend_y
        << "\" stroke=\"" << colour << "\" stroke-width=\"2\"" << dash << "/>\n"
        << marker(f.right + 35, legend_y, "") << "\n"
        << "<text x=\"" << f.right + 58 << "\" y=\"" << legend_y + 4 << "\" font-size=\"12\">" << xml_escape(label)
        << "</text>\n";
    legend_y += 22;
  }
  svg << "<line x1=\"" << f.right + 20 << "\" y1=\"" << legend_y << "\" x2=\"" << f.right + 50 << "\" y2=\"" << legend_y
      << "\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n"
      << "<text x=\"" << f.right + 58 << "\" y=\"" << legend_y + 4 << "\" font-size=\"12\">1 = same runtime</text>\n";
  if (d.series.empty())
    svg << "<text x=\"" << (f.left + f.right) / 2 << "\" y=\"" << (f.top + f.bottom) / 2
        << "\" text-anchor=\"middle\" fill=\"#888\">no MPI or Python runtimes to compare with</text>\n";
}

}  // namespace

void write_svg_plot(const std::string& path, const std::vector<row>& rows) {
  const plot_data d = collect_plot_data(rows);
  const plot_frame f = frame_for(d);
  std::ostringstream svg;
  draw_frame(svg, f, d);
  draw_series(svg, f, d);
  svg << "</svg>\n";

  output_file f_out(path);
  f_out.write(svg.str());
  f_out.close();
}

}  // namespace chanpool::tools::pool_map
