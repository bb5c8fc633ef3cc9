// The Child handle: waiting, killing, and never leaving a zombie.
//
// The pidfd (clone3/clone CLONE_PIDFD, or pidfd_open() after vfork and
// posix_spawn) makes every operation race-free against pid reuse: poll() on
// it reports the exit (kernel/pid.c pidfd_poll()), waitid(P_PIDFD) reaps
// exactly this child (5.4), and the raw waitid system call fills a struct
// rusage as wait4 does (kernel/exit.c kernel_waitid(); glibc's waitid()
// wrapper does not expose that argument). A process group is signalled with
// pidfd_send_signal(PIDFD_SIGNAL_PROCESS_GROUP) (6.9), else kill(-pgid).
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "spawn/child_access.hpp"
#include "spawn/plan.hpp"

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)  // include/uapi/linux/pidfd.h, 6.9
#endif

namespace procforge::spawn {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

void Child::take(Child& o) noexcept {
  pid_ = std::exchange(o.pid_, -1);
  pidfd_ = std::exchange(o.pidfd_, -1);
  strategy_ = o.strategy_;
  timings_ = o.timings_;
  started_ = o.started_;
  reaped_ = std::exchange(o.reaped_, false);
  leads_group_ = std::exchange(o.leads_group_, false);
  stdin_fd = std::exchange(o.stdin_fd, -1);
  stdout_fd = std::exchange(o.stdout_fd, -1);
  stderr_fd = std::exchange(o.stderr_fd, -1);
  cgroups_created = std::exchange(o.cgroups_created, {});
  reaper_ = std::move(o.reaper_);
}

Child::Child(Child&& o) noexcept { take(o); }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    Child old;
    old.take(*this);  // killed and reaped (if still running) when old goes
    take(o);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    (void)kill(SIGKILL);
    (void)wait();
  }
  close_fd(pidfd_);
  close_fd(stdin_fd);
  close_fd(stdout_fd);
  close_fd(stderr_fd);
  pid_ = -1;
  reaped_ = true;
}

Status Child::kill(int sig, bool whole_group) {
  if (pid_ <= 0 || reaped_) return Error{ErrorStep::wait, ESRCH, {}, "signalling a child that was already reaped"};
  if (whole_group) {
    if (!leads_group_)
      return Error{ErrorStep::wait,
                   EINVAL,
                   {},
                   "the child does not lead a process group (spawn it with setsid or process_group 0)"};
    if (pidfd_ >= 0 && syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, PIDFD_SIGNAL_PROCESS_GROUP) == 0)
      return ok_status();
    if (::kill(-pid_, sig) != 0)
      return Error::call(ErrorStep::wait, errno, "signalling process group", std::to_string(pid_));
    return ok_status();
  }
  if (pidfd_ >= 0) {
    if (syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) != 0)
      return Error::call(ErrorStep::wait, errno, "signalling pid", std::to_string(pid_));
    return ok_status();
  }
  if (::kill(pid_, sig) != 0) return Error::call(ErrorStep::wait, errno, "signalling pid", std::to_string(pid_));
  return ok_status();
}

Result<Child::Exit> Child::wait(std::optional<std::chrono::milliseconds> timeout) {
  using clock = std::chrono::steady_clock;
  if (pid_ <= 0 || reaped_) return Error{ErrorStep::wait, ECHILD, {}, "waiting for a child that was already reaped"};
  Exit ex;
  if (timeout) {
    const auto deadline = clock::now() + *timeout;
    bool exited = false;
    while (!exited) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left < 0) break;
      if (pidfd_ >= 0) {
        struct pollfd pfd {
          pidfd_, POLLIN, 0
        };
        int n = poll(&pfd, 1, static_cast<int>(std::min<long long>(left + 1, 1 << 30)));
        if (n > 0) exited = true;
        else if (n < 0 && errno != EINTR)
          return Error::call(ErrorStep::wait, errno, "polling pidfd of pid", std::to_string(pid_));
      } else {
        siginfo_t info{};
        if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
          exited = true;
        else usleep(1000);
      }
    }
    if (!exited) {
      ex.timed_out = true;
      (void)kill(SIGKILL, leads_group_);
    }
  }
  if (reaper_) {
    auto reported = reaper_->reap(pid_);
    if (!reported) return reported.error();
    reaped_ = true;
    reported->timed_out = reported->timed_out || ex.timed_out;
    reported->wall = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started_);
    close_fd(pidfd_);
    return reported;
  }
  siginfo_t info{};
  struct rusage ru {};
  long r;
  do {
    r = pidfd_ >= 0 ? syscall(SYS_waitid, P_PIDFD, pidfd_, &info, WEXITED, &ru)
                    : syscall(SYS_waitid, P_PID, pid_, &info, WEXITED, &ru);
  } while (r != 0 && errno == EINTR);
  if (r != 0) return Error::call(ErrorStep::wait, errno, "waiting for pid", std::to_string(pid_));
  reaped_ = true;
  ex.wall = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started_);
  ex.usage = ru;
  ex.exited = info.si_code == CLD_EXITED;
  ex.status = info.si_status;
  ex.core_dumped = info.si_code == CLD_DUMPED;
  close_fd(pidfd_);
  return ex;
}

}  // namespace procforge::spawn
