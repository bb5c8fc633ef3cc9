// Starting the profiled program. A traced child calls PTRACE_TRACEME and stops
// itself with SIGSTOP before execve, so the tracer sees two boundaries the
// kernel gives for free: the child exists (the SIGSTOP stop) and the new image
// is in place (PTRACE_EVENT_EXEC, set as an option at the SIGSTOP stop). fork()
// rather than vfork(): a vfork child cannot stop before exec without
// suspending the tracer with it. The profiler's own image is small, so fork's
// page-table copy is cheap (reference/startup-and-ldso.md 4.2: +18 COW faults
// in the child before exec, charged to "spawn").
//
// Between fork and exec the child only makes async-signal-safe calls and
// reports {step, errno} through a close-on-exec pipe, as spawn/child.cpp does.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.hpp"
#include "procforge/exec.hpp"
#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

enum ChildStep : int { step_ptrace = 1, step_stdio = 2, step_execve = 3 };

struct ChildReport {
  int step = 0;
  int err = 0;
};

[[noreturn]] void child_fail(int fd, int step) {
  ChildReport r{step, errno};
  (void)!::write(fd, &r, sizeof r);
  _exit(127);
}

}  // namespace

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Result<std::string> resolve_program(const std::string& name, const std::vector<std::string>& envp) {
  if (name.empty()) return Error{ENOENT, "no program given"};
  auto check = [](const std::string& p) -> int {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EACCES;
    if (::access(p.c_str(), X_OK) != 0) return errno;
    return 0;
  };
  if (name.find('/') != std::string::npos) {
    if (int e = check(name)) return Error{e, "execve " + name + ": " + errno_name(e)};
    return name;
  }
  // execvp's candidates (exec::path_candidates()); the first one that is an
  // executable file wins.
  const exec::PathSearch search = exec::path_candidates(name, envp);
  int first_err = ENOENT;
  for (const auto& cand : search.candidates) {
    int e = check(cand);
    if (e == 0) return cand;
    if (e != ENOENT && e != ENOTDIR && first_err == ENOENT) first_err = e;
  }
  return Error{first_err, name + ": command not found in PATH (" + search.path_value + ")"};
}

Result<Started> start(const Launch& l, bool traced) {
  Started s;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Error{errno, "pipe2: " + errno_name(errno)};
  UniqueFd err_r(fds[0]), err_w(fds[1]), audit_r, audit_w;
  std::vector<std::string> env = l.envp;
  if (traced && !l.audit_module.empty()) {
    if (pipe2(fds, O_CLOEXEC) != 0) return Error{errno, "pipe2: " + errno_name(errno)};
    audit_r.reset(fds[0]);
    audit_w.reset(fds[1]);
    struct stat st {};
    fstat(audit_w.get(), &st);
    s.audit_pipe_ino = st.st_ino;
    // The module checks the inode too: a descriptor with this number in
    // another process (a child of the program) is never written to.
    bool had = false;
    for (auto& e : env)
      if (e.rfind("LD_AUDIT=", 0) == 0) {
        e += ":" + l.audit_module;
        had = true;
      }
    if (!had) env.push_back("LD_AUDIT=" + l.audit_module);
    env.push_back("PROCFORGE_AUDIT_FD=" + std::to_string(audit_w.get()) + ":" + std::to_string(st.st_ino));
  }
  // Everything the child needs, built before fork.
  std::vector<char*> argv, envv;
  for (const auto& a : l.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envv.push_back(const_cast<char*>(e.c_str()));
  envv.push_back(nullptr);
  const UniqueFd devnull_fd(l.keep_output ? -1 : ::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (l.stderr_memfd) {
    (void)!ftruncate(l.stderr_memfd.get(), 0);
    lseek(l.stderr_memfd.get(), 0, SEEK_SET);
  }
  const char* path = l.path.c_str();
  // The child uses plain numbers: it only dups them and execs (or reports and exits).
  const int devnull = devnull_fd.get(), err_wfd = err_w.get(), audit_wfd = audit_w.get(), err_fd = l.stderr_memfd.get();

  s.t0_ns = now_ns();
  pid_t pid = fork();
  if (pid == 0) {
    if (traced) {
      if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) child_fail(err_wfd, step_ptrace);
      kill(getpid(), SIGSTOP);
    }
    if (devnull >= 0) {
      if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0) child_fail(err_wfd, step_stdio);
      if (dup2(err_fd >= 0 ? err_fd : devnull, 2) < 0) child_fail(err_wfd, step_stdio);
    }
    if (audit_wfd >= 0) fcntl(audit_wfd, F_SETFD, 0);
    execve(path, argv.data(), envv.data());
    child_fail(err_wfd, step_execve);
  }
  if (pid < 0) return Error{errno, "fork: " + errno_name(errno)};  // the owners close and keep errno
  s.pid = pid;
  s.error_pipe = std::move(err_r);
  s.audit_pipe = std::move(audit_r);
  s.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  return s;
}

std::optional<Error> child_error(const Started& s, const std::string& program) {
  ChildReport r;
  ssize_t n = ::read(s.error_pipe.get(), &r, sizeof r);
  if (n != static_cast<ssize_t>(sizeof r)) return std::nullopt;
  switch (r.step) {
    case step_ptrace:
      return Error{r.err, "ptrace(PTRACE_TRACEME): " + errno_name(r.err) +
                              ": ptrace is not permitted here (kernel.yama.ptrace_scope is 3, a seccomp filter or "
                              "container policy forbids it, or procforge itself is being traced); profile needs "
                              "ptrace: allow it, or time the command without phases (e.g. procforge bench, hyperfine)"};
    case step_stdio: return Error{r.err, "redirecting the program's stdio: " + errno_name(r.err)};
    default: return Error{r.err, "execve " + program + ": " + errno_name(r.err)};
  }
}

void close_started(Started& s) {
  s.error_pipe.reset();
  s.audit_pipe.reset();
  s.pidfd.reset();
}

std::string stderr_tail(int memfd) {
  if (memfd < 0) return {};
  struct stat st {};
  if (fstat(memfd, &st) != 0 || st.st_size <= 0) return {};
  off_t from = st.st_size > 2048 ? st.st_size - 2048 : 0;
  std::string buf(static_cast<std::size_t>(st.st_size - from), '\0');
  ssize_t n = pread(memfd, buf.data(), buf.size(), from);
  if (n <= 0) return {};
  buf.resize(static_cast<std::size_t>(n));
  while (!buf.empty() && (buf.back() == '\n' || buf.back() == '\r')) buf.pop_back();
  return buf;
}

// ---- Watchdog

Watchdog::Watchdog() : t_([this] { loop(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> g(m_);
    stop_ = true;
  }
  cv_.notify_all();
  t_.join();
}

void Watchdog::arm(int pidfd, std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> g(m_);
    pidfd_ = pidfd;
    fired_ = false;
    deadline_ = std::chrono::steady_clock::now() + timeout;
  }
  cv_.notify_all();
}

bool Watchdog::disarm() {
  std::lock_guard<std::mutex> g(m_);
  pidfd_ = -1;
  return fired_;
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> lk(m_);
  while (!stop_) {
    if (pidfd_ < 0) {
      cv_.wait(lk);
      continue;
    }
    if (cv_.wait_until(lk, deadline_) == std::cv_status::timeout && pidfd_ >= 0 &&
        std::chrono::steady_clock::now() >= deadline_) {
      // SIGKILL ends a tracee even in a ptrace stop; the tracer then reaps it.
      syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
      fired_ = true;
      pidfd_ = -1;
    }
  }
}

}  // namespace procforge::profile::detail
