// One traced run: the ptrace stop loop. Each boundary of the start-up pipeline
// is a stop the kernel or a breakpoint gives (reference/startup-and-ldso.md
// 4.1, 2.3):
//   SIGSTOP the child raised            -> spawned
//   PTRACE_EVENT_EXEC                   -> exec done (the new image and PT_INTERP are mapped)
//   int3 at AT_BASE+_dl_debug_state, _r_debug.r_state == RT_ADD        -> ld.so starts mapping deps
//   same breakpoint, r_state == RT_CONSISTENT after RT_ADD              -> deps mapped and relocated
//   int3 at AT_ENTRY (/proc/PID/auxv)   -> library constructors done, _start runs
//   int3 at main: .symtab, else the %rdi __libc_start_main receives     -> libc init done
//   int3 at libc's exit()               -> main done
//   PTRACE_EVENT_EXIT (exit_group, before mm teardown; /proc still readable) -> exit handlers done
//   wait4() returns                     -> torn down and reaped
// _dl_debug_state is found in ld.so's symbol table (.symtab if present, else
// the exported .dynsym entry) rather than through r_debug.r_brk: r_brk is only
// filled in after ld.so has started, too late for the RT_ADD stop. At
// RT_CONSISTENT the run checks that r_brk names the same address. Other
// namespaces (an LD_AUDIT module's) call _dl_debug_state too; only the base
// namespace's _r_debug state counts. Breakpoints are gone before main runs,
// but for libc's exit(); a child the program forks gets a copy of it, so
// PTRACE_O_TRACEFORK stops each child once to put the original bytes back in
// its copy before letting it go (release_child()). Children are not
// followed: their time counts only where the program waits.
// Every PTRACE_EVENT_EXEC after the first starts a new segment (env, then the
// program it runs): the old address space and its breakpoints are gone, so the
// stops are placed afresh in the new image (fs/exec.c begin_new_exec()).
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>

#include "common/maps.hpp"
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

enum BpTag {
  bp_debug_state = 1,
  bp_entry,
  bp_libc_start_main,
  bp_main,
  bp_exit,
  bp_musl_dls3,         // musl's loader: __dls3, the stage that loads and relocates the libraries
  bp_musl_debug_state,  // musl's loader: _dl_debug_state, called once the libraries are relocated
  bp_go_runtime_main,
  bp_go_main_main,
  bp_go_gcenable,     // runtime.main calls gcenable() between the runtime's init and the other packages'
  bp_go_printlock,    // runtime.printlock: GODEBUG=inittrace=1 prints a line after each package's init
  bp_go_funcpkgpath,  // runtime.funcpkgpath: inittrace names the package it has just timed
  bp_go_clock_start,  // runtime.doInit has just read inittrace's clock before a package's functions
  bp_go_clock_end,    // ... and after them
  bp_lang_start,
  bp_rust_main,
  bp_go_init_first  // + index into ImageFacts::go_inits
};
constexpr int kRtConsistent = 0, kRtAdd = 1;
// struct r_debug (elf/link.h): int r_version; link_map* r_map @8; r_brk @16; r_state @24.
constexpr std::uint64_t kRMap = 8, kRBrk = 16, kRState = 24;
// struct link_map: l_addr @0, l_name @8, l_ld @16, l_next @24.
constexpr std::uint64_t kLName = 8, kLNext = 24;

struct Auxv {
  std::uint64_t base = 0, entry = 0;
};

Auxv read_auxv(pid_t pid) {
  Auxv a;
  const UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/auxv").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return a;
  std::uint64_t buf[128];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  for (ssize_t i = 0; i + 1 < n / 8; i += 2) {
    if (buf[i] == AT_BASE) a.base = buf[i + 1];
    if (buf[i] == AT_ENTRY) a.entry = buf[i + 1];
  }
  return a;
}

std::string read_link(const std::string& p) {
  char buf[PATH_MAX];
  ssize_t n = readlink(p.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Whether the file FILE is mapped in PID (same device and inode in
// /proc/PID/maps): the LD_AUDIT module, by the time of the RT_ADD stop.
bool is_mapped(pid_t pid, const std::string& file) {
  struct stat st {};
  if (file.empty() || ::stat(file.c_str(), &st) != 0) return false;
  bool found = false;
  for_each_mapping(("/proc/" + std::to_string(pid) + "/maps").c_str(), [&](const MapsLine& m) {
    found = m.inode == st.st_ino && m.dev_major == major(st.st_dev) && m.dev_minor == minor(st.st_dev);
    return !found;
  });
  return found;
}

class Tracer {
 public:
  Tracer(pid_t pid, RawRun& raw, std::string audit_module)
      : pid_(pid), raw_(raw), audit_module_(std::move(audit_module)) {}

  Status loop();

 private:
  // One stop: what it marks (if anything), and the signal to deliver.
  void on_stop(int status, std::optional<MarkId>& mark, int& deliver);
  void on_exec();
  void next_segment();
  void release_child();
  void on_breakpoint(std::optional<MarkId>& mark, int& deliver);
  void on_consistent();
  // musl's loader has no _r_debug: its stages are found by its exported symbols.
  void place_musl_stops(const ImageFacts& ld, std::uint64_t base, bool program_has_main);
  // Go, Rust: the runtime's own stops (runtime_marks).
  void place_runtime_stops(const ImageFacts& exe, std::uint64_t bias);
  bool on_runtime_breakpoint(int tag, user_regs_struct& regs, std::uint64_t addr, std::optional<MarkId>& mark);
  // Leaves the breakpoint at ADDR in place and moves past it.
  bool step_over_kept(user_regs_struct& regs, std::uint64_t addr);
  void drop(user_regs_struct& regs, std::uint64_t addr);
  void note(const std::string& s) { raw_.facts.notes.push_back(s); }
  void date_runtime_marks();

  pid_t pid_;
  RawRun& raw_;  // its RawSegment part is the program running now
  std::string audit_module_;
  Breakpoints bps_;
  ProcCounters counters_;
  TraceeSwitches switches_;
  bool switches_dated_ = false;  // the kernel gives the tracee's context switches
  bool spawned_ = false, exited_early_ = false;
  std::uint64_t debug_state_ = 0, r_debug_ = 0;
  bool main_bp_ = false;
  const ImageFacts* exe_ = nullptr;  // the program image, for its runtime stops
  std::string init_package_;         // Go: the package whose init functions run
  std::uint64_t bias_ = 0;           // load bias of the program image
  std::string runtime_mark_;         // set by a runtime breakpoint, recorded by loop()
  int early_status_ = 0;
  struct rusage early_ru_ {};
};

Status Tracer::loop() {
  auto& m = raw_.marks;
  for (;;) {
    int status = 0;
    struct rusage ru {};
    if (exited_early_) {
      status = early_status_;
      ru = early_ru_;
    } else if (wait4(pid_, &status, __WALL, &ru) < 0) {
      if (errno == EINTR) continue;
      return Error{errno, "wait4: " + errno_name(errno)};
    }
    const std::int64_t t = now_ns();
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      raw_.end_ns = t;
      raw_.ru = ru;
      raw_.end = WIFEXITED(status) ? RunEnd::exited : RunEnd::killed;
      raw_.status = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
      Mark& r = m[m_reaped];
      r.present = true;
      r.stop_ns = r.resume_ns = t;
      r.paused_before_ns = raw_.paused_ns;
      r.c.cpu_ns = (static_cast<std::int64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
                    ru.ru_stime.tv_usec) *
                   1000;
      r.c.minflt = ru.ru_minflt;
      r.c.majflt = ru.ru_majflt;
      r.c.vcsw = ru.ru_nvcsw;
      r.c.nvcsw = ru.ru_nivcsw;
      date_runtime_marks();
      return ok_status();
    }
    ++raw_.stops;
    std::optional<MarkId> mark;
    int deliver = 0;
    on_stop(status, mark, deliver);
    if (exited_early_) continue;
    Counters c;
    if (mark) counters_.read(c);
    const std::int64_t resume = now_ns();
    if (mark && !m[*mark].present) {
      Mark& k = m[*mark];
      k.present = true;
      k.stop_ns = t;
      k.resume_ns = resume;
      k.paused_before_ns = raw_.paused_ns;
      k.c = c;
      // The program that called execve() ends where the new one is in place.
      if (*mark == m_exec && !raw_.earlier.empty() && !raw_.earlier.back().marks[m_exit_group].present)
        raw_.earlier.back().marks[m_exit_group] = k;
    }
    if (!runtime_mark_.empty()) {
      raw_.runtime_marks.push_back({std::move(runtime_mark_), t, resume, raw_.paused_ns, {}, {}});
      runtime_mark_.clear();
    }
    switches_.drain();
    raw_.paused_ns += resume - t;
    ptrace(PTRACE_CONT, pid_, nullptr, reinterpret_cast<void*>(static_cast<long>(deliver)));
  }
}

void Tracer::on_stop(int status, std::optional<MarkId>& mark, int& deliver) {
  const int sig = WSTOPSIG(status);
  const int event = status >> 16;
  if (!spawned_) {
    if (sig != SIGSTOP) {
      deliver = sig;
      return;
    }
    spawned_ = true;
    counters_.open(pid_);
    switches_dated_ = switches_.open(pid_);
    ptrace(PTRACE_SETOPTIONS, pid_, nullptr,
           reinterpret_cast<void*>(
               static_cast<long>(PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK)));
    mark = m_spawned;
    return;
  }
  if (event == PTRACE_EVENT_EXEC) {
    if (raw_.marks[m_exec].present) next_segment();
    on_exec();
    mark = m_exec;
    return;
  }
  if (event == PTRACE_EVENT_EXIT) {
    mark = m_exit_group;
    return;
  }
  if (event == PTRACE_EVENT_FORK) {
    release_child();
    return;
  }
  if (event != 0) return;
  if (sig == SIGTRAP) {
    on_breakpoint(mark, deliver);
    return;
  }
  siginfo_t si{};
  if (ptrace(PTRACE_GETSIGINFO, pid_, nullptr, &si) != 0 && errno == EINVAL) return;  // group-stop: resume
  deliver = sig;                                                                      // the program's own signal
}

// The tracee's own instants of its runtime stops, once every switch record is in.
void Tracer::date_runtime_marks() {
  switches_.drain();
  auto date = [&](std::vector<RuntimeMark>& marks) {
    for (auto& r : marks) {
      r.tracee_stop_ns = switches_.stopped_at(r.stop_ns);
      r.tracee_resume_ns = switches_.resumed_at(r.resume_ns);
    }
  };
  date(raw_.runtime_marks);
  if (!switches_dated_ && !raw_.runtime_marks.empty())
    note("perf_event_open refused the tracee's context switches: runtime phases are timed by the tracer's wake-ups");
  for (auto& seg : raw_.earlier) date(seg.runtime_marks);
  switches_.close();
}

void Tracer::next_segment() {
  RawSegment done = raw_;
  done.facts.mechanism[m_exit_group] = "PTRACE_EVENT_EXEC of the next program (its execve() included)";
  raw_.earlier.push_back(std::move(done));
  static_cast<RawSegment&>(raw_) = RawSegment{};
  bps_.clear();  // they went with the old address space
  debug_state_ = r_debug_ = 0;
  main_bp_ = false;
  exe_ = nullptr;
  init_package_.clear();
}

void Tracer::release_child() {
  unsigned long child = 0;
  if (ptrace(PTRACE_GETEVENTMSG, pid_, nullptr, &child) != 0 || child == 0) return;
  const auto c = static_cast<pid_t>(child);
  int status = 0;
  // A child traced through PTRACE_O_TRACEFORK starts with a SIGSTOP stop.
  while (waitpid(c, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (!WIFSTOPPED(status)) return;
  bps_.restore_in_copy(c);
  ptrace(PTRACE_DETACH, c, nullptr, nullptr);
}

void Tracer::on_exec() {
  RunFacts& f = raw_.facts;
  f.applicable.fill(false);
  for (MarkId k : {m_fork, m_spawned, m_exec, m_exit_group, m_reaped}) f.applicable[k] = true;
  f.mechanism[m_spawned] = "fork() to the child's own SIGSTOP (PTRACE_TRACEME)";
  f.mechanism[m_exec] = "PTRACE_EVENT_EXEC";
  f.mechanism[m_exit_group] = "PTRACE_EVENT_EXIT (PTRACE_O_TRACEEXIT)";
  f.mechanism[m_reaped] = "wait4(); faults and switches from its rusage";

  const Auxv aux = read_auxv(pid_);
  f.image = read_link("/proc/" + std::to_string(pid_) + "/exe");
  auto img = image_facts("/proc/" + std::to_string(pid_) + "/exe");
  if (!img) {
    f.kind = "unknown";
    note("cannot read the program image (" + img.error().message + "): only kernel boundaries are shown");
    return;
  }
  const ImageFacts& exe = **img;
  const std::uint64_t bias = aux.entry - exe.entry;
  if (exe.interp) {
    f.kind = "dynamic";
    f.interp = *exe.interp;
    auto ld = image_facts(*exe.interp);
    if (ld && (*ld)->symbols.count("_dl_debug_state") && (*ld)->symbols.count("_r_debug") && aux.base) {
      debug_state_ = aux.base + (*ld)->symbols.at("_dl_debug_state");
      r_debug_ = aux.base + (*ld)->symbols.at("_r_debug");
      if (bps_.insert(pid_, debug_state_, bp_debug_state)) {
        f.applicable[m_rt_add] = f.applicable[m_rt_consistent] = true;
        std::string table = (*ld)->symbol_table.at("_dl_debug_state");
        f.mechanism[m_rt_add] = "breakpoint _dl_debug_state (ld.so " + table + "), _r_debug.r_state RT_ADD";
        f.mechanism[m_rt_consistent] = "breakpoint _dl_debug_state (ld.so " + table + "), r_state RT_CONSISTENT";
      }
    } else if (ld && (*ld)->symbols.count("__dls3") && (*ld)->symbols.count("_dl_debug_state") && aux.base) {
      place_musl_stops(**ld, aux.base, exe.symbols.count("main") > 0);
    } else {
      note(*exe.interp + " has no _dl_debug_state/_r_debug: ld.so's phases are merged into constructors");
    }
    if (bps_.insert(pid_, aux.entry, bp_entry)) {
      f.applicable[m_entry] = true;
      f.mechanism[m_entry] = "breakpoint AT_ENTRY (/proc/PID/auxv)";
    }
  } else {
    f.kind = exe.type == ET_DYN ? "static-pie" : "static";
    // The entry point is where the process stands now: ld.so and library
    // constructors do not exist; start-up code is all "libc init".
  }
  exe_ = &exe;
  place_runtime_stops(exe, bias);
  if (f.applicable[m_main]) {
    // main.main of a Go program without a C main
  } else if (exe.symbols.count("main") && bps_.insert(pid_, bias + exe.symbols.at("main"), bp_main)) {
    main_bp_ = true;
    f.applicable[m_main] = true;
    f.main_source = exe.symbol_table.at("main") + " main";
    f.mechanism[m_main] = "breakpoint main (" + exe.symbol_table.at("main") + ")";
  } else if (!exe.interp && exe.symbols.count("__libc_start_main")) {
    if (bps_.insert(pid_, bias + exe.symbols.at("__libc_start_main"), bp_libc_start_main)) f.applicable[m_main] = true;
  } else if (exe.interp) {
    f.applicable[m_main] = true;  // tentatively: __libc_start_main's %rdi, once libc is mapped
  }
  if (!exe.interp && exe.symbols.count("exit") && bps_.insert(pid_, bias + exe.symbols.at("exit"), bp_exit)) {
    f.applicable[m_exit_call] = true;
    f.mechanism[m_exit_call] = "breakpoint exit() (" + exe.symbol_table.at("exit") + ")";
  }
  if (!f.applicable[m_main]) {
    f.main_source = "not found";
    note("main could not be found (no .symtab main, no __libc_start_main): libc init is merged into main");
  }
  if (!exe.interp && !f.applicable[m_exit_call]) note("exit() not found: exit handlers are merged into main");
}

// musl 1.2.3 ldso/dynlink.c: _dlstart_c -> __dls2 (the loader relocates
// itself) -> __dls2b (its thread pointer) -> __dls3 (LD_LIBRARY_PATH, the
// libraries loaded and relocated, then _dl_debug_state() once, then
// __init_libc and the jump to the entry point). The loader is musl's libc:
// exit() and __libc_start_main are its own.
void Tracer::place_musl_stops(const ImageFacts& ld, std::uint64_t base, bool program_has_main) {
  RunFacts& f = raw_.facts;
  f.kind = "dynamic (musl)";
  f.libc = ld.path;
  if (bps_.insert(pid_, base + ld.symbols.at("__dls3"), bp_musl_dls3) &&
      bps_.insert(pid_, base + ld.symbols.at("_dl_debug_state"), bp_musl_debug_state)) {
    f.applicable[m_rt_add] = f.applicable[m_rt_consistent] = true;
    f.mechanism[m_rt_add] = "breakpoint __dls3 (musl's loader, .dynsym): self-relocation done";
    f.mechanism[m_rt_consistent] = "breakpoint _dl_debug_state (musl's loader): libraries loaded and relocated";
  }
  if (ld.symbols.count("exit") && bps_.insert(pid_, base + ld.symbols.at("exit"), bp_exit)) {
    f.applicable[m_exit_call] = true;
    f.mechanism[m_exit_call] = "breakpoint exit() (musl's loader, .dynsym)";
  }
  // main: the program's .symtab, else the %rdi musl's __libc_start_main receives.
  if (!program_has_main && ld.symbols.count("__libc_start_main"))
    bps_.insert(pid_, base + ld.symbols.at("__libc_start_main"), bp_libc_start_main);
}

// Go (src/runtime/proc.go main()): runtime.main runs the package init tasks
// (doInit) with the main goroutine locked to the main thread, then main.main.
// Rust (library/std/src/rt.rs): C main -> lang_start -> lang_start_internal
// -> the user's main.
void Tracer::place_runtime_stops(const ImageFacts& exe, std::uint64_t bias) {
  RunFacts& f = raw_.facts;
  const auto& sym = exe.symbols;
  if (sym.count("runtime.main") && sym.count("main.main")) {
    bps_.insert(pid_, bias + sym.at("runtime.main"), bp_go_runtime_main);
    for (std::size_t i = 0; i < exe.go_inits.size(); ++i)
      bps_.insert(pid_, bias + exe.go_inits[i].second, bp_go_init_first + static_cast<int>(i));
    if (sym.count("runtime.gcenable")) bps_.insert(pid_, bias + sym.at("runtime.gcenable"), bp_go_gcenable);
    if (sym.count("runtime.printlock")) bps_.insert(pid_, bias + sym.at("runtime.printlock"), bp_go_printlock);
    if (exe.go_inittrace_clock) {
      bps_.insert(pid_, bias + exe.go_inittrace_clock->first, bp_go_clock_start);
      bps_.insert(pid_, bias + exe.go_inittrace_clock->second, bp_go_clock_end);
    } else if (sym.count("runtime.funcpkgpath")) {
      bps_.insert(pid_, bias + sym.at("runtime.funcpkgpath"), bp_go_funcpkgpath);
    }
    bias_ = bias;
    if (bps_.insert(pid_, bias + sym.at("main.main"), bp_go_main_main) && !sym.count("main")) {
      f.applicable[m_main] = true;
      f.main_source = ".symtab main.main";
      f.mechanism[m_main] = "breakpoint main.main (Go, .symtab): libc init is the Go runtime's bootstrap and init";
    }
    if (exe.go_inits.empty()) note("no Go package init functions in .symtab: package init is not split by package");
  } else if (exe.lang_start && exe.rust_main) {
    bps_.insert(pid_, bias + *exe.lang_start, bp_lang_start);
    bps_.insert(pid_, bias + *exe.rust_main, bp_rust_main);
  }
}

// A runtime stop: names it in runtime_mark_ (and the main mark for Go's
// main.main when there is no C main). False: not a runtime tag.
bool Tracer::on_runtime_breakpoint(int tag, user_regs_struct& regs, std::uint64_t addr, std::optional<MarkId>& mark) {
  switch (tag) {
    case bp_go_runtime_main: runtime_mark_ = "runtime.main"; break;
    case bp_go_main_main:
      runtime_mark_ = "main.main";
      for (const char* kept : {"runtime.printlock", "runtime.funcpkgpath"})
        if (exe_ && exe_->symbols.count(kept)) bps_.remove(pid_, bias_ + exe_->symbols.at(kept));
      if (exe_ && exe_->go_inittrace_clock) {
        bps_.remove(pid_, bias_ + exe_->go_inittrace_clock->first);
        bps_.remove(pid_, bias_ + exe_->go_inittrace_clock->second);
      }
      if (raw_.facts.main_source == ".symtab main.main") mark = m_main;
      break;
    case bp_lang_start: runtime_mark_ = "lang_start"; break;
    case bp_rust_main: runtime_mark_ = "user main"; break;
    case bp_go_gcenable: runtime_mark_ = "gcenable"; break;
    case bp_go_printlock:
      // Kept until main.main: any print (inittrace's line) ends a package's init.
      runtime_mark_ = "print";
      step_over_kept(regs, addr);
      return true;
    case bp_go_funcpkgpath:
      // Kept until main.main. With GODEBUG=inittrace=1, doInit (runtime/proc.go)
      // reads its clock once the package's functions are done, then findfunc()
      // and funcpkgpath() name the package for its line: funcpkgpath's first
      // read of the name in pclntab can fault (up to ~55 us measured), after
      // inittrace's clock stopped, so the package ends before it. Only doInit
      // calls it (the goroutine that runs init; no other thread can hit it).
      runtime_mark_ = "inittrace";
      step_over_kept(regs, addr);
      return true;
    case bp_go_clock_start:
    case bp_go_clock_end:
      // Kept until main.main, in place of funcpkgpath's stop: the instruction
      // after doInit's nanotime() (image_facts.cpp inittrace_clock()), so a
      // package is timed between the very instants inittrace reads.
      runtime_mark_ = tag == bp_go_clock_start ? "inittrace start" : "inittrace";
      step_over_kept(regs, addr);
      return true;
    default: {
      if (tag < bp_go_init_first || !exe_) return false;
      // A package's first init function to run starts its init; its other
      // functions then run without a stop (one stop per package).
      const std::string pkg = exe_->go_inits.at(static_cast<std::size_t>(tag - bp_go_init_first)).first;
      if (pkg != init_package_) runtime_mark_ = "init " + pkg;
      init_package_ = pkg;
      for (const auto& [other, value] : exe_->go_inits)
        if (other == pkg && bias_ + value != addr) bps_.remove(pid_, bias_ + value);
    }
  }
  drop(regs, addr);
  return true;
}

void Tracer::on_breakpoint(std::optional<MarkId>& mark, int& deliver) {
  user_regs_struct regs{};
  if (ptrace(PTRACE_GETREGS, pid_, nullptr, &regs) != 0) return;
  const std::uint64_t addr = regs.rip - 1;
  auto tag = bps_.tag_at(addr);
  if (!tag) {
    deliver = SIGTRAP;  // not ours
    return;
  }
  switch (*tag) {
    case bp_debug_state: {
      auto st = peek(pid_, r_debug_ + kRState);
      const int state = st ? static_cast<int>(*st & 0xffffffff) : -1;
      if (state == kRtAdd && !raw_.marks[m_rt_add].present) {
        mark = m_rt_add;
        // ld.so maps LD_AUDIT modules before the first RT_ADD (glibc elf/rtld.c
        // dl_main: load_audit_modules), so their loading is in "ld.so start".
        raw_.facts.audit_mapped = is_mapped(pid_, audit_module_);
        step_over_kept(regs, addr);
      } else if (state == kRtConsistent && raw_.marks[m_rt_add].present) {
        mark = m_rt_consistent;
        drop(regs, addr);
        on_consistent();
      } else {
        step_over_kept(regs, addr);
      }
      break;
    }
    case bp_libc_start_main: {
      const std::uint64_t main_addr = regs.rdi;
      drop(regs, addr);
      if (bps_.insert(pid_, main_addr, bp_main)) {
        main_bp_ = true;
        raw_.facts.main_source = "__libc_start_main %rdi";
        raw_.facts.mechanism[m_main] = "breakpoint main (address from __libc_start_main's first argument, %rdi)";
      }
      break;
    }
    default: {
      // Stops that mark a boundary once and go.
      static const std::map<int, MarkId> kOnce = {{bp_entry, m_entry},
                                                  {bp_main, m_main},
                                                  {bp_exit, m_exit_call},
                                                  {bp_musl_dls3, m_rt_add},
                                                  {bp_musl_debug_state, m_rt_consistent}};
      if (auto it = kOnce.find(*tag); it != kOnce.end()) {
        mark = it->second;
        drop(regs, addr);
      } else {
        on_runtime_breakpoint(*tag, regs, addr, mark);
      }
      break;
    }
  }
}

void Tracer::on_consistent() {
  RunFacts& f = raw_.facts;
  auto brk = peek(pid_, r_debug_ + kRBrk);
  raw_.r_brk_matches = brk && *brk == debug_state_;
  // The link map, in load order (mechanism: r_debug.r_map).
  auto lm = peek(pid_, r_debug_ + kRMap);
  const ImageFacts* libc = nullptr;
  std::uint64_t libc_base = 0;
  for (int i = 0; lm && *lm && i < 4096; ++i) {
    auto l_addr = peek(pid_, *lm);
    auto l_name = peek(pid_, *lm + kLName);
    LoadedObject o;
    o.base = l_addr.value_or(0);
    o.path = l_name && *l_name ? read_string(pid_, *l_name) : std::string();
    if (i == 0 && o.path.empty()) o.path = f.image;
    if (!libc && !o.path.empty() && o.path.front() == '/' && o.path.find("libc.so") != std::string::npos) {
      auto facts = image_facts(o.path);
      if (facts && (*facts)->symbols.count("__libc_start_main")) {
        libc = *facts;
        libc_base = o.base;
      }
    }
    raw_.link_map.push_back(std::move(o));
    lm = peek(pid_, *lm + kLNext);
  }
  if (libc) {
    f.kind = "dynamic (glibc)";
    f.libc = libc->path;
    if (libc->symbols.count("exit") && bps_.insert(pid_, libc_base + libc->symbols.at("exit"), bp_exit)) {
      f.applicable[m_exit_call] = true;
      f.mechanism[m_exit_call] = "breakpoint libc exit() (" + libc->symbol_table.at("exit") + ")";
    }
    if (!main_bp_) bps_.insert(pid_, libc_base + libc->symbols.at("__libc_start_main"), bp_libc_start_main);
  } else {
    f.kind = "dynamic (no glibc libc found)";
    if (!main_bp_) {
      f.applicable[m_main] = false;
      f.main_source = "not found";
      note("main could not be found (no .symtab main, no glibc __libc_start_main): libc init is merged into main");
    }
    note("libc's exit() not found: exit handlers are merged into main");
  }
}

bool Tracer::step_over_kept(user_regs_struct& regs, std::uint64_t addr) {
  const std::uint64_t orig = bps_.original(addr).value_or(0);
  // _dl_debug_state is an empty function: "ret", or "endbr64; ret" with CET.
  // Emulating the return keeps the breakpoint without a single-step stop.
  const bool ret = (orig & 0xff) == 0xc3;
  const bool endbr_ret = (orig & 0xffffffffffull) == 0xc3fa1e0ff3ull;
  if (ret || endbr_ret) {
    auto ra = peek(pid_, regs.rsp);
    if (!ra) return false;
    regs.rip = *ra;
    regs.rsp += 8;
    return ptrace(PTRACE_SETREGS, pid_, nullptr, &regs) == 0;
  }
  // Anything else: put the byte back, single-step, re-insert.
  const int tag = bps_.tag_at(addr).value_or(bp_debug_state);
  bps_.remove(pid_, addr);
  regs.rip = addr;
  ptrace(PTRACE_SETREGS, pid_, nullptr, &regs);
  ptrace(PTRACE_SINGLESTEP, pid_, nullptr, nullptr);
  int status = 0;
  struct rusage ru {};
  if (wait4(pid_, &status, __WALL, &ru) < 0) return false;
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    exited_early_ = true;
    early_status_ = status;
    early_ru_ = ru;
    return false;
  }
  ++raw_.stops;
  return bps_.insert(pid_, addr, tag);
}

void Tracer::drop(user_regs_struct& regs, std::uint64_t addr) {
  bps_.remove(pid_, addr);
  regs.rip = addr;
  ptrace(PTRACE_SETREGS, pid_, nullptr, &regs);
}

}  // namespace

Result<RawRun> trace_run(const Launch& l, Watchdog& wd, std::chrono::milliseconds timeout, Started& s,
                         const std::function<void(pid_t)>& before_exec) {
  auto st = start(l, true);
  if (!st) return st.error();
  s = std::move(*st);
  if (before_exec) before_exec(s.pid);
  RawRun raw;
  raw.marks[m_fork].present = true;
  raw.marks[m_fork].stop_ns = raw.marks[m_fork].resume_ns = s.t0_ns;
  wd.arm(s.pidfd.get(), timeout);
  Tracer tracer(s.pid, raw, l.audit_module);
  Status looped = tracer.loop();
  const bool fired = wd.disarm();
  if (!looped) {
    kill(s.pid, SIGKILL);  // still our unreaped child: the pid cannot have been reused
    while (waitpid(s.pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    return looped.error();
  }
  if (fired) raw.end = RunEnd::timed_out;
  return raw;
}

Result<Run> untraced_run(const Launch& l, Watchdog& wd, std::chrono::milliseconds timeout) {
  auto st = start(l, false);
  if (!st) return st.error();
  Started s = std::move(*st);
  wd.arm(s.pidfd.get(), timeout);
  int status = 0;
  struct rusage ru {};
  while (wait4(s.pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  const std::int64_t t = now_ns();
  const bool fired = wd.disarm();
  Run r;
  r.traced = false;
  r.wall_us = r.tracee_wall_us = static_cast<double>(t - s.t0_ns) / 1000.0;
  r.end = fired ? RunEnd::timed_out : WIFEXITED(status) ? RunEnd::exited : RunEnd::killed;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
  r.rusage_minflt = ru.ru_minflt;
  r.rusage_majflt = ru.ru_majflt;
  auto err = child_error(s, l.path);
  close_started(s);
  if (err) return *err;
  return r;
}

}  // namespace procforge::profile::detail
