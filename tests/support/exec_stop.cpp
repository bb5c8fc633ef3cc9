#include "exec_stop.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "procforge/format.hpp"
#include "procforge/result.hpp"

namespace procforge::testsupport {
namespace {

// Built before fork(): the child touches nothing else.
struct ChildArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  bool no_randomize;
  int errno_fd;  // write end of the O_CLOEXEC pipe: closed by a successful execve
};

[[noreturn]] void child(const ChildArgs& a) {
  // The tracer sets PTRACE_O_EXITKILL only after the first stop; until then,
  // do not outlive it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int err = 0;
  if (a.no_randomize && ::personality(ADDR_NO_RANDOMIZE) < 0) err = errno;
  if (!err && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) err = errno;
  if (!err) {
    ::raise(SIGSTOP);
    ::execve(a.path, a.argv, a.envp);
    err = errno;
  }
  (void)!::write(a.errno_fd, &err, sizeof err);
  ::_exit(127);
}

std::vector<char*> c_array(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// waitpid() with a deadline. A traced child's stops wake no poll-able fd, so
// poll with a short sleep; an exec takes a millisecond or so.
bool wait_until(pid_t pid, int* status, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    pid_t w = ::waitpid(pid, status, WNOHANG | __WALL);
    if (w == pid) return true;
    if (w < 0 && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, __WALL) == pid) {
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool is_fatal_stop(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGKILL || sig == SIGFPE;
}

}  // namespace

std::vector<MapsEntry> parse_maps(const std::string& text) {
  std::vector<MapsEntry> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapsEntry e;
    char perms[8] = {};
    unsigned long long start = 0, end = 0, off = 0, inode = 0;
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %llu %n", &start, &end, perms, &off, &inode, &name_at) < 5)
      continue;
    e.start = start;
    e.end = end;
    e.offset = off;
    e.inode = inode;
    e.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
    if (name_at > 0 && static_cast<std::size_t>(name_at) <= line.size())
      e.name = line.substr(static_cast<std::size_t>(name_at));
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<MmFields> parse_stat_mm(const std::string& text) {
  // Field 2 (comm) may hold blanks and parentheses: count from the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(close + 1));
  std::vector<std::string> f{"", "", ""};  // fields are numbered from 1; 1 and 2 are before ')'
  for (std::string w; in >> w;) f.push_back(w);
  if (f.size() <= 51) return std::nullopt;
  auto u = [&](std::size_t n) { return static_cast<std::uint64_t>(std::stoull(f[n])); };
  MmFields mm;
  mm.start_code = u(26), mm.end_code = u(27), mm.start_stack = u(28);
  mm.start_data = u(45), mm.end_data = u(46), mm.start_brk = u(47);
  mm.arg_start = u(48), mm.arg_end = u(49), mm.env_start = u(50), mm.env_end = u(51);
  return mm;
}

std::string read_exec_image(pid_t pid, ExecImage* out) {
  const std::string proc = "/proc/" + std::to_string(pid);
  out->maps = parse_maps(read_file(proc + "/maps"));
  // An image the caller may not read (execute-only, set-id) makes the mm
  // non-dumpable: then even its tracer needs CAP_SYS_PTRACE to look inside
  // (kernel/ptrace.c __ptrace_may_access()), and maps reads empty.
  if (out->maps.empty()) return kImageNotDumpable + proc + "/maps is empty";
  struct user_regs_struct regs {};
  if (::ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return std::string("PTRACE_GETREGS: ") + std::strerror(errno);
  out->rip = regs.rip;
  out->rsp = regs.rsp;
  // A compat (ia32) image gets its auxv as pairs of 32-bit words
  // (compat_binfmt_elf: elf_addr_t is compat_ulong_t); its code segment is
  // __USER32_CS (0x23) instead of __USER_CS (0x33).
  out->compat = regs.cs == 0x23;
  const std::string aux = read_file(proc + "/auxv");
  const std::size_t word = out->compat ? 4 : 8;
  out->auxv.clear();
  for (std::size_t i = 0; i + 2 * word <= aux.size(); i += 2 * word) {
    std::uint64_t type = 0, value = 0;
    std::memcpy(&type, aux.data() + i, word);  // little endian: the low bytes
    std::memcpy(&value, aux.data() + i + word, word);
    out->auxv.emplace_back(type, value);
    if (type == 0) break;
  }
  // Readable by us: we are the tracer (fs/proc/array.c asks for
  // PTRACE_MODE_READ before it shows the mm fields; it prints 0 otherwise).
  auto mm = parse_stat_mm(read_file(proc + "/stat"));
  if (!mm) return "cannot parse " + proc + "/stat";
  out->mm = *mm;
  // create_elf_tables() wrote everything between rsp and the top of the stack
  // mapping (fs/exec.c setup_arg_pages() moved it there).
  const auto stack = std::find_if(out->maps.begin(), out->maps.end(),
                                  [&](const MapsEntry& m) { return m.start <= out->rsp && out->rsp < m.end; });
  if (stack == out->maps.end()) return "no mapping holds rsp " + hex(out->rsp) + " in " + proc + "/maps";
  out->stack_end = stack->end;
  out->stack.assign(stack->end - out->rsp, 0);
  iovec local{out->stack.data(), out->stack.size()};
  iovec remote{reinterpret_cast<void*>(out->rsp), out->stack.size()};
  const ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(out->stack.size()))
    return "process_vm_readv of the stack (" + std::to_string(out->stack.size()) +
           " bytes): " + (n < 0 ? errno_name(errno) : std::to_string(n) + " bytes read");
  return {};
}

ExecStopResult exec_and_stop(const ExecStopRequest& req) {
  ExecStopResult res;
  auto argv = c_array(req.argv);
  auto envp = c_array(req.envp);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    res.setup_error = std::string("pipe2: ") + std::strerror(errno);
    return res;
  }
  const ChildArgs args{req.path.c_str(), argv.data(), envp.data(), req.addr_no_randomize, pipefd[1]};
  const pid_t pid = ::fork();
  if (pid < 0) {
    res.setup_error = std::string("fork: ") + std::strerror(errno);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return res;
  }
  if (pid == 0) child(args);
  ::close(pipefd[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.timeout_ms);
  int errno_fd = pipefd[0];
  auto close_pipe = [&] {
    if (errno_fd >= 0) ::close(errno_fd);
    errno_fd = -1;
  };
  auto give_up = [&](const std::string& why) {
    res.outcome = ExecStopOutcome::harness_error;
    res.setup_error = why;
    kill_and_reap(pid);
    close_pipe();
    return res;
  };

  int status = 0;
  if (!wait_until(pid, &status, deadline)) return give_up("no initial stop");
  if (!WIFSTOPPED(status)) {
    // personality() or PTRACE_TRACEME failed: the errno is in the pipe.
    int err = 0;
    (void)!::read(errno_fd, &err, sizeof err);
    close_pipe();
    res.setup_error = std::string("child setup failed: ") + std::strerror(err);
    return res;
  }
  if (::ptrace(PTRACE_SETOPTIONS, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) != 0)
    return give_up(std::string("PTRACE_SETOPTIONS: ") + std::strerror(errno));
  int deliver = 0;  // the SIGSTOP it sent itself is suppressed
  for (;;) {
    if (::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(deliver))) != 0)
      return give_up(std::string("PTRACE_CONT: ") + std::strerror(errno));
    if (!wait_until(pid, &status, deadline)) return give_up("timed out waiting for the exec");
    if (WIFEXITED(status)) {
      int err = 0;
      const ssize_t n = ::read(errno_fd, &err, sizeof err);
      close_pipe();
      if (n != static_cast<ssize_t>(sizeof err) || err == 0) {
        res.setup_error = "child exited with status " + std::to_string(WEXITSTATUS(status)) + " without an errno";
        return res;
      }
      res.outcome = ExecStopOutcome::exec_failed;
      res.err = err;
      return res;
    }
    if (WIFSIGNALED(status)) {
      close_pipe();
      res.outcome = ExecStopOutcome::killed_during_exec;
      res.signal = WTERMSIG(status);
      return res;
    }
    if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) break;
    const int sig = WSTOPSIG(status);
    if (is_fatal_stop(sig)) {
      // A fatal signal before the exec event: the load failed after the point
      // of no return (force_fatal_sig() normally skips the ptrace stop; this
      // covers kernels that stop anyway).
      kill_and_reap(pid);
      close_pipe();
      res.outcome = ExecStopOutcome::killed_during_exec;
      res.signal = sig;
      return res;
    }
    deliver = sig == SIGTRAP || sig == SIGSTOP ? 0 : sig;
  }
  close_pipe();

  // The exec stop: the new image is in place and has not run.
  res.outcome = ExecStopOutcome::stopped_after_exec;
  if (std::string why = read_exec_image(pid, &res); !why.empty()) return give_up(why);
  if (req.step_first_instruction) {
    // The first single-step stop is a SIGTRAP on the way out of execve itself
    // (kernel/entry/common.c syscall_exit_work() -> report_single_step()),
    // with rip still at the entry: step again until rip moves (the
    // instruction ran) or a fault stops the child. A few rounds at most.
    for (int round = 0; round < 3; ++round) {
      if (::ptrace(PTRACE_SINGLESTEP, pid, nullptr, nullptr) != 0)
        return give_up(std::string("PTRACE_SINGLESTEP: ") + std::strerror(errno));
      if (!wait_until(pid, &status, deadline)) return give_up("timed out single-stepping the first instruction");
      if (WIFSIGNALED(status)) {
        res.first_step_signal = WTERMSIG(status);
        return res;  // already reaped
      }
      if (!WIFSTOPPED(status)) break;
      res.first_step_signal = WSTOPSIG(status);
      if (res.first_step_signal != SIGTRAP) break;
      struct user_regs_struct now {};
      if (::ptrace(PTRACE_GETREGS, pid, nullptr, &now) != 0 || now.rip != res.rip) break;
    }
  }
  kill_and_reap(pid);
  return res;
}

}  // namespace procforge::testsupport
