// Internals of the profile stage, one concept per file:
//   launch.cpp        fork + PTRACE_TRACEME + SIGSTOP + execve, untraced launches, the watchdog
//   proc_counters.cpp /proc/PID/stat, schedstat and status at each stop
//   image_facts.cpp   the symbols a boundary needs, read once per file from .symtab / .dynsym
//   breakpoints.cpp   int3 insertion and removal, reading the tracee's memory
//   tracer.cpp        one traced run: the ptrace stop loop
//   tracee_switches.cpp the tracee's context switches: when it entered and left each stop
//   phases.cpp        stop marks -> per-phase deltas, merging boundaries that do not exist
//   audit_records.cpp the LD_AUDIT module's records -> per-library load and relocation times
//   stats.cpp         median, quartiles, outliers
//   profile.cpp       the driver: warm-up, interleaved traced/untraced rounds, aggregation
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.hpp"
#include "procforge/profile.hpp"

namespace procforge::profile::detail {

std::int64_t now_ns();  // CLOCK_MONOTONIC

// ---- launch.cpp
struct Launch {
  std::string path;  // resolved program
  std::vector<std::string> argv, envp;
  std::string audit_module;  // empty: no LD_AUDIT
  bool keep_output = false;
  UniqueFd stderr_memfd;  // captured stderr (when !keep_output)
};

struct Started {
  pid_t pid = -1;
  UniqueFd pidfd;
  std::int64_t t0_ns = 0;  // just before fork()
  UniqueFd error_pipe;     // read end: {step, errno} from the child, EOF at exec
  UniqueFd audit_pipe;     // read end of the audit records, none without audit
  std::uint64_t audit_pipe_ino = 0;
};

// Resolves argv[0] through PATH like execvp (no '/': search; else as is).
Result<std::string> resolve_program(const std::string& name, const std::vector<std::string>& envp);
// Forks; the child stops itself under PTRACE_TRACEME when traced, then execs.
Result<Started> start(const Launch& l, bool traced);
// After the child is reaped: the step that failed in the child, if any
// ("ptrace(PTRACE_TRACEME): EPERM"), with the errno.
std::optional<Error> child_error(const Started& s, const std::string& program);
// Closes the run's descriptors once it is reaped (the Started itself may live on).
void close_started(Started& s);
// The last lines the program wrote on stderr (captured runs).
std::string stderr_tail(int memfd);

// Kills a run that outlives its deadline (by pidfd, so never a reused pid).
class Watchdog {
 public:
  Watchdog();
  ~Watchdog();
  void arm(int pidfd, std::chrono::milliseconds timeout);
  bool disarm();  // true when it fired
 private:
  void loop();
  std::mutex m_;
  std::condition_variable cv_;
  int pidfd_ = -1;
  std::chrono::steady_clock::time_point deadline_;
  bool fired_ = false, stop_ = false;
  std::thread t_;
};

// ---- proc_counters.cpp
struct Counters {
  std::int64_t cpu_ns = 0, minflt = 0, majflt = 0, vcsw = 0, nvcsw = 0;
  std::int64_t cminflt = 0, cmajflt = 0;  // of children the process has waited for
};
class ProcCounters {
 public:
  ~ProcCounters();
  bool open(pid_t pid);
  bool read(Counters& c) const;
  void close();

 private:
  UniqueFd stat_, schedstat_, status_;
};

// ---- tracee_switches.cpp
// The tracee's own context switches (perf_event_open, attr.context_switch),
// which date its ptrace stops on its side: entering a stop, leaving it.
class TraceeSwitches {
 public:
  ~TraceeSwitches();
  bool open(pid_t pid);  // false: perf events refused; the tracer's instants stand
  void close();
  void drain();  // moves the ring's new records into the list; at each stop, so that the ring never fills
  // The instant the tracee entered the stop the tracer noticed at NOTICED_NS,
  // and the instant it ran again after the PTRACE_CONT taken at CONTINUED_NS.
  [[nodiscard]] std::optional<std::int64_t> stopped_at(std::int64_t noticed_ns) const;
  [[nodiscard]] std::optional<std::int64_t> resumed_at(std::int64_t continued_ns) const;
  // One record as drain() files it (in time order): for tests.
  void add(std::int64_t ns, bool out) { switches_.push_back({ns, out}); }

 private:
  struct Switch {
    std::int64_t ns = 0;
    bool out = false;
  };
  UniqueFd fd_;
  void* ring_ = nullptr;
  std::size_t ring_bytes_ = 0, page_ = 0;
  std::vector<Switch> switches_;  // in time order (one task runs on one CPU at a time)
  bool lost_ = false;             // the ring overflowed: no instant is trusted
};

// ---- image_facts.cpp
struct ImageFacts {
  std::string path;
  std::uint16_t type = 0;  // ET_EXEC / ET_DYN
  std::uint64_t entry = 0;
  std::optional<std::string> interp;
  bool has_symtab = false;
  std::map<std::string, std::uint64_t> symbols;     // the few names profiling needs, st_value
  std::map<std::string, std::string> symbol_table;  // name -> ".symtab" / ".dynsym"
  // Runtimes (runtime_phases.cpp): Go's package init functions ("fmt.init",
  // "os.init.0": package, address) in address order; Rust's user main
  // (<crate>::main) and std::rt::lang_start_internal; musl's loader stages.
  std::vector<std::pair<std::string, std::uint64_t>> go_inits;
  // Go: the two instants runtime.doInit reads inittrace's clock at, as the
  // addresses its calls of runtime.nanotime1 return to (start, end); unset
  // unless there are exactly two.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> go_inittrace_clock;
  std::optional<std::uint64_t> rust_main, lang_start;
};
// Reads (and caches by path, device, inode, mtime and size) the facts of FILE.
Result<const ImageFacts*> image_facts(const std::string& file);

// ---- breakpoints.cpp
std::optional<std::uint64_t> peek(pid_t pid, std::uint64_t addr);
bool poke(pid_t pid, std::uint64_t addr, std::uint64_t word);
std::string read_string(pid_t pid, std::uint64_t addr, std::size_t max = 4096);

class Breakpoints {
 public:
  bool insert(pid_t pid, std::uint64_t addr, int tag);
  bool remove(pid_t pid, std::uint64_t addr);
  [[nodiscard]] std::optional<int> tag_at(std::uint64_t addr) const;
  [[nodiscard]] std::optional<std::uint64_t> original(std::uint64_t addr) const;
  // Puts the original bytes back in PID, a forked copy of the tracee, and
  // keeps the breakpoints of the tracee itself.
  void restore_in_copy(pid_t pid) const;
  void clear() { bps_.clear(); }

 private:
  struct Bp {
    std::uint64_t orig = 0;
    int tag = 0;
  };
  std::map<std::uint64_t, Bp> bps_;
};

// ---- tracer.cpp / phases.cpp
// Marks: the stops that bound phases; phase i runs from mark i to mark i+1.
enum MarkId {
  m_fork,
  m_spawned,
  m_exec,
  m_rt_add,
  m_rt_consistent,
  m_entry,
  m_main,
  m_exit_call,
  m_exit_group,
  m_reaped,
  kMarkCount
};
struct Mark {
  bool present = false;
  std::int64_t stop_ns = 0, resume_ns = 0;
  std::int64_t paused_before_ns = 0;  // tracer pauses accumulated before this stop
  Counters c;
};
struct RunFacts {  // what the exec stop learned; the same for every run of a command
  std::string image, kind, main_source;
  std::string interp, libc;   // PT_INTERP; the libc found in the link map at RT_CONSISTENT
  bool audit_mapped = false;  // the LD_AUDIT module was mapped by the RT_ADD stop (tracer.cpp, at that stop)
  std::array<bool, kMarkCount> applicable{};
  std::array<std::string, kMarkCount> mechanism;
  std::vector<std::string> notes;
};
// One program image of the traced process, from its PTRACE_EVENT_EXEC to the
// next one or to the end. A segment that was left by execve() holds the next
// image's exec stop in its m_exit_group slot: the phase it was in runs until
// the next program is in place, its execve() included (ptrace has no stop at
// the start of execve without stopping at every system call).
// A stop inside a runtime's start (runtime.main, a Go package's init
// function entering or returning, std's lang_start, the user's main).
struct RuntimeMark {
  std::string what;  // "runtime.main", "init fmt", "print", "main.main", "lang_start", "user main"
  std::int64_t stop_ns = 0, resume_ns = 0, paused_before_ns = 0;  // the tracer's instants
  // The tracee's own (TraceeSwitches), when the kernel gave them.
  std::optional<std::int64_t> tracee_stop_ns, tracee_resume_ns;
};
struct RawSegment {
  std::array<Mark, kMarkCount> marks;
  std::vector<RuntimeMark> runtime_marks;
  RunFacts facts;
  std::vector<LoadedObject> link_map;  // r_debug at RT_CONSISTENT
  bool r_brk_matches = false;
};
// The run; its own segment fields are the final program's, the programs
// before it (`#!/usr/bin/env`, shims) are in `earlier`, in exec order.
struct RawRun : RawSegment {
  std::vector<RawSegment> earlier;
  std::int64_t paused_ns = 0;
  int stops = 0;
  RunEnd end = RunEnd::exited;
  int status = 0;
  struct rusage ru {};
  std::int64_t end_ns = 0;
};
// before_exec(pid) runs while the child waits in its first stop, before exec.
Result<RawRun> trace_run(const Launch& l, Watchdog& wd, std::chrono::milliseconds timeout, Started& started,
                         const std::function<void(pid_t)>& before_exec = {});
Result<Run> untraced_run(const Launch& l, Watchdog& wd, std::chrono::milliseconds timeout);

// runtime_phases.cpp: the runtime's own phases of the final program from
// its runtime marks (Go: bootstrap, package init and each package's, main.main;
// Rust: lang_start, the user's main), tracer pauses excluded.
std::vector<RuntimePhase> runtime_phases(const RawSegment& seg);

// Turns the marks of one segment into its kPhaseCount samples.
std::vector<PhaseSample> segment_phases(const RawSegment& seg);
// The run's process-wide fields and Run::phases (the final program's, with
// the process's spawn) from the raw marks.
void fill_phases(const RawRun& raw, Run& run);

// ---- audit_records.cpp
struct AuditRecord {
  std::uint32_t kind = 0;  // enum pf_audit_kind (profile/audit/records.h)
  std::int64_t ns = 0;
  std::uint64_t addr = 0;
  std::string name;
};
std::vector<AuditRecord> read_audit_records(int fd);
// Fills run.objects (audit timing when there are records, else the link map)
// and the audit_* timestamps.
void attribute_libraries(const std::vector<AuditRecord>& recs, const RawRun& raw, Run& run);

}  // namespace procforge::profile::detail
