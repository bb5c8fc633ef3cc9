#include "oracle.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "procforge/result.hpp"

namespace procforge::testsupport {
namespace {

// Everything the child needs, built before fork(): between fork and execve
// the child only makes raw system calls on this flat data.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  bool keep_credentials;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  std::size_t ngroups;
  bool addr_no_randomize;
  rlim_t rlimit_stack;
  bool trace;
  int out_fd;            // write end of the stdout pipe
  int stderr_fd;         // write end of the stderr pipe, -1: /dev/null
  int err_fd;            // write end of the CLOEXEC errno pipe
  ReplaceImage replace;  // null: execve
  const void* replace_ctx;
};

[[noreturn]] void child_fail(int err_fd, int step, int err) {
  int msg[2] = {step, err};
  (void)!::write(err_fd, msg, sizeof msg);
  ::_exit(126);
}

enum Step { kStepExec = 0, kStepSetup = 1 };

[[noreturn]] void child_main(const ChildPlan& p) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (p.trace) {
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) child_fail(p.err_fd, kStepSetup, errno);
    ::raise(SIGSTOP);  // let the parent set PTRACE_O_TRACEEXEC
  }
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull < 0) child_fail(p.err_fd, kStepSetup, errno);
  if (::dup2(devnull, 0) < 0 || ::dup2(p.out_fd, 1) < 0 || ::dup2(p.stderr_fd >= 0 ? p.stderr_fd : devnull, 2) < 0)
    child_fail(p.err_fd, kStepSetup, errno);
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_STACK, &rl) != 0) child_fail(p.err_fd, kStepSetup, errno);
  rl.rlim_cur = p.rlimit_stack;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max) rl.rlim_max = rl.rlim_cur;
  if (::setrlimit(RLIMIT_STACK, &rl) != 0) child_fail(p.err_fd, kStepSetup, errno);
  if (p.addr_no_randomize && ::personality(ADDR_NO_RANDOMIZE) < 0) child_fail(p.err_fd, kStepSetup, errno);
  if (p.cwd && ::chdir(p.cwd) != 0) child_fail(p.err_fd, kStepSetup, errno);
  if (!p.keep_credentials) {
    if (::setgroups(p.ngroups, p.groups) != 0 || ::setresgid(p.gid, p.gid, p.gid) != 0 ||
        ::setresuid(p.uid, p.uid, p.uid) != 0)
      child_fail(p.err_fd, kStepSetup, errno);
  }
  if (devnull > 2) ::close(devnull);
  if (p.replace) child_fail(p.err_fd, kStepExec, p.replace(p.replace_ctx));
  ::execve(p.path, p.argv, p.envp);
  child_fail(p.err_fd, kStepExec, errno);
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void drain(int fd, std::string& out, bool& eof) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) eof = true;
    return;  // EAGAIN or error
  }
}

std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    if (c == 'n') {
      out.push_back('\n');
    } else if (c == 'x' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

ProbeReport parse_probe_report(const std::string& out) {
  ProbeReport r;
  std::istringstream in(out);
  std::string line;
  if (!std::getline(in, line) || line != "probe_args v1") return r;
  while (std::getline(in, line)) {
    if (line == "end") {
      r.ran = true;
      break;
    }
    if (line.rfind("argv[", 0) == 0) {
      auto eq = line.find("]=");
      if (eq != std::string::npos) r.argv.push_back(unescape(line.substr(eq + 2)));
    } else if (line.rfind("envc ", 0) == 0) {
      r.envc = std::stoul(line.substr(5));
    } else if (line.rfind("auxv ", 0) == 0) {
      std::istringstream f(line.substr(5));
      std::string type, value;
      f >> type >> value;
      r.auxv.emplace_back(std::stoull(type), std::stoull(value, nullptr, 16));
    } else if (line.rfind("rsp ", 0) == 0) {
      std::istringstream f(line.substr(4));
      std::string value;
      f >> value;
      r.rsp = std::stoull(value, nullptr, 16);
    }
  }
  return r;
}

OracleResult run_exec(const OracleRequest& req) { return run_child(req, nullptr, nullptr); }

OracleResult run_child(const OracleRequest& req, ReplaceImage replace, const void* ctx) {
  OracleResult res;
  auto argv = c_strings(req.argv);
  auto envp = c_strings(req.envp);
  int out_pipe[2], err_pipe[2], stderr_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      (req.capture_stderr && ::pipe2(stderr_pipe, O_CLOEXEC) != 0)) {
    res.setup_error = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  ChildPlan plan{req.path.c_str(),
                 req.argv_null ? nullptr : argv.data(),
                 envp.data(),
                 req.cwd.empty() ? nullptr : req.cwd.c_str(),
                 req.keep_credentials,
                 req.uid,
                 req.gid,
                 req.groups.data(),
                 req.groups.size(),
                 req.addr_no_randomize,
                 req.rlimit_stack,
                 req.trace,
                 out_pipe[1],
                 stderr_pipe[1],
                 err_pipe[1],
                 replace,
                 ctx};
  pid_t pid = ::fork();
  if (pid < 0) {
    res.setup_error = std::string("fork: ") + std::strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], stderr_pipe[0], stderr_pipe[1]})
      if (fd >= 0) ::close(fd);
    return res;
  }
  if (pid == 0) child_main(plan);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  bool out_eof = false, stderr_eof = stderr_pipe[0] < 0;
  if (stderr_pipe[1] >= 0) {
    ::close(stderr_pipe[1]);
    ::fcntl(stderr_pipe[0], F_SETFL, O_NONBLOCK);
  }
  // Both output pipes, drained as they fill (a child blocked on a full pipe never exits).
  auto pump = [&](int timeout) {
    pollfd pfd[2] = {{out_pipe[0], POLLIN, 0}, {stderr_pipe[0], POLLIN, 0}};
    if (out_eof) pfd[0].fd = -1;
    if (stderr_eof) pfd[1].fd = -1;
    ::poll(pfd, 2, timeout);
    if (!out_eof) drain(out_pipe[0], res.out, out_eof);
    if (!stderr_eof) drain(stderr_pipe[0], res.err_out, stderr_eof);
  };

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.timeout_ms);
  bool options_set = false;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG | __WALL);
    if (w == pid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) break;
      if (WIFSTOPPED(status)) {
        int sig = WSTOPSIG(status);
        int event = status >> 16;
        int deliver = 0;
        if (event == PTRACE_EVENT_EXEC) {
          res.exec_succeeded = true;
          if (req.capture_image && !res.image) {
            ExecImage image;
            if (std::string why = read_exec_image(pid, &image); why.empty()) {
              res.image = std::move(image);
            } else if (why.rfind(kImageNotDumpable, 0) == 0 && ::geteuid() != 0) {
              res.image_hidden = why;
            } else if (res.setup_error.empty()) {
              res.setup_error = "at the exec stop: " + why;
            }
          }
        } else if (sig == SIGSTOP && !options_set) {
          options_set = true;
          res.exec_known = ::ptrace(PTRACE_SETOPTIONS, pid, nullptr,
                                    reinterpret_cast<void*>(PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) == 0;
        } else if (sig != SIGTRAP) {
          deliver = sig;
        }
        ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(deliver)));
        continue;
      }
    } else if (w < 0 && errno != EINTR) {
      res.setup_error = std::string("waitpid: ") + std::strerror(errno);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline && !res.timed_out) {
      res.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    if (!out_eof || !stderr_eof) {
      pump(2);
    } else {
      ::usleep(500);
    }
  }
  // The pipe may still hold data (or a grandchild may hold it open: then stop
  // waiting at the deadline).
  while ((!out_eof || !stderr_eof) && std::chrono::steady_clock::now() < deadline) pump(10);
  ::close(out_pipe[0]);
  if (stderr_pipe[0] >= 0) ::close(stderr_pipe[0]);
  int msg[2] = {0, 0};
  ssize_t n = ::read(err_pipe[0], msg, sizeof msg);
  ::close(err_pipe[0]);

  if (n == static_cast<ssize_t>(sizeof msg)) {
    if (msg[0] == kStepSetup) {
      res.setup_error = std::string("child setup: ") + std::strerror(msg[1]);
      return res;
    }
    res.outcome = OracleOutcome::error;
    res.err = msg[1];
    res.exec_known = true;
    res.exec_succeeded = false;
    return res;
  }
  if (WIFSIGNALED(status)) {
    res.outcome = OracleOutcome::killed;
    res.signal = WTERMSIG(status);
  } else {
    res.outcome = OracleOutcome::ok;
    res.exit_status = WEXITSTATUS(status);
  }
  if (!req.trace) res.exec_known = false;
  res.probe = parse_probe_report(res.out);
  return res;
}

std::string describe(const OracleResult& r) {
  if (!r.setup_error.empty()) return "harness failure: " + r.setup_error;
  switch (r.outcome) {
    case OracleOutcome::error: return "error " + errno_name(r.err);
    case OracleOutcome::killed: {
      std::string s = "killed ";
      s += r.signal == SIGSEGV ? "SIGSEGV" : ("signal " + std::to_string(r.signal));
      if (r.timed_out) s += " (timeout)";
      if (r.exec_known) s += r.exec_succeeded ? " (after exec)" : " (during exec)";
      return s;
    }
    case OracleOutcome::ok: return "ok exit " + std::to_string(r.exit_status);
  }
  return "?";
}

}  // namespace procforge::testsupport
