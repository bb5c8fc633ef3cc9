// Text and JSON renderings of a start-up profile (see render_profile.hpp).
#include "cli/render_profile.hpp"
#include "common/ansi.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>

namespace procforge::cli {

namespace {

// The root-only tracepoint cross-check, as medians over the traced runs.
struct TracepointSummary {
  bool any = false;
  double tp_exec_us = 0, ptrace_exec_us = 0;
  std::vector<double> tp_faults, proc_faults;  // per phase
  std::uint64_t lost = 0;
};

TracepointSummary tracepoint_summary(const profile::Profile& p) {
  TracepointSummary t;
  std::vector<double> tp, pt;
  std::vector<std::vector<double>> tf(profile::kPhaseCount), pf(profile::kPhaseCount);
  for (const auto& r : p.traced) {
    if (!r.tp_exec_us || !r.ptrace_exec_us || r.tp_user_faults.size() != static_cast<std::size_t>(profile::kPhaseCount))
      continue;
    t.any = true;
    tp.push_back(*r.tp_exec_us);
    pt.push_back(*r.ptrace_exec_us);
    t.lost += r.tp_lost;
    for (int k = 0; k < profile::kPhaseCount; ++k) {
      tf[k].push_back(static_cast<double>(r.tp_user_faults[k]));
      pf[k].push_back(static_cast<double>(r.phases[k].minflt + r.phases[k].majflt));
    }
  }
  if (!t.any) return t;
  t.tp_exec_us = profile::stats_of(tp).median;
  t.ptrace_exec_us = profile::stats_of(pt).median;
  for (int k = 0; k < profile::kPhaseCount; ++k) {
    t.tp_faults.push_back(profile::stats_of(tf[k]).median);
    t.proc_faults.push_back(profile::stats_of(pf[k]).median);
  }
  return t;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(const std::string& s, std::size_t w, bool right) {
  // Width in characters: count UTF-8 lead bytes only.
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xc0) != 0x80;
  if (n >= w) return s;
  return right ? std::string(w - n, ' ') + s : s + std::string(w - n, ' ');
}

// A horizontal bar of `width` cells for fraction f, in eighths of a cell.
std::string bar(double f, int width) {
  static const char* eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  f = std::clamp(f, 0.0, 1.0);
  const int units = static_cast<int>(f * width * 8 + 0.5);
  std::string s;
  for (int i = 0; i < units / 8; ++i) s += "█";
  s += eighths[units % 8];
  if (units == 0 && f > 0) s = "▏";
  return s;
}

// A time in prose, with its unit: "123.4 us", or "12.34 ms" from 10 ms on.
std::string us(double v) { return v >= 10000 ? fixed(v / 1000.0, 2) + " ms" : fixed(v, 1) + " us"; }

// One unit for a table's time columns: milliseconds when a cell would reach 10 ms.
struct Unit {
  bool ms = false;
  [[nodiscard]] std::string name() const { return ms ? "ms" : "us"; }
  [[nodiscard]] std::string cell(double v) const { return ms ? fixed(v / 1000.0, 3) : fixed(v, 1); }
};
Unit unit_for(const std::vector<double>& column) {
  return Unit{std::any_of(column.begin(), column.end(), [](double v) { return v >= 10000; })};
}

double phase_total(const std::vector<profile::PhaseStats>& phases) {
  double t = 0;
  for (const auto& ph : phases)
    if (ph.present && ph.phase != profile::Phase::spawn) t += ph.wall_us.median;
  return t;
}

// The programs the process ran before the final one (#!/usr/bin/env, shims).
std::vector<const profile::Segment*> earlier_programs(const profile::Profile& p) {
  std::vector<const profile::Segment*> out;
  for (const auto& s : p.segments)
    if (!s.final) out.push_back(&s);
  return out;
}

// "exit status 0 (all 6 runs)", or each status with its count.
std::string exits_text(const profile::Profile& p) {
  std::string s;
  for (const auto& e : p.exits) {
    if (!s.empty()) s += ", ";
    s += profile::end_words(e.end, e.status);
    if (p.all_runs > 1)
      s += e.runs == p.all_runs ? " (all " + std::to_string(e.runs) + " runs)"
                                : " (" + std::to_string(e.runs) + " of " + std::to_string(p.all_runs) + " runs)";
  }
  return s;
}

std::string file_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One line per earlier program: its image facts, its objects, and its
// phases as medians, each with its unit.
void render_earlier(std::ostringstream& o, const profile::Profile& p) {
  const auto earlier = earlier_programs(p);
  if (earlier.empty()) return;
  o << "\nexec chain: " << p.segments.size() << " programs ran in this process, one execve() after another; "
    << "the table below measured the last, " << p.image << "\n";
  for (std::size_t i = 0; i < earlier.size(); ++i) {
    const auto& s = *earlier[i];
    o << "  " << i + 1 << ". " << s.image << ": " << s.kind;
    if (!s.libraries.empty()) {
      o << ", " << s.libraries.size() << " objects (";
      for (std::size_t k = 0; k < s.libraries.size(); ++k) o << (k ? ", " : "") << file_name(s.libraries[k].path);
      o << ")";
    }
    o << "\n     ";
    bool first = true;
    for (const auto& ph : s.phases) {
      if (!ph.present || ph.phase == profile::Phase::spawn) continue;
      o << (first ? "" : ", ") << ph.name << " " << us(ph.wall_us.median);
      if (ph.phase == profile::Phase::ldso_start && s.audit_in_ldso_start)
        o << " (with the LD_AUDIT module's own cost)";
      if (ph.mechanism.rfind("PTRACE_EVENT_EXEC of the next", 0) == 0) o << " (until the next program is in place)";
      first = false;
    }
    o << "; " << us(phase_total(s.phases)) << " in all\n";
  }
}

nlohmann::json stats_json(const profile::Stats& s) {
  return {{"median_us", s.median}, {"min_us", s.min},        {"max_us", s.max},
          {"spread_us", s.spread}, {"outliers", s.outliers}, {"n", s.n}};
}

nlohmann::json phases_json(const std::vector<profile::PhaseStats>& phases) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& ph : phases) {
    nlohmann::json e{{"name", ph.name},
                     {"median_us", ph.wall_us.median},
                     {"min_us", ph.wall_us.min},
                     {"max_us", ph.wall_us.max},
                     {"spread_us", ph.wall_us.spread},
                     {"outliers", ph.wall_us.outliers},
                     {"cpu_median_us", ph.cpu_us.median},
                     {"minflt", ph.minflt},
                     {"majflt", ph.majflt},
                     {"voluntary_switches", ph.vcsw},
                     {"involuntary_switches", ph.nvcsw},
                     {"present", ph.present},
                     {"mechanism", ph.mechanism},
                     {"program", ph.program}};
    if (!ph.merged_into.empty()) e["merged_into"] = ph.merged_into;
    out.push_back(e);
  }
  return out;
}

nlohmann::json libraries_json(const std::vector<profile::LibraryStats>& libraries) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : libraries) {
    nlohmann::json e{{"path", l.path},
                     {"relative_relocations", l.relative},
                     {"symbol_lookups", l.symbol_lookups},
                     {"pages_dirtied", l.pages_dirtied},
                     {"irelative", l.irelative},
                     {"load_mechanism", l.load_mechanism},
                     {"reloc_mechanism", l.reloc_mechanism}};
    if (l.mapped_at_us) e["mapped_at_us"] = *l.mapped_at_us;
    if (l.load_us) e["load_us"] = *l.load_us;
    if (l.reloc_us) e["reloc_estimate_us"] = *l.reloc_us;
    out.push_back(e);
  }
  return out;
}

}  // namespace

// The phases table: spawn, one row per earlier program (its phases summed),
// then the final program's phases; one unit per time column, named in the header.
void render_phases_table(std::ostringstream& o, const profile::Profile& p, const char* dim, const char* off) {
  // Rows: spawn, one per earlier program (its phases summed), the final program's phases.
  struct Row {
    std::string name;
    const profile::PhaseStats* ph = nullptr;  // null: an earlier program
    double wall = 0, cpu = 0, minflt = 0, majflt = 0, vcsw = 0, nvcsw = 0;
  };
  std::vector<Row> rows;
  const auto earlier = earlier_programs(p);
  for (const auto& ph : p.phases) {
    rows.push_back({ph.name, &ph});
    if (ph.phase != profile::Phase::spawn) continue;
    for (std::size_t i = 0; i < earlier.size(); ++i) {
      Row r{std::to_string(i + 1) + ". " + file_name(earlier[i]->image)};
      if (r.name.size() > 14) r.name = r.name.substr(0, 13) + "…";
      for (const auto& e : earlier[i]->phases)
        if (e.present && e.phase != profile::Phase::spawn)
          r.wall += e.wall_us.median, r.cpu += e.cpu_us.median, r.minflt += e.minflt, r.majflt += e.majflt,
              r.vcsw += e.vcsw, r.nvcsw += e.nvcsw;
      rows.push_back(r);
    }
  }
  double total = 0;
  // One unit for all the time columns, so that a median reads against its min and max at a glance.
  std::vector<double> times;
  for (const auto& r : rows) {
    if (r.ph && !r.ph->present) continue;
    const double wall = r.ph ? r.ph->wall_us.median : r.wall;
    total += wall;
    times.push_back(wall);
    times.push_back(r.ph ? r.ph->cpu_us.median : r.cpu);
    if (r.ph) times.insert(times.end(), {r.ph->wall_us.min, r.ph->wall_us.max, r.ph->wall_us.spread});
  }
  times.push_back(total);
  const Unit unit = unit_for(times);
  o << pad("phase", 15, false) << pad("median " + unit.name(), 10, true) << pad("min " + unit.name(), 10, true)
    << pad("max " + unit.name(), 10, true) << pad("IQR " + unit.name(), 8, true) << pad("out", 4, true)
    << pad("cpu " + unit.name(), 10, true) << pad("minflt", 8, true) << pad("majflt", 7, true)
    << pad("cs v/nv", 9, true) << "  share\n";
  auto share = [&](double wall) {
    return "  " + bar(total > 0 ? wall / total : 0, 30) + " " + fixed(total > 0 ? 100.0 * wall / total : 0, 1) + "%\n";
  };
  for (const auto& r : rows) {
    o << pad(r.name, 15, false);
    if (!r.ph) {
      o << pad(unit.cell(r.wall), 10, true) << pad("-", 10, true) << pad("-", 10, true) << pad("-", 8, true)
        << pad("-", 4, true) << pad(unit.cell(r.cpu), 10, true) << pad(fixed(r.minflt, 0), 8, true)
        << pad(fixed(r.majflt, 0), 7, true) << pad(fixed(r.vcsw, 0) + "/" + fixed(r.nvcsw, 0), 9, true)
        << share(r.wall);
      continue;
    }
    const auto& ph = *r.ph;
    if (!ph.present) {
      std::string why = !ph.merged_into.empty()                     ? "  (no boundary: in " + ph.merged_into + ")"
                        : ph.phase == profile::Phase::exit_handlers ? "  (not reached: exit() not called, e.g. _exit)"
                                                                    : "  (not reached)";
      o << dim << why << off << "\n";
      continue;
    }
    o << pad(unit.cell(ph.wall_us.median), 10, true) << pad(unit.cell(ph.wall_us.min), 10, true)
      << pad(unit.cell(ph.wall_us.max), 10, true) << pad(unit.cell(ph.wall_us.spread), 8, true)
      << pad(std::to_string(ph.wall_us.outliers), 4, true) << pad(unit.cell(ph.cpu_us.median), 10, true)
      << pad(fixed(ph.minflt, 0), 8, true) << pad(fixed(ph.majflt, 0), 7, true)
      << pad(fixed(ph.vcsw, 0) + "/" + fixed(ph.nvcsw, 0), 9, true) << share(ph.wall_us.median);
  }
  o << pad("sum of phases", 15, false) << pad(unit.cell(total), 10, true) << "\n";
  if (!p.segments.empty() && p.segments.back().audit_in_ldso_start)
    o << dim << "ld.so start includes loading the LD_AUDIT module procforge_audit.so, which times ld.so's steps "
      << "(--no-audit leaves it out)" << off << "\n";
}

// The final program's objects, with LD_AUDIT load times when its module wrote them.
void render_objects(std::ostringstream& o, const profile::Profile& p, const char* bold, const char* off) {
  const bool timed = std::any_of(p.libraries.begin(), p.libraries.end(), [](const auto& l) { return l.load_us; });
  // The module writes in the first program only: it closes its pipe before that program's main.
  const bool earlier_timed = std::any_of(p.segments.begin(), p.segments.end(), [](const auto& s) {
    return !s.final && std::any_of(s.libraries.begin(), s.libraries.end(), [](const auto& l) { return l.load_us; });
  });
  o << "\n"
    << bold << "objects of " << p.image << " (" << p.libraries.size() << ")" << off
    << (timed ? "  load = la_objopen gap (LD_AUDIT); reloc~ = estimate: measured relocation time split by work\n"
        : earlier_timed ? "  from the r_debug link map; no times: the LD_AUDIT module reports for the first program "
                          "only\n"
                        : "  from the r_debug link map; no times without the LD_AUDIT module\n");
  o << pad("object", 44, false) << pad("at us", 9, true) << pad("load us", 9, true) << pad("reloc~ us", 10, true)
    << pad("relative", 9, true) << pad("lookups", 9, true) << pad("pages", 7, true) << "\n";
  for (const auto& l : p.libraries) {
    std::string name = l.path;
    if (name.size() > 43) name = "…" + name.substr(name.size() - 42);
    o << pad(name, 44, false) << pad(l.mapped_at_us ? fixed(*l.mapped_at_us, 1) : "-", 9, true)
      << pad(l.load_us ? fixed(*l.load_us, 1) : "-", 9, true) << pad(l.reloc_us ? fixed(*l.reloc_us, 1) : "-", 10, true)
      << pad(std::to_string(l.relative), 9, true) << pad(std::to_string(l.symbol_lookups), 9, true)
      << pad(std::to_string(l.pages_dirtied), 7, true) << "\n";
  }
}

std::string render_profile_text(const profile::Profile& p, bool color) {
  const Style st(color);
  const char *dim = st.code(ansi::dim), *bold = st.code(ansi::bold), *off = st.code(ansi::reset);
  std::ostringstream o;
  o << bold << "procforge profile: " << p.label << off << "\n";
  for (std::size_t i = 0; i < p.chain.size(); ++i) o << "  " << (i ? "then " : "exec ") << p.chain[i] << "\n";
  o << "  image " << p.image << ", " << p.kind << ", main: " << p.main_source;
  if (!p.runtime.empty()) o << ", runtime: " << p.runtime;
  if (p.segments.size() > 1) o << " (program " << p.segments.size() << " of " << p.segments.size() << ")";
  o << "\n";
  o << "  " << p.traced.size() << " traced runs";
  if (!p.untraced.empty()) o << " + " << p.untraced.size() << " untraced, interleaved";
  o << "; median over runs; phases exclude the tracer's own pauses\n";
  if (!p.exits.empty()) o << "  " << exits_text(p) << "\n";
  render_earlier(o, p);
  o << "\n";

  render_phases_table(o, p, dim, off);
  o << "\n";
  o << "wall, fork to reap: traced " << us(p.wall_us.median) << " raw (min " << us(p.wall_us.min) << ", max "
    << us(p.wall_us.max) << ", IQR " << us(p.wall_us.spread) << ", " << p.wall_us.outliers << " outliers), "
    << us(p.tracee_wall_us.median) << " minus tracer pauses";
  if (p.untraced_wall_us.n)
    o << "; untraced " << us(p.untraced_wall_us.median) << " (min " << us(p.untraced_wall_us.min) << ", max "
      << us(p.untraced_wall_us.max) << ")\ntracer overhead: " << fixed(p.overhead_net, 2)
      << "x with its pauses subtracted, " << fixed(p.overhead_raw, 2) << "x raw";
  o << "\n";
  if (p.audit_load_relocate_us > 0) {
    for (const auto& ph : p.phases)
      if (ph.phase == profile::Phase::load_relocate && ph.present)
        o << "load+relocate cross-check: LD_AUDIT la_activity ADD->CONSISTENT " << us(p.audit_load_relocate_us)
          << ", ptrace " << us(ph.wall_us.median) << "\n";
  }
  if (const auto tps = tracepoint_summary(p); tps.any) {
    o << "tracepoints (kernel view): sched_process_exec at " << us(tps.tp_exec_us)
      << " after fork, ptrace exec stop at " << us(tps.ptrace_exec_us)
      << "; user-mode page faults per phase (page_fault_user / /proc minflt+majflt):";
    for (int k = 0; k < profile::kPhaseCount; ++k)
      if (tps.tp_faults[k] != 0 || tps.proc_faults[k] != 0)
        o << " " << profile::phase_name(static_cast<profile::Phase>(k)) << " " << tps.tp_faults[k] << "/"
          << tps.proc_faults[k];
    if (tps.lost) o << " (" << tps.lost << " samples lost)";
    o << "\n";
  }

  if (!p.runtime_phases.empty()) {
    o << "\n" << bold << p.runtime << " runtime" << off << " (inside the phases above; medians):\n";
    for (const auto& r : p.runtime_phases)
      o << "  " << std::string(2 * static_cast<std::size_t>(r.depth), ' ')
        << pad(r.name, 30 - 2 * static_cast<std::size_t>(r.depth), false) << pad(us(r.wall_us.median), 12, true)
        << "\n";
  }
  if (!p.libraries.empty()) render_objects(o, p, bold, off);
  o << "\n" << dim << "boundaries:\n";
  for (const auto& ph : p.phases)
    if (ph.present && !ph.mechanism.empty())
      o << "  " << pad(ph.name, 14, false) << " ends at " << ph.mechanism << "\n";
  o << off;
  if (!p.notes.empty()) {
    o << "notes:\n";
    for (const auto& n : p.notes) o << "  - " << n << "\n";
  }
  return o.str();
}

std::string render_compare_text(const std::vector<profile::Profile>& ps, bool color) {
  std::ostringstream o;
  const Style st(color);
  const char *bold = st.code(ansi::bold), *off = st.code(ansi::reset);
  using Get = std::function<std::optional<double>(const profile::Profile&)>;
  struct Line {
    std::string name;
    bool time = true;  // false: a count
    Get get;
  };
  std::vector<Line> lines;
  for (int k = 0; k < profile::kPhaseCount; ++k)
    lines.push_back({profile::phase_name(static_cast<profile::Phase>(k)), true,
                     [k](const profile::Profile& p) -> std::optional<double> {
                       if (!p.phases[k].present) return std::nullopt;
                       return p.phases[k].wall_us.median;
                     }});
  lines.push_back(
      {"traced wall", true, [](const profile::Profile& p) -> std::optional<double> { return p.wall_us.median; }});
  lines.push_back({"untraced wall", true, [](const profile::Profile& p) -> std::optional<double> {
                     if (!p.untraced_wall_us.n) return std::nullopt;
                     return p.untraced_wall_us.median;
                   }});
  lines.push_back({"minflt total", false, [](const profile::Profile& p) -> std::optional<double> {
                     double t = 0;
                     for (const auto& ph : p.phases) t += ph.present ? ph.minflt : 0;
                     return t;
                   }});
  // One unit for every command's column, so that cells side by side compare at a glance.
  std::vector<double> times;
  for (const auto& p : ps)
    for (const auto& l : lines)
      if (auto x = l.get(p); l.time && x) times.push_back(*x);
  const Unit unit = unit_for(times);
  o << bold << "procforge profile --compare" << off << " (runs interleaved; medians; counts for minflt)\n";
  for (std::size_t i = 0; i < ps.size(); ++i)
    o << "  " << static_cast<char>('A' + i) << " = " << ps[i].label << "  (" << ps[i].kind << ")"
      << (ps[i].runtime.empty() ? "" : "  runtime: " + ps[i].runtime) << "\n";
  o << "\n" << pad("phase", 15, false);
  for (std::size_t i = 0; i < ps.size(); ++i)
    o << pad(std::string(1, static_cast<char>('A' + i)) + " " + unit.name(), 11, true);
  for (std::size_t i = 1; i < ps.size(); ++i) o << pad(std::string(1, static_cast<char>('A' + i)) + "/A", 10, true);
  o << "\n";
  for (const auto& l : lines) {
    o << pad(l.name, 15, false);
    std::vector<double> v;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      auto x = l.get(ps[i]);
      v.push_back(x.value_or(0));
      o << pad(!x ? "-" : l.time ? unit.cell(*x) : fixed(*x, 0), 11, true);
    }
    for (std::size_t i = 1; i < v.size(); ++i)
      o << pad(v[0] > 0 && v[i] > 0 ? fixed(v[i] / v[0], 2) + "x" : "-", 10, true);
    o << "\n";
  }
  for (const auto& p : ps) {
    if (!p.exits.empty()) o << "exit (" << p.label << "): " << exits_text(p) << "\n";
    for (const auto& n : p.notes) o << "note (" << p.label << "): " << n << "\n";
  }
  return o.str();
}

nlohmann::json render_profile_json(const profile::Profile& p) {
  nlohmann::json j;
  j["command"] = p.argv;
  j["label"] = p.label;
  j["program"] = p.program;
  j["image"] = p.image;
  j["kind"] = p.kind;
  j["chain"] = p.chain;
  j["main_source"] = p.main_source;
  j["runtime"] = p.runtime;
  j["runtime_phases"] = nlohmann::json::array();
  for (const auto& r : p.runtime_phases)
    j["runtime_phases"].push_back({{"name", r.name},
                                   {"depth", r.depth},
                                   {"wall", stats_json(r.wall_us)},
                                   {"opening_pause_us", r.opening_pause_us}});
  j["runs"] = p.traced.size();
  j["untraced_runs"] = p.untraced.size();
  j["phases"] = phases_json(p.phases);
  j["wall_median_us"] = p.wall_us.median;
  j["wall"] = stats_json(p.wall_us);
  j["wall_minus_tracer"] = stats_json(p.tracee_wall_us);
  if (p.untraced_wall_us.n) {
    j["untraced_wall"] = stats_json(p.untraced_wall_us);
    j["overhead"] = {{"raw", p.overhead_raw}, {"net", p.overhead_net}};
  }
  if (p.audit_load_relocate_us > 0) j["audit_load_relocate_us"] = p.audit_load_relocate_us;
  if (const auto tps = tracepoint_summary(p); tps.any) {
    nlohmann::json faults = nlohmann::json::array();
    for (int k = 0; k < profile::kPhaseCount; ++k)
      faults.push_back({{"phase", profile::phase_name(static_cast<profile::Phase>(k))},
                        {"page_fault_user", tps.tp_faults[k]},
                        {"proc_minflt_majflt", tps.proc_faults[k]}});
    j["tracepoints"] = {{"sched_process_exec_us", tps.tp_exec_us},
                        {"ptrace_exec_stop_us", tps.ptrace_exec_us},
                        {"faults", faults},
                        {"lost_samples", tps.lost}};
  }
  j["libraries"] = libraries_json(p.libraries);
  // Every program of the exec chain; the last is the one the fields above describe.
  j["segments"] = nlohmann::json::array();
  for (const auto& s : p.segments)
    j["segments"].push_back({{"image", s.image},
                             {"kind", s.kind},
                             {"interpreter", s.interpreter},
                             {"libc", s.libc},
                             {"main_source", s.main_source},
                             {"final", s.final},
                             {"audit_in_ldso_start", s.audit_in_ldso_start},
                             {"runs", s.runs},
                             {"wall", stats_json(s.wall_us)},
                             {"phases", phases_json(s.phases)},
                             {"libraries", libraries_json(s.libraries)}});
  j["audit_in_ldso_start"] = !p.segments.empty() && p.segments.back().audit_in_ldso_start;
  j["exit"] = nlohmann::json::array();
  for (const auto& e : p.exits)
    j["exit"].push_back({{"end", e.end == profile::RunEnd::exited   ? "exited"
                                 : e.end == profile::RunEnd::killed ? "killed"
                                                                    : "timed_out"},
                         {"status", e.status},
                         {"words", profile::end_words(e.end, e.status)},
                         {"runs", e.runs}});
  j["exit_status"] = exits_text(p);
  j["notes"] = p.notes;
  return j;
}

}  // namespace procforge::cli
