// A language runtime's own phases, from the runtime marks the tracer took
// (tracer.cpp place_runtime_stops) and the phase marks around them. Each
// interval is tracee time: the tracer's pauses inside it are taken out, as
// for the pipeline's phases (phases.cpp). Between two runtime marks the
// instants are the tracee's own entering and leaving of its stops
// (tracee_switches.cpp) where the kernel gave them.
//   Go   runtime bootstrap  program entry (or C main, with cgo) -> runtime.main
//        package init       runtime.main -> main.main; inside it "init PKG":
//                           from the package's first init function to the
//                           next package's (gcenable() ends the runtime's,
//                           main.main the last, or any print). With
//                           GODEBUG=inittrace=1, from where doInit read its
//                           clock before the package's functions to where it
//                           read it after them: the opening pause
//                           (opening_pause_us) then covers everything from
//                           the first reading to the package's first
//                           function; wall + opening pause is what inittrace
//                           reports as "clock"
//        main.main          main.main -> exit_group
//   Rust lang_start         C main -> the user's main (std's set-up)
//        main (user)        the user's main -> libc's exit()
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

struct Point {
  std::int64_t stop_ns = 0, resume_ns = 0, paused_before_ns = 0;  // the tracer's
  std::optional<std::int64_t> tracee_stop_ns, tracee_resume_ns;   // the tracee's (runtime marks)
  [[nodiscard]] bool tracee_dated() const { return tracee_stop_ns && tracee_resume_ns; }
};

Point point(const Mark& m) { return {m.stop_ns, m.resume_ns, m.paused_before_ns, {}, {}}; }
Point point(const RuntimeMark& m) {
  return {m.stop_ns, m.resume_ns, m.paused_before_ns, m.tracee_stop_ns, m.tracee_resume_ns};
}

// From the resume at A to the stop at B, minus the pauses in between: on the
// tracee's side when both stops are dated there (the tracer's wake-up
// latency at A and at B differ by up to tens of microseconds), else on the
// tracer's.
double between_us(const Point& a, const Point& b) {
  const std::int64_t paused_inside = b.paused_before_ns - (a.paused_before_ns + (a.resume_ns - a.stop_ns));
  if (a.tracee_dated() && b.tracee_dated())
    return static_cast<double>(*b.tracee_stop_ns - *a.tracee_resume_ns - paused_inside) / 1000.0;
  return static_cast<double>(b.stop_ns - a.resume_ns - paused_inside) / 1000.0;
}

// How long the tracee stood still at P's stop (for the phase that P opens).
double pause_us(const Point& p) {
  if (p.tracee_dated()) return static_cast<double>(*p.tracee_resume_ns - *p.tracee_stop_ns) / 1000.0;
  return static_cast<double>(p.resume_ns - p.stop_ns) / 1000.0;
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
  // With GODEBUG=inittrace=1, where doInit read its clock before the
  // package's functions: the package's opening pause then runs from there
  // (that stop's own pause included) to its first function's resuming.
  const RuntimeMark* open = nullptr;
  const RuntimeMark* clock = nullptr;
  for (const auto& r : seg.runtime_marks) {
    if (r.what == "inittrace start") {
      clock = &r;
      continue;
    }
    const bool ends = r.what.starts_with("init ") || r.what == "gcenable" || r.what == "main.main" ||
                      r.what == "inittrace" || r.what == "print";
    if (open && ends) {
      double opening = pause_us(point(*open));
      if (clock) opening += between_us(point(*clock), point(*open)) + pause_us(point(*clock));
      out.push_back({open->what, between_us(point(*open), point(r)), 1, opening});
    }
    if (ends && !r.what.starts_with("init ")) clock = nullptr;
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
