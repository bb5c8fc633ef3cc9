// Text and JSON renderings of a start-up profile (see render_profile.hpp).
#include "cli/render_profile.hpp"
#include "common/ansi.hpp"

#include <algorithm>
#include <cstdio>
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

std::string us(double v) { return v >= 10000 ? fixed(v / 1000.0, 2) + " ms" : fixed(v, 1); }

double phase_total(const profile::Profile& p) {
  double t = 0;
  for (const auto& ph : p.phases)
    if (ph.present) t += ph.wall_us.median;
  return t;
}

nlohmann::json stats_json(const profile::Stats& s) {
  return {{"median_us", s.median}, {"min_us", s.min},        {"max_us", s.max},
          {"spread_us", s.spread}, {"outliers", s.outliers}, {"n", s.n}};
}

}  // namespace

std::string render_profile_text(const profile::Profile& p, bool color) {
  const Style st(color);
  const char *dim = st.code(ansi::dim), *bold = st.code(ansi::bold), *off = st.code(ansi::reset);
  std::ostringstream o;
  o << bold << "procforge profile: " << p.label << off << "\n";
  for (std::size_t i = 0; i < p.chain.size(); ++i) o << "  " << (i ? "then " : "exec ") << p.chain[i] << "\n";
  o << "  image " << p.image << ", " << p.kind << ", main: " << p.main_source << "\n";
  o << "  " << p.traced.size() << " traced runs";
  if (!p.untraced.empty()) o << " + " << p.untraced.size() << " untraced, interleaved";
  o << "; microseconds, median over runs; phases exclude the tracer's own pauses\n\n";

  const double total = phase_total(p);
  o << pad("phase", 15, false) << pad("median", 10, true) << pad("min", 10, true) << pad("max", 10, true)
    << pad("IQR", 8, true) << pad("out", 4, true) << pad("cpu", 10, true) << pad("minflt", 8, true)
    << pad("majflt", 7, true) << pad("cs v/nv", 9, true) << "  share\n";
  for (const auto& ph : p.phases) {
    o << pad(ph.name, 15, false);
    if (!ph.present) {
      std::string why = !ph.merged_into.empty()                     ? "  (no boundary: in " + ph.merged_into + ")"
                        : ph.phase == profile::Phase::exit_handlers ? "  (not reached: exit() not called, e.g. _exit)"
                                                                    : "  (not reached)";
      o << dim << why << off << "\n";
      continue;
    }
    o << pad(us(ph.wall_us.median), 10, true) << pad(us(ph.wall_us.min), 10, true) << pad(us(ph.wall_us.max), 10, true)
      << pad(fixed(ph.wall_us.spread, 1), 8, true) << pad(std::to_string(ph.wall_us.outliers), 4, true)
      << pad(us(ph.cpu_us.median), 10, true) << pad(fixed(ph.minflt, 0), 8, true) << pad(fixed(ph.majflt, 0), 7, true)
      << pad(fixed(ph.vcsw, 0) + "/" + fixed(ph.nvcsw, 0), 9, true) << "  "
      << bar(total > 0 ? ph.wall_us.median / total : 0, 30) << " "
      << fixed(total > 0 ? 100.0 * ph.wall_us.median / total : 0, 1) << "%\n";
  }
  o << pad("sum of phases", 15, false) << pad(us(total), 10, true) << "\n\n";
  o << "wall, fork to reap: traced " << us(p.wall_us.median) << " raw (min " << us(p.wall_us.min) << ", max "
    << us(p.wall_us.max) << ", IQR " << fixed(p.wall_us.spread, 1) << ", " << p.wall_us.outliers << " outliers), "
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
      if (tps.tp_faults[k] || tps.proc_faults[k])
        o << " " << profile::phase_name(static_cast<profile::Phase>(k)) << " " << tps.tp_faults[k] << "/"
          << tps.proc_faults[k];
    if (tps.lost) o << " (" << tps.lost << " samples lost)";
    o << "\n";
  }

  if (!p.libraries.empty()) {
    const bool timed = std::any_of(p.libraries.begin(), p.libraries.end(), [](const auto& l) { return l.load_us; });
    o << "\n"
      << bold << "objects (" << p.libraries.size() << ")" << off
      << (timed ? "  load = la_objopen gap (LD_AUDIT); reloc~ = estimate: measured relocation time split by work\n"
                : "  from the r_debug link map; no times without the LD_AUDIT module\n");
    o << pad("object", 44, false) << pad("at", 9, true) << pad("load", 9, true) << pad("reloc~", 9, true)
      << pad("relative", 10, true) << pad("lookups", 9, true) << pad("pages", 7, true) << "\n";
    for (const auto& l : p.libraries) {
      std::string name = l.path;
      if (name.size() > 43) name = "…" + name.substr(name.size() - 42);
      o << pad(name, 44, false) << pad(l.mapped_at_us ? fixed(*l.mapped_at_us, 1) : "-", 9, true)
        << pad(l.load_us ? fixed(*l.load_us, 1) : "-", 9, true)
        << pad(l.reloc_us ? fixed(*l.reloc_us, 1) : "-", 9, true) << pad(std::to_string(l.relative), 10, true)
        << pad(std::to_string(l.symbol_lookups), 9, true) << pad(std::to_string(l.pages_dirtied), 7, true) << "\n";
    }
  }
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
  o << bold << "procforge profile --compare" << off << " (runs interleaved; medians, microseconds)\n";
  for (std::size_t i = 0; i < ps.size(); ++i)
    o << "  " << static_cast<char>('A' + i) << " = " << ps[i].label << "  (" << ps[i].kind << ")\n";
  o << "\n" << pad("phase", 15, false);
  for (std::size_t i = 0; i < ps.size(); ++i) o << pad(std::string(1, static_cast<char>('A' + i)), 11, true);
  for (std::size_t i = 1; i < ps.size(); ++i) o << pad(std::string(1, static_cast<char>('A' + i)) + "/A", 8, true);
  o << "\n";
  auto row = [&](const std::string& name, auto get) {
    o << pad(name, 15, false);
    std::vector<double> v;
    for (const auto& p : ps) {
      auto x = get(p);
      v.push_back(x.value_or(0));
      o << pad(x ? us(*x) : "-", 11, true);
    }
    for (std::size_t i = 1; i < v.size(); ++i)
      o << pad(v[0] > 0 && v[i] > 0 ? fixed(v[i] / v[0], 2) + "x" : "-", 8, true);
    o << "\n";
  };
  for (int k = 0; k < profile::kPhaseCount; ++k)
    row(profile::phase_name(static_cast<profile::Phase>(k)), [k](const profile::Profile& p) -> std::optional<double> {
      if (!p.phases[k].present) return std::nullopt;
      return p.phases[k].wall_us.median;
    });
  row("traced wall", [](const profile::Profile& p) -> std::optional<double> { return p.wall_us.median; });
  row("untraced wall", [](const profile::Profile& p) -> std::optional<double> {
    if (!p.untraced_wall_us.n) return std::nullopt;
    return p.untraced_wall_us.median;
  });
  row("minflt total", [](const profile::Profile& p) -> std::optional<double> {
    double t = 0;
    for (const auto& ph : p.phases) t += ph.present ? ph.minflt : 0;
    return t;
  });
  for (const auto& p : ps)
    for (const auto& n : p.notes) o << "note (" << p.label << "): " << n << "\n";
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
  j["runs"] = p.traced.size();
  j["untraced_runs"] = p.untraced.size();
  j["phases"] = nlohmann::json::array();
  for (const auto& ph : p.phases) {
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
                     {"mechanism", ph.mechanism}};
    if (!ph.merged_into.empty()) e["merged_into"] = ph.merged_into;
    j["phases"].push_back(e);
  }
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
  j["libraries"] = nlohmann::json::array();
  for (const auto& l : p.libraries) {
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
    j["libraries"].push_back(e);
  }
  j["notes"] = p.notes;
  return j;
}

}  // namespace procforge::cli
