// The hand-off from spawn to a user-space exec: the exec the spawn child
// would make with execve() (the program found as execvp finds it, the
// environment spawn builds, the identity it sets), prepared in the parent
// and entered by the child once every control is applied. The identity moves
// from the spawn to the stub, which takes it after setting the exe link
// (prctl(PR_SET_MM_MAP) needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, which
// the dropped identity no longer has).
#include <sys/resource.h>
#include <unistd.h>

#include "procforge/user_exec.hpp"

namespace procforge::user_exec {

Result<exec::Request> spawn_request(const spawn::Options& o) {
  exec::Request req;
  auto env = spawn::child_environment(o);
  if (!env) return env.error();
  req.envp.assign(env->begin(), env->end());
  req.path = o.path;
  req.argv = o.argv.empty() ? std::vector<std::string>{o.path} : o.argv;
  req.cwd = o.cwd;
  if (o.uid || o.gid) req.creds = exec::Credentials::unprivileged(o.uid.value_or(getuid()), o.gid.value_or(getgid()));
  struct rlimit rl {};
  if (getrlimit(RLIMIT_STACK, &rl) == 0) req.rlimit_stack = rl.rlim_cur;
  for (const auto& r : o.rlimits)
    if (r.resource == RLIMIT_STACK) req.rlimit_stack = r.soft;
  return req;
}

Attached attach(spawn::Options& o, Options opts) {
  Attached out;
  auto req = spawn_request(o);
  if (!req) {
    out.prepared = req.error();
    return out;
  }
  out.request = std::move(*req);
  if (o.search_path) {
    auto found = exec::command_request(out.request, exec::SystemFacts::probe());
    if (!found) {
      out.search_failed = true;
      out.prepared = found.error();
      return out;
    }
    out.request = std::move(*found);
  }
  opts.request = out.request;
  opts.for_child = true;
  opts.become_uid = o.uid;
  opts.become_gid = o.gid;
  // spawn's rule: with a uid or gid and no groups given, no supplementary groups.
  opts.become_groups = o.groups;
  if (!o.groups && (o.uid || o.gid)) opts.become_groups.emplace();
  out.prepared = prepare(opts);
  if (!out.prepared) return out;
  o.uid.reset();
  o.gid.reset();
  o.groups.reset();
  out.prepared->attach_to(o);
  return out;
}

}  // namespace procforge::user_exec
