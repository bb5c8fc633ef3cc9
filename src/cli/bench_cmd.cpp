// `procforge bench [SUITE...]`: the cost-model suites (bench::run_bench_suites,
// rendered by cli/render_bench.cpp). `procforge bench spawn`: spawn+wait latency of procforge's default strategy
// against glibc posix_spawn, fork+exec, vfork+exec and a minimal clone
// baseline, for a static and a dynamic target and several parent sizes. The
// measuring is bench::run_spawn_bench(); this file finds the targets, shows
// progress on a terminal and renders a table or JSON.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/render_bench.hpp"
#include "common/ansi.hpp"
#include "procforge/bench.hpp"

namespace procforge::cli {

namespace {

struct BenchOptions {
  bool json = false;
  int runs = 101;
  std::string rss = "0,1024,8192";
  std::string static_target;
  std::string dynamic_target = "/bin/true";
  std::string strategies;
};

bool executable(const std::string& p) { return !p.empty() && access(p.c_str(), X_OK) == 0; }

// A program of procforge's, found from this binary (no build-tree path is
// compiled in): next to build/procforge or in build/bench/ in the build tree;
// next to bin/procforge or in lib/procforge/ once installed.
std::string find_beside(const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto dir = self.parent_path();
  for (const auto& c : {dir / name, dir / "bench" / name, dir / ".." / "lib" / "procforge" / name})
    if (executable(c.string())) return std::filesystem::weakly_canonical(c, ec).string();
  return {};
}

std::string find_exit0() { return find_beside("procforge-exit0"); }

bool parse_sizes(const std::string& list, std::vector<std::uint64_t>& out) {
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos) return false;
    out.push_back(std::stoull(item));
  }
  return !out.empty();
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(const std::string& s, std::size_t w, bool right) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string render_table(const bench::SpawnBenchReport& r, const bench::SpawnBenchConfig& c) {
  std::ostringstream o;
  o << "spawn+wait latency, microseconds, over interleaved runs (kernel " << r.kernel << ", procforge took "
    << r.procforge_strategy << ")\n";
  for (const auto& t : r.targets) o << "  " << t.name << " = " << t.path << "\n";
  o << "\n"
    << pad("strategy", 20, false) << pad("target", 9, false) << pad("parent MiB", 11, true) << pad("median", 11, true)
    << pad("min", 11, true) << pad("max", 11, true) << pad("runs", 7, true) << "\n";
  bool any_reduced = false;
  for (const auto& s : r.results) {
    any_reduced |= s.reduced;
    o << pad(bench::method_name(s.method), 20, false) << pad(s.target, 9, false)
      << pad(std::to_string(s.parent_rss_mib), 11, true) << pad(fixed(s.median_us, 1), 11, true)
      << pad(fixed(s.min_us, 1), 11, true) << pad(fixed(s.max_us, 1), 11, true)
      << pad(std::to_string(s.runs) + (s.reduced ? "*" : ""), 7, true) << "\n";
  }
  if (any_reduced)
    o << "* fewer runs: fork+exec copies the parent's page tables, so from " << c.fork_reduce_from_mib
      << " MiB it gets runs*" << c.fork_reduce_from_mib << "/parent_MiB runs (at least 7)\n";
  o << "\n" << pad("ratio of medians", 56, false) << pad("value", 9, true) << "\n";
  for (const auto& q : r.ratios) {
    o << pad(q.name, 56, false) << pad(fixed(q.value, 3) + "x", 9, true) << "\n";
  }
  return o.str();
}

nlohmann::json render_bench_json(const bench::SpawnBenchReport& r, const bench::SpawnBenchConfig& c) {
  nlohmann::json j;
  j["results"] = nlohmann::json::array();
  for (const auto& s : r.results)
    j["results"].push_back({{"strategy", bench::method_name(s.method)},
                            {"target", s.target},
                            {"parent_rss_mib", s.parent_rss_mib},
                            {"median_us", s.median_us},
                            {"min_us", s.min_us},
                            {"max_us", s.max_us},
                            {"runs", s.runs},
                            {"reduced_runs", s.reduced}});
  j["ratios"] = nlohmann::json::array();
  for (const auto& q : r.ratios) {
    nlohmann::json e{{"name", q.name}, {"value", q.value}};
    if (q.goal > 0) e["goal"] = q.goal, e["met"] = q.met;
    j["ratios"].push_back(e);
  }
  j["targets"] = nlohmann::json::object();
  for (const auto& t : r.targets) j["targets"][t.name] = t.path;
  nlohmann::json fork_runs = nlohmann::json::object();
  for (auto rss : c.parent_rss_mib) fork_runs[std::to_string(rss)] = bench::fork_runs(c, rss);
  j["config"] = {{"runs", c.runs},
                 {"warmup", c.warmup},
                 {"parent_rss_mib", c.parent_rss_mib},
                 {"fork_runs_by_parent_mib", fork_runs},
                 {"interleaved", true},
                 {"ballast", "anonymous private, MADV_NOHUGEPAGE, one write per 4 KiB page"}};
  j["procforge_strategy"] = r.procforge_strategy;
  j["kernel"] = r.kernel;
  j["thp"] = r.thp;
  return j;
}

// "[ 42%] what" on stderr when it is a terminal; nothing otherwise.
std::function<void(const std::string&, int, int)> terminal_progress() {
  if (!isatty(STDERR_FILENO)) return {};
  return [](const std::string& what, int done, int total) {
    std::fprintf(stderr, "%s[%3d%%] %s", ansi::clear_line, total ? done * 100 / total : 100, what.c_str());
    if (done == total) std::fputs(ansi::clear_line, stderr);
    std::fflush(stderr);
  };
}

int bench_spawn(std::vector<std::string> args) {
  BenchOptions o;
  CLI::App app{
      "Spawn+wait latency: procforge's default strategy against posix_spawn, fork, vfork and a clone "
      "baseline",
      "procforge bench spawn"};
  app.add_flag("--json", o.json, "Machine-readable output");
  app.add_option("--runs", o.runs,
                 "Timed runs per strategy, target and parent size (fork+exec gets fewer at big "
                 "parents)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rss", o.rss, "Parent sizes in MiB of touched memory, comma-separated (default 0,1024,8192)");
  app.add_option("--strategies", o.strategies,
                 "Only these, comma-separated (procforge,procforge-keep-ign,posix_spawn,fork+exec,"
                 "vfork+exec,clone-baseline,clone+pidfd)");
  app.add_option("--static-target", o.static_target,
                 "The static target (default: the procforge-exit0 built "
                 "with procforge)");
  app.add_option("--dynamic-target", o.dynamic_target, "The dynamic target (default /bin/true)");
  add_color_option(app);
  if (auto refused = parse_or_status(app, "bench", std::move(args))) return *refused;

  bench::SpawnBenchConfig c;
  c.runs = o.runs;
  c.parent_rss_mib.clear();
  if (!parse_sizes(o.rss, c.parent_rss_mib)) {
    print_error("bench", "--rss takes MiB sizes separated by commas, got '" + o.rss + "'");
    return kExitCannot;
  }
  if (!o.strategies.empty()) {
    std::vector<bench::SpawnMethod> chosen;
    std::stringstream ss(o.strategies);
    std::string name;
    while (std::getline(ss, name, ',')) {
      auto it = std::find_if(c.methods.begin(), c.methods.end(),
                             [&](bench::SpawnMethod m) { return name == bench::method_name(m); });
      if (it == c.methods.end()) {
        print_error("bench", "unknown strategy '" + name + "'");
        return kExitCannot;
      }
      chosen.push_back(*it);
    }
    c.methods = chosen;
  }
  if (o.static_target.empty()) o.static_target = find_exit0();
  if (o.static_target.empty()) {
    print_error("bench",
                "the static target procforge-exit0 was not found next to this binary; build it (cmake --build "
                "BUILD) or pass --static-target PATH");
    return kExitCannot;
  }
  c.targets = {{"static", o.static_target}, {"dynamic", o.dynamic_target}};
  c.progress = terminal_progress();

  auto r = bench::run_spawn_bench(c);
  if (!r) {
    if (c.progress) std::fputs(ansi::clear_line, stderr);
    print_error("bench", r.error().message);
    return kExitCannot;
  }
  if (o.json) std::cout << stamped(render_bench_json(*r, c), schema::bench_spawn).dump(2) << "\n";
  else std::cout << render_table(*r, c);
  return 0;
}

// ---- bench warm -------------------------------------------------------------

std::string render_warm_table(const bench::WarmBenchReport& report, int runs) {
  const auto& results = report.results;
  std::ostringstream t;
  t << "cold start (spawn+exec+wait) against a warm instance (fork of a template at main + wait), " << runs
    << " runs each, interleaved\n";
  t << fmt::format("{:<18} {:>7} {:>11} {:>9} {:>9} {:>11} {:>9} {:>9} {:>8} {:>11}\n", "program", "objects",
                   "cold med us", "min", "max", "warm med us", "min", "max", "speedup", "fork floor");
  for (const auto& r : results) {
    t << fmt::format("{:<18} {:>7} {:>11.0f} {:>9.0f} {:>9.0f} {:>11.0f} {:>9.0f} {:>9.0f} {:>7.2f}x {:>8.0f} us\n",
                     r.program, r.objects, r.cold_median_us, r.cold_min_us, r.cold_max_us, r.warm_median_us,
                     r.warm_min_us, r.warm_max_us, r.speedup, r.fork_floor_us);
    if (!r.fallback_reason.empty()) t << "  (went cold: " << r.fallback_reason << ")\n";
  }
  t << "the first warm spawn of each program also starts its template (not in the medians): ";
  for (std::size_t i = 0; i < results.size(); ++i)
    t << (i ? ", " : "") << results[i].program << " " << fmt::format("{:.0f}", results[i].template_start_us) << " us";
  t << fmt::format(
      "\nfork floor: the template forked into a copy that exits at once, then reaped (what an instance would cost "
      "before its program runs if the fork were on its path; the template's spare, forked ahead, takes it off)\nthe "
      "same run: a request's round trip between two processes {:.0f} us, a fork of a "
      "small process + _exit + wait {:.0f} us\n",
      report.floor.round_trip_us, report.floor.fork_exit_wait_us);
  return t.str();
}

nlohmann::json render_warm_json(const bench::WarmBenchReport& report, int runs) {
  const auto& results = report.results;
  nlohmann::json j;
  j["floor"] = {{"round_trip_us", report.floor.round_trip_us}, {"fork_exit_wait_us", report.floor.fork_exit_wait_us}};
  j["runs"] = runs;
  j["results"] = nlohmann::json::array();
  for (const auto& r : results)
    j["results"].push_back(
        {{"program", r.program},
         {"argv", r.argv},
         {"objects", r.objects},
         {"cold_median_us", r.cold_median_us},
         {"cold_min_us", r.cold_min_us},
         {"cold_max_us", r.cold_max_us},
         {"warm_median_us", r.warm_median_us},
         {"warm_min_us", r.warm_min_us},
         {"warm_max_us", r.warm_max_us},
         {"speedup", r.speedup},
         {"template_start_us", r.template_start_us},
         {"fork_floor_us", r.fork_floor_us},
         {"fallback_reason", r.fallback_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.fallback_reason)}});
  return j;
}

int bench_warm(std::vector<std::string> args) {
  bool json = false;
  bench::WarmBenchConfig c;
  std::vector<std::string> programs;
  CLI::App app{"Cold start against warm instance: spawn+exec+wait against a fork of a template held at main",
               "procforge bench warm"};
  app.add_flag("--json", json, "Machine-readable output");
  app.add_option("--runs", c.runs, "Timed cold/warm pairs per program (default 101)")->check(CLI::PositiveNumber);
  app.add_option("--program", programs,
                 "A command to measure instead of the default set (words split at spaces; repeatable)");
  add_color_option(app);
  if (auto refused = parse_or_status(app, "bench", std::move(args))) return *refused;
  for (const auto& p : programs) {
    std::istringstream words(p);
    bench::WarmBenchProgram w{p, {}};
    for (std::string word; words >> word;) w.argv.push_back(word);
    if (w.argv.empty()) {
      print_error("bench", "--program needs a command");
      return kExitCannot;
    }
    c.programs.push_back(std::move(w));
  }
  c.progress = terminal_progress();
  auto r = bench::run_warm_bench(c);
  if (!r) {
    if (c.progress) std::fputs(ansi::clear_line, stderr);
    print_error("bench", r.error().message);
    return kExitCannot;
  }
  if (json) std::cout << stamped(render_warm_json(*r, c.runs), schema::bench_warm).dump(2) << "\n";
  else std::cout << render_warm_table(*r, c.runs);
  return 0;
}

// ---- bench [SUITE...] ---------------------------------------------------------

volatile sig_atomic_t interrupted = 0;

void on_interrupt(int) { interrupted = 1; }

struct SuiteOptions {
  bench::SuiteConfig config;
  bool json = false, quick = false;
  std::string html;
};

// The suite options, on `bench` itself (so that they may come first, and
// appear in --help, the manual and completions) and on the parser of the
// words after it (so that they may follow the suite names).
void add_suite_options(CLI::App& app, SuiteOptions& o) {
  app.add_option("suites", o.config.suites,
                 "Suites to run: create, link, faults, claims (default: these four), server (only when named)");
  app.add_flag("--quick", o.quick, "Fewer sizes and runs: every suite in about a minute");
  app.add_flag("--json", o.json, "Machine-readable output (every measurement, the claims and their verdicts)");
  app.add_option("--html", o.html, "Also write a self-contained HTML page with a chart per curve to FILE")
      ->type_name("FILE");
  app.add_option("--runs", o.config.runs,
                 "Timed runs per case (default 11 with --quick, 31 otherwise; fork gets fewer from 1 GiB up)")
      ->check(CLI::PositiveNumber);
}

int bench_suites(SuiteOptions& o, std::vector<std::string> args) {
  CLI::App app{"The cost model of starting a process, measured here: create, link, faults, claims", "procforge bench"};
  add_suite_options(app, o);
  add_color_option(app);
  if (auto refused = parse_or_status(app, "bench", std::move(args))) return *refused;
  bench::SuiteConfig& c = o.config;
  c.static_target = find_exit0();
  c.spawn_client = find_beside("procforge-spawn");
  std::error_code ec;
  c.procforge = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const bool json = o.json, quick = o.quick;
  const std::string html = o.html;
  c.quick = quick;
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (tty)
    c.progress = [](const std::string& what, int done, int total) {
      std::fprintf(stderr, "%s%s %s", ansi::clear_line,
                   progress_bar(static_cast<std::size_t>(done), static_cast<std::size_t>(total)).c_str(),
                   what.substr(0, 60).c_str());
      std::fflush(stderr);
    };
  // Ctrl-C stops between runs, so that the children are reaped and the
  // generated files removed before procforge exits.
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  c.cancelled = [] { return interrupted != 0; };
  // The page's file is opened first: a path that cannot be written fails
  // before minutes of measuring, not after.
  std::ofstream out;
  if (!html.empty()) {
    out.open(html);
    if (!out) {
      print_error("bench", "opening " + html + " for the HTML page: " + errno_name(errno));
      return kExitCannot;
    }
  }
  auto r = bench::run_bench_suites(c);
  if (tty) std::fputs(ansi::clear_line, stderr);
  if (!r) {
    print_error("bench", r.error().message);
    return r.error().err == ECANCELED ? 130 : kExitCannot;
  }
  if (out.is_open()) {
    out << render_bench_html(*r);
    out.close();
    if (!out) {
      print_error("bench", "writing " + html + ": " + errno_name(errno));
      return kExitCannot;
    }
  }
  if (json) std::cout << stamped(render_bench_suites_json(*r), schema::bench).dump(2) << "\n";
  else std::cout << render_bench_text(*r);
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, std::vector<Command>& commands) {
  auto* b = app.add_subcommand(
      "bench",
      "The cost of starting a process, measured here: `procforge bench [create|link|faults|claims|server]... [--quick] "
      "[--json] [--html FILE] [--runs N]`; `procforge bench spawn`, `procforge bench warm`");
  b->footer(
      "Suites (default: all):\n  create  spawn+wait by fork, vfork, posix_spawn, clone3, a warm instance, as the "
      "parent grows\n  link    exec+ld.so of generated programs: libraries, symbols, BIND_NOW, RELR, hash style, "
      "LD_LIBRARY_PATH\n  faults  the same starts with a cold and a warm page cache\n  claims  the pipeline's cost "
      "claims with the figures and a verdict\n  server  (only when named) round trips through procforge serve on "
      "io_uring "
      "and epoll against posix_spawn, by client size and clients at once; procforge-spawn from a shell\nBenchmarks:\n  "
      "spawn   spawn+wait latency by strategy, target and "
      "parent size (`procforge bench spawn --help`)\n  warm    cold start against a warm instance (`procforge bench "
      "warm --help`)");
  static SuiteOptions suite_options;
  add_suite_options(*b, suite_options);
  commands.push_back({b, [](std::vector<std::string> command) {
                        if (!command.empty() && command.front() == "warm") {
                          command.erase(command.begin());
                          return bench_warm(std::move(command));
                        }
                        if (!command.empty() && command.front() == "spawn") {
                          command.erase(command.begin());
                          return bench_spawn(std::move(command));
                        }
                        return bench_suites(suite_options, std::move(command));
                      }});
}

}  // namespace procforge::cli
