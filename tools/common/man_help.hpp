// Man-page style --help for every command-line tool (latency_bench, fanin_bench,
// chanpool_cleanup and the MPI baselines in mpi_compare/), so that they all read the same way:
//
//   NAME          tool - one-line summary
//   SYNOPSIS      how to call it
//   DESCRIPTION   what it measures or does, and how
//   OPTIONS       CLI11's list of options, each with its default
//   OUTPUT        what every printed line and JSON key means
//   EXIT STATUS
//   ENVIRONMENT
//   EXAMPLES
//
// Usage: fill a man::page, call man::apply(app, page) *before* adding options (it makes every
// option added afterwards show its default), add the options, then parse with man::parse(), which
// prints nothing: the tool prints what it returns (cli_result.hpp).
// apply() also gives every tool --version ("<name> (chanpool) X.Y.Z", chanpool/version.h) and
// a SYNOPSIS line for it and --help.
// Section bodies are written without indentation; apply() indents them. tests/tools/help_test.py
// checks every tool's --help against this layout.
#pragma once

#include <CLI/CLI.hpp>

#include "cli_result.hpp"
#include "version_flag.hpp"

#include <algorithm>

#include <cstddef>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace chanpool::tools::man {

inline constexpr int exit_usage = chanpool::tools::exit_usage;  // cli_result.hpp

struct page {
  std::string name;         // the program, e.g. "latency_bench"
  std::string summary;      // one line: NAME is "<name> - <summary>"
  std::string synopsis;     // one or more command lines
  std::string description;  // paragraphs separated by blank lines
  std::string output;
  std::string exit_status;
  std::string environment;
  std::string examples;
};

// `body` with every non-empty line indented by two spaces, under `heading`.
inline std::string section(std::string_view heading, std::string_view body) {
  std::string out(heading);
  out += '\n';
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = std::min(body.find('\n', pos), body.size());
    const std::string_view line = body.substr(pos, end - pos);
    if (!line.empty()) {
      out += "  ";
      out += line;
    }
    out += '\n';
    pos = end + 1;
  }
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

// Prints the description (NAME, SYNOPSIS, DESCRIPTION), then OPTIONS, then the footer (OUTPUT,
// EXIT STATUS, ENVIRONMENT, EXAMPLES). Option descriptions are wrapped at `line_width`.
class formatter : public CLI::Formatter {
 public:
  static constexpr std::size_t line_width = 100;

  formatter() { column_width(30); }

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode mode) const override {
    std::ostringstream out;
    out << app->get_description();
    out << "\nOPTIONS\n";
    const auto groups = app->get_groups();
    for (const std::string& group : groups) {
      const auto opts = app->get_options([&](const CLI::Option* o) {
        return o->get_group() == group && o->nonpositional() &&
               (mode != CLI::AppFormatMode::Sub || (app->get_help_ptr() != o && app->get_help_all_ptr() != o));
      });
      if (group.empty() || opts.empty()) continue;  // an empty group hides an option (test hooks)
      if (group != groups.front()) out << "\n  " << group << ":\n";
      for (const CLI::Option* o : opts) out << make_option(o, false);
    }
    out << '\n' << app->get_footer();
    return out.str();
  }

  std::string make_option(const CLI::Option* opt, bool is_positional) const override {
    const std::string left = "  " + make_option_name(opt, is_positional) + make_option_opts(opt);
    const std::size_t indent = get_column_width();
    std::string out = left;
    std::size_t column = left.size();
    if (column + 1 >= indent) {
      out += '\n';
      column = 0;
    }
    out.append(indent - column, ' ');
    column = indent;
    std::istringstream words(make_option_desc(opt));
    std::string word;
    bool first = true;
    while (words >> word) {
      if (!first && column + 1 + word.size() > line_width) {
        out += '\n';
        out.append(indent, ' ');
        column = indent;
        first = true;
      }
      if (!first) {
        out += ' ';
        ++column;
      }
      out += word;
      column += word.size();
      first = false;
    }
    return out + '\n';
  }
};

// Gives `app` the page: description, footer, the formatter above, help and version flags that
// say what they print, and defaults shown for every option added from now on.
inline void apply(CLI::App& app, const page& p) {
  app.name(p.name);
  const std::string synopsis = p.synopsis + "\n" + p.name + " --help | --version";
  app.description(section("NAME", p.name + " - " + p.summary) + "\n" + section("SYNOPSIS", synopsis) + "\n" +
                  section("DESCRIPTION", p.description));
  app.footer(section("OUTPUT", p.output) + "\n" + section("EXIT STATUS", p.exit_status) + "\n" +
             section("ENVIRONMENT", p.environment) + "\n" + section("EXAMPLES", p.examples));
  app.formatter(std::make_shared<formatter>());
  app.option_defaults()->always_capture_default();
  app.set_help_flag("-h,--help", "Print this help (a manual page) and exit 0");
  app.set_version_flag("--version", chanpool::tools::version_line(p.name), "Print the tool's name and chanpool's version, and exit 0");
}

// Parses the command line without printing. Returns true when the program should stop now, with
// `r` saying what to print and the exit status: 0 after --help or --version, exit_usage after a
// bad command line (CLI11's message for stderr).
template <class Options>
bool parse(CLI::App& app, int argc, const char* const* argv, cli_result<Options>& r) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out;
    std::ostringstream err;
    app.exit(e, out, err);
    r.exit_now = true;
    r.exit_code = e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success) ? 0 : exit_usage;
    r.out = out.str();
    r.err = err.str();
  }
  return r.exit_now;
}

}  // namespace chanpool::tools::man
