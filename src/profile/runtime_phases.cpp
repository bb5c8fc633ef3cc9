// A language runtime's own phases, from the runtime marks the tracer took
// (tracer.cpp place_runtime_stops) and the phase marks around them. Each
// interval is tracee time: the tracer's pauses inside it are taken out, as
// for the pipeline's phases (phases.cpp).
//   Go   runtime bootstrap  program entry (or C main, with cgo) -> runtime.main
//        package init       runtime.main -> main.main; inside it "init PKG":
//                           from the package's first init function to the
//                           next package's (gcenable() ends the runtime's,
//                           main.main the last, a print such as inittrace's
//                           line any): what GODEBUG=inittrace=1
//                           reports as "clock", plus one stop's latency
//        main.main          main.main -> exit_group
//   Rust lang_start         C main -> the user's main (std's set-up)
//        main (user)        the user's main -> libc's exit()
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

struct Point {
  std::int64_t stop_ns = 0, resume_ns = 0, paused_before_ns = 0;
};

Point point(const Mark& m) { return {m.stop_ns, m.resume_ns, m.paused_before_ns}; }
Point point(const RuntimeMark& m) { return {m.stop_ns, m.resume_ns, m.paused_before_ns}; }

// From the resume at A to the stop at B, minus the pauses in between.
double between_us(const Point& a, const Point& b) {
  const std::int64_t paused_inside = b.paused_before_ns - (a.paused_before_ns + (a.resume_ns - a.stop_ns));
  return static_cast<double>(b.stop_ns - a.resume_ns - paused_inside) / 1000.0;
}

const RuntimeMark* find(const RawSegment& seg, const std::string& what) {
  for (const auto& m : seg.runtime_marks)
    if (m.what == what) return &m;
  return nullptr;
}

void go_phases(const RawSegment& seg, std::vector<RuntimePhase>& out) {
  const RuntimeMark* rmain = find(seg, "runtime.main");
  const RuntimeMark* mmain = find(seg, "main.main");
  if (!rmain) return;
  const auto& m = seg.marks;
  // With cgo the C main starts the Go runtime; without, the entry point (where exec leaves it).
  const bool c_main = m[m_main].present && m[m_main].stop_ns < rmain->stop_ns;
  const Point start = c_main ? point(m[m_main]) : m[m_entry].present ? point(m[m_entry]) : point(m[m_exec]);
  out.push_back({"runtime bootstrap", between_us(start, point(*rmain)), 0});
  if (!mmain) return;
  out.push_back({"package init", between_us(point(*rmain), point(*mmain)), 0});
  // Each package from its first init function to the next package's (or
  // gcenable() after the runtime's own, or main.main after the last).
  const RuntimeMark* open = nullptr;
  for (const auto& r : seg.runtime_marks) {
    const bool ends = r.what.starts_with("init ") || r.what == "gcenable" || r.what == "main.main" || r.what == "print";
    if (open && ends)
      out.push_back({open->what, between_us(point(*open), point(r)), 1,
                     static_cast<double>(open->resume_ns - open->stop_ns) / 1000.0});
    if (ends) open = r.what.starts_with("init ") ? &r : nullptr;
  }
  if (m[m_exit_group].present) out.push_back({"main.main", between_us(point(*mmain), point(m[m_exit_group])), 0});
}

void rust_phases(const RawSegment& seg, std::vector<RuntimePhase>& out) {
  const RuntimeMark* user = find(seg, "user main");
  const auto& m = seg.marks;
  if (!user || !m[m_main].present) return;
  out.push_back({"lang_start", between_us(point(m[m_main]), point(*user)), 0});
  const Mark& end = m[m_exit_call].present ? m[m_exit_call] : m[m_exit_group];
  if (end.present) out.push_back({"main (user)", between_us(point(*user), point(end)), 0});
}

}  // namespace

std::vector<RuntimePhase> runtime_phases(const RawSegment& seg) {
  std::vector<RuntimePhase> out;
  go_phases(seg, out);
  if (out.empty()) rust_phases(seg, out);
  return out;
}

}  // namespace procforge::profile::detail
