// Spawn: create a task and decide what it inherits, then execve() a program.
//
// The default strategy is clone3(CLONE_VM|CLONE_VFORK|CLONE_CLEAR_SIGHAND|
// CLONE_PIDFD[|CLONE_INTO_CGROUP]) on a stack of its own, falling back to
// clone(CLONE_VM|CLONE_VFORK) on ENOSYS and EPERM (seccomp profiles that
// refuse clone3). posix_spawn and fork are available on request; fork is also
// used when a control cannot run in an address space shared with the parent
// (user-namespace id maps written by the parent), unless never_fork is set.
//
// Between clone and execve the child runs in a restricted world: everything
// it needs is prepared before the clone into a flat block; the child makes
// raw system calls only, allocates nothing, takes no lock and reports the
// first failure as {step, errno} (shared memory for the vfork strategies, a
// close-on-exec pipe for fork).
//
//   procforge::spawn::Options o;
//   o.path = "ls";                        // searched in PATH, as execvp does
//   o.argv = {"ls", "-l"};
//   o.stdout_.kind = procforge::spawn::Stdio::Kind::pipe;
//   auto child = procforge::spawn::spawn(o);
//   if (!child) return procforge::spawn::failure_status(child.error());  // 127, 126 or 125
//   read_all(child->stdout_fd);           // the parent's end, owned by the Child
//   auto exit = child->wait();            // reaps; exit->shell_status() as a shell reports it
//
// Threads: spawn() may be called from many threads at once; a Child belongs
// to one owner (move it; share it only under a lock). Per thread: the
// signal mask the child starts from (reset_signal_mask = false passes on the
// calling thread's) and the cached child stack of the shared-memory
// strategies. Process-wide: the fds, cwd, rlimits and ids the child
// inherits; supervise() reads the forwarded signals from the process's
// queue (the caller blocks them in every thread); and every fd spawn()
// opens is close-on-exec, so a spawn on another thread does not leak it.
//
// PR_SET_PDEATHSIG (Options::pdeathsig) fires when the *thread* that called
// spawn() exits, not when the process does: the child's parent is that
// thread, and the kernel sends the signal while it reparents the children of
// any exiting task (kernel/exit.c exit_notify() -> forget_original_parent(),
// which sends each child's pdeath_signal). prctl(2): "the 'parent' in this
// case is considered to be the thread that created this process". Spawn
// from a thread that lives as long as the child should, or the child is
// signalled when, say, a worker thread of a pool ends.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::spawn {

struct ChildAccess;

enum class Strategy {
  automatic,    // clone3 vfork-style, then clone vfork-style; fork only when a control needs it
  clone3,       // clone3(CLONE_VM|CLONE_VFORK|CLONE_CLEAR_SIGHAND|CLONE_PIDFD...) only
  clone_vfork,  // clone(CLONE_VM|CLONE_VFORK) only
  posix_spawn,  // glibc posix_spawn (few controls: refuses the others)
  fork,         // fork + exec
  vfork,        // vfork() + exec (benchmark baseline; same controls as clone_vfork)
};
const char* strategy_name(Strategy s);
std::optional<Strategy> strategy_from_name(const std::string& name);  // also "auto", "clone", "posix-spawn"

// Names as unshare(1) spells namespaces ("user" -> CLONE_NEWUSER; "mnt" too)
// and as prlimit(1) spells resource limits ("nofile" -> RLIMIT_NOFILE).
std::optional<int> namespace_from_name(const std::string& name);
const char* namespace_name(int clone_flag);
std::optional<int> rlimit_from_name(const std::string& name);
const char* rlimit_name(int resource);

// Where a standard stream of the child comes from.
struct Stdio {
  enum class Kind { inherit, null, pipe, file, fd } kind = Kind::inherit;
  std::string path;  // file
  int flags = 0;     // file: open flags (O_RDONLY for stdin, O_WRONLY|O_CREAT|O_TRUNC otherwise by default)
  int fd = -1;       // fd: an fd of the parent
};

// fd actions run in order, after stdio and before close_other_fds.
struct FdAction {
  enum class Kind { dup2, open, close } kind = Kind::dup2;
  int fd = -1;       // target fd in the child
  int source = -1;   // dup2: parent fd
  std::string path;  // open
  int flags = 0;     // open: open(2) flags (0 = O_RDONLY)
  mode_t mode = 0644;
};

struct Rlimit {
  int resource = RLIMIT_NOFILE;
  rlim_t soft = RLIM_INFINITY, hard = RLIM_INFINITY;
};

struct IdMap {
  std::uint32_t inside = 0, outside = 0, count = 1;
};

struct CgroupLimits {
  std::optional<std::uint64_t> memory_max;  // bytes (memory.max / memory.limit_in_bytes)
  std::optional<std::uint64_t> pids_max;    // pids.max
  std::optional<std::uint32_t> cpu_max_us;  // cpu.max quota per 100 ms period
};

// What a spawn child already has of execve's resets when it calls
// Options::exec_replacement instead of execve.
struct ExecResetsDone {
  // The kernel already did to the child's signal handlers what execve would
  // (clone3 with CLONE_CLEAR_SIGHAND: every handler SIG_DFL, flags and masks
  // cleared; kernel/signal.c flush_signal_handlers(), the same call as in
  // begin_new_exec()), and the child set none since.
  bool signal_handlers_flushed = false;
  // close_other_fds closed every descriptor from 3 up except kept_fds
  // (ascending; they may include 0-2): those and 0, 1 and 2 are the only
  // ones that can be open, so a close-on-exec pass need look at no other.
  bool other_fds_closed = false;
  const unsigned* kept_fds = nullptr;
  int n_kept_fds = 0;
};

struct Options {
  std::string path;  // program; searched in PATH when it has no '/' and search_path
  bool search_path = true;
  std::vector<std::string> argv;  // argv[0] included; empty = {path}
  // Environment: the parent's (inherit_env) with edits, or exactly envp.
  bool inherit_env = true;
  std::vector<std::string> envp;       // used when !inherit_env
  std::vector<std::string> set_env;    // KEY=VALUE, applied after inheriting
  std::vector<std::string> unset_env;  // KEY
  std::string cwd;

  Stdio stdin_, stdout_, stderr_;
  std::vector<FdAction> fd_actions;
  bool close_other_fds = true;  // close_range(3, ~0) except keep_fds and fds set up above
  std::vector<int> keep_fds;    // inherited unchanged (close-on-exec cleared)

  bool reset_signal_mask = true;  // empty mask unless signal_mask given
  std::optional<sigset_t> signal_mask;
  bool reset_signal_dispositions = true;  // SIG_IGN -> SIG_DFL too (handlers always reset by exec)
  std::vector<int> ignore_signals;        // set to SIG_IGN in the child

  bool setsid = false;
  std::optional<pid_t> process_group;          // 0 = own group
  std::optional<std::string> controlling_tty;  // with setsid: open it and TIOCSCTTY
  std::optional<int> pdeathsig;                // sent when the spawning *thread* exits (see the top of this file)

  std::vector<Rlimit> rlimits;
  std::optional<mode_t> umask;
  std::optional<int> nice;
  std::optional<int> sched_policy;  // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR
  int sched_priority = 0;

  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::vector<gid_t>> groups;             // default with uid/gid set: no supplementary groups
  std::optional<std::vector<int>> capability_bounding;  // keep only these in the bounding set
  std::vector<int> ambient_capabilities;
  bool no_new_privs = false;
  std::vector<std::uint64_t> seccomp_filter;  // struct sock_filter words, installed last before exec

  int namespaces = 0;  // CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |
                       // CLONE_NEWCGROUP | CLONE_NEWTIME
  std::vector<IdMap> uid_map, gid_map;  // for CLONE_NEWUSER (default: current ids -> 0)
  bool mount_proc = true;               // with CLONE_NEWPID|CLONE_NEWNS: a fresh /proc
  std::string hostname;                 // with CLONE_NEWUTS

  std::optional<std::string> cgroup;  // cgroup2 directory (created if missing) or v1 path
  CgroupLimits cgroup_limits;

  Strategy strategy = Strategy::automatic;
  bool never_fork = false;  // fail instead of falling back to fork

  // Instead of execve(), call this in the child once every control is
  // applied; it must not return (a user-space exec: user_exec::Prepared::enter).
  // It replaces the whole address space, so the child needs its own: fork.
  // `done` says which of execve's resets the child already has (see
  // ExecResetsDone), so that the replacement can skip them.
  void (*exec_replacement)(const void* arg, const ExecResetsDone& done) = nullptr;
  const void* exec_replacement_arg = nullptr;
};

struct Timings {
  std::chrono::nanoseconds prepare{}, clone_to_exec{}, total{};
};

class Child {
 public:
  Child() = default;
  Child(Child&&) noexcept;
  Child& operator=(Child&&) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();  // kills (SIGKILL) and reaps a child still running: no zombies

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int pidfd() const { return pidfd_; }  // -1 when the strategy gives none
  [[nodiscard]] Strategy strategy() const { return strategy_; }
  [[nodiscard]] const Timings& timings() const { return timings_; }
  // Whether the child leads a process group of its own (setsid, or
  // process_group 0): kill(whole_group) then reaches every process in it.
  [[nodiscard]] bool leads_group() const { return leads_group_; }
  // Parent ends of Stdio::Kind::pipe streams, -1 otherwise; owned by Child.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  // cgroup directories this spawn created (outermost first); the caller
  // removes them with remove_cgroups() once the child is reaped.
  std::vector<std::string> cgroups_created;

  struct Exit {
    bool exited = false;  // normal exit
    int status = 0;       // exit status, or the signal number
    bool core_dumped = false;
    bool timed_out = false;             // killed by wait()'s timeout, or supervise()'s timeout fired
    bool killed_after_timeout = false;  // supervise() had to send SIGKILL after kill_after
    struct rusage usage {};
    std::chrono::nanoseconds wall{};  // from spawn to exit
    // Shell convention: status, or 128+signal.
    [[nodiscard]] int shell_status() const { return exited ? status : 128 + status; }
  };
  // Waits (pidfd when available); on timeout kills the child (and its process
  // group when it leads one) and still reaps it.
  Result<Exit> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  Status kill(int sig = SIGKILL, bool whole_group = false);

 private:
  friend Result<Child> spawn(const Options&);
  friend struct ChildAccess;        // inside the library (spawn/child_access.hpp): a warm instance is a Child too
  void take(Child& from) noexcept;  // moves everything out of from, leaving it empty
  pid_t pid_ = -1;
  int pidfd_ = -1;
  Strategy strategy_ = Strategy::automatic;
  Timings timings_;
  std::chrono::steady_clock::time_point started_;
  bool reaped_ = false;
  bool leads_group_ = false;                    // setsid or its own process group: kill(whole_group) reaches -pid
  std::shared_ptr<struct ChildReaper> reaper_;  // another's child: its exit is reported (spawn/child_access.hpp)
};

// Spawns. On failure the Error's message names the step and the object
// ("setting uid 1000: EPERM", "execve /x/y: ENOENT"), err is the errno,
// step is ErrorStep::execve when the program could not be run (object: the
// program), spawn_setup or cgroup for a control the child could not apply,
// clone for the creation of the child, options for a request refused before
// any system call. Safe to call from many threads at once.
Result<Child> spawn(const Options& opts);

// The environment the child gets: the parent's (inherit_env) or envp, then
// unset_env and set_env applied (procforge/environment.hpp). Views into
// environ and into o's strings.
Result<std::vector<std::string_view>> child_environment(const Options& o);

// Whether a spawn failed at execve itself (the program could not be run, as
// opposed to a control that could not be applied): Error::step is
// ErrorStep::execve, whatever context the message gained since.
bool exec_failed(const Error& e);
// The status a shell gives a command that could not be started: 127 when
// execve found no program (ENOENT), 126 when it could not run it, and 125
// when something else failed (a control, the clone), as env(1) and
// timeout(1) report their own failures.
int failure_status(const Error& e);

// Supervising a child as a shell and timeout(1) do (supervise.cpp).
struct Supervision {
  // Signals to pass on to the child: to its process group when it leads one,
  // else to the child. The caller blocks them in every thread before the
  // spawn (and gives the child its own mask), so that they queue for the
  // supervisor instead of acting on the caller. A signal the terminal sent
  // (si_code SI_KERNEL) is not passed on while the child is in the caller's
  // process group: the kernel already sent it to the whole foreground group.
  sigset_t forward{};
  // After timeout: timeout_signal to the child's process group (the child
  // alone when it leads none), then SIGCONT so that a stopped group sees it;
  // after kill_after more: SIGKILL to the same.
  std::optional<std::chrono::nanoseconds> timeout;
  int timeout_signal = SIGTERM;
  std::optional<std::chrono::nanoseconds> kill_after;
};

// Waits for the child while forwarding signals and enforcing the timeout,
// then reaps it. Exit::timed_out says whether the timeout fired,
// killed_after_timeout whether SIGKILL was needed. Forwarded signals still
// queued when the child is gone are consumed, so the caller may unblock them.
Result<Child::Exit> supervise(Child& child, const Supervision& how);

// Removes cgroup directories (innermost first); ENOENT is not an error.
Status remove_cgroups(const std::vector<std::string>& dirs);

}  // namespace procforge::spawn

#pragma GCC visibility pop
