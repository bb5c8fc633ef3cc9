// The profile driver. For each command: resolve the program, show the #!
// steps exec::predict() sees, then run rounds in which every command gets one
// traced and one untraced run, interleaved (the order alternates per round)
// so that drift hits each alike (hyperfine #21). Warm-up rounds are discarded.
// Then per-phase and per-library statistics, and the tracer's overhead:
// traced wall time (raw, and minus the tracer's pauses) over untraced.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/files.hpp"
#include "procforge/exec.hpp"
#include "procforge/runtime.hpp"
#include "profile/detail.hpp"
#include "profile/tracepoints.hpp"

extern char** environ;

namespace procforge::profile {

namespace {

// A cold start: write back dirty pages, then drop the clean page cache
// (Documentation/admin-guide/sysctl/vm.rst drop_caches = 1).
Status drop_page_cache() {
  sync();
  if (const int e = write_whole("/proc/sys/vm/drop_caches", "1"))
    return Error{e, std::string("dropping the page cache for a cold start: ") + errno_name(e) +
                        " (writing /proc/sys/vm/drop_caches needs root)"};
  return ok_status();
}

using namespace detail;

struct Command {
  Options o;
  Launch launch;
  Profile p;
  bool have_facts = false;
  std::vector<RunFacts> facts;  // per program of the exec chain, from the first traced run
  // Notes in the order first seen, and how many traced runs gave each.
  std::vector<std::string> note_order;
  std::map<std::string, int> note_runs;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

std::vector<std::string> script_chain(const Command& c) {
  exec::Request req;
  req.path = c.launch.path;
  req.argv = c.launch.argv;
  req.envp = c.launch.envp;
  auto pred = exec::predict(req, exec::SystemFacts::probe());
  std::vector<std::string> out;
  if (!pred || pred->chain.size() < 2) return out;
  for (const auto& link : pred->chain) {
    std::string s = link.path;
    if (link.kind == exec::LinkKind::script && link.interpreter)
      s += " (#! " + *link.interpreter + (link.arg ? " " + *link.arg : "") + ")";
    else if (link.kind == exec::LinkKind::misc) s += " (binfmt_misc " + link.misc_entry + ")";
    out.push_back(s);
  }
  return out;
}

Result<Command> prepare(const Options& o) {
  Command c;
  c.o = o;
  if (o.argv.empty()) return Error{EINVAL, "no command given"};
  std::vector<std::string> env = o.envp;
  if (o.inherit_env && env.empty())
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  auto path = resolve_program(o.argv.front(), env);
  if (!path) return path.error();
  c.launch.path = *path;
  c.launch.argv = o.argv;
  c.launch.envp = env;
  c.launch.keep_output = o.keep_output;
  if (o.audit && !o.audit_module.empty()) c.launch.audit_module = o.audit_module;
  if (!o.keep_output) c.launch.stderr_memfd.reset(memfd_create("procforge-profile-stderr", MFD_CLOEXEC));
  c.p.label = o.label.empty() ? join(o.argv) : o.label;
  c.p.argv = o.argv;
  c.p.program = *path;
  c.p.chain = script_chain(c);
  return c;
}

std::string describe_end(const Run& r) {
  if (r.end == RunEnd::killed) return "was " + end_words(r.end, r.status);
  return "exited with status " + std::to_string(r.status);
}

// The LD_AUDIT records of each program of the chain are those stamped before
// the next program's exec stop: a module writes only while its program runs.
void attribute_segment_libraries(const std::vector<AuditRecord>& recs, const RawRun& raw, Run& run) {
  auto from = recs.begin();
  for (std::size_t i = 0; i < raw.earlier.size(); ++i) {
    const RawSegment& next = i + 1 < raw.earlier.size() ? raw.earlier[i + 1] : raw;
    auto to = std::find_if(from, recs.end(), [&](const AuditRecord& r) { return r.ns >= next.marks[m_exec].stop_ns; });
    RawRun view;
    static_cast<RawSegment&>(view) = raw.earlier[i];
    Run part;
    attribute_libraries({from, to}, view, part);
    run.segments[i].objects = std::move(part.objects);
    from = to;
  }
  attribute_libraries({from, recs.end()}, raw, run);
  run.segments.back().objects = run.objects;
}

// Counts each note once per run; a later program's notes name it.
void count_notes(Command& c, const RawRun& raw) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i <= raw.earlier.size(); ++i) {
    const RunFacts& f = (i < raw.earlier.size() ? raw.earlier[i] : raw).facts;
    for (const auto& n : f.notes) {
      std::string note = raw.earlier.empty() ? n : f.image + ": " + n;
      if (!seen.insert(note).second) continue;
      if (c.note_runs[note]++ == 0) c.note_order.push_back(note);
    }
  }
}

// One traced run, turned into a Run; errors for a program that cannot be
// started, that did not reach main, or that timed out.
// Tracepoint samples against the ptrace marks: a fault at time t belongs to
// the phase that was running then (the first present phase from the last
// boundary before t).
// In an exec chain the phases are the final program's and the process's
// spawn: faults of the programs before it belong to no such phase.
void attribute_tracepoints(const TracepointSamples& tp, const RawRun& raw, Run& run) {
  auto m = raw.marks;
  const RawSegment& first = raw.earlier.empty() ? raw : raw.earlier.front();
  m[m_fork] = first.marks[m_fork];
  m[m_spawned] = first.marks[m_spawned];
  const std::int64_t t0 = m[m_fork].stop_ns;
  if (tp.exec_ns) run.tp_exec_us = static_cast<double>(*tp.exec_ns - t0) / 1000.0;
  // The tracepoint session keeps the first exec: compare it with the first program's exec stop.
  if (first.marks[m_exec].present) run.ptrace_exec_us = static_cast<double>(first.marks[m_exec].stop_ns - t0) / 1000.0;
  run.tp_user_faults.assign(kPhaseCount, 0);
  run.tp_lost = tp.lost;
  for (std::int64_t t : tp.user_fault_ns) {
    if (!raw.earlier.empty() && m[m_spawned].present && t >= m[m_spawned].stop_ns && t < m[m_exec].stop_ns) continue;
    int cur = m_fork;
    for (int k = m_fork; k < m_reaped; ++k)
      if (m[k].present && m[k].stop_ns <= t) cur = k;
    int p = std::min(cur, kPhaseCount - 1);
    while (p < kPhaseCount - 1 && !run.phases[p].present) ++p;
    ++run.tp_user_faults[p];
  }
}

Result<Run> traced_once(Command& c, Watchdog& wd, bool warm) {
  Started s;
  std::optional<TracepointSession> tp;
  std::optional<Error> tp_error;
  auto open_tp = [&](pid_t pid) {
    auto t = open_tracepoints(pid);
    if (t) tp = *t;
    else tp_error = t.error();
  };
  auto raw = trace_run(c.launch, wd, c.o.timeout, s,
                       c.o.tracepoints ? std::function<void(pid_t)>(open_tp) : std::function<void(pid_t)>{});
  std::optional<TracepointSamples> samples;
  if (tp) samples = read_tracepoints(*tp);
  if (!raw) {
    close_started(s);
    return raw.error();
  }
  if (tp_error) {
    close_started(s);
    return *tp_error;
  }
  auto recs = read_audit_records(s.audit_pipe.get());
  auto child_err = child_error(s, c.launch.path);
  const pid_t pid = s.pid;
  close_started(s);
  if (child_err) return *child_err;
  Run run;
  fill_phases(*raw, run);
  run.runtime_phases = runtime_phases(*raw);
  attribute_segment_libraries(recs, *raw, run);
  if (samples) attribute_tracepoints(*samples, *raw, run);
  if (raw->end == RunEnd::timed_out)
    return Error{ETIMEDOUT, "timed out after " + std::to_string(c.o.timeout.count()) + " ms during " +
                                phase_name(run.last_phase) + "; killed pid " + std::to_string(pid) +
                                " with SIGKILL and reaped it"};
  if (!raw->marks[m_exec].present) return Error{ENOEXEC, "the program ended before its exec completed"};
  if (!c.have_facts) {
    for (const auto& seg : raw->earlier) c.facts.push_back(seg.facts);
    c.facts.push_back(raw->facts);
    c.have_facts = true;
  }
  if (!warm) count_notes(c, *raw);
  const bool reached_main = raw->marks[m_main].present;
  if (raw->facts.applicable[m_main] && !reached_main && (run.end == RunEnd::killed || run.status != 0)) {
    std::string msg = c.p.label + " did not start: it " + describe_end(run) + " during " + phase_name(run.last_phase) +
                      ", before main";
    std::string tail = stderr_tail(c.launch.stderr_memfd.get());
    if (!tail.empty()) msg += "; it said: " + tail;
    return Error{ENOEXEC, msg};
  }
  return run;
}

template <class F>
double median_of(const std::vector<Run>& runs, F f) {
  std::vector<double> v;
  for (const auto& r : runs)
    if (auto x = f(r)) v.push_back(*x);
  return stats_of(v).median;
}

// The statistics of phase I over RUNS (one sample vector per run); FACTS
// name the stop that ends it.
PhaseStats phase_stats(int i, const std::vector<const std::vector<PhaseSample>*>& runs, const RunFacts& facts) {
  PhaseStats ps;
  ps.phase = static_cast<Phase>(i);
  ps.name = phase_name(ps.phase);
  ps.program = facts.image;
  std::vector<double> wall, cpu, minf, majf, vcs, nvcs;
  for (const auto* r : runs) {
    const auto& s = (*r)[i];
    if (!s.present) {
      if (ps.merged_into.empty()) ps.merged_into = s.merged_into;
      continue;
    }
    ps.present = true;
    wall.push_back(s.wall_us);
    cpu.push_back(s.cpu_us);
    minf.push_back(static_cast<double>(s.minflt));
    majf.push_back(static_cast<double>(s.majflt));
    vcs.push_back(static_cast<double>(s.vcsw));
    nvcs.push_back(static_cast<double>(s.nvcsw));
  }
  if (ps.present) ps.merged_into.clear();
  ps.wall_us = stats_of(wall);
  ps.cpu_us = stats_of(cpu);
  ps.minflt = stats_of(minf).median;
  ps.majflt = stats_of(majf).median;
  ps.vcsw = stats_of(vcs).median;
  ps.nvcsw = stats_of(nvcs).median;
  if (ps.present) {
    // The stop that ends this phase, or for a merged group the next one that exists.
    for (int k = i + 1; k < kMarkCount; ++k)
      if (facts.applicable[k] && !facts.mechanism[k].empty()) {
        ps.mechanism = facts.mechanism[k];
        break;
      }
  }
  return ps;
}

// The objects of one program, in the order of the first run, with medians
// over RUNS (one object list per run).
std::vector<LibraryStats> library_stats(const std::vector<const std::vector<LoadedObject>*>& runs, bool audited) {
  std::vector<LibraryStats> out;
  if (runs.empty()) return out;
  for (const auto& first : *runs.front()) {
    LibraryStats ls;
    ls.path = first.path;
    ls.relative = first.relative;
    ls.symbol_lookups = first.symbol_lookups;
    ls.pages_dirtied = first.pages_dirtied;
    ls.irelative = first.irelative;
    std::vector<double> at, load, reloc;
    for (const auto* r : runs)
      for (const auto& o : *r)
        if (o.path == first.path) {
          if (o.mapped_at_us) at.push_back(*o.mapped_at_us);
          if (o.load_us) load.push_back(*o.load_us);
          if (o.reloc_us) reloc.push_back(*o.reloc_us);
          break;
        }
    if (!at.empty()) ls.mapped_at_us = stats_of(at).median;
    if (!load.empty()) ls.load_us = stats_of(load).median;
    if (!reloc.empty()) ls.reloc_us = stats_of(reloc).median;
    ls.load_mechanism = audited ? (ls.load_us ? "LD_AUDIT la_objopen - previous la_objopen/la_activity(ADD)"
                                              : "mapped by the kernel before ld.so ran")
                                : "r_debug link map (no timing without the audit module)";
    ls.reloc_mechanism = ls.reloc_us ? "estimate: LD_AUDIT (CONSISTENT - last la_objopen) split by relocation work "
                                       "read from the file (ldso::CostModel)"
                                     : "relocation counts read from the file";
    out.push_back(ls);
  }
  return out;
}

// Program I of the chain over the traced runs that ran the same programs
// (a run whose chain differs is left out, and a note says so).
Segment segment_stats(const Command& c, std::size_t i) {
  const Profile& p = c.p;
  const RunFacts& f = c.facts[i];
  Segment seg;
  seg.image = f.image;
  seg.kind = f.kind;
  seg.interpreter = f.interp;
  seg.libc = f.libc;
  seg.main_source = f.main_source.empty() ? "not found" : f.main_source;
  seg.final = i + 1 == c.facts.size();
  seg.audit_in_ldso_start = f.audit_mapped;
  std::vector<const std::vector<PhaseSample>*> phases;
  std::vector<const std::vector<LoadedObject>*> objects;
  std::vector<double> wall;
  bool audited = false;
  for (const auto& r : p.traced) {
    if (r.segments.size() != c.facts.size() || r.segments[i].image != f.image) continue;
    phases.push_back(&r.segments[i].phases);
    objects.push_back(&r.segments[i].objects);
    double t = 0;
    for (const auto& s : r.segments[i].phases)
      if (s.present && s.phase != Phase::spawn) t += s.wall_us;
    wall.push_back(t);
    for (const auto& o : r.segments[i].objects) audited |= o.load_us.has_value();
  }
  seg.runs = static_cast<int>(phases.size());
  for (int k = 0; k < kPhaseCount; ++k) seg.phases.push_back(phase_stats(k, phases, f));
  seg.libraries = library_stats(objects, audited);
  seg.wall_us = stats_of(wall);
  return seg;
}

// Exit statuses over all runs, most frequent first.
std::vector<ExitCount> exit_counts(const Profile& p) {
  std::map<std::pair<int, int>, int> n;
  for (const auto* runs : {&p.traced, &p.untraced})
    for (const auto& r : *runs) ++n[{static_cast<int>(r.end), r.status}];
  std::vector<ExitCount> out;
  for (const auto& [k, runs] : n) out.push_back({static_cast<RunEnd>(k.first), k.second, runs});
  std::stable_sort(out.begin(), out.end(), [](const ExitCount& a, const ExitCount& b) { return a.runs > b.runs; });
  return out;
}

// The runtime the final program starts through, and its own phases over the
// traced runs (in the order the first run that had each met it).
void add_runtime(Profile& p) {
  if (auto id = runtime::identify_file(p.image)) {
    p.runtime = id->name + (id->version.empty() ? "" : " " + id->version);
    if (id->language != runtime::Language::c && id->libc != runtime::Libc::none)
      p.runtime += std::string(" on ") + runtime::libc_name(id->libc);
    if (!id->symbols && id->language != runtime::Language::c)
      p.notes.push_back("the program has no .symtab (stripped): the " + id->name +
                        " runtime's own phases cannot be found, only the pipeline's");
  }
  std::vector<std::string> order;
  struct Seen {
    int depth = 0;
    std::vector<double> wall, pause;
  };
  std::map<std::string, Seen> by_name;
  for (const auto& r : p.traced)
    for (const auto& ph : r.runtime_phases) {
      if (!by_name.count(ph.name)) order.push_back(ph.name);
      Seen& s = by_name[ph.name];
      s.depth = ph.depth;
      s.wall.push_back(ph.wall_us);
      s.pause.push_back(ph.opening_pause_us);
    }
  for (const auto& name : order) {
    const Seen& s = by_name[name];
    p.runtime_phases.push_back({name, s.depth, stats_of(s.wall), stats_of(s.pause).median});
  }
}

// A note from every run is said once; one from some runs says how many.
void add_run_notes(Command& c) {
  const int n = static_cast<int>(c.p.traced.size());
  for (const auto& note : c.note_order) {
    const int k = c.note_runs[note];
    if (n <= 1) c.p.notes.push_back(note);
    else if (k >= n) c.p.notes.push_back(note + " (all " + std::to_string(n) + " runs)");
    else c.p.notes.push_back(note + " (" + std::to_string(k) + " of " + std::to_string(n) + " runs)");
  }
}

void aggregate(Command& c) {
  Profile& p = c.p;
  if (c.facts.empty()) c.facts.emplace_back();
  const RunFacts& final_facts = c.facts.back();
  p.image = final_facts.image;
  p.kind = final_facts.kind;
  p.main_source = final_facts.main_source.empty() ? "not found" : final_facts.main_source;
  add_run_notes(c);
  std::map<std::string, int> ends;
  std::int64_t child_faults = 0;
  int other_chains = 0;
  for (const auto& r : p.traced) {
    if (r.end == RunEnd::killed) ++ends[describe_end(r) + " during " + phase_name(r.last_phase)];
    child_faults = std::max(child_faults, r.child_minflt);
    bool same = r.segments.size() == c.facts.size();
    for (std::size_t i = 0; same && i < c.facts.size(); ++i) same = r.segments[i].image == c.facts[i].image;
    other_chains += !same;
  }
  for (const auto& [what, n] : ends) p.notes.push_back(std::to_string(n) + " run(s) " + what);
  if (other_chains)
    p.notes.push_back(std::to_string(other_chains) +
                      " run(s) ran other programs than the first one's exec chain: they are left out of the "
                      "per-program numbers");
  if (child_faults > 0)
    p.notes.push_back("the program started child processes (" + std::to_string(child_faults) +
                      " page faults of theirs): children are not traced; their time is inside the phase that waited "
                      "for them, their faults are excluded");
  if (!c.launch.audit_module.empty() && !p.chain.empty())
    p.notes.push_back(
        "LD_AUDIT is inherited by the programs the interpreter starts; only the traced process writes "
        "records");
  if (c.facts.size() > 1)
    p.notes.push_back(
        "the process ran " + std::to_string(c.facts.size()) +
        " programs, one execve() after another: each has its own phases; the execve() of a later one is in the phase "
        "of the program that called it (ptrace has no stop at the start of execve() short of stopping at every "
        "system call)");

  std::vector<const std::vector<PhaseSample>*> phases;
  for (const auto& r : p.traced) phases.push_back(&r.phases);
  for (int i = 0; i < kPhaseCount; ++i) p.phases.push_back(phase_stats(i, phases, final_facts));
  add_runtime(p);
  // spawn: fork until the child's SIGSTOP, before any program: the first one's facts.
  p.phases[static_cast<int>(Phase::spawn)] = phase_stats(static_cast<int>(Phase::spawn), phases, c.facts.front());

  std::vector<double> wall, net, unt;
  for (const auto& r : p.traced) wall.push_back(r.wall_us), net.push_back(r.tracee_wall_us);
  for (const auto& r : p.untraced) unt.push_back(r.wall_us);
  p.wall_us = stats_of(wall);
  p.tracee_wall_us = stats_of(net);
  p.untraced_wall_us = stats_of(unt);
  if (p.untraced_wall_us.median > 0) {
    p.overhead_raw = p.wall_us.median / p.untraced_wall_us.median;
    p.overhead_net = p.tracee_wall_us.median / p.untraced_wall_us.median;
  }
  p.audit_load_relocate_us = median_of(p.traced, [](const Run& r) -> std::optional<double> {
    // glibc calls la_activity(CONSISTENT) just before _dl_debug_state(RT_CONSISTENT)
    // and la_activity(ADD) just after _dl_debug_state(RT_ADD): the module's
    // interval lies inside the ptrace one, short of two ptrace wake-ups.
    if (!r.audit_add_ns || !r.audit_consistent_ns) return std::nullopt;
    return static_cast<double>(*r.audit_consistent_ns - *r.audit_add_ns) / 1000.0;
  });

  // Libraries, in the order of the first traced run.
  const bool audited = std::any_of(p.traced.begin(), p.traced.end(), [](const Run& r) { return r.audit_add_ns; });
  std::vector<const std::vector<LoadedObject>*> objects;
  for (const auto& r : p.traced) objects.push_back(&r.objects);
  p.libraries = library_stats(objects, audited);

  for (std::size_t i = 0; i < c.facts.size(); ++i) p.segments.push_back(segment_stats(c, i));
  p.exits = exit_counts(p);
  p.all_runs = static_cast<int>(p.traced.size() + p.untraced.size());
}

}  // namespace

std::string end_words(RunEnd end, int status) {
  switch (end) {
    case RunEnd::exited: return "exit status " + std::to_string(status);
    case RunEnd::killed: {
      const char* abbrev = sigabbrev_np(status);
      return "killed by " + (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(status));
    }
    case RunEnd::timed_out: return "timed out (killed)";
  }
  return {};
}

std::string find_audit_module(const std::string& exe_dir) {
  namespace fs = std::filesystem;
  if (const char* e = getenv("PROCFORGE_AUDIT_MODULE"); e && *e) return e;
  std::vector<fs::path> candidates;
  if (!exe_dir.empty()) {
    candidates.emplace_back(fs::path(exe_dir) / "procforge_audit.so");
    candidates.emplace_back(fs::path(exe_dir) / ".." / "lib" / "procforge" / "procforge_audit.so");
  }
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec).string();
  return {};
}

Result<std::vector<Profile>> compare(const std::vector<Options>& commands, const Progress& progress) {
  if (commands.empty()) return Error{EINVAL, "no command given"};
  std::vector<Command> cmds;
  for (const auto& o : commands) {
    auto c = prepare(o);
    if (!c) return c.error();
    cmds.push_back(std::move(*c));
  }
  const Options& first = commands.front();
  const int rounds = std::max(0, first.warmup) + std::max(1, first.runs);
  const int per_round = first.untraced ? 2 : 1;
  const int total = rounds * per_round * static_cast<int>(cmds.size());
  int done = 0;
  Watchdog wd;
  std::optional<Error> failure;
  for (int round = 0; round < rounds && !failure; ++round) {
    const bool warm = round < first.warmup;
    for (auto& c : cmds) {
      for (int k = 0; k < per_round && !failure; ++k) {
        const bool traced = per_round == 1 || (round % 2 == 0) == (k == 0);
        if (c.o.cold_cache && !warm) {
          if (auto st = drop_page_cache(); !st) {
            failure = st.error();
            break;
          }
        }
        if (progress) progress((warm ? "warm-up " : traced ? "traced " : "untraced ") + c.p.label, done, total);
        if (traced) {
          auto r = traced_once(c, wd, warm);
          if (!r) failure = r.error().with_context("profiling " + c.p.label);
          else if (!warm) c.p.traced.push_back(std::move(*r));
        } else {
          auto r = untraced_run(c.launch, wd, c.o.timeout);
          if (!r) failure = r.error().with_context("untraced run of " + c.p.label);
          else if (r->end == RunEnd::timed_out)
            failure = Error{ETIMEDOUT, "untraced run of " + c.p.label + ": timed out after " +
                                           std::to_string(c.o.timeout.count()) + " ms; killed and reaped"};
          else if (!warm) c.p.untraced.push_back(*r);
        }
        ++done;
      }
    }
  }
  for (auto& c : cmds) c.launch.stderr_memfd.reset();
  if (failure) return *failure;
  if (progress) progress("done", total, total);
  std::vector<Profile> out;
  for (auto& c : cmds) {
    aggregate(c);
    out.push_back(std::move(c.p));
  }
  return out;
}

Result<Profile> profile(const Options& opts, const Progress& progress) {
  auto r = compare({opts}, progress);
  if (!r) return r.error();
  return std::move(r->front());
}

}  // namespace procforge::profile
