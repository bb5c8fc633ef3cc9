// Start-up profiling without root: a command is run under ptrace and stopped
// at every boundary of the process-creation pipeline, and the time, CPU, page
// faults and context switches between two stops are charged to the phase in
// between:
//
//   spawn            fork() until the child stops itself (PTRACE_TRACEME + SIGSTOP)
//   exec             execve() in the kernel, until PTRACE_EVENT_EXEC
//   ld.so start      ld.so's self-relocation and set-up, until _dl_debug_state with r_state RT_ADD
//   load+relocate    mapping and relocating the dependencies, until _dl_debug_state with RT_CONSISTENT
//   constructors     library constructors (_dl_init), until the program's entry point (AT_ENTRY)
//   libc init        _start, __libc_start_main and the program's constructors, until main
//   main             main(), until libc's exit() is called
//   exit handlers    atexit handlers, destructors, stdio flush, until exit_group (PTRACE_EVENT_EXIT)
//   teardown+reap    the kernel tearing the process down, until wait4() returns
//
// Where a boundary does not exist (a static program has no ld.so, a program
// without a findable main) the phases around it are merged and the report
// says so. Libraries are attributed through an LD_AUDIT module (la_objopen /
// la_activity timestamps) and the r_debug link map; every number says which
// mechanism produced it. The rules and sources are in src/profile/.
//
// The library measures; it never prints. Progress goes through a callback.
//
//   procforge::profile::Options o;
//   o.argv = {"/bin/true"};
//   auto p = procforge::profile::profile(o);   // runs it, traced and untraced
//   if (!p) std::cerr << p.error().message << "\n";
//
// Threads: one profile at a time per process. It is process-wide: the tracer
// is the thread that forks (ptrace ties the tracee to it) and it waits for
// its children, so a concurrent waitpid(-1) elsewhere can steal their status.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::profile {

enum class Phase { spawn, exec, ldso_start, load_relocate, constructors, libc_init, main, exit_handlers, teardown };
inline constexpr int kPhaseCount = 9;
const char* phase_name(Phase p);      // "spawn", "exec", "ld.so start", "load+relocate", ...
const char* phase_boundary(Phase p);  // what ends the phase: "PTRACE_EVENT_EXEC", "_dl_debug_state RT_ADD", ...

// What one run measured for one phase (deltas between the stop that starts
// it and the stop that ends it).
struct PhaseSample {
  Phase phase{};
  bool present = false;                 // the boundary exists for this program and was reached
  std::string merged_into;              // non-empty: the boundary does not exist and the time is in that phase
  double wall_us = 0;                   // CLOCK_MONOTONIC, tracee running (tracer pauses excluded)
  double cpu_us = 0;                    // /proc/PID/schedstat sum_exec_runtime
  std::int64_t minflt = 0, majflt = 0;  // /proc/PID/stat (teardown: wait4 rusage minus the last /proc value)
  std::int64_t vcsw = 0, nvcsw = 0;     // /proc/PID/status voluntary/nonvoluntary_ctxt_switches
};

// One object of the link map.
struct LoadedObject {
  std::string path;                    // "" for the main program as ld.so names it; we put the exe path
  std::uint64_t base = 0;              // l_addr
  std::optional<double> mapped_at_us;  // la_objopen, microseconds after la_activity(ADD) (audit)
  std::optional<double> load_us;       // la_objopen(this) - la_objopen(previous) (audit)
  // Relocation work read from the file (ldso::analyze_relocations) and the
  // share of the measured relocation time it is charged (estimate).
  std::uint64_t relative = 0, symbol_lookups = 0, pages_dirtied = 0, irelative = 0;
  std::optional<double> reloc_us;
};

// A phase of a language runtime's own start, inside the phases above (Go:
// "runtime bootstrap" from the entry point to runtime.main, "package init"
// until main.main and "init PKG" for each package's init functions,
// "main.main" until exit_group; Rust: "lang_start" from C main to the user's
// main, "main (user)" until exit()). Found from the binary's symbols.
struct RuntimePhase {
  std::string name;
  double wall_us = 0;  // tracee running (tracer pauses excluded)
  int depth = 0;       // 1: part of the depth-0 phase before it (a package's init inside "package init")
  // How long the tracee stood in the stop that opens it: a clock read inside
  // the tracee before that stop (GODEBUG=inittrace=1's) sees it, wall_us does not.
  double opening_pause_us = 0;
};

enum class RunEnd { exited, killed, timed_out };
// "exit status 3", "killed by SIGSEGV", "timed out (killed)".
std::string end_words(RunEnd end, int status);

// One program the traced process ran. Every execve() that succeeds
// (PTRACE_EVENT_EXEC) starts one: `#!/usr/bin/env python3` runs /usr/bin/env,
// then python3 in the same process; a pyenv shim runs several more.
struct RunSegment {
  std::string image;                  // /proc/PID/exe after its exec
  std::vector<PhaseSample> phases;    // kPhaseCount; spawn in the first only; a later one's exec is in the
                                      // phase of the program before it, which called execve()
  std::vector<LoadedObject> objects;  // its own link map (LD_AUDIT timing when its module wrote records)
};

struct Run {
  bool traced = true;
  std::vector<PhaseSample> phases;  // all kPhaseCount, pipeline order (traced runs)
  double wall_us = 0;               // fork to reap, as the tracer saw it
  double paused_us = 0;             // time the tracee sat in ptrace stops while the tracer worked
  double tracee_wall_us = 0;        // wall_us - paused_us
  int stops = 0;                    // ptrace stops taken
  RunEnd end = RunEnd::exited;
  int status = 0;                                     // exit status or signal
  Phase last_phase = Phase::spawn;                    // the phase running when the process ended
  std::int64_t rusage_minflt = 0, rusage_majflt = 0;  // wait4(), minus waited-for children's
  std::int64_t child_minflt = 0;                      // faults of children the program waited for (/proc cminflt)
  double rusage_cpu_us = 0;
  std::vector<LoadedObject> objects;  // traced runs with a dynamic linker
  // LD_AUDIT timestamps (CLOCK_MONOTONIC ns, absolute) when the module ran.
  std::optional<std::int64_t> audit_add_ns, audit_consistent_ns, audit_preinit_ns;
  // ptrace stop/resume times (CLOCK_MONOTONIC ns) at RT_ADD and RT_CONSISTENT,
  // so the audit interval can be compared with the ptrace one.
  std::optional<std::int64_t> add_resume_ns, consistent_stop_ns, consistent_resume_ns;
  bool r_brk_matches = false;  // r_debug.r_brk == the _dl_debug_state we found
  // Options::tracepoints: the kernel's exec tracepoint and ptrace's exec stop,
  // both in microseconds after fork; user-mode page faults per phase.
  std::optional<double> tp_exec_us, ptrace_exec_us;
  std::vector<std::int64_t> tp_user_faults;  // kPhaseCount entries
  std::uint64_t tp_lost = 0;
  // Every program of the exec chain, in exec order; the last is the final
  // program, whose phases and objects are also `phases` (with the process's
  // spawn) and `objects`.
  std::vector<RunSegment> segments;
  std::vector<RuntimePhase> runtime_phases;  // the final program's, when its runtime has any
};

struct Stats {
  double median = 0, min = 0, max = 0;
  double spread = 0;  // interquartile range
  int outliers = 0;   // outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] (Tukey)
  int n = 0;
};
Stats stats_of(std::vector<double> values);

struct PhaseStats {
  Phase phase{};
  std::string name;
  bool present = false;  // in at least one run
  std::string merged_into;
  Stats wall_us, cpu_us;
  double minflt = 0, majflt = 0, vcsw = 0, nvcsw = 0;  // medians
  std::string mechanism;                               // how the boundary that ends it was found
  std::string program;  // the program it measured (/proc/PID/exe); spawn: the first one, which it started
};

struct RuntimePhaseStats {
  std::string name;
  int depth = 0;
  Stats wall_us;                // over the traced runs that had it
  double opening_pause_us = 0;  // median
};

struct LibraryStats {
  std::string path;
  std::optional<double> mapped_at_us, load_us, reloc_us;  // medians
  std::uint64_t relative = 0, symbol_lookups = 0, pages_dirtied = 0, irelative = 0;
  std::string load_mechanism;   // "LD_AUDIT la_objopen" or "r_debug link map (no timing)"
  std::string reloc_mechanism;  // "estimate: measured relocation time apportioned by ..."
};

// One program of the exec chain, over the runs that ran it at that place.
struct Segment {
  std::string image;        // /proc/PID/exe after its exec
  std::string kind;         // as Profile::kind
  std::string interpreter;  // PT_INTERP; empty for a static program
  std::string libc;         // the glibc libc.so found in its link map; empty when none
  std::string main_source;
  bool final = false;  // the profiled program: the top-level fields describe it
  // The LD_AUDIT module was already mapped at _dl_debug_state(RT_ADD): ld.so
  // loaded it, and ran its la_version, inside "ld.so start".
  bool audit_in_ldso_start = false;
  std::vector<PhaseStats> phases;  // kPhaseCount, pipeline order
  std::vector<LibraryStats> libraries;
  Stats wall_us;  // per run, its phases but spawn: from its exec until the next exec or the end
  int runs = 0;   // traced runs that ran this program at this place of the chain
};

// How runs ended: one entry per distinct (end, status).
struct ExitCount {
  RunEnd end = RunEnd::exited;
  int status = 0;
  int runs = 0;  // traced and untraced
};

struct Options {
  std::vector<std::string> argv;  // argv[0] is the program, searched in PATH when it has no '/'
  std::vector<std::string> envp;  // empty: the caller's environment
  bool inherit_env = true;
  int runs = 10;
  int warmup = 1;
  bool untraced = true;                      // also time untraced runs, interleaved, for the tracer's overhead
  bool audit = true;                         // load the LD_AUDIT module (dynamic programs)
  std::string audit_module;                  // path of procforge_audit.so; empty: no audit
  bool keep_output = false;                  // false: stdin/stdout /dev/null, stderr captured for messages
  std::chrono::milliseconds timeout{30000};  // per run; the tracee is killed (by pid) and reaped
  std::string label;                         // shown in progress and comparisons; default: the command line
  // Drop the page cache before every measured run (sync, then
  // /proc/sys/vm/drop_caches = 1): a cold start. Needs root; it empties the
  // whole machine's page cache, so other programs slow down too.
  bool cold_cache = false;
  // Root: also sample the tracepoints sched:sched_process_exec and
  // exceptions:page_fault_user on the tracee (perf_event_open) to cross-check
  // the exec boundary and the page faults per phase with the kernel's view.
  bool tracepoints = false;
};

struct Profile {
  std::string label;
  std::vector<std::string> argv;
  std::string program;             // resolved path of argv[0]
  std::vector<std::string> chain;  // #! steps: script, interpreter (from exec::predict)
  std::string image;               // the ELF actually running after exec (/proc/PID/exe)
  std::string kind;                // "dynamic (glibc ld.so)", "static", "static-pie", "dynamic (musl)", ...
  std::string main_source;         // ".symtab main", "__libc_start_main %rdi", "not found"
  std::vector<std::string> notes;  // merged phases, children not followed, killed runs ...
  std::vector<Run> traced, untraced;
  std::vector<PhaseStats> phases;  // kPhaseCount, pipeline order
  Stats wall_us;                   // traced runs, fork to reap (raw)
  Stats tracee_wall_us;            // traced runs minus the tracer's pauses
  Stats untraced_wall_us;          // untraced runs (n == 0 when not asked)
  double overhead_raw = 0;         // median traced raw / median untraced
  double overhead_net = 0;         // median traced minus pauses / median untraced
  std::vector<LibraryStats> libraries;
  double audit_load_relocate_us = 0;  // median of la_activity(ADD) -> la_activity(CONSISTENT), LD_AUDIT's own clock
  // Every program of the exec chain (one process), in exec order; the last
  // is the final program, which the fields above describe.
  std::vector<Segment> segments;
  std::vector<ExitCount> exits;  // most frequent first
  // The runtime the program starts through ("glibc", "musl", "Go go1.19.8",
  // "Rust", "no libc"; from runtime::identify) and its own phases.
  std::string runtime;
  std::vector<RuntimePhaseStats> runtime_phases;
  int all_runs = 0;  // traced + untraced, for "all N runs"
};

using Progress = std::function<void(const std::string& what, int done, int total)>;

// Profiles one command.
Result<Profile> profile(const Options& opts, const Progress& progress = {});
// Profiles several commands with their runs interleaved round-robin, so that
// drift hits each alike. Options other than argv/label come from the first.
Result<std::vector<Profile>> compare(const std::vector<Options>& commands, const Progress& progress = {});

// Where the audit module is: $PROCFORGE_AUDIT_MODULE, the build-time path,
// then next to EXE_DIR (and ../lib/procforge). Empty when not found.
std::string find_audit_module(const std::string& exe_dir);

}  // namespace procforge::profile

#pragma GCC visibility pop
