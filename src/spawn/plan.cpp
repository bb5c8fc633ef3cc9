// Building the flat pre-clone block from the Options.
//
// Everything that may allocate, read files or search happens here, in the
// parent: argv and envp as NULL-terminated arrays, the PATH candidates (the
// search glibc's execvp does in posix/execvpe.c, with the PATH of the child's
// environment, or _CS_PATH "/bin:/usr/bin" when it has none), the fd plan
// with the range close_range must spare, the signal mask as the kernel's
// 64-bit sigset, credentials, limits and the seccomp program.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string_view>

#include "common/kernel_release.hpp"
#include "procforge/environment.hpp"
#include "procforge/exec.hpp"
#include "spawn/plan.hpp"

extern char** environ;

namespace procforge::spawn {

namespace {

constexpr int kKnownNamespaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
                                 CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWTIME;

// The child's environment. The parent's, unedited, is passed as it is
// (environ itself, as posix_spawn callers do): nothing is copied, which is
// most of what a default spawn would otherwise allocate. As with posix_spawn
// and environ, another thread's setenv() during the spawn is the caller's
// race: it may move or free the array the child reads until its execve.
Status plan_env(Plan& p) {
  const Options& o = p.opts;
  if (o.inherit_env && o.unset_env.empty() && o.set_env.empty()) {
    p.block.envp = environ;
    return ok_status();
  }
  auto env = child_environment(o);
  if (!env) return env.error();
  // Every view starts a NUL-terminated string: an entry of environ or a
  // caller's std::string.
  for (std::string_view kv : *env) p.envp.push_back(const_cast<char*>(kv.data()));
  p.envp.push_back(nullptr);
  p.block.envp = p.envp.data();
  return ok_status();
}

// The files execve() will be tried on, in order: execvp's candidates
// (exec::path_candidates(), in the PATH of the child's environment).
void add_candidates(Plan& p) {
  const std::string& name = p.opts.path;
  if (!p.opts.search_path || name.empty() || name.find('/') != std::string::npos) {
    p.candidates.push_back(name.c_str());
    return;
  }
  p.searched = true;
  for (auto& file : exec::path_candidates(name, env::lookup(p.block.envp, "PATH").value_or(exec::kDefaultPath)))
    if (file.size() < PATH_MAX) p.candidates.push_back(p.keep(std::move(file)));
  if (p.candidates.empty()) p.candidates.push_back(name.c_str());
}

std::uint64_t kernel_sigset(const sigset_t& set) {
  std::uint64_t k = 0;
  for (int sig = 1; sig <= 64; ++sig)
    if (sigismember(&set, sig) == 1) k |= std::uint64_t{1} << (sig - 1);
  return k;
}

// Since 5.16 a core dump stops only the dumping thread group (commit
// "coredump: Limit coredumps to a single thread group"); before, it killed
// every task sharing the mm, so a CLONE_VM child dumping core during its
// setup took the caller with it (fs/coredump.c zap_threads()).
bool coredump_spares_mm_sharers() { return kernel_release().at_least(5, 16); }

int cap_last_cap() {
  static const int last = [] {
    int v = 40;
    std::ifstream("/proc/sys/kernel/cap_last_cap") >> v;
    return v;
  }();
  return last;
}

Status plan_stdio(Plan& p, int fd, const Stdio& s) {
  FdOp op;
  op.fd = fd;
  switch (s.kind) {
    case Stdio::Kind::inherit: return ok_status();
    case Stdio::Kind::null:
      op.kind = FdOp::open;
      op.path = "/dev/null";
      op.flags = fd == 0 ? O_RDONLY : O_WRONLY;
      break;
    case Stdio::Kind::file:
      op.kind = FdOp::open;
      op.path = s.path.c_str();
      op.flags = s.flags ? s.flags : (fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
      op.mode = 0666;  // and the umask, as a shell redirection
      break;
    case Stdio::Kind::fd:
      op.kind = FdOp::dup;
      op.source = s.fd;
      break;
    case Stdio::Kind::pipe: {
      int ends[2];
      if (pipe2(ends, O_CLOEXEC) != 0)
        return Error::call(ErrorStep::clone, errno, "creating a pipe for fd", std::to_string(fd));
      // [0] read end, [1] write end; the child reads stdin and writes the others.
      p.parent_pipes[fd][0].reset(fd == 0 ? ends[0] : ends[1]);
      p.parent_pipes[fd][1].reset(fd == 0 ? ends[1] : ends[0]);
      op.kind = FdOp::dup;
      op.source = p.parent_pipes[fd][0].get();
      break;
    }
  }
  p.fd_ops.push_back(op);
  return ok_status();
}

Status plan_fds(Plan& p) {
  const Options& o = p.opts;
  for (int fd = 0; fd < 3; ++fd) {
    const Stdio& s = fd == 0 ? o.stdin_ : fd == 1 ? o.stdout_ : o.stderr_;
    if (auto st = plan_stdio(p, fd, s); !st) return st;
  }
  for (const auto& a : o.fd_actions) {
    if (a.fd < 0) return options_error(EBADF, "fd action with target fd " + std::to_string(a.fd));
    FdOp op;
    op.fd = a.fd;
    switch (a.kind) {
      case FdAction::Kind::dup2:
        if (a.source < 0)
          return options_error(EBADF, "dup2 onto fd " + std::to_string(a.fd) + " from fd " + std::to_string(a.source));
        op.kind = FdOp::dup;
        op.source = a.source;
        break;
      case FdAction::Kind::open:
        op.kind = FdOp::open;
        op.path = a.path.c_str();
        op.flags = a.flags;
        op.mode = a.mode;
        break;
      case FdAction::Kind::close: op.kind = FdOp::close; break;
    }
    p.fd_ops.push_back(op);
  }
  int top = 2;
  for (const auto& op : p.fd_ops) {
    top = std::max(top, op.fd);
    if (op.kind != FdOp::close && op.fd >= 3) p.kept.push_back(static_cast<unsigned>(op.fd));
  }
  for (int fd : o.keep_fds) {
    if (fd < 0) return options_error(EBADF, "keeping fd " + std::to_string(fd));
    // A replacement's own files (a user-space exec maps them) must not be
    // overwritten by an fd action on the same number.
    if (o.exec_replacement &&
        std::any_of(p.fd_ops.begin(), p.fd_ops.end(), [&](const FdOp& op) { return op.fd == fd; }))
      return options_error(EINVAL,
                           "fd " + std::to_string(fd) +
                               " is kept for the exec replacement and is also the target of an "
                               "fd action (open its files above every target: loader::Options::descriptor_floor)");
    p.keep_fds.push_back(fd);
    if (fd >= 3) p.kept.push_back(static_cast<unsigned>(fd));
  }
  p.block.fd_floor = top + 1;
  return ok_status();
}

Status plan_credentials(Plan& p) {
  const Options& o = p.opts;
  Block& b = p.block;
  if (o.groups) {
    p.groups.assign(o.groups->begin(), o.groups->end());
    b.set_groups = true;
  } else if ((o.uid || o.gid) && !p.deny_setgroups) {
    b.set_groups = true;  // drop the caller's supplementary groups (as su, setpriv --clear-groups)
  }
  if (p.groups.size() > 65536) return options_error(EINVAL, "more than NGROUPS_MAX (65536) supplementary groups");
  b.ngroups = static_cast<int>(p.groups.size());
  if (o.gid) b.set_gid = true, b.gid = *o.gid;
  if (o.uid) b.set_uid = true, b.uid = *o.uid;
  b.cap_last = cap_last_cap();
  if (o.capability_bounding) {
    b.drop_bounding = true;
    for (int cap : *o.capability_bounding) {
      if (cap < 0 || cap > b.cap_last)
        return options_error(EINVAL, "capability " + std::to_string(cap) + " out of range");
      b.bounding_keep |= std::uint64_t{1} << cap;
    }
  }
  for (int cap : o.ambient_capabilities) {
    if (cap < 0 || cap > b.cap_last)
      return options_error(EINVAL, "ambient capability " + std::to_string(cap) + " out of range");
    b.ambient |= std::uint64_t{1} << cap;
  }
  b.no_new_privs = o.no_new_privs;
  if (o.seccomp_filter.size() > 4096)  // BPF_MAXINSNS
    return options_error(EINVAL, "seccomp filter longer than 4096 instructions");
  for (std::uint64_t w : o.seccomp_filter) {
    // The word is struct sock_filter read as little-endian: code, jt, jf, k.
    struct sock_filter f {};
    f.code = static_cast<std::uint16_t>(w & 0xffff);
    f.jt = static_cast<std::uint8_t>((w >> 16) & 0xff);
    f.jf = static_cast<std::uint8_t>((w >> 24) & 0xff);
    f.k = static_cast<std::uint32_t>(w >> 32);
    p.filter.push_back(f);
  }
  b.nfilter = static_cast<unsigned short>(p.filter.size());
  return ok_status();
}

Status plan_namespaces(Plan& p) {
  const Options& o = p.opts;
  Block& b = p.block;
  if (o.namespaces & ~kKnownNamespaces) return options_error(EINVAL, "unknown namespace flags");
  p.clone_flags = o.namespaces & ~CLONE_NEWTIME;
  b.unshare_time = (o.namespaces & CLONE_NEWTIME) != 0;
  if (!o.hostname.empty()) {
    if (!(o.namespaces & CLONE_NEWUTS))
      return options_error(EINVAL, "setting the hostname needs a new uts namespace (or it would rename the host)");
    b.hostname = o.hostname.c_str();
    b.hostname_len = o.hostname.size();
  }
  b.mount_proc = o.mount_proc && (o.namespaces & CLONE_NEWPID) && (o.namespaces & CLONE_NEWNS);
  if (o.exec_replacement) {
    b.replace = o.exec_replacement;
    b.replace_arg = o.exec_replacement_arg;
    p.needs_fork = true;
    p.fork_reason = "a user-space exec replaces the child's whole address space, so it needs the fork strategy";
  }
  if (o.namespaces & CLONE_NEWUSER) {
    // The parent writes the id maps while the child waits: the child must not
    // share the parent's memory with the parent suspended (vfork) meanwhile.
    p.needs_fork = true;
    p.fork_reason = "a user namespace needs the fork strategy (the parent writes the id maps while the child waits)";
    p.deny_setgroups = !o.groups.has_value();
  }
  return ok_status();
}

}  // namespace

Status make_plan(Plan& p) {
  const Options& opts = p.opts;
  Block& b = p.block;

  // argv, envp, and where execve() will look. The strings are the caller's
  // (opts outlives the spawn; the child has exec'd or failed when it returns).
  if (opts.argv.empty()) {
    p.argv.push_back(const_cast<char*>(opts.path.c_str()));
  } else {
    p.argv.reserve(opts.argv.size() + 1);
    for (const auto& a : opts.argv) p.argv.push_back(const_cast<char*>(a.c_str()));
  }
  p.argv.push_back(nullptr);
  if (auto st = plan_env(p); !st) return st.error();
  add_candidates(p);
  if (!opts.cwd.empty()) b.cwd = opts.cwd.c_str();

  if (auto st = plan_namespaces(p); !st) return st.error();
  if (auto st = plan_fds(p); !st) return st.error();
  if (auto st = plan_credentials(p); !st) return st.error();

  // Signals: the mask the program starts with.
  if (opts.reset_signal_mask) {
    b.mask = opts.signal_mask ? kernel_sigset(*opts.signal_mask) : 0;
  } else {
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, nullptr, &cur);
    b.mask = kernel_sigset(cur);
  }
  b.reset_dispositions = opts.reset_signal_dispositions;
  for (int sig : opts.ignore_signals) {
    if (sig <= 0 || sig > 64 || sig == SIGKILL || sig == SIGSTOP)
      return options_error(EINVAL, "cannot ignore signal " + std::to_string(sig));
    p.ignore.push_back(sig);
  }
  // Without blocking, the child of clone3 starts with the calling thread's
  // mask and meets default actions until it installs its own mask and
  // SIG_IGN entries: fine when it asked for no blocked and no ignored
  // signal, or for the caller's own mask, as a signal then ends the same
  // way blocked or not. Otherwise a signal it asked to block or ignore could
  // kill it during its setup: block them all around the clone then.
  p.block_signals = !coredump_spares_mm_sharers() || !p.ignore.empty() || (opts.reset_signal_mask && b.mask != 0);

  // Session, limits, scheduling.
  b.setsid = opts.setsid;
  if (opts.process_group) {
    if (*opts.process_group < 0) return options_error(EINVAL, "process group " + std::to_string(*opts.process_group));
    b.setpgid = true;
    b.pgid = *opts.process_group;
  }
  if (opts.controlling_tty) b.ctty = opts.controlling_tty->c_str();
  if (opts.pdeathsig) {
    if (*opts.pdeathsig <= 0 || *opts.pdeathsig > 64)
      return options_error(EINVAL, "parent-death signal " + std::to_string(*opts.pdeathsig));
    b.pdeathsig = *opts.pdeathsig;
    // In a new pid namespace the parent is outside it: getppid() is 0.
    b.expected_ppid = (opts.namespaces & CLONE_NEWPID) ? 0 : getpid();
  }
  for (const auto& rl : opts.rlimits) {
    if (rl.resource < 0 || rl.resource >= RLIM_NLIMITS)
      return options_error(EINVAL, "unknown rlimit " + std::to_string(rl.resource));
    p.rlimits.push_back({rl.resource, rl.soft, rl.hard});
  }
  if (opts.umask) b.umask = static_cast<int>(*opts.umask & 0777);
  if (opts.nice) b.set_nice = true, b.nice = *opts.nice;
  if (opts.sched_policy) b.sched_policy = *opts.sched_policy, b.sched_priority = opts.sched_priority;

  // Point the block at the storage, now that it no longer moves.
  std::sort(p.kept.begin(), p.kept.end());
  p.kept.erase(std::unique(p.kept.begin(), p.kept.end()), p.kept.end());
  b.candidates = p.candidates.data();
  b.ncandidates = static_cast<int>(p.candidates.size());
  b.argv = p.argv.data();
  b.fd_ops = p.fd_ops.data();
  b.nfd_ops = static_cast<int>(p.fd_ops.size());
  b.keep_fds = p.keep_fds.data();
  b.nkeep_fds = static_cast<int>(p.keep_fds.size());
  b.close_other_fds = opts.close_other_fds;
  b.ignore = p.ignore.data();
  b.nignore = static_cast<int>(p.ignore.size());
  b.rlimits = p.rlimits.data();
  b.nrlimits = static_cast<int>(p.rlimits.size());
  b.groups = p.groups.data();
  b.filter = p.filter.data();
  return ok_status();
}

// The kept list is finished by clone.cpp (it adds the error pipe), so the
// pointer is set there: see finish_kept().
void finish_kept(Plan& p, int extra_fd) {
  if (extra_fd >= 3) {
    p.kept.insert(std::lower_bound(p.kept.begin(), p.kept.end(), static_cast<unsigned>(extra_fd)),
                  static_cast<unsigned>(extra_fd));
  }
  p.block.kept = p.kept.data();
  p.block.nkept = static_cast<int>(p.kept.size());
}

Result<std::vector<std::string_view>> child_environment(const Options& o) {
  std::vector<std::string_view> env =
      o.inherit_env ? env::views(environ) : std::vector<std::string_view>(o.envp.begin(), o.envp.end());
  if (auto st = env::apply_edits(env, o.unset_env, o.set_env); !st) return st.error();
  return env;
}

}  // namespace procforge::spawn
