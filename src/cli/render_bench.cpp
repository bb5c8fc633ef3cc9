// Renderers of `procforge bench [SUITE...]`: terminal tables, the JSON
// contract (docs/schema/bench.schema.json: every measurement with its suite,
// series, variable, value, median_us, min_us, max_us and runs; the claims
// with verdicts; the machine), and a self-contained HTML page with one SVG
// chart per curve, the claims table and the machine facts.
#include "cli/render_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "cli/html.hpp"

namespace procforge::cli {

namespace {

using bench::Measurement;

struct VariableText {
  const char* variable;
  const char* axis;   // the x axis, with its unit
  const char* timed;  // what one run is
};

constexpr VariableText kVariables[] = {
    {"touched_mib", "memory the parent has touched (MiB, 4 KiB pages unless THP)",
     "spawn+wait of /bin/true from a parent of that size (fork/vfork alone: create, _exit, wait)"},
    {"reserved_mib", "address space the parent has mapped but never touched (MiB)",
     "spawn+wait of /bin/true from a parent with that much reserved (fork alone: create, _exit, wait)"},
    {"libraries", "generated libraries the program needs (DT_NEEDED)",
     "clone3+exec+ld.so+exit+wait of a program calling one function of each library"},
    {"exported_symbols", "PLT slots to functions of one library (never called)",
     "clone3+exec+ld.so+exit+wait of a program referencing that many functions"},
    {"relative_relocs", "relative relocations in one library",
     "clone3+exec+ld.so+exit+wait of a program needing that library"},
    {"ld_library_path_dirs", "empty directories in LD_LIBRARY_PATH, searched before RUNPATH",
     "clone3+exec+ld.so+exit+wait, each library searched in every directory"},
    {"link_kind", "how the program is linked", "clone3+exec+(ld.so)+exit+wait of a main() that returns 0"},
    {"program", "program; its files evicted from the page cache (cold) or not (warm)", "clone3+exec+ld.so+exit+wait"},
    {"client_mib", "memory the client has touched (MiB)",
     "a request and its exit through procforge serve, or posix_spawn+waitpid in the client"},
    {"clients", "clients submitting at once (threads, one connection each)",
     "one request from every client, released together: the mean of their submit-to-exit latencies"},
    {"shell_command", "command, run as a shell runs it", "fork+execve+waitpid from a small process"},
};

const VariableText& text_of(const std::string& variable) {
  for (const auto& v : kVariables)
    if (variable == v.variable) return v;
  static const VariableText unknown{"", "", ""};
  return unknown;
}

std::string size_text(double mib) {
  const auto v = static_cast<long long>(mib);
  return v >= 1024 && v % 1024 == 0 ? std::to_string(v / 1024) + " GiB" : std::to_string(v) + " MiB";
}

std::string value_text(const Measurement& m) {
  if (!m.label.empty()) return m.label;
  if (m.variable == "touched_mib" || m.variable == "reserved_mib" || m.variable == "client_mib")
    return size_text(m.value);
  return fmt::format("{:.0f}", m.value);
}

std::string us_cell(double us) { return us >= 10000 ? fmt::format("{:.2f} ms", us / 1000) : fmt::format("{:.1f}", us); }

// The variables in the order they were measured, per suite.
std::vector<std::pair<std::string, std::string>> curves(const std::vector<Measurement>& ms) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : ms)
    if (std::find(out.begin(), out.end(), std::make_pair(m.suite, m.variable)) == out.end())
      out.emplace_back(m.suite, m.variable);
  return out;
}

// Measurements of one curve, by series then value.
std::vector<const Measurement*> of_curve(const std::vector<Measurement>& ms, const std::string& suite,
                                         const std::string& variable) {
  std::vector<std::string> order;
  std::vector<const Measurement*> out;
  for (const auto& m : ms)
    if (m.suite == suite && m.variable == variable) {
      out.push_back(&m);
      if (std::find(order.begin(), order.end(), m.series) == order.end()) order.push_back(m.series);
    }
  std::stable_sort(out.begin(), out.end(), [&](const Measurement* a, const Measurement* b) {
    const auto ia = std::find(order.begin(), order.end(), a->series) - order.begin();
    const auto ib = std::find(order.begin(), order.end(), b->series) - order.begin();
    return ia != ib ? ia < ib : a->value < b->value;
  });
  return out;
}

// "fork+exec, THP" is drawn as a variant of "fork+exec".
std::string variant_of(const std::string& series) {
  const auto at = series.find(", THP");
  return at == std::string::npos ? std::string() : series.substr(0, at);
}

// The share of a start spent in minor faults, estimated as faults times the
// measured cost of one; negative when not counted.
double fault_share(const Measurement& m, double minor_fault_us) {
  if (m.minflt < 0 || minor_fault_us <= 0 || m.median_us <= 0) return -1;
  return std::min(1.0, m.minflt * minor_fault_us / m.median_us);
}

std::string machine_line(const bench::MachineFacts& f) {
  return fmt::format(
      "kernel {}, {} ({} cores), {} MiB, glibc {}, THP enabled: {}, defrag: {}{}; load average {} at the start, {} "
      "at the end",
      f.kernel, f.cpu, f.cores, f.memory_mib, f.glibc, f.thp_enabled, f.thp_defrag, f.root ? ", run as root" : "",
      f.load_start, f.load_end);
}

}  // namespace

std::string render_bench_text(const bench::SuiteReport& r) {
  std::ostringstream o;
  std::string suites;
  for (const auto& s : r.suites) suites += (suites.empty() ? "" : " ") + s;
  o << fmt::format("procforge bench {}{}: {} runs per case, interleaved; {:.1f} s\n", suites, r.quick ? " (quick)" : "",
                   r.runs, r.seconds);
  o << "machine: " << machine_line(r.machine) << "\n";
  for (const auto& [suite, variable] : curves(r.measurements)) {
    const auto& t = text_of(variable);
    o << "\n" << suite << ": " << t.timed << "\n  by " << t.axis << "\n";
    const bool faults = suite == "faults";
    // Columns as wide as the curve's longest series and value.
    std::size_t series_w = 24, value_w = std::max<std::size_t>(22, variable.size());
    for (const Measurement* m : of_curve(r.measurements, suite, variable)) {
      series_w = std::max(series_w, m->series.size());
      value_w = std::max(value_w, value_text(*m).size());
    }
    o << fmt::format("  {:<{}} {:>{}} {:>11} {:>11} {:>11} {:>5}", "series", series_w, variable, value_w, "median us",
                     "min", "max", "runs");
    if (faults) o << fmt::format(" {:>7} {:>7} {:>12}", "minflt", "majflt", "in faults");
    o << "\n";
    for (const Measurement* m : of_curve(r.measurements, suite, variable)) {
      o << fmt::format("  {:<{}} {:>{}} {:>11} {:>11} {:>11} {:>5}", m->series, series_w, value_text(*m), value_w,
                       us_cell(m->median_us), us_cell(m->min_us), us_cell(m->max_us), m->runs);
      if (faults) {
        const double share = fault_share(*m, r.minor_fault_us);
        o << fmt::format(" {:>7.0f} {:>7.0f} {:>12}", m->minflt, m->majflt,
                         share < 0 ? "-" : fmt::format("~{:.0f}%", share * 100));
      }
      o << "\n";
    }
    if (faults && r.minor_fault_us > 0)
      o << fmt::format(
          "  in faults: minflt x {:.2f} us (one minor fault on a cached file page, measured here) / "
          "median; estimated\n",
          r.minor_fault_us);
  }
  if (!r.claims.empty()) {
    o << "\nclaims (judged on the fastest runs: load adds delays to some runs, never takes time away)\n";
    for (const auto& c : r.claims) {
      o << "  [" << bench::verdict_name(c.verdict) << "] " << c.sentence << "\n";
      if (!c.figures.empty()) o << "      " << c.figures << "\n";
      o << "      " << c.why << "\n";
    }
  }
  if (!r.notes.empty()) {
    o << "\nnotes\n";
    for (const auto& n : r.notes) o << "  " << n << "\n";
  }
  return o.str();
}

nlohmann::json render_bench_suites_json(const bench::SuiteReport& r) {
  nlohmann::json j;
  j["suites"] = r.suites;
  j["quick"] = r.quick;
  j["runs"] = r.runs;
  j["seconds"] = r.seconds;
  const auto& f = r.machine;
  j["machine"] = {{"kernel", f.kernel},         {"cpu", f.cpu},     {"cores", f.cores},
                  {"memory_mib", f.memory_mib}, {"glibc", f.glibc}, {"thp_enabled", f.thp_enabled},
                  {"thp_defrag", f.thp_defrag}, {"root", f.root},   {"loadavg_start", f.load_start},
                  {"loadavg_end", f.load_end}};
  j["measurements"] = nlohmann::json::array();
  for (const auto& m : r.measurements) {
    nlohmann::json e{{"suite", m.suite},   {"series", m.series}, {"variable", m.variable}, {"median_us", m.median_us},
                     {"min_us", m.min_us}, {"max_us", m.max_us}, {"runs", m.runs}};
    if (m.label.empty()) e["value"] = m.value;
    else e["value"] = m.label;
    if (m.minflt >= 0) e["minflt"] = m.minflt, e["majflt"] = m.majflt;
    j["measurements"].push_back(e);
  }
  j["claims"] = nlohmann::json::array();
  for (const auto& c : r.claims)
    j["claims"].push_back({{"id", c.id},
                           {"claim", c.sentence},
                           {"figures", c.figures},
                           {"verdict", bench::verdict_name(c.verdict)},
                           {"why", c.why}});
  j["notes"] = r.notes;
  if (r.minor_fault_us > 0) j["minor_fault_us"] = r.minor_fault_us;
  return j;
}

std::string render_bench_html(const bench::SuiteReport& r) {
  std::ostringstream o;
  o << html_page_head("procforge bench");
  const auto& f = r.machine;
  std::string suites;
  for (const auto& s : r.suites) suites += (suites.empty() ? "" : ", ") + s;
  o << "<p class='meta'>Suites " << esc(suites) << (r.quick ? " (quick)" : "") << "; " << r.runs
    << " runs per case, interleaved; medians with min-max bars; " << num(r.seconds, 0) << " s.</p>\n";
  o << "<table><tr><th>kernel</th><td>" << esc(f.kernel) << "</td></tr><tr><th>CPU</th><td>" << esc(f.cpu) << " ("
    << f.cores << " cores)</td></tr><tr><th>memory</th><td>" << f.memory_mib << " MiB</td></tr><tr><th>glibc</th><td>"
    << esc(f.glibc) << "</td></tr><tr><th>THP</th><td>enabled: " << esc(f.thp_enabled)
    << "; defrag: " << esc(f.thp_defrag) << "</td></tr><tr><th>load average</th><td>" << esc(f.load_start)
    << " at the start, " << esc(f.load_end) << " at the end (1, 5, 15 min)</td></tr></table>\n";
  if (!r.claims.empty()) {
    o << "<h2>Claims</h2>\n<p class='meta'>Judged on the fastest runs (a loaded machine adds scheduler delays to "
         "some runs, never takes time away); the ratio of medians is shown next to "
         "it.</p>\n<table><tr><th>claim</th><th>figures</th><th>verdict</th></tr>\n";
    for (const auto& c : r.claims) {
      const char* cls = c.verdict == bench::Verdict::holds           ? "holds"
                        : c.verdict == bench::Verdict::does_not_hold ? "fails"
                                                                     : "unknown";
      o << "<tr><td>" << esc(c.sentence) << "</td><td style='text-align:left'>" << esc(c.figures) << "</td><td class='"
        << cls << "' title='" << esc(c.why) << "'>" << esc(bench::verdict_name(c.verdict)) << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  std::string last_suite;
  for (const auto& [suite, variable] : curves(r.measurements)) {
    if (suite != last_suite) o << "<h2>" << esc(suite) << "</h2>\n";
    last_suite = suite;
    const auto& t = text_of(variable);
    const auto ms = of_curve(r.measurements, suite, variable);
    o << "<h3>" << esc(t.timed) << ", by " << esc(t.axis) << "</h3>\n";
    const bool named = std::any_of(ms.begin(), ms.end(), [](const Measurement* m) { return !m->label.empty(); });
    if (named) {
      std::vector<Bar> bars;
      std::vector<std::string> series;
      for (const Measurement* m : ms) {
        auto at = std::find(series.begin(), series.end(), m->series);
        if (at == series.end()) at = series.insert(series.end(), m->series);
        bars.push_back(
            {m->label + " (" + m->series + ")", 0, m->median_us,
             kColors[static_cast<std::size_t>(at - series.begin()) % std::size(kColors)],
             m->series + ": median " + num(m->median_us) + " µs, min " + num(m->min_us) + ", max " + num(m->max_us)});
      }
      o << waterfall(bars, "µs, median");
    } else {
      LineChart chart;
      chart.x_label = t.axis;
      double lo = 0, hi = 0;
      for (const Measurement* m : ms) {
        if (m->value > 0 && (lo == 0 || m->value < lo)) lo = m->value;
        hi = std::max(hi, m->value);
        if (chart.series.empty() || chart.series.back().name != m->series)
          chart.series.push_back({m->series, variant_of(m->series), {}});
        chart.series.back().points.push_back({m->value, m->median_us, m->min_us, m->max_us});
      }
      chart.log_x = lo > 0 && hi / lo >= 100;
      if (variable == "touched_mib" || variable == "reserved_mib") chart.x_tick = size_text;
      o << line_chart(chart);
    }
    if (suite == "faults") {
      o << "<table><tr><th>program</th><th>cache</th><th>median µs</th><th>minor faults</th><th>major "
           "faults</th><th>in minor faults (est.)</th></tr>\n";
      for (const Measurement* m : ms) {
        const double share = fault_share(*m, r.minor_fault_us);
        o << "<tr><td>" << esc(m->label) << "</td><td>" << esc(m->series) << "</td><td>" << num(m->median_us)
          << "</td><td>" << num(m->minflt, 0) << "</td><td>" << num(m->majflt, 0) << "</td><td>"
          << (share < 0 ? "-" : num(share * 100, 0) + "%") << "</td></tr>\n";
      }
      o << "</table>\n<p class='meta'>In minor faults: faults &times; " << num(r.minor_fault_us, 2)
        << " µs, the cost of one minor fault on a cached file page measured on this machine, over the median.</p>\n";
    }
  }
  if (!r.notes.empty()) {
    o << "<h2>Notes</h2>\n<ul class='notes'>";
    for (const auto& n : r.notes) o << "<li>" << esc(n) << "</li>";
    o << "</ul>\n";
  }
  o << html_page_tail();
  return o.str();
}

}  // namespace procforge::cli
