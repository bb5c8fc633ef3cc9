// The child between clone and execve: the steps, in order, that turn a copy
// of the parent into the process the caller asked for.
//
// This code runs on a stack of its own while sharing the parent's memory
// (CLONE_VM|CLONE_VFORK), or in a fork()ed copy. Either way it follows the
// rules of glibc's sysdeps/unix/sysv/linux/spawni.c __spawni_child(): only
// system calls, nothing allocated, no lock taken, no C++ exception; the first
// failure is reported as {step, errno, index} and the child _exit(127)s
// (the POSIX "could not exec" status). It only reads the Block the parent
// built, except for the report and FdOp::moved, which are its to write.
//
// Order, and why:
//   signal handlers off first (a parent handler must never run here),
//   the user-namespace handshake, namespaces, cgroups (while still privileged),
//   session and terminal, descriptors (opened with the caller's privileges, like
//   a shell redirection), limits, then the bounding set, groups, gid, uid (uid
//   last: it drops the capabilities the others need; kernel/sys.c), ambient
//   capabilities, cwd (checked as the new user), PR_SET_PDEATHSIG (after the
//   uid change, which clears it: kernel/cred.c commit_creds()), no_new_privs
//   and seccomp (last: the filter may forbid what came before), the signal
//   mask, execve.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>

#include "spawn/plan.hpp"
#include "spawn/sys.hpp"

namespace procforge::spawn {

namespace {

// struct sigaction as the kernel takes it (include/linux/signal_types.h,
// x86_64 layout: handler, flags, restorer, mask).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  std::uint64_t mask;
};
constexpr long kSigsetSize = 8;  // _NSIG / 8
constexpr int kNsig = 64;

[[noreturn]] PF_CHILD_INLINE void die(Block* b, Step step, long err, int index = -1) {
  b->report.step = static_cast<int>(step);
  b->report.err = static_cast<int>(-err);
  b->report.index = index;
  if (b->err_fd >= 0) {
    Report r;
    r.step = static_cast<int>(step);
    r.err = static_cast<int>(-err);
    r.index = index;
    r.pid = static_cast<int>(sys::call(SYS_getpid));
    sys::call(SYS_write, b->err_fd, &r, sizeof r);
  }
  for (;;) sys::call(SYS_exit_group, 127);
}

PF_CHILD_INLINE void check(Block* b, long r, Step step, int index = -1) {
  if (r < 0) die(b, step, r, index);
}

PF_CHILD_INLINE void reset_signals(Block* b) {
  // CLONE_CLEAR_SIGHAND reset every handler but left SIG_IGN alone
  // (kernel/fork.c -> flush_signal_handlers(p, 0)); execve does the same. So
  // the loop is only needed when handlers may still be installed, or to turn
  // SIG_IGN back into SIG_DFL.
  if (!b->handlers_cleared || b->reset_dispositions) {
    for (int sig = 1; sig <= kNsig; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      KernelSigaction old{};
      if (sys::call(SYS_rt_sigaction, sig, nullptr, &old, kSigsetSize) < 0) continue;
      if (old.handler == reinterpret_cast<void*>(SIG_DFL)) continue;
      if (old.handler == reinterpret_cast<void*>(SIG_IGN) && !b->reset_dispositions) continue;
      KernelSigaction dfl{};
      check(b, sys::call(SYS_rt_sigaction, sig, &dfl, nullptr, kSigsetSize), Step::signals, sig);
    }
  }
  for (int i = 0; i < b->nignore; ++i) {
    KernelSigaction ign{};
    ign.handler = reinterpret_cast<void*>(SIG_IGN);
    check(b, sys::call(SYS_rt_sigaction, b->ignore[i], &ign, nullptr, kSigsetSize), Step::signals, b->ignore[i]);
  }
}

PF_CHILD_INLINE void wait_for_parent(Block* b) {
  if (b->sync_fd < 0) return;
  // The parent gives up by closing its write end; the child's own copy of it
  // must go first, or that EOF never comes and both wait for ever.
  if (b->sync_peer_fd >= 0) sys::call(SYS_close, b->sync_peer_fd);
  char go = 0;
  long r;
  do r = sys::call(SYS_read, b->sync_fd, &go, 1);
  while (r == -EINTR);
  if (r != 1) die(b, Step::sync, r < 0 ? r : -ECANCELED);
  sys::call(SYS_close, b->sync_fd);
}

PF_CHILD_INLINE void enter_namespaces(Block* b) {
  // A new time namespace cannot be given to a task that shares its mm, so it
  // is unshared here: it applies to children, and execve() moves the caller
  // into it (kernel/nsproxy.c, fs/exec.c timens_on_fork() since 5.18).
  if (b->unshare_time) check(b, sys::call(SYS_unshare, CLONE_NEWTIME), Step::unshare_time);
  if (b->hostname) check(b, sys::call(SYS_sethostname, b->hostname, b->hostname_len), Step::hostname);
  if (b->mount_proc) {
    // Mount events must not propagate back to the parent's namespace, and
    // the new /proc shows the new pid namespace.
    check(b, sys::call(SYS_mount, "none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr), Step::mount_private);
    check(b, sys::call(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
          Step::mount_proc);
  }
}

// Writing "0" to cgroup.procs moves the writer itself (kernel/cgroup/cgroup.c
// cgroup_procs_write_start(): pid 0 means current), whatever pid namespace it
// is in.
PF_CHILD_INLINE void join_one_cgroup(Block* b, const char* procs, int index) {
  long fd = sys::call(SYS_openat, AT_FDCWD, procs, O_WRONLY | O_CLOEXEC);
  check(b, fd, Step::cgroup_join, index);
  long r = sys::call(SYS_write, fd, "0", 1);
  sys::call(SYS_close, fd);
  check(b, r, Step::cgroup_join, index);
}

PF_CHILD_INLINE void join_cgroups(Block* b) {
  if (b->v2_procs && !b->born_in_cgroup) join_one_cgroup(b, b->v2_procs, -1);
  for (int i = 0; i < b->ncgroup_procs; ++i) join_one_cgroup(b, b->cgroup_procs[i], i);
}

PF_CHILD_INLINE void session(Block* b) {
  if (b->setsid) check(b, sys::call(SYS_setsid), Step::setsid);
  if (b->setpgid) check(b, sys::call(SYS_setpgid, 0, b->pgid), Step::setpgid);
  if (b->ctty) {
    long fd = sys::call(SYS_openat, AT_FDCWD, b->ctty, O_RDWR | O_NOCTTY | O_CLOEXEC);
    check(b, fd, Step::controlling_tty);
    long r = sys::call(SYS_ioctl, fd, TIOCSCTTY, 0);
    sys::call(SYS_close, fd);
    check(b, r, Step::controlling_tty);
  }
}

// One close_range; a kernel before 5.11 refuses CLOSE_RANGE_CLOEXEC with
// EINVAL, and then the fds are closed instead (flags is cleared for the rest).
PF_CHILD_INLINE void close_fds(Block* b, unsigned first, unsigned last, unsigned& flags) {
  long r = sys::call(SYS_close_range, first, last, flags);
  if (r == -EINVAL && flags) {
    flags = 0;
    r = sys::call(SYS_close_range, first, last, flags);
  }
  check(b, r, Step::close_fds);
}

// fd actions: every dup2 source is first copied to a close-on-exec fd at or
// above fd_floor (above every target), so that an earlier action can never
// overwrite a later action's source (the "dup2 chain" problem: 1->2, 2->1).
PF_CHILD_INLINE void descriptors(Block* b) {
  for (int i = 0; i < b->nfd_ops; ++i) {
    FdOp& op = b->fd_ops[i];
    if (op.kind != FdOp::dup || op.source == op.fd) continue;
    long r = sys::call(SYS_fcntl, op.source, F_DUPFD_CLOEXEC, b->fd_floor);
    check(b, r, Step::fd_move, i);
    op.moved = static_cast<int>(r);
  }
  for (int i = 0; i < b->nfd_ops; ++i) {
    const FdOp& op = b->fd_ops[i];
    switch (op.kind) {
      case FdOp::dup:
        // dup2(fd, fd) keeps FD_CLOEXEC; clear it by hand (POSIX adddup2).
        if (op.source == op.fd) check(b, sys::call(SYS_fcntl, op.fd, F_SETFD, 0), Step::fd_dup, i);
        else check(b, sys::call(SYS_dup3, op.moved, op.fd, 0), Step::fd_dup, i);
        break;
      case FdOp::open: {
        long fd = sys::call(SYS_openat, AT_FDCWD, op.path, op.flags & ~O_CLOEXEC, op.mode);
        check(b, fd, Step::fd_open, i);
        if (fd != op.fd) {
          long r = sys::call(SYS_dup3, fd, op.fd, 0);
          sys::call(SYS_close, fd);
          check(b, r, Step::fd_open, i);
        }
        break;
      }
      case FdOp::close: {
        long r = sys::call(SYS_close, op.fd);
        if (r != -EBADF) check(b, r, Step::fd_close, i);  // closing a closed fd is not an error (posix_spawn)
        break;
      }
    }
  }
  if (b->close_other_fds) {
    // close_range over the gaps between the fds to keep (fs/file.c, 5.9).
    // Closing walks every slot of the fd table, open or not (2.5 us for a
    // 256-slot table, growing with the table); CLOSE_RANGE_CLOEXEC (5.11)
    // only sets bits in the close-on-exec bitmap, and execve's
    // do_close_on_exec() then closes exactly the open ones. So when an
    // execve follows, mark; when a user-space exec replaces it, close.
    unsigned flags = b->replace ? 0 : CLOSE_RANGE_CLOEXEC;
    unsigned lo = 3;
    for (int i = 0; i < b->nkept; ++i) {
      unsigned k = b->kept[i];
      if (k > lo) close_fds(b, lo, k - 1, flags);
      if (k + 1 > lo) lo = k + 1;
    }
    close_fds(b, lo, ~0U, flags);
  }
  for (int i = 0; i < b->nkeep_fds; ++i) check(b, sys::call(SYS_fcntl, b->keep_fds[i], F_SETFD, 0), Step::keep_fd, i);
}

PF_CHILD_INLINE void limits(Block* b) {
  for (int i = 0; i < b->nrlimits; ++i) {
    const RlimitOp& rl = b->rlimits[i];
    std::uint64_t lim[2] = {rl.soft, rl.hard};
    check(b, sys::call(SYS_prlimit64, 0, rl.resource, lim, nullptr), Step::rlimit, i);
  }
  if (b->umask >= 0) sys::call(SYS_umask, b->umask);
  if (b->set_nice) check(b, sys::call(SYS_setpriority, PRIO_PROCESS, 0, b->nice), Step::nice);
  if (b->sched_policy >= 0) {
    int param = b->sched_priority;  // struct sched_param { int sched_priority; }
    check(b, sys::call(SYS_sched_setscheduler, 0, b->sched_policy, &param), Step::sched);
  }
}

PF_CHILD_INLINE void credentials(Block* b) {
  if (b->drop_bounding) {
    for (int cap = 0; cap <= b->cap_last && cap < 64; ++cap) {
      if (b->bounding_keep & (std::uint64_t{1} << cap)) continue;
      check(b, sys::call(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0), Step::capbset, cap);
    }
  }
  // Ambient capabilities must be in the permitted set, which a change to a
  // non-zero uid empties unless KEEPCAPS is set (security/commoncap.c
  // cap_emulate_setxuid()).
  if (b->ambient && b->set_uid) check(b, sys::call(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0), Step::keepcaps);
  if (b->set_groups) check(b, sys::call(SYS_setgroups, b->ngroups, b->groups), Step::setgroups);
  if (b->set_gid) check(b, sys::call(SYS_setresgid, b->gid, b->gid, b->gid), Step::setgid);
  if (b->set_uid) check(b, sys::call(SYS_setresuid, b->uid, b->uid, b->uid), Step::setuid);
  if (b->ambient) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    check(b, sys::call(SYS_capget, &hdr, data), Step::capset);
    for (int w = 0; w < 2; ++w) {
      data[w].inheritable |= static_cast<std::uint32_t>(b->ambient >> (32 * w));
      data[w].effective = data[w].permitted;
    }
    check(b, sys::call(SYS_capset, &hdr, data), Step::capset);
    for (int cap = 0; cap < 64; ++cap)
      if (b->ambient & (std::uint64_t{1} << cap))
        check(b, sys::call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), Step::ambient, cap);
  }
}

PF_CHILD_INLINE void parent_death(Block* b) {
  if (!b->pdeathsig) return;
  check(b, sys::call(SYS_prctl, PR_SET_PDEATHSIG, b->pdeathsig, 0, 0, 0), Step::pdeathsig);
  // The parent may have died before the prctl: then no signal will come, and
  // getppid() names a reaper instead (the re-check of util-linux#1490, Go).
  if (sys::call(SYS_getppid) != b->expected_ppid) {
    sys::call(SYS_kill, sys::call(SYS_getpid), b->pdeathsig);
    die(b, Step::parent_died, -ESRCH);
  }
}

PF_CHILD_INLINE void restrictions(Block* b) {
  if (b->no_new_privs) check(b, sys::call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), Step::no_new_privs);
  if (b->nfilter) {
    struct sock_fprog prog;
    prog.len = b->nfilter;
    prog.filter = const_cast<struct sock_filter*>(b->filter);
    check(b, sys::call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), Step::seccomp);
  }
}

// execvp's rules (glibc posix/execvpe.c): try each candidate; EACCES is
// remembered and the search goes on; "not here" errors go on; any other
// error ends the search. ENOEXEC is reported, not retried with /bin/sh
// (posix_spawnp does not either, since glibc 2.15).
[[noreturn]] PF_CHILD_INLINE void exec_program(Block* b) {
  if (b->replace) {
    // reset_signals() only ever sets SIG_DFL or SIG_IGN with no flags and no
    // mask, so what CLONE_CLEAR_SIGHAND flushed stays flushed. With a
    // replacement, descriptors() closed (not marked) the other fds, and no
    // later step opens one.
    ExecResetsDone done;
    done.signal_handlers_flushed = b->handlers_cleared;
    done.other_fds_closed = b->close_other_fds;
    done.kept_fds = b->kept;
    done.n_kept_fds = b->nkept;
    b->replace(b->replace_arg, done);  // does not return
    die(b, Step::execve, -ENOEXEC, -1);
  }
  int eacces = -1;
  long last_err = -ENOENT;
  for (int i = 0; i < b->ncandidates; ++i) {
    long r = sys::call(SYS_execve, b->candidates[i], b->argv, b->envp);
    switch (r) {
      case -EACCES:
        if (eacces < 0) eacces = i;
        continue;
      case -ENOENT:
      case -ENOTDIR:
      case -ESTALE:
      case -ENODEV:
      case -ETIMEDOUT: last_err = r; continue;
      default: die(b, Step::execve, r, i);
    }
  }
  if (eacces >= 0) die(b, Step::execve, -EACCES, eacces);
  die(b, Step::execve, last_err, -1);  // -1: "not found", named after the program as asked
}

}  // namespace

PF_CHILD_CODE void child_main(Block* b) {
  reset_signals(b);
  wait_for_parent(b);
  enter_namespaces(b);
  join_cgroups(b);
  session(b);
  descriptors(b);
  limits(b);
  credentials(b);
  if (b->cwd) check(b, sys::call(SYS_chdir, b->cwd), Step::chdir);
  parent_death(b);
  restrictions(b);
  check(b, sys::call(SYS_rt_sigprocmask, SIG_SETMASK, &b->mask, nullptr, kSigsetSize), Step::sigmask);
  exec_program(b);
}

PF_CHILD_CODE int child_entry(void* block) { child_main(static_cast<Block*>(block)); }

}  // namespace procforge::spawn
