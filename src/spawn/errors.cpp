// The child's report in words: "setting uid 1000: EPERM",
// "execve /x/y: ENOENT". The step says what the child was doing, the index
// which object (an fd action, an rlimit, a PATH candidate); the errno is the
// kernel's, unchanged, and common refusals get a sentence saying what to do.
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <fmt/format.h>

#include <span>
#include <string_view>

#include "common/unique_fd.hpp"
#include "procforge/format.hpp"
#include "spawn/plan.hpp"

namespace procforge::spawn {

namespace {

std::string limit_text(std::uint64_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

std::string fd_op_text(const Plan& p, int index) {
  if (index < 0 || static_cast<std::size_t>(index) >= p.fd_ops.size()) return "setting up fds";
  const FdOp& op = p.fd_ops[static_cast<std::size_t>(index)];
  switch (op.kind) {
    case FdOp::dup:
      return op.source == op.fd ? fmt::format("keeping fd {} open", op.fd)
                                : fmt::format("duplicating fd {} onto fd {}", op.source, op.fd);
    case FdOp::open: return fmt::format("opening {} onto fd {}", op.path, op.fd);
    case FdOp::close: return fmt::format("closing fd {}", op.fd);
  }
  return "setting up fds";
}

std::string ids_text(std::span<const gid_t> ids) { return ids.empty() ? "none" : join(ids, ","); }

// The program an execve report concerns.
std::string execve_object(const Plan& p, int index) {
  // After a PATH search that found nothing, name the program as asked.
  if (index < 0) return p.searched || p.candidates.empty() ? p.opts.path : std::string(p.candidates[0]);
  const auto ux = static_cast<std::size_t>(index);
  return ux < p.candidates.size() ? p.candidates[ux] : p.opts.path;
}

// The cgroup a join report concerns: the cgroup2 directory (index -1) or a v1 one.
std::string joined_cgroup(const Plan& p, int index) {
  if (index < 0) return p.cgroup.v2_dir;
  const auto ux = static_cast<std::size_t>(index);
  return ux < p.cgroup.v1_dirs.size() ? p.cgroup.v1_dirs[ux] : "?";
}

std::string step_text(const Plan& p, Step step, int index) {
  const Options& o = p.opts;
  const auto ux = static_cast<std::size_t>(index);
  switch (step) {
    case Step::none: return "spawning";
    case Step::sync: return "waiting for the parent to write the user namespace id maps";
    case Step::signals: return fmt::format("setting the disposition of signal {}", index);
    case Step::unshare_time: return "entering a new time namespace";
    case Step::hostname: return "setting the hostname " + o.hostname;
    case Step::mount_private: return "making mounts private (mount --make-rprivate /)";
    case Step::mount_proc: return "mounting a new proc on /proc";
    case Step::cgroup_join: return "joining cgroup " + joined_cgroup(p, index);
    case Step::setsid: return "creating a session (setsid)";
    case Step::setpgid: return fmt::format("setting process group {}", p.block.pgid);
    case Step::controlling_tty: return "making " + o.controlling_tty.value_or("?") + " the controlling terminal";
    case Step::fd_move: return fd_op_text(p, index) + " (moving the source out of the way)";
    case Step::fd_dup:
    case Step::fd_open:
    case Step::fd_close: return fd_op_text(p, index);
    case Step::close_fds: return "closing inherited fds (close_range)";
    case Step::keep_fd:
      return fmt::format("keeping fd {} open across exec", ux < p.keep_fds.size() ? p.keep_fds[ux] : -1);
    case Step::rlimit:
      if (ux < p.rlimits.size())
        return fmt::format("setting rlimit {} to {}:{}", rlimit_name(p.rlimits[ux].resource),
                           limit_text(p.rlimits[ux].soft), limit_text(p.rlimits[ux].hard));
      return "setting an rlimit";
    case Step::nice: return fmt::format("setting nice {}", p.block.nice);
    case Step::sched:
      return fmt::format("setting scheduler policy {} priority {}", p.block.sched_policy, p.block.sched_priority);
    case Step::capbset: return fmt::format("dropping capability {} from the bounding set", index);
    case Step::keepcaps: return "keeping capabilities across the uid change (PR_SET_KEEPCAPS)";
    case Step::setgroups:
      if (o.groups) return "setting supplementary groups " + ids_text(p.groups);
      // Implied by a change of ids: name the change the caller asked for.
      return o.uid ? fmt::format("setting uid {} (dropping the supplementary groups first)", *o.uid)
                   : fmt::format("setting gid {} (dropping the supplementary groups first)", o.gid.value_or(0));
    case Step::setgid: return fmt::format("setting gid {}", p.block.gid);
    case Step::setuid: return fmt::format("setting uid {}", p.block.uid);
    case Step::capset: return "setting the inheritable capabilities (capset)";
    case Step::ambient: return fmt::format("raising ambient capability {}", index);
    case Step::chdir: return "changing directory to " + o.cwd;
    case Step::pdeathsig: return fmt::format("setting the parent-death signal {}", p.block.pdeathsig);
    case Step::parent_died: return "checking the parent is alive (it exited before PR_SET_PDEATHSIG)";
    case Step::no_new_privs: return "setting no_new_privs";
    case Step::seccomp: return "installing the seccomp filter";
    case Step::sigmask: return "setting the signal mask";
    case Step::warm_enter: return "giving the warm instance its arguments and environment (prctl PR_SET_MM_MAP)";
    case Step::execve: return "execve " + execve_object(p, index);
  }
  return "spawning";
}

// Whether setgroups(2) is refused in the child's user namespace whatever its
// capabilities: "deny" in /proc/PID/setgroups (kernel/user_namespace.c
// userns_may_setgroups()). A new namespace's file is the parent's to write
// (namespaces.cpp); otherwise the child shares the caller's namespace.
bool setgroups_denied(const Plan& p) {
  if (p.clone_flags & CLONE_NEWUSER) return p.deny_setgroups;
  char buf[8] = {};
  const UniqueFd fd(open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC));
  return fd && read(fd.get(), buf, sizeof buf - 1) >= 4 && std::string_view(buf).starts_with("deny");
}

// What to do about the refusals people meet most. The specific sentence comes
// before the general one for the same {step, errno}.
std::string hint(const Plan& p, Step step, int err) {
  if (step == Step::seccomp && err == EACCES && !p.opts.no_new_privs)
    return " (a seccomp filter needs no_new_privs or CAP_SYS_ADMIN: set no_new_privs)";
  if (step == Step::setgroups && err == EPERM && setgroups_denied(p))
    return " (setgroups is denied in this user namespace)";
  if ((step == Step::setuid || step == Step::setgid || step == Step::setgroups) && err == EPERM)
    return " (changing ids needs CAP_SETUID/CAP_SETGID: run as root, or inside a user namespace)";
  if (step == Step::ambient && err == EPERM)
    return " (an ambient capability must be in the permitted and inheritable sets, and not dropped from the "
           "bounding set)";
  return "";
}

// The object a child's step concerns, where one has a name callers may want.
std::string step_object(const Plan& p, Step step, int index) {
  const auto ux = static_cast<std::size_t>(index);
  switch (step) {
    case Step::execve: return execve_object(p, index);
    case Step::chdir: return p.opts.cwd;
    case Step::hostname: return p.opts.hostname;
    case Step::controlling_tty: return p.opts.controlling_tty.value_or("");
    case Step::cgroup_join: return joined_cgroup(p, index);
    case Step::fd_open: return ux < p.fd_ops.size() && p.fd_ops[ux].path ? p.fd_ops[ux].path : "";
    case Step::fd_move:
    case Step::fd_dup:
    case Step::fd_close: return ux < p.fd_ops.size() ? fmt::format("fd {}", p.fd_ops[ux].fd) : "";
    case Step::keep_fd: return ux < p.keep_fds.size() ? fmt::format("fd {}", p.keep_fds[ux]) : "";
    default: return "";
  }
}

ErrorStep error_step(Step step) {
  switch (step) {
    case Step::execve: return ErrorStep::execve;
    case Step::cgroup_join: return ErrorStep::cgroup;
    default: return ErrorStep::spawn_setup;
  }
}

}  // namespace

bool exec_failed(const Error& e) { return e.step == ErrorStep::execve; }

int failure_status(const Error& e) {
  if (!exec_failed(e)) return 125;
  return e.err == ENOENT ? 127 : 126;
}

Error describe(const Plan& plan, const Report& r) {
  auto step = static_cast<Step>(r.step);
  return Error{error_step(step), r.err, step_object(plan, step, r.index),
               step_text(plan, step, r.index) + ": " + errno_name(r.err) + hint(plan, step, r.err)};
}

}  // namespace procforge::spawn
