// Warm starts: run a program from a copy of it that already went through
// execve, ld.so and libc initialisation.
//
// A template is the program started once and held at the call of main():
// ld.so has mapped and relocated every object, constructors have run, libc is
// initialised. An instance is a copy of the template (a fork made with
// CLONE_PARENT, so that it is the caller's child, not the template's) that
// takes its own argv, environment, cwd, stdio and the spawn controls that
// apply after exec, then enters main(argc, argv, envp). It is returned as a
// spawn::Child: waited for, timed out and reported exactly as a cold spawn.
//
//   procforge::warm::Pool pool;                 // templates, one per program
//   procforge::spawn::Options o;
//   o.path = "cmake";
//   o.argv = {"cmake", "--version"};
//   procforge::warm::Report report;
//   auto child = pool.spawn(o, &report);        // warm when it can, cold otherwise
//   if (!child) return procforge::spawn::failure_status(child.error());
//   auto exit = child->wait();
//   if (!report.warm) log(report.fallback_reason);
//
// When a template cannot stand in for a cold start (a static or non-glibc
// program, set-id or file capabilities, threads at the fork point, an
// environment variable read before main that differs, a replaced program or
// library, a different cwd when the program looked at it before main, a
// control that acts before exec such as namespaces or a cgroup), spawn()
// starts the program cold and Report::fallback_reason says why: never a
// silently wrong instance.
//
// Security: every instance of one template shares its address-space layout,
// its stack-protector and pointer-guard values and any random state that
// constructors drew. Templates are therefore rotated after Limits::max_uses
// instances and Limits::max_age (docs/warm-starts.md gives the trade-off).
//
// Threads: a Pool may be used from many threads at once (one lock around its
// templates; the fork itself happens in the template). A Pool's templates are
// its children; they are stopped and reaped by its destructor, so none
// outlives the Pool.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procforge/result.hpp"
#include "procforge/spawn.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::warm {

struct Limits {
  // A fresh template after this many instances of one template...
  unsigned max_uses = 256;
  // ...or once the template is this old.
  std::chrono::milliseconds max_age{std::chrono::seconds(60)};
  // How long a template may take to reach main before the spawn goes cold.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(10)};
};

// How one spawn went.
struct Report {
  bool warm = false;              // the instance was forked from a template
  std::string fallback_reason;    // empty when warm: why the spawn went cold
  bool template_started = false;  // this spawn started (or restarted) a template
  pid_t template_pid = -1;
  unsigned template_uses = 0;  // instances of that template, this one included
  // What still differs from a cold start in this instance (objects procforge
  // mapped, fds the program opened before main...), one sentence each.
  std::vector<std::string> differences;
};

// What a template recorded before main (for --report and the tests).
struct TemplateFacts {
  std::string program;                    // the path execve ran
  std::vector<std::string> objects;       // every mapped file of the link map
  std::vector<std::string> env_read;      // names read with getenv/secure_getenv before main
  bool looked_at_cwd = false;             // getcwd() and the like before main
  std::vector<int> fds_open_before_main;  // beyond 0, 1, 2 and procforge's control socket
  int threads = 1;
};

class Pool {
 public:
  explicit Pool(Limits limits = {});
  ~Pool();  // stops and reaps every template
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Spawns o from a warm template when it can (starting one if needed), cold
  // with spawn::spawn(o) otherwise; report (optional) says which and why.
  Result<spawn::Child> spawn(const spawn::Options& o, Report* report = nullptr);

  // The facts of the template that would serve o, starting it if needed.
  Result<TemplateFacts> facts(const spawn::Options& o);

  // The floor under an instance of o's program, for benchmarks: forks its
  // template (started if needed) as for an instance, but the copy exits at
  // once; returns the time from the request to the reaped copy.
  Result<std::chrono::nanoseconds> fork_only(const spawn::Options& o);

  // Stops every template (the next spawn starts fresh ones).
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace procforge::warm

#pragma GCC visibility pop
