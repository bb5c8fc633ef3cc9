// The strategies that create the child: clone3 and clone with CLONE_VM|
// CLONE_VFORK on a stack of their own, vfork(), fork (a clone without
// CLONE_VM), and glibc's posix_spawn.
//
// The shared-memory strategies follow glibc's sysdeps/unix/sysv/linux/spawni.c:
//  - the child runs on an mmap'd stack sized like glibc's (argv slack + a
//    fixed reserve, rounded to pages; glibc's 32 KiB reserve is "in case the
//    compiler's stack checking is enabled", BZ 21253) but with a 64 KiB
//    reserve, as our child_main unoptimised has a 20 KiB frame, and with a
//    PROT_NONE guard page below it so that an overflow faults instead of
//    writing into the parent's memory. Untouched pages cost nothing;
//  - where the child may still have the caller's handlers (legacy clone,
//    vfork, fork), the calling thread blocks every signal, glibc-internal
//    ones included, around the clone (raw rt_sigprocmask: pthread_sigmask
//    would filter SIGCANCEL/SIGSETXID), so no handler can run in the child
//    before the child resets them; the mask is restored afterwards. clone3
//    with CLONE_CLEAR_SIGHAND needs it only for the child's requested mask
//    and ignored signals (Plan::block_signals): the kernel clears handlers;
//  - with CLONE_VFORK the parent resumes when the child has exec'd or exited,
//    then reads the child's report from the Block; a failed child is reaped
//    with a blocking waitid (the kernel releases the vfork waiter in
//    exit_mm(), before the task is a zombie: glibc commit aa95a2414e).
// clone3 falls back to clone on ENOSYS and on EPERM (seccomp profiles that
// refuse clone3: moby/moby#42680); legacy clone cannot clear the handlers
// or place the child in a cgroup, so the child does both itself.
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "common/unique_fd.hpp"
#include "spawn/plan.hpp"
#include "spawn/sys.hpp"

namespace procforge::spawn {

#if defined(__x86_64__)
// clone3 with a new stack cannot go through syscall(): the child would return
// into the caller's frame on a stack that does not hold it. This stub does
// what glibc's sysdeps/unix/sysv/linux/x86_64/clone3.S does: in the child
// (rax == 0) it calls fn(arg) on the new stack and exits with its result.
// fn and arg travel in r8/r9, which the syscall preserves.
extern "C" long procforge_clone3(struct clone_args* args, unsigned long size, int (*fn)(void*), void* arg);
__asm__(R"(
  .text
  .globl procforge_clone3
  .hidden procforge_clone3
  .type procforge_clone3,@function
procforge_clone3:
  .cfi_startproc
  endbr64
  mov %rdx, %r8
  mov %rcx, %r9
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  ret
1:
  .cfi_undefined %rip
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov %eax, %edi
  mov $231, %eax
  syscall
  hlt
  .cfi_endproc
  .size procforge_clone3, .-procforge_clone3
  .section .note.GNU-stack,"",@progbits
  .text
)");
constexpr bool kHaveClone3Stub = true;
#else
extern "C" long procforge_clone3(struct clone_args*, unsigned long, int (*)(void*), void*) { return -ENOSYS; }
constexpr bool kHaveClone3Stub = false;
#endif

namespace {

constexpr std::uint64_t kAllSignals = ~std::uint64_t{0};

// The calling thread's mask, all blocked between block() and the destructor.
class SignalsBlocked {
 public:
  SignalsBlocked() { sys::call(SYS_rt_sigprocmask, SIG_SETMASK, &kAllSignals, &old_, 8); }
  ~SignalsBlocked() { sys::call(SYS_rt_sigprocmask, SIG_SETMASK, &old_, nullptr, 8); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  std::uint64_t old_ = 0;
};

class Stack {
 public:
  // glibc takes 32 KiB; an unoptimised (-O0) child_main alone has a ~20 KiB frame.
  static std::size_t needed(std::size_t argc) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t want = argc * sizeof(void*) + 512 + 64 * 1024;
    return (want + page - 1) / page * page;
  }
  explicit Stack(std::size_t argc) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    size_ = needed(argc);
    guard_ = page;
    void* m = mmap(nullptr, size_ + guard_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) {
      err_ = errno;
      return;
    }
    base_ = static_cast<char*>(m);
    mprotect(base_, guard_, PROT_NONE);
  }
  ~Stack() {
    if (base_) munmap(base_, size_ + guard_);
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  [[nodiscard]] int error() const { return err_; }
  [[nodiscard]] char* low() const { return base_ + guard_; }
  [[nodiscard]] char* top() const { return base_ + guard_ + size_; }  // 16-byte aligned: page aligned
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  char* base_ = nullptr;
  std::size_t size_ = 0, guard_ = 0;
  int err_ = 0;
};

struct Attempt {
  long r = -ENOSYS;  // pid, or -errno of the clone itself
  int pidfd = -1;
};

void reap(pid_t pid, int pidfd) {
  siginfo_t info{};
  while (pidfd >= 0 ? syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, nullptr) != 0
                    : waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0) {
    if (errno != EINTR) break;
  }
  if (pidfd >= 0) close(pidfd);
}

int open_pidfd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// clone3's CLONE_INTO_CGROUP, when the child is born in its cgroup2 directory.
std::uint64_t cgroup_flag(const Plan& p) { return p.cgroup.v2_fd ? CLONE_INTO_CGROUP : 0; }
std::uint64_t cgroup_fd(const Plan& p) { return p.cgroup.v2_fd ? static_cast<std::uint64_t>(p.cgroup.v2_fd.get()) : 0; }

Attempt clone3_vm(Plan& p, const Stack& st) {
  Attempt a;
  if (!kHaveClone3Stub) return a;
  struct clone_args args {};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND | CLONE_PIDFD | cgroup_flag(p) |
               static_cast<std::uint64_t>(p.clone_flags);
  args.pidfd = reinterpret_cast<std::uint64_t>(&a.pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<std::uint64_t>(st.low());
  args.stack_size = st.size();
  args.cgroup = cgroup_fd(p);
  p.block.handlers_cleared = true;
  p.block.born_in_cgroup = p.cgroup.v2_fd.valid();
  a.r = procforge_clone3(&args, sizeof args, child_entry, &p.block);
  return a;
}

Attempt clone_vm(Plan& p, const Stack& st) {
  Attempt a;
  p.block.handlers_cleared = false;
  p.block.born_in_cgroup = false;
  int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | p.clone_flags | SIGCHLD;
  // CLONE_PIDFD with the legacy call stores the pidfd through parent_tid (kernel/fork.c).
  int r = clone(child_entry, st.top(), flags, &p.block, &a.pidfd);
  a.r = r < 0 ? -errno : r;
  return a;
}

// vfork() runs the child on the parent's stack, below this frame: this frame
// must hold nothing the child could overwrite, hence noinline and no state.
__attribute__((noinline)) PF_CHILD_CODE long vfork_child(Block* b) {
  pid_t pid = vfork();
  if (pid == 0) child_main(b);
  return pid < 0 ? -errno : pid;
}

Attempt vfork_vm(Plan& p) {
  Attempt a;
  p.block.handlers_cleared = false;
  p.block.born_in_cgroup = false;
  a.r = vfork_child(&p.block);
  return a;
}

// The shared-memory strategies: one clone, then the child's report.
Result<Launched> run_shared(Plan& p, Strategy s) {
  finish_kept(p, -1);
  // One stack per thread, kept between spawns: with CLONE_VFORK this thread
  // sleeps until the child has exec'd or exited, so the stack is free again
  // when the clone returns (saves an mmap, an mprotect, a fault and a munmap).
  thread_local std::unique_ptr<Stack> cached;
  if (!cached || cached->error() || cached->size() < Stack::needed(p.argv.size()))
    cached = std::make_unique<Stack>(p.argv.size());
  const Stack& st = *cached;
  if (st.error()) {
    const int err = st.error();
    cached.reset();
    return Error::call(ErrorStep::clone, err, "mapping the child's stack");
  }
  p.block.report.step = 0;
  p.block.report.err = 0;
  p.block.report.index = -1;

  Attempt a;
  Strategy ran = s;
  if (s == Strategy::automatic || s == Strategy::clone3) {
    // Blocking is not needed for the handlers here: CLONE_CLEAR_SIGHAND has
    // the kernel reset every handler in the child as it is created
    // (kernel/fork.c copy_sighand()), so none of the caller's can run on the
    // shared memory. (glibc 2.36's posix_spawn does not use the flag, hence
    // its blocking.) It is still needed where the child asked to block or
    // ignore signals it would otherwise meet with their default action
    // during its setup, and on kernels where a core dump in the child kills
    // the caller too: Plan::block_signals.
    std::optional<SignalsBlocked> blocked;
    if (p.block_signals) blocked.emplace();
    a = clone3_vm(p, st);
    ran = Strategy::clone3;
    if (s == Strategy::automatic && (a.r == -ENOSYS || a.r == -EPERM)) {
      if (!blocked) blocked.emplace();  // legacy clone: the handlers are still there
      a = clone_vm(p, st);
      ran = Strategy::clone_vfork;
    }
  } else {
    SignalsBlocked blocked;
    a = s == Strategy::clone_vfork ? clone_vm(p, st) : vfork_vm(p);
  }
  if (a.r < 0) {
    int err = static_cast<int>(-a.r);
    if (ran == Strategy::clone3 && p.cgroup.v2_fd)
      return Error::call(ErrorStep::clone, err, "clone3 into cgroup", p.cgroup.v2_dir);
    return Error::call(ErrorStep::clone, err,
                       ran == Strategy::clone3        ? "clone3"
                       : ran == Strategy::clone_vfork ? "clone"
                                                      : "vfork");
  }
  Launched l{static_cast<pid_t>(a.r), a.pidfd, ran};
  Report rep;
  rep.step = p.block.report.step;
  rep.err = p.block.report.err;
  rep.index = p.block.report.index;
  if (rep.err != 0) {
    reap(l.pid, l.pidfd);
    return describe(p, rep);
  }
  if (l.pidfd < 0) l.pidfd = open_pidfd(l.pid);
  return l;
}

// fork: a clone without CLONE_VM, returning twice like fork(); the child's
// report comes back through a close-on-exec pipe (EOF = it exec'd). With a
// user namespace the child first waits on a second pipe while the parent
// writes its id maps.
Result<Launched> run_forked(Plan& p) {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) return Error::call(ErrorStep::clone, errno, "creating the error pipe");
  UniqueFd err_read(ends[0]);
  // The write end goes above every fd the child sets up, so no fd action hits it.
  UniqueFd err_write(fcntl(ends[1], F_DUPFD_CLOEXEC, p.block.fd_floor));
  close(ends[1]);
  if (!err_write) return Error::call(ErrorStep::clone, errno, "moving the error pipe");
  UniqueFd sync_read, sync_write;
  if (p.opts.namespaces & CLONE_NEWUSER) {
    if (pipe2(ends, O_CLOEXEC) != 0) return Error::call(ErrorStep::clone, errno, "creating the sync pipe");
    sync_read.reset(ends[0]);
    sync_write.reset(ends[1]);
  }
  // The child gets the raw numbers (it never returns, so these owners close
  // nothing in it); the parent's copies close as their owners go.
  p.block.err_fd = err_write.get();
  p.block.sync_fd = sync_read.get();
  p.block.sync_peer_fd = sync_write.get();
  finish_kept(p, err_write.get());

  long pid;
  int pidfd = -1;
  {
    SignalsBlocked blocked;
    struct clone_args args {};
    args.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND | cgroup_flag(p) | static_cast<std::uint64_t>(p.clone_flags);
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.cgroup = cgroup_fd(p);
    p.block.handlers_cleared = true;
    p.block.born_in_cgroup = p.cgroup.v2_fd.valid();
    pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) child_main(&p.block);
    if (pid < 0 && (errno == ENOSYS || errno == EPERM)) {
      p.block.handlers_cleared = false;
      p.block.born_in_cgroup = false;
      pid = syscall(SYS_clone, CLONE_PIDFD | p.clone_flags | SIGCHLD, nullptr, &pidfd, nullptr, nullptr);
      if (pid == 0) child_main(&p.block);
    }
    if (pid < 0) pid = -errno;
  }
  err_write.reset();
  sync_read.reset();
  p.block.err_fd = p.block.sync_fd = p.block.sync_peer_fd = -1;
  if (pid < 0) return Error::call(ErrorStep::clone, static_cast<int>(-pid), "clone (fork)");
  Launched l{static_cast<pid_t>(pid), pidfd, Strategy::fork};

  if (sync_write) {
    Status maps = write_id_maps(p, l.pid);
    if (maps.ok() && write(sync_write.get(), "g", 1) != 1)
      maps = Error::call(ErrorStep::spawn_setup, errno, "releasing the child");
    sync_write.reset();  // on failure, EOF tells the child to give up
    if (!maps) {
      reap(l.pid, l.pidfd);
      return maps.error();
    }
  }
  Report rep;
  ssize_t n;
  do n = read(err_read.get(), &rep, sizeof rep);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof rep)) {
    reap(l.pid, l.pidfd);
    if (rep.step == static_cast<int>(Step::sync))
      return Error{ErrorStep::spawn_setup, ECANCELED, {}, "the parent could not set up the user namespace"};
    return describe(p, rep);
  }
  return l;
}

// posix_spawn: glibc does the clone; only what its attributes and file
// actions can express is accepted.
Status posix_spawn_refuses(const Plan& p) {
  const Options& o = p.opts;
  auto no = [](const std::string& what) {
    return options_error(ENOTSUP, "the posix_spawn strategy cannot " + what + "; use the automatic strategy");
  };
  if (o.namespaces) return no("create namespaces");
  if (o.cgroup) return no("place the child in a cgroup (glibc 2.36 has no POSIX_SPAWN_SETCGROUP)");
  if (o.uid || o.gid || o.groups) return no("change uid, gid or groups");
  if (o.capability_bounding || !o.ambient_capabilities.empty()) return no("change capabilities");
  if (o.no_new_privs || !o.seccomp_filter.empty()) return no("set no_new_privs or a seccomp filter");
  if (!o.rlimits.empty()) return no("set rlimits");
  if (o.umask || o.nice) return no("set the umask or nice value");
  if (o.pdeathsig) return no("set a parent-death signal");
  if (o.controlling_tty) return no("set a controlling terminal");
  if (!o.ignore_signals.empty()) return no("ignore signals");
  if (o.close_other_fds && !p.kept.empty())
    return no("close the other fds while keeping fds above 2 (addclosefrom_np closes everything from one fd up)");
  return ok_status();
}

Result<Launched> run_posix_spawn(Plan& p) {
  if (auto st = posix_spawn_refuses(p); !st) return st.error();
  // posix_spawn gives back one errno and no step: check the parent's fds here
  // so that a closed one is not reported as the exec's EBADF.
  for (std::size_t i = 0; i < p.fd_ops.size(); ++i)
    if (p.fd_ops[i].kind == FdOp::dup && fcntl(p.fd_ops[i].source, F_GETFD) < 0) {
      return describe(p, Report{static_cast<int>(Step::fd_dup), errno, static_cast<int>(i)});
    }
  for (std::size_t i = 0; i < p.keep_fds.size(); ++i)
    if (fcntl(p.keep_fds[i], F_GETFD) < 0)
      return describe(p, Report{static_cast<int>(Step::keep_fd), errno, static_cast<int>(i)});
  // Likewise the working directory: its chdir() failure would come back as
  // posix_spawn's errno with no step. (The child may still fail it if the
  // directory changes in between; then the exec's step is named.)
  if (!p.opts.cwd.empty()) {
    struct stat st {};
    int err = stat(p.opts.cwd.c_str(), &st) != 0      ? errno
              : !S_ISDIR(st.st_mode)                  ? ENOTDIR
              : access(p.opts.cwd.c_str(), X_OK) != 0 ? errno
                                                      : 0;
    if (err) return describe(p, Report{static_cast<int>(Step::chdir), err, -1});
  }
  const Options& o = p.opts;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  // A source that an earlier action overwrites is first copied above every
  // target, as child.cpp does for all of them.
  std::vector<int> source(p.fd_ops.size(), -1);
  int spare = p.block.fd_floor;
  for (std::size_t i = 0; i < p.fd_ops.size(); ++i) {
    const FdOp& op = p.fd_ops[i];
    source[i] = op.source;
    if (op.kind != FdOp::dup || op.source == op.fd) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (p.fd_ops[j].fd == op.source) {
        posix_spawn_file_actions_adddup2(&fa, op.source, spare);
        source[i] = spare++;
        break;
      }
  }
  for (std::size_t i = 0; i < p.fd_ops.size(); ++i) {
    const FdOp& op = p.fd_ops[i];
    if (op.kind == FdOp::dup) posix_spawn_file_actions_adddup2(&fa, source[i], op.fd);
    else if (op.kind == FdOp::open) posix_spawn_file_actions_addopen(&fa, op.fd, op.path, op.flags, op.mode);
    else posix_spawn_file_actions_addclose(&fa, op.fd);
  }
  for (int fd = p.block.fd_floor; fd < spare; ++fd) posix_spawn_file_actions_addclose(&fa, fd);
  // dup2 onto itself clears FD_CLOEXEC in glibc's child (spawni.c, POSIX 2017).
  for (int fd : p.keep_fds) posix_spawn_file_actions_adddup2(&fa, fd, fd);
  if (o.close_other_fds) posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());

  short flags = POSIX_SPAWN_SETSIGMASK;
  sigset_t mask, def;
  sigemptyset(&mask);
  for (int sig = 1; sig <= 64; ++sig)
    if (p.block.mask & (std::uint64_t{1} << (sig - 1))) sigaddset(&mask, sig);
  posix_spawnattr_setsigmask(&attr, &mask);
  if (o.reset_signal_dispositions) {
    sigfillset(&def);
    posix_spawnattr_setsigdefault(&attr, &def);
    flags |= POSIX_SPAWN_SETSIGDEF;
  }
  if (o.setsid) flags |= POSIX_SPAWN_SETSID;
  if (o.process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, *o.process_group);
  }
  if (o.sched_policy) {
    flags |= POSIX_SPAWN_SETSCHEDULER;
    posix_spawnattr_setschedpolicy(&attr, *o.sched_policy);
    struct sched_param sp {};
    sp.sched_priority = o.sched_priority;
    posix_spawnattr_setschedparam(&attr, &sp);
  }
  posix_spawnattr_setflags(&attr, flags);

  // The PATH candidates, with execvp's rules (see child.cpp exec_program()).
  pid_t pid = -1;
  int rc = ENOENT, eacces = -1, failed = -1;
  for (std::size_t i = 0; i < p.candidates.size(); ++i) {
    rc = posix_spawn(&pid, p.candidates[i], &fa, &attr, p.argv.data(), p.block.envp);
    if (rc == 0) break;
    if (rc == EACCES) {
      if (eacces < 0) eacces = static_cast<int>(i);
    } else if (rc != ENOENT && rc != ENOTDIR && rc != ESTALE && rc != ENODEV && rc != ETIMEDOUT) {
      failed = static_cast<int>(i);
      break;
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    // posix_spawn returns one errno for every step; it is reported as the exec's.
    Report rep;
    rep.step = static_cast<int>(Step::execve);
    rep.err = failed >= 0 ? rc : eacces >= 0 ? EACCES : rc;
    rep.index = failed >= 0 ? failed : eacces;
    return describe(p, rep);
  }
  return Launched{pid, open_pidfd(pid), Strategy::posix_spawn};
}

}  // namespace

Result<Launched> launch(Plan& p, Strategy s) {
  const bool ns = p.clone_flags != 0 || p.block.unshare_time;
  if (p.opts.never_fork && s == Strategy::fork)
    return options_error(EPERM, "never_fork is set and the fork strategy was asked for");
  if (p.needs_fork) {
    if (s != Strategy::automatic && s != Strategy::fork)
      return options_error(EINVAL, p.fork_reason + ", not " + strategy_name(s));
    if (p.opts.never_fork) return options_error(EPERM, p.fork_reason + " and never_fork is set");
    return run_forked(p);
  }
  switch (s) {
    case Strategy::automatic:
    case Strategy::clone3:
    case Strategy::clone_vfork: return run_shared(p, s);
    case Strategy::vfork:
      if (ns) return options_error(EINVAL, "the vfork strategy cannot create namespaces (use clone3)");
      return run_shared(p, s);
    case Strategy::fork: return run_forked(p);
    case Strategy::posix_spawn: return run_posix_spawn(p);
  }
  return options_error(EINVAL, "unknown strategy");
}

}  // namespace procforge::spawn
