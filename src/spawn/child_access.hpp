// Making and unmaking Child handles inside the library, for children that
// spawn() did not create itself (a warm instance, forked from a template with
// CLONE_PARENT, is the caller's child all the same).
#pragma once

#include <chrono>

#include "procforge/spawn.hpp"

namespace procforge::spawn {

// The exit of a process this one cannot reap (wait() asks it instead of
// waitid): for example, through the connection to the server that started it.
struct ChildReaper {
  virtual ~ChildReaper() = default;
  virtual Result<Child::Exit> reap(pid_t pid) = 0;
};

struct ChildAccess {
  // A handle for a child of this process: pidfd owned, stdio ends owned.
  static Child adopt(pid_t pid, int pidfd, std::chrono::steady_clock::time_point started, bool leads_group) {
    Child c;
    c.pid_ = pid;
    c.pidfd_ = pidfd;
    c.started_ = started;
    c.leads_group_ = leads_group;
    return c;
  }
  static void set_timings(Child& c, const Timings& t) { c.timings_ = t; }
  // A handle for a process another one reaps: its pidfd (owned) polls and
  // signals it, `reaper` gives its exit.
  static Child adopt_reported(pid_t pid, int pidfd, std::chrono::steady_clock::time_point started, bool leads_group,
                              std::shared_ptr<ChildReaper> reaper) {
    Child c = adopt(pid, pidfd, started, leads_group);
    c.reaper_ = std::move(reaper);
    return c;
  }
  // Leaves the process alone: the caller reaps it. Returns its pidfd.
  static int release(Child& c) {
    int fd = c.pidfd_;
    c.pid_ = -1;
    c.pidfd_ = -1;
    c.reaped_ = true;
    return fd;
  }
};

}  // namespace procforge::spawn
