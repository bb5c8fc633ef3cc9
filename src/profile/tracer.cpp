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

enum BpTag { bp_debug_state = 1, bp_entry, bp_libc_start_main, bp_main, bp_exit };
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
  // Leaves the breakpoint at ADDR in place and moves past it.
  bool step_over_kept(user_regs_struct& regs, std::uint64_t addr);
  void drop(user_regs_struct& regs, std::uint64_t addr);
  void note(const std::string& s) { raw_.facts.notes.push_back(s); }

  pid_t pid_;
  RawRun& raw_;  // its RawSegment part is the program running now
  std::string audit_module_;
  Breakpoints bps_;
  ProcCounters counters_;
  bool spawned_ = false, exited_early_ = false;
  std::uint64_t debug_state_ = 0, r_debug_ = 0;
  bool main_bp_ = false;
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

void Tracer::next_segment() {
  RawSegment done = raw_;
  done.facts.mechanism[m_exit_group] = "PTRACE_EVENT_EXEC of the next program (its execve() included)";
  raw_.earlier.push_back(std::move(done));
  static_cast<RawSegment&>(raw_) = RawSegment{};
  bps_.clear();  // they went with the old address space
  debug_state_ = r_debug_ = 0;
  main_bp_ = false;
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
  if (exe.symbols.count("main") && bps_.insert(pid_, bias + exe.symbols.at("main"), bp_main)) {
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
    case bp_entry:
      mark = m_entry;
      drop(regs, addr);
      break;
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
    case bp_main:
      mark = m_main;
      drop(regs, addr);
      break;
    case bp_exit:
      mark = m_exit_call;
      drop(regs, addr);
      break;
    default: break;
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
  return bps_.insert(pid_, addr, bp_debug_state);
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
