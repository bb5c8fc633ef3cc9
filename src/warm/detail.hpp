// Inside the warm pool: a template as the pool sees it, and the stages of a
// warm spawn (pool.cpp drives them).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "procforge/warm.hpp"
#include "spawn/plan.hpp"
#include "warm/wire.hpp"

namespace procforge::warm {

// A mapped file as the template mapped it, to notice a replacement.
struct ObjectIdentity {
  std::string path;
  std::uint64_t dev = 0, ino = 0;
  std::int64_t mtime_ns = 0, size = 0;
};

struct Template {
  std::string program;  // the file execve ran
  pid_t pid = -1;
  UniqueFd pidfd, control;
  UniqueFd output;                     // memfd: the template's stdout and stderr (anything written before main)
  std::vector<std::string> argv, env;  // what it started with (its first instance's)
  std::string cwd;                     // absolute, as the template saw it
  TemplateFacts facts;
  std::vector<ObjectIdentity> objects;
  // inotify watches on every object: no event since the last look means no
  // file changed, and a spawn needs one read() instead of a stat() per object.
  // Closed (stat each time) when a watch cannot be had.
  UniqueFd watches;
  mutable bool stat_next = true;      // the first check after the watches were set stats anyway
  std::vector<std::string> replaced;  // files already gone or replaced when it reached main
  bool env_overflow = false;          // too many names read: every variable counts
  bool atfork_overflow = false;
  int atfork_handlers = 0;
  std::chrono::steady_clock::time_point started;
  unsigned uses = 0;
  // The copy waiting for the next request (wire::Kind::spare): the pool's
  // child, reaped here when the template ends before a request took it.
  pid_t spare = -1;
  UniqueFd spare_pidfd;
};

// template.cpp
// Starts `program` held before main (env, argv, cwd: the first instance's).
// An Error says why it never got there (its exit status, what it printed).
Result<Template> start_template(const std::string& program, const std::vector<std::string>& argv,
                                const std::vector<std::string>& env, const std::string& cwd, const std::string& agent,
                                std::chrono::milliseconds timeout);
// The facts of a ready message (text lines, agent.cpp send_ready()) into t.
// The template runs someone else's program: any bytes must parse.
void parse_facts(Template& t, std::string_view text);
// Sends one spawn request; the reply as the agent gave it, or a refusal text.
struct Reply {
  bool refused = false;
  std::string why;  // refused
  wire::SpawnedReply spawned;
};
Result<Reply> request(Template& t, const std::vector<char>& message, const std::vector<int>& fds);
// Whether the template is still alive (it may have been killed).
bool alive(const Template& t);
// Ends the channel: the template (through its spare) exits on EOF.
void end(Template& t);
// Ends the channel and reaps the template and its spare, SIGKILL after `grace`.
void stop(Template& t, std::chrono::milliseconds grace);
// After end(): reaps what has exited; true once the template and its spare
// are both gone.
bool reap_if_ended(Template& t);

// flatten.cpp: the Block of a spawn plan as a request message; fds gets the
// dup sources, in the order of the dup operations.
Status flatten(const spawn::Plan& plan, std::vector<char>& message, std::vector<int>& fds);

// rules.cpp: why a cold start is needed, or "" when a template may serve.
std::string options_refusal(const spawn::Options& o);  // controls that act before or at execve
std::string program_refusal(const std::string& path);  // static, not glibc, set-id, capabilities, #!
// For one instance of t: files replaced, environment read before main that
// differs, cwd looked at and different, fds the program holds that the spawn
// wants. cwd (absolute) is read only when the program looked at its own.
std::string instance_refusal(const Template& t, const spawn::Plan& plan, const std::vector<std::string>& env,
                             const std::string& cwd);
// Puts an inotify watch on each of t's objects (t.watches); on any failure
// t.watches stays closed and every spawn stats the objects instead.
void watch_objects(Template& t);
// The instance's differences from a cold start, one sentence each.
std::vector<std::string> differences(const Template& t, const std::vector<std::string>& argv);
// Whether a variable may have been read before main by ld.so or libc
// (LD_*, GLIBC_TUNABLES and its aliases, locale and time zone names).
bool read_by_libc_before_main(std::string_view name);

// Where the agent is: PROCFORGE_WARM_AGENT, next to the running binary,
// or in ../lib/procforge/ from it.
std::string find_agent();

}  // namespace procforge::warm
