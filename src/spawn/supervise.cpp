// Supervising a running child as a shell and timeout(1) do: signals sent to
// the supervisor are passed on to the child, and a timeout ends the child's
// whole process group (`sh -c 'sleep 8 & wait'` leaves no sleep behind).
//
// The signals arrive through a signalfd (fs/signalfd.c): the caller blocked
// them before the spawn, so they stay pending for the process and the
// signalfd reads them with their siginfo. si_code tells who sent one: SI_USER
// for kill(2) and SI_KERNEL for the terminal's ^C, ^\ and hang-up
// (drivers/tty/n_tty.c isig() -> kill_pgrp(), which reaches every process of
// the foreground group, the child included while it shares ours).
// The child's exit is read from its pidfd, or by polling waitid(WNOWAIT) when
// the strategy gave none; the child is reaped only once supervision ends, so
// its pid (and the process group named after it) cannot be reused meanwhile.
#include <dirent.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/unique_fd.hpp"
#include "procforge/spawn.hpp"
#include "spawn/plan.hpp"

namespace procforge::spawn {

namespace {

using clock = std::chrono::steady_clock;

bool exited_without_reaping(const Child& c) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(c.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == c.pid();
}

// Where a forwarded signal goes: the child's group when it leads one, the
// child otherwise. A terminal's signal already reached a child that is in our
// process group, so it is not sent twice.
void forward(Child& c, const signalfd_siginfo& si) {
  const int sig = static_cast<int>(si.ssi_signo);
  if (si.ssi_code == SI_KERNEL && getpgid(c.pid()) == getpgrp()) return;
  (void)c.kill(sig, c.leads_group());
}

// The timeout's signals reach the whole group, as timeout(1) sends them; a
// stopped group gets SIGCONT after any signal that does not resume it.
void signal_for_timeout(Child& c, int sig) {
  (void)c.kill(sig, c.leads_group());
  if (sig != SIGKILL && sig != SIGCONT) (void)c.kill(SIGCONT, c.leads_group());
}

// Whether a process other than the (exited, not yet reaped) leader is still
// in the process group PGID: /proc/PID/stat field 5 (fs/proc/array.c).
bool group_has_others(pid_t pgid) {
  DIR* d = opendir("/proc");
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0 || pid == pgid) continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
        state != 'Z') {
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

}  // namespace

Result<Child::Exit> supervise(Child& child, const Supervision& how) {
  UniqueFd signals;
  if (!sigisemptyset(&how.forward)) {
    signals.reset(signalfd(-1, &how.forward, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals) return Error::call(ErrorStep::wait, errno, "creating a signalfd to forward signals");
  }
  const auto start = clock::now();
  bool step_due = how.timeout.has_value();  // a timeout step is still to come, at `next`
  clock::time_point next = start + how.timeout.value_or(std::chrono::nanoseconds{});
  bool timed_out = false, killed = false;

  // Passes on every signal queued so far (the signalfd is non-blocking).
  auto pass_on = [&](bool to_group) {
    signalfd_siginfo si;
    if (!signals) return;
    while (read(signals.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (to_group) (void)child.kill(static_cast<int>(si.ssi_signo), true);
      else forward(child, si);
    }
  };

  for (;;) {
    int wait_ms = -1;
    if (step_due) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next - clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
    }
    if (child.pidfd() < 0) wait_ms = wait_ms < 0 ? 10 : std::min(wait_ms, 10);
    struct pollfd pfd[2] = {{child.pidfd(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    int n = poll(pfd, 2, wait_ms);
    if (n < 0 && errno != EINTR)
      return Error::call(ErrorStep::wait, errno, "waiting for pid", std::to_string(child.pid()));
    if (n > 0 && (pfd[1].revents & POLLIN)) pass_on(false);
    if (child.pidfd() >= 0 ? n > 0 && (pfd[0].revents & POLLIN) : exited_without_reaping(child)) break;
    if (step_due && clock::now() >= next) {
      step_due = false;
      if (!timed_out) {
        timed_out = true;
        signal_for_timeout(child, how.timeout_signal);
        if (how.kill_after) step_due = true, next = clock::now() + *how.kill_after;
      } else if (!killed) {
        killed = true;
        signal_for_timeout(child, SIGKILL);
      }
    }
  }
  // The leader went first: the rest of its group gets until kill_after too,
  // and the signals that arrive meanwhile go to it. The leader stays
  // unreaped, so its pid, the group's id, cannot be given to another process.
  if (timed_out && !killed && step_due && child.leads_group()) {
    while (group_has_others(child.pid()) && clock::now() < next) {
      struct pollfd pfd {
        signals.get(), POLLIN, 0
      };
      if (poll(&pfd, signals ? 1 : 0, 5) > 0) pass_on(true);
    }
    if (group_has_others(child.pid())) {
      (void)child.kill(SIGKILL, true);
      killed = true;
    }
  }
  auto exit = child.wait();
  // What arrives once the child is gone has no one to go to: it is taken
  // from the queue here, so that the caller can unblock the signals.
  if (signals) {
    signalfd_siginfo si;
    while (read(signals.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    }
  }
  if (exit) {
    exit->timed_out = timed_out;
    exit->killed_after_timeout = killed;
  }
  return exit;
}

}  // namespace procforge::spawn
