// The HTML report of `procforge profile --html FILE`: one self-contained page
// (inline CSS and SVG, no script, no external resource) with, per command, a
// waterfall of the phases (each bar starts where the previous one ended) and
// a waterfall of the objects ld.so mapped (bar = load time from la_objopen,
// placed at its offset after la_activity(ADD); the estimated relocation share
// drawn after the last load), plus the numbers as tables. An exec chain
// (#!/usr/bin/env, shims) gets a table of the programs before the final one.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cli/html.hpp"
#include "cli/render_profile.hpp"

namespace procforge::cli {

namespace {

// The programs the process ran before the final one (#!/usr/bin/env, shims),
// one row each: what it was, its objects, and its phases' medians.
std::string chain_table(const profile::Profile& p) {
  if (p.segments.size() < 2) return {};
  std::ostringstream o;
  o << "<h3>Exec chain: " << p.segments.size() << " programs in one process</h3>\n<table><tr><th>#</th><th>program</th>"
    << "<th>kind</th><th>objects</th>";
  for (int k = 1; k < profile::kPhaseCount; ++k)
    o << "<th>" << esc(profile::phase_name(static_cast<profile::Phase>(k))) << " µs</th>";
  o << "</tr>\n";
  for (std::size_t i = 0; i < p.segments.size(); ++i) {
    const auto& s = p.segments[i];
    o << "<tr><td>" << i + 1 << "</td><td>" << esc(s.image) << (s.final ? " (profiled below)" : "") << "</td><td>"
      << esc(s.kind) << "</td><td>";
    for (std::size_t k = 0; k < s.libraries.size(); ++k) o << (k ? "<br>" : "") << esc(s.libraries[k].path);
    o << "</td>";
    for (std::size_t k = 1; k < s.phases.size(); ++k) {
      const auto& ph = s.phases[k];
      o << "<td>" << (ph.present ? num(ph.wall_us.median) : "-")
        << (ph.present && ph.phase == profile::Phase::ldso_start && s.audit_in_ldso_start ? " (with LD_AUDIT)" : "")
        << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

std::string one(const profile::Profile& p) {
  std::ostringstream o;
  o << "<section><h2>" << esc(p.label) << "</h2>\n<p class='meta'>" << esc(p.image) << " &middot; " << esc(p.kind)
    << " &middot; main: " << esc(p.main_source) << " &middot; " << p.traced.size() << " traced";
  if (p.untraced_wall_us.n) o << " + " << p.untraced.size() << " untraced runs (interleaved)";
  o << "</p>\n";
  if (!p.chain.empty()) {
    o << "<p class='meta'>#! steps: ";
    for (std::size_t i = 0; i < p.chain.size(); ++i) o << (i ? " &rarr; " : "") << esc(p.chain[i]);
    o << "</p>\n";
  }
  for (const auto& e : p.exits)
    o << "<p class='meta'>" << esc(profile::end_words(e.end, e.status)) << ": " << e.runs << " of " << p.all_runs
      << " runs</p>\n";
  o << chain_table(p);
  o << "<h3>Phases of " << esc(p.image) << " (median, tracer pauses excluded)</h3>\n";
  std::vector<Bar> bars;
  double at = 0;
  for (std::size_t i = 0; i < p.phases.size(); ++i) {
    const auto& ph = p.phases[i];
    if (!ph.present) continue;
    bars.push_back({ph.name, at, ph.wall_us.median, kColors[i % 9],
                    ph.name + ": " + num(ph.wall_us.median) + " us, " + num(ph.minflt, 0) + " minor faults; ends at " +
                        ph.mechanism});
    at += ph.wall_us.median;
  }
  o << waterfall(bars, "µs");
  o << "<table><tr><th>phase</th><th>median µs</th><th>min</th><th>max</th><th>IQR</th><th>cpu µs</th>"
       "<th>minflt</th><th>majflt</th><th>ends at</th></tr>\n";
  for (const auto& ph : p.phases) {
    o << "<tr><td>" << esc(ph.name) << "</td>";
    if (!ph.present) {
      o << "<td colspan='8' class='dim'>"
        << (ph.merged_into.empty() ? "not reached" : "no boundary for this program: in " + esc(ph.merged_into))
        << "</td></tr>\n";
      continue;
    }
    o << "<td>" << num(ph.wall_us.median) << "</td><td>" << num(ph.wall_us.min) << "</td><td>" << num(ph.wall_us.max)
      << "</td><td>" << num(ph.wall_us.spread) << "</td><td>" << num(ph.cpu_us.median) << "</td><td>"
      << num(ph.minflt, 0) << "</td><td>" << num(ph.majflt, 0) << "</td><td>" << esc(ph.mechanism) << "</td></tr>\n";
  }
  o << "</table>\n<p>Wall, fork to reap: traced " << num(p.wall_us.median) << " µs raw, "
    << num(p.tracee_wall_us.median) << " µs minus tracer pauses";
  if (p.untraced_wall_us.n)
    o << "; untraced " << num(p.untraced_wall_us.median) << " µs; overhead " << num(p.overhead_net, 2) << "× net, "
      << num(p.overhead_raw, 2) << "× raw";
  o << ".</p>\n";
  if (!p.segments.empty() && p.segments.back().audit_in_ldso_start)
    o << "<p class='meta'>ld.so start includes loading the LD_AUDIT module procforge_audit.so, which times ld.so's "
         "steps (--no-audit leaves it out).</p>\n";

  bool timed = std::any_of(p.libraries.begin(), p.libraries.end(), [](const auto& l) { return l.load_us.has_value(); });
  if (!p.libraries.empty()) {
    o << "<h3>Objects (" << p.libraries.size() << ")</h3>\n";
    if (timed) {
      std::vector<Bar> lb;
      double last_end = 0;
      for (const auto& l : p.libraries)
        if (l.mapped_at_us) last_end = std::max(last_end, *l.mapped_at_us);
      double reloc_at = last_end;
      for (const auto& l : p.libraries) {
        Bar b;
        b.label = l.path;
        b.color = "#8da0cb";
        if (l.load_us && l.mapped_at_us) {
          b.start = *l.mapped_at_us - *l.load_us;
          b.len = *l.load_us;
        }
        if (l.reloc_us) {
          b.start2 = reloc_at;
          b.len2 = *l.reloc_us;
          reloc_at += *l.reloc_us;
        }
        b.title = l.path + ": load " + (l.load_us ? num(*l.load_us) : std::string("-")) + " us (" + l.load_mechanism +
                  "), relocation ~" + (l.reloc_us ? num(*l.reloc_us) : std::string("-")) + " us (" + l.reloc_mechanism +
                  ")";
        lb.push_back(b);
      }
      o << "<p class='meta'>Blue: load (LD_AUDIT la_objopen gaps, from la_activity(ADD)). Orange: relocation, "
           "estimated (measured CONSISTENT &minus; last la_objopen, split by relocation work read from the "
           "file).</p>\n"
        << waterfall(lb, "µs after ADD");
    }
    o << "<table><tr><th>object</th><th>load µs</th><th>reloc µs (est.)</th><th>relative</th><th>lookups</th>"
         "<th>pages dirtied</th></tr>\n";
    for (const auto& l : p.libraries)
      o << "<tr><td>" << esc(l.path) << "</td><td>" << (l.load_us ? num(*l.load_us) : "-") << "</td><td>"
        << (l.reloc_us ? num(*l.reloc_us) : "-") << "</td><td>" << l.relative << "</td><td>" << l.symbol_lookups
        << "</td><td>" << l.pages_dirtied << "</td></tr>\n";
    o << "</table>\n";
  }
  if (!p.notes.empty()) {
    o << "<ul class='notes'>";
    for (const auto& n : p.notes) o << "<li>" << esc(n) << "</li>";
    o << "</ul>\n";
  }
  o << "</section>\n";
  return o.str();
}

}  // namespace

std::string render_profile_html(const std::vector<profile::Profile>& ps) {
  std::ostringstream o;
  o << html_page_head("procforge profile");
  for (const auto& p : ps) o << one(p);
  o << html_page_tail();
  return o.str();
}

}  // namespace procforge::cli
