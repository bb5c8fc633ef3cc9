// spawn(): the driver. Each step is a stage of its own file:
//   plan.cpp       flatten the options into the pre-clone block
//   cgroup.cpp     make the cgroup, write its limits, open it for CLONE_INTO_CGROUP
//   clone.cpp      create the child with the chosen strategy; child.cpp runs in it
//   namespaces.cpp (fork strategy, user namespace) the parent writes the id maps
//   errors.cpp     the child's {step, errno} in words
//   wait.cpp       the Child handle: wait with rusage and timeout, kill, reap
#include <chrono>

#include "spawn/plan.hpp"

namespace procforge::spawn {

Result<Child> spawn(const Options& opts) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();

  // 1. Everything the child will need, resolved while allocating is allowed.
  Plan plan(opts);
  if (auto st = make_plan(plan); !st) return st.error();

  // 2. The cgroup, before the child exists, so that it is born there.
  if (auto st = prepare_cgroup(plan); !st) {
    undo_cgroup(plan);
    return st.error();
  }
  const auto t1 = clock::now();

  // 3. Clone; the child sets itself up and execs, or reports why not.
  auto launched = launch(plan, opts.strategy);
  if (!launched) {
    undo_cgroup(plan);
    return launched.error();
  }
  const auto t2 = clock::now();

  // 4. The handle: pid, pidfd, the parent's ends of the pipes, what was made.
  Child child;
  child.pid_ = launched->pid;
  child.pidfd_ = launched->pidfd;
  child.strategy_ = launched->ran;
  child.started_ = t1;
  child.leads_group_ =
      opts.setsid || (opts.process_group && (*opts.process_group == 0 || *opts.process_group == child.pid_));
  int* ends[3] = {&child.stdin_fd, &child.stdout_fd, &child.stderr_fd};
  for (int fd = 0; fd < 3; ++fd) *ends[fd] = plan.parent_pipes[fd][1].release();
  child.cgroups_created = plan.cgroup.created;
  child.timings_.prepare = t1 - t0;
  child.timings_.clone_to_exec = t2 - t1;
  child.timings_.total = clock::now() - t0;
  return child;
}

}  // namespace procforge::spawn
