// From stop marks to phases. Phase i runs from mark i (the moment the tracee
// was resumed there) to mark i+1 (the moment it stopped there), minus every
// tracer pause in between, so a phase holds tracee time only. Counters are the
// differences of /proc values read at the two stops; the last phase ends at
// wait4(), whose rusage gives the totals.
// A boundary that does not exist for this program (no ld.so, no findable
// main, no libc exit()) merges the phases on either side: the time goes to
// main when main is in the group, else to the later phase, which is how
// start-up code of a static program lands in "libc init". A boundary that
// should exist but was not reached means the process ended there: the time
// goes to the phase it ended in and the rest are "not reached".
// Each program of an exec chain (env, then the program it runs) has its own
// phases: a program left by execve() ends at the next one's exec stop, and
// that time, its execve() included, goes to the phase it was in.
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

constexpr const char* kNames[kPhaseCount] = {"spawn",     "exec", "ld.so start",   "load+relocate", "constructors",
                                             "libc init", "main", "exit handlers", "teardown+reap"};
constexpr const char* kBoundaries[kPhaseCount] = {"child's SIGSTOP",
                                                  "PTRACE_EVENT_EXEC",
                                                  "_dl_debug_state RT_ADD",
                                                  "_dl_debug_state RT_CONSISTENT",
                                                  "AT_ENTRY breakpoint",
                                                  "main breakpoint",
                                                  "exit() breakpoint",
                                                  "PTRACE_EVENT_EXIT",
                                                  "wait4()"};

}  // namespace

}  // namespace procforge::profile::detail

namespace procforge::profile {

const char* phase_name(Phase p) { return detail::kNames[static_cast<int>(p)]; }
const char* phase_boundary(Phase p) { return detail::kBoundaries[static_cast<int>(p)]; }

}  // namespace procforge::profile

namespace procforge::profile::detail {

std::vector<PhaseSample> segment_phases(const RawSegment& seg) {
  const auto& m = seg.marks;
  std::vector<PhaseSample> phases(kPhaseCount);
  for (int p = 0; p < kPhaseCount; ++p) phases[p].phase = static_cast<Phase>(p);
  // A later program's first stop is its exec: the phases before it are the
  // first program's (spawn) or the previous program's (the execve call).
  int cur = m_fork;
  while (cur < m_reaped && !m[cur].present) ++cur;
  while (cur < m_reaped) {
    int next = cur + 1;
    while (next < m_reaped && !m[next].present) ++next;
    if (!m[next].present) break;
    bool cut_short = false;  // a boundary that should exist was not reached
    for (int k = cur + 1; k < next; ++k)
      if (seg.facts.applicable[k]) cut_short = true;
    int charged = next - 1;
    if (cut_short) charged = cur;
    else if (cur <= static_cast<int>(Phase::main) && static_cast<int>(Phase::main) < next)
      charged = static_cast<int>(Phase::main);
    for (int p = cur; p < next; ++p)
      if (p != charged && !cut_short) phases[p].merged_into = kNames[charged];
    PhaseSample& s = phases[charged];
    const Mark& a = m[cur];
    const Mark& b = m[next];
    const std::int64_t paused_inside = b.paused_before_ns - (a.paused_before_ns + (a.resume_ns - a.stop_ns));
    s.present = true;
    s.wall_us = static_cast<double>(b.stop_ns - a.resume_ns - paused_inside) / 1000.0;
    s.cpu_us = static_cast<double>(b.c.cpu_ns - a.c.cpu_ns) / 1000.0;
    s.minflt = b.c.minflt - a.c.minflt;
    s.majflt = b.c.majflt - a.c.majflt;
    if (next == m_reaped) {  // wait4's rusage also holds the children the process waited for
      s.minflt -= a.c.cminflt;
      s.majflt -= a.c.cmajflt;
    }
    s.vcsw = b.c.vcsw - a.c.vcsw;
    s.nvcsw = b.c.nvcsw - a.c.nvcsw;
    cur = next;
  }
  return phases;
}

void fill_phases(const RawRun& raw, Run& run) {
  const RawSegment& first = raw.earlier.empty() ? raw : raw.earlier.front();
  const auto& m = raw.marks;
  run.wall_us = static_cast<double>(raw.end_ns - first.marks[m_fork].stop_ns) / 1000.0;
  run.paused_us = static_cast<double>(raw.paused_ns) / 1000.0;
  run.tracee_wall_us = run.wall_us - run.paused_us;
  run.stops = raw.stops;
  run.end = raw.end;
  run.status = raw.status;
  // The process's own faults: wait4's rusage minus its waited-for children's.
  const Mark& before_end = m[m_exit_group].present ? m[m_exit_group] : first.marks[m_fork];
  run.rusage_minflt = raw.ru.ru_minflt - before_end.c.cminflt;
  run.rusage_majflt = raw.ru.ru_majflt - before_end.c.cmajflt;
  run.child_minflt = before_end.c.cminflt;
  run.rusage_cpu_us = static_cast<double>(m[m_reaped].c.cpu_ns) / 1000.0;
  run.r_brk_matches = raw.r_brk_matches;

  int last = m_fork;
  for (int k = m_spawned; k < m_exit_group; ++k)
    if (m[k].present) last = k;
  run.last_phase = static_cast<Phase>(last);

  run.segments.clear();
  const RawSegment* before = nullptr;
  for (std::size_t i = 0; i <= raw.earlier.size(); ++i) {
    const RawSegment& seg = i < raw.earlier.size() ? raw.earlier[i] : raw;
    RunSegment rs;
    rs.image = seg.facts.image;
    rs.phases = segment_phases(seg);
    if (before) {
      rs.phases[static_cast<int>(Phase::spawn)].merged_into = std::string(kNames[0]) + " of " + first.facts.image;
      const auto& prev = run.segments.back().phases;
      int in = static_cast<int>(Phase::exec);
      for (int p = 0; p < kPhaseCount; ++p)
        if (prev[p].present) in = p;
      rs.phases[static_cast<int>(Phase::exec)].merged_into = std::string(kNames[in]) + " of " + before->facts.image;
    }
    run.segments.push_back(std::move(rs));
    before = &seg;
  }
  // The final program's phases, with the process's spawn.
  run.phases = run.segments.back().phases;
  run.phases[static_cast<int>(Phase::spawn)] = run.segments.front().phases[static_cast<int>(Phase::spawn)];
}

}  // namespace procforge::profile::detail
