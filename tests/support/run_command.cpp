// See run_command.hpp. The child runs between fork and exec, so it only
// calls async-signal-safe functions on data prepared before the fork.
#include "run_command.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace procforge::testsupport {

namespace {

constexpr int kSetupFailed = 126;
constexpr const char* kSetupMarker = "run_command: ";

struct ChildPlan {
  std::vector<char*> argv, envp;
  std::vector<gid_t> groups;
  int in = -1, out = -1, err = -1;  // the child's ends; in < 0: /dev/null
};

[[noreturn]] void child_main(const ChildPlan& plan, const CommandOptions& opts) {
  if (plan.in >= 0) {
    ::dup2(plan.in, 0);
  } else if (const int devnull = ::open("/dev/null", O_RDONLY); devnull >= 0) {
    ::dup2(devnull, 0);
  }
  ::dup2(plan.out, 1);
  ::dup2(plan.err, 2);
  // A step that fails says which on stderr and exits with kSetupFailed.
  auto say = [](const char* text) { (void)!::write(2, text, std::strlen(text)); };
  auto setup_failed = [&](const char* step) {
    const char* name = strerrorname_np(errno);
    say(kSetupMarker);
    say(step);
    say(": ");
    say(name ? name : "?");
    ::_exit(kSetupFailed);
  };
  if (!opts.bind_mounts.empty()) {
    if (::unshare(CLONE_NEWNS) != 0) setup_failed("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) setup_failed("making / private");
    for (const auto& [from, to] : opts.bind_mounts)
      if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) setup_failed("bind mount");
  }
  if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) setup_failed("chdir");
  if (opts.uid) {
    const gid_t g = opts.gid;
    if (::setgroups(plan.groups.size(), plan.groups.data()) != 0 || ::setresgid(g, g, g) != 0 ||
        ::setresuid(*opts.uid, *opts.uid, *opts.uid) != 0)
      setup_failed("setting the uid and gid");
  }
  ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  ::_exit(127);
}

// Writes stdin_text and reads stdout and stderr as each becomes ready, until
// both outputs reach EOF or the deadline passes (then the child is killed).
// SIGPIPE stays blocked meanwhile: a child that exits without reading its
// stdin must give EPIPE, not kill the test.
void pump(pid_t pid, int in, int out, int err, const CommandOptions& opts, CommandResult& r) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  std::size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.timeout_ms);
  pollfd fds[3] = {{out, POLLIN, 0}, {err, POLLIN, 0}, {in, POLLOUT, 0}};
  auto close_slot = [&](pollfd& f) {
    ::close(f.fd);
    f.fd = -1;
  };
  char buf[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close_slot(fds[i]);
      }
    }
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::write(fds[2].fd, opts.stdin_text.data() + written, opts.stdin_text.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EINTR && errno != EAGAIN) || written == opts.stdin_text.size()) close_slot(fds[2]);
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close_slot(f);
  const timespec now{0, 0};
  while (::sigtimedwait(&pipe_only, nullptr, &now) == SIGPIPE) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void close_all(std::initializer_list<int> fds) {
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
}

// Reaps pid: its exit status, or -1 and the signal that killed it.
void reap(pid_t pid, int& exit_code, int& signal) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) signal = WTERMSIG(status);
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& opts) {
  CommandResult r;
  int out[2], err[2], in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) return r;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    close_all({out[0], out[1]});
    return r;
  }
  if (!opts.stdin_text.empty() && ::pipe2(in, O_CLOEXEC) != 0) {
    close_all({out[0], out[1], err[0], err[1]});
    return r;
  }
  ChildPlan plan;
  for (const auto& a : argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  if (opts.inherit_env)
    for (char** e = environ; *e != nullptr; ++e) plan.envp.push_back(*e);
  for (const auto& e : opts.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  plan.groups = opts.groups.value_or(std::vector<gid_t>{opts.gid});
  plan.in = in[0];
  plan.out = out[1];
  plan.err = err[1];
  const pid_t pid = ::fork();
  if (pid < 0) {
    close_all({out[0], out[1], err[0], err[1], in[0], in[1]});
    return r;
  }
  if (pid == 0) child_main(plan, opts);
  close_all({out[1], err[1], in[0]});
  if (in[1] >= 0) ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  r.started = true;
  pump(pid, in[1], out[0], err[0], opts, r);
  reap(pid, r.exit_code, r.signal);
  if (r.exit_code == kSetupFailed && r.err.rfind(kSetupMarker, 0) == 0) r.started = false;
  return r;
}

ForkResult run_forked(const std::function<int(int fd)>& body) {
  ForkResult r;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return r;
  const pid_t pid = ::fork();
  if (pid < 0) {
    close_all({p[0], p[1]});
    return r;
  }
  if (pid == 0) {
    ::close(p[0]);
    ::_exit(body(p[1]));
  }
  ::close(p[1]);
  r.started = true;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  reap(pid, r.exit_code, r.signal);
  return r;
}

}  // namespace procforge::testsupport
