// Embedding procforge: ask what execve would do with a program, then start it
// with two inheritance controls (working directory, open-file limit) and wait.
#include <sys/resource.h>
#include <procforge/exec.hpp>
#include <procforge/spawn.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  namespace pf = procforge;
  pf::exec::Request req;
  req.path = argc > 1 ? argv[1] : "/usr/bin/true";
  req.argv = {req.path};
  auto p = pf::exec::predict(req, pf::exec::SystemFacts::probe());
  if (!p) return std::fprintf(stderr, "explain: %s\n", p.error().message.c_str()), 2;
  std::printf("execve %s: %s\n", req.path.c_str(),
              p->outcome == pf::exec::Outcome::ok ? "starts" : p->diagnosis.c_str());

  pf::spawn::Options o;
  o.path = req.path;
  o.cwd = "/";
  o.rlimits.push_back({RLIMIT_NOFILE, 64, 64});
  auto child = pf::spawn::spawn(o);
  if (!child) return std::fprintf(stderr, "spawn: %s\n", child.error().message.c_str()), 1;
  auto exit = child->wait();
  std::printf("exit status %d\n", exit ? exit->shell_status() : -1);
}
