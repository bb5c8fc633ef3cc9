// A user-space execve(): replace a process's image without the kernel's
// exec, doing what fs/exec.c and binfmt_elf do, step by step.
//
//   // This process becomes ls (it must have no other threads):
//   procforge::user_exec::Options o;
//   o.request.path = "/bin/ls";
//   o.request.argv = {"ls", "-l"};
//   o.request.envp = {"PATH=/bin:/usr/bin"};
//   auto p = procforge::user_exec::prepare(o);
//   if (!p) return p.error();  // the errno the kernel's execve would return
//   p->enter();                // never returns
//
//   // A spawned child ends in ls instead of execve(), after every control:
//   procforge::spawn::Options s;
//   s.path = "ls";  // searched in PATH, as spawn would
//   s.argv = {"ls", "-l"};
//   s.uid = 65534;  // taken over: the stub takes it last
//   auto a = procforge::user_exec::attach(s);
//   if (!a.prepared) return a.prepared.error();
//   auto child = procforge::spawn::spawn(s);  // keep `a` until spawn() returns
//
// prepare() runs the kernel's exec model (procforge/exec.hpp) with random
// draws thrown here (Dice), so every address is known; it opens the files,
// builds the initial stack byte for byte and a list of raw system calls. It
// allocates freely and may fail with the errno the kernel would return.
// enter() is the point of no return: it resets what exec resets (signal
// handlers, the alternate stack, close-on-exec fds, rseq), then jumps to a
// small position-independent stub that unmaps everything of the old image,
// maps the new one, zeroes bss, copies the stack, sets the mm fields when
// permitted, restores the signal mask, loads the registers as the kernel
// leaves them and jumps to the entry point. enter() makes raw system calls
// only and allocates nothing, so it may run in a child right after fork().
//
// Thread safety: prepare() and attach() may run in several threads at once
// (for_child: the exec happens in a child; otherwise prepare() refuses a
// process with other threads, whose exec the kernel would kill them for).
// A Prepared is not shared: one thread uses it at a time. Process-wide: one
// spare stub region, which a destroyed Prepared leaves and the next
// prepare() takes (a lock-free slot, so a fork() never inherits it held);
// the mmap base, the vDSO's place and the kernel's facts are read once per
// process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procforge/exec.hpp"
#include "procforge/result.hpp"
#include "procforge/spawn.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::user_exec {

namespace detail {
struct PreparedImpl;  // src/user_exec/impl.hpp
}  // namespace detail

struct Step {
  std::string stage;  // "dispatch", "map", "stack", "auxv", "entry", ...
  std::string detail;
};

struct Options {
  exec::Request request;
  bool randomize = true;                     // throw the kernel's dice; false: as under ADDR_NO_RANDOMIZE
  bool set_mm = true;                        // prctl(PR_SET_MM_MAP) for exe, brk, arg/env/auxv ranges when permitted
  std::function<void(const Step&)> on_step;  // called as each step is decided
  bool record_steps = false;                 // keep every step for steps() (on_step alone does not need it)
  // Keep the exec model's whole answer for prediction(). A caller that only
  // runs the program can drop it: prepare() then frees it before returning,
  // instead of the Prepared's destructor freeing it after the caller's
  // fork(), when every heap page it touches costs a copy-on-write fault.
  bool keep_prediction = true;
  // The files to map get descriptors at or above this number: above every
  // fd a spawn's actions set up (spawn refuses a kept fd that is also the
  // target of an action).
  int descriptor_floor = 0;
  // enter() will run in a child made by fork() (single-threaded). Otherwise
  // prepare() refuses a process with other threads: the kernel would kill
  // them (de_thread()), user space cannot.
  bool for_child = false;
  // An identity to take at the very end, after the exe link is set: the
  // kernel lets only CAP_SYS_ADMIN / CAP_CHECKPOINT_RESTORE set it, which a
  // dropped identity no longer has. (setgroups, setresgid, setresuid)
  std::optional<uid_t> become_uid;
  std::optional<gid_t> become_gid;
  std::optional<std::vector<gid_t>> become_groups;
};

class Prepared {
 public:
  Prepared();
  Prepared(Prepared&&) noexcept;
  Prepared& operator=(Prepared&&) noexcept;
  ~Prepared();  // unmaps the stub region when enter() was not called

  [[nodiscard]] const exec::Prediction& prediction() const;  // empty without Options::keep_prediction
  [[nodiscard]] const std::vector<Step>& steps() const;
  // What will differ from the kernel's exec, in plain words (e.g. "the
  // stub's page stays mapped", "no CAP_SYS_RESOURCE: /proc/PID/exe, cmdline
  // and auxv keep the old values").
  [[nodiscard]] const std::vector<std::string>& differences() const;
  // Descriptors of the files to map: whoever runs enter() in a child must
  // keep them open until then (the stub closes them).
  [[nodiscard]] std::vector<int> descriptors() const;
  // Makes a spawn with `o` run this image instead of execve(): sets
  // Options::exec_replacement (enter() with what the spawn child already
  // reset) and its argument, and adds descriptors() to keep_fds. The
  // Prepared must outlive that spawn() call (it may be moved meanwhile).
  void attach_to(spawn::Options& o) const;

  // The point of no return. Never returns: the new image runs, or the
  // process dies with SIGSEGV as under the kernel. `done`: what the caller
  // knows is already as execve leaves it (a spawn child passes it to
  // Options::exec_replacement). With signal_handlers_flushed the 62
  // rt_sigaction calls of the handler flush are skipped; with
  // other_fds_closed the close-on-exec pass asks about 0-2 and the kept fds
  // only, instead of listing /proc/self/fd.
  [[noreturn]] void enter(const spawn::ExecResetsDone& done = {}) const;

 private:
  friend Result<Prepared> prepare(const Options&);
  std::unique_ptr<detail::PreparedImpl> impl_;
};

// Everything up to the point of no return. An Error carries the errno the
// kernel's execve would return (e.g. ENOENT for a missing #! interpreter).
Result<Prepared> prepare(const Options& opts);

// The exec a spawn with `o` makes, as the exec model's request: o.path and
// o.argv as given (no PATH search), the environment spawn gives the child
// (spawn::child_environment()), o.cwd, the identity o sets and the
// RLIMIT_STACK the child will have. EINVAL for an environment edit that is
// not KEY=VALUE.
Result<exec::Request> spawn_request(const spawn::Options& o);

// A user-space exec attached to a spawn, and what it was made from.
struct Attached {
  // The exec the child makes: spawn_request(), with the program after
  // execvp's PATH search (when o.search_path and o.path has no '/').
  exec::Request request;
  // The PATH search failed: ENOENT when no element holds the program (the
  // error says where it looked), else the model could not tell.
  bool search_failed = false;
  // Keep it until spawn() returns (it may be moved meanwhile).
  Result<Prepared> prepared = Error{};
};

// Makes a spawn with `o` end in a user-space exec of the program it would
// execve(): the same PATH search, the same environment edits, the identity.
// On success `o` is changed: its uid, gid and groups are taken over (the
// stub takes them last, after the exe link is set, which the dropped
// identity could not do; the spawn child keeps the caller's), and the exec
// is attached (Prepared::attach_to()). opts.request, for_child and become_*
// are set from `o`; the rest of `opts` is used as given.
Attached attach(spawn::Options& o, Options opts = {});

}  // namespace procforge::user_exec

#pragma GCC visibility pop
