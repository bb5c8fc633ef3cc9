// The flat pre-clone block: everything the child needs, resolved before the
// clone into plain arrays and integers, so that the child only reads memory
// and makes system calls (see child.cpp). The Plan owns the storage; the
// Block is the part the child sees, plus the report the child writes back.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "procforge/spawn.hpp"

namespace procforge::spawn {

// What the child was doing when it failed. errors.cpp turns it into words.
enum class Step : int {
  none = 0,
  sync,           // waiting for the parent (user namespace id maps)
  signals,        // resetting dispositions
  unshare_time,   // entering a new time namespace
  hostname,       // sethostname
  mount_private,  // mount --make-rprivate /
  mount_proc,     // mount proc on /proc
  cgroup_join,    // writing 0 to cgroup.procs
  setsid,
  setpgid,
  controlling_tty,  // TIOCSCTTY
  fd_move,          // moving a dup2 source above the target range
  fd_dup,
  fd_open,
  fd_close,
  close_fds,  // close_range
  keep_fd,    // clearing FD_CLOEXEC
  rlimit,
  nice,
  sched,
  capbset,   // PR_CAPBSET_DROP
  keepcaps,  // PR_SET_KEEPCAPS
  setgroups,
  setgid,
  setuid,
  capset,
  ambient,  // PR_CAP_AMBIENT_RAISE
  chdir,
  pdeathsig,
  parent_died,  // getppid() changed before PR_SET_PDEATHSIG took effect
  no_new_privs,
  seccomp,
  sigmask,
  warm_enter,  // a warm instance taking its argv and environment (warm/agent/agent.cpp)
  execve,
};

// Written by the child: into shared memory (CLONE_VM strategies) and to the
// error pipe (fork) or a warm template's control socket. 16 bytes: one
// write() below PIPE_BUF is atomic.
struct Report {
  int step = 0;
  int err = 0;
  int index = -1;  // which object of the step (fd op, rlimit, candidate...), -1 = none
  int pid = 0;     // the writer (a warm instance is not the pool's clone: its pid comes with the report)
};

struct FdOp {
  enum Kind : int { dup, open, close } kind = dup;
  int fd = -1;      // target
  int source = -1;  // dup: parent fd
  int moved = -1;   // dup: the child's copy of source above fd_floor (written by the child)
  const char* path = nullptr;
  int flags = 0;
  mode_t mode = 0;
};

struct RlimitOp {
  int resource;
  std::uint64_t soft, hard;  // struct rlimit64
};

struct Block {
  // The program: execve() each candidate in turn, as execvp does.
  const char* const* candidates = nullptr;
  int ncandidates = 0;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // A user-space exec instead of execve (Options::exec_replacement).
  void (*replace)(const void*, const ExecResetsDone&) = nullptr;
  const void* replace_arg = nullptr;
  const char* cwd = nullptr;

  // Descriptors.
  FdOp* fd_ops = nullptr;
  int nfd_ops = 0;
  int fd_floor = 3;               // moved dup2 sources go at or above this (above every target)
  const int* keep_fds = nullptr;  // close-on-exec cleared
  int nkeep_fds = 0;
  bool close_other_fds = false;
  const unsigned* kept = nullptr;  // sorted fds close_range must spare (targets, keep_fds, pipes)
  int nkept = 0;

  // Signals.
  bool handlers_cleared = false;  // CLONE_CLEAR_SIGHAND did it
  bool reset_dispositions = true;
  const int* ignore = nullptr;
  int nignore = 0;
  std::uint64_t mask = 0;  // kernel sigset_t (64 signals) installed just before execve

  // Session, limits, scheduling.
  bool setsid = false;
  bool setpgid = false;
  pid_t pgid = 0;
  const char* ctty = nullptr;
  int pdeathsig = 0;
  pid_t expected_ppid = 0;
  const RlimitOp* rlimits = nullptr;
  int nrlimits = 0;
  int umask = -1;
  bool set_nice = false;
  int nice = 0;
  int sched_policy = -1;
  int sched_priority = 0;

  // Credentials and privileges.
  bool set_groups = false;
  const gid_t* groups = nullptr;
  int ngroups = 0;
  bool set_gid = false;
  gid_t gid = 0;
  bool set_uid = false;
  uid_t uid = 0;
  bool drop_bounding = false;
  std::uint64_t bounding_keep = 0;
  int cap_last = 40;
  std::uint64_t ambient = 0;
  bool no_new_privs = false;
  const struct sock_filter* filter = nullptr;
  unsigned short nfilter = 0;

  // Namespaces and cgroups.
  bool unshare_time = false;
  const char* hostname = nullptr;
  unsigned long hostname_len = 0;
  bool mount_proc = false;
  const char* const* cgroup_procs = nullptr;  // cgroup.procs files to write "0" into
  int ncgroup_procs = 0;
  const char* v2_procs = nullptr;  // the cgroup2 directory, when not born into it
  bool born_in_cgroup = false;

  // Channels.
  int sync_fd = -1;       // read end: the parent writes one byte when the id maps are in place
  int sync_peer_fd = -1;  // the write end's copy the child inherited: closed first, or EOF never comes
  int err_fd = -1;        // write end of the close-on-exec error pipe (fork)

  volatile Report report;
};

// The cgroup directories to place the child in (cgroup.cpp).
struct CgroupPlan {
  std::string v2_dir;                // cgroup2 directory, empty when none
  UniqueFd v2_fd;                    // O_PATH|O_DIRECTORY, for CLONE_INTO_CGROUP
  std::vector<std::string> v1_dirs;  // v1 cgroups the child joins (for limits v2 cannot hold)
  std::vector<std::string> created;  // directories this spawn made, outermost first
};

struct Plan {
  Block block;
  const Options& opts;  // the caller's, alive for the whole spawn(); messages name its objects

  // A Plan lives on spawn()'s stack and its arrays draw on this buffer
  // before the heap, so that a common spawn writes no heap page: after a
  // fork() in the caller every page it writes first costs a copy-on-write
  // fault (about 1 us each on the benchmark machine).
  std::array<std::byte, 512> inline_storage;
  std::pmr::monotonic_buffer_resource arena{inline_storage.data(), inline_storage.size()};

  // Stable storage for the char* below that are not the caller's own
  // strings (PATH candidates, cgroup.procs paths): rare, so on the heap.
  std::forward_list<std::string> strings;
  std::pmr::vector<const char*> candidates{&arena};
  std::pmr::vector<char*> argv{&arena}, envp{&arena};
  std::pmr::vector<FdOp> fd_ops{&arena};
  std::pmr::vector<int> keep_fds{&arena};
  std::pmr::vector<unsigned> kept{&arena};
  std::pmr::vector<int> ignore{&arena};
  std::pmr::vector<RlimitOp> rlimits{&arena};
  std::pmr::vector<gid_t> groups{&arena};
  std::pmr::vector<struct sock_filter> filter{&arena};
  std::pmr::vector<const char*> cgroup_procs{&arena};
  CgroupPlan cgroup;

  bool searched = false;        // candidates come from PATH
  int clone_flags = 0;          // CLONE_NEW* passed to clone
  bool needs_fork = false;      // a control that cannot run in a shared address space
  std::string fork_reason;      // which one, for messages
  bool deny_setgroups = false;  // user namespace: "deny" written to /proc/PID/setgroups
  bool block_signals = true;    // block every signal around clone3 too (see make_plan)
  UniqueFd parent_pipes[3][2];  // Stdio::Kind::pipe, [child end, parent end]

  explicit Plan(const Options& o) : opts(o) {}
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  const char* keep(std::string s) { return strings.emplace_front(std::move(s)).c_str(); }
};

// plan.cpp: resolves plan.opts into the rest of the Plan (argv/envp, PATH
// candidates, fd plan, credentials, limits). Runs in the parent; may allocate.
Status make_plan(Plan& plan);

// plan.cpp: points the block at the sorted kept list, with extra_fd (>= 3) added.
void finish_kept(Plan& p, int extra_fd);

// cgroup.cpp: creates the directories, writes the limits, opens the cgroup2
// directory for CLONE_INTO_CGROUP, and fills the block's join lists.
Status prepare_cgroup(Plan& plan);
void undo_cgroup(Plan& plan);  // after a failed spawn: remove what prepare_cgroup made

// namespaces.cpp: the parent's side of a user namespace (setgroups, id maps).
Status write_id_maps(const Plan& plan, pid_t pid);

// child.cpp: the child's whole life between clone and execve. Never returns.
[[noreturn]] void child_main(Block* b);
int child_entry(void* block);  // for clone(): calls child_main

// A request spawn refuses before any system call: the options contradict
// themselves or what the strategy can do.
inline Error options_error(int err, std::string what) { return Error{ErrorStep::options, err, {}, std::move(what)}; }

// errors.cpp: a child report in words, with its step and object.
Error describe(const Plan& plan, const Report& r);

// The result of starting the child.
struct Launched {
  pid_t pid = -1;
  int pidfd = -1;
  Strategy ran = Strategy::automatic;
};

// clone.cpp: the strategies. The child has exec'd or failed when they return.
Result<Launched> launch(Plan& plan, Strategy s);

}  // namespace procforge::spawn
