// execvp's PATH search, as glibc 2.36 does it (posix/execvpe.c
// __execvpe_common()): for a name without '/', each element of PATH (the
// target environment's; confstr(_CS_PATH) "/bin:/usr/bin" without one; an
// empty element is the current directory) joined with the name, execve tried
// on each in order. ENOENT, ENOTDIR, ESTALE, ENODEV and ETIMEDOUT move on to
// the next; EACCES is remembered and moves on (the call fails with EACCES if
// nothing better turns up); any other outcome ends the search. Each
// candidate's execve is the exec model's prediction. The candidates are the
// ones spawn's child tries (spawn/plan.cpp) and profile checks, so that
// every caller searches the same list.
#include <cerrno>

#include "procforge/environment.hpp"
#include "procforge/exec.hpp"

namespace procforge::exec {

std::vector<std::string> path_candidates(const std::string& name, std::string_view path) {
  if (name.empty() || name.find('/') != std::string::npos) return {name};
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const std::size_t colon = path.find(':', start);
    const std::string_view dir = path.substr(start, colon == std::string_view::npos ? colon : colon - start);
    out.push_back(dir.empty() ? name : std::string(dir) + (dir.back() == '/' ? "" : "/") + name);
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return out;
}

PathSearch path_candidates(const std::string& name, const std::vector<std::string>& envp) {
  PathSearch s;
  s.name = name;
  if (name.empty() || name.find('/') != std::string::npos) {
    s.candidates.push_back(name);
    return s;
  }
  s.path_value = env::lookup(envp, "PATH").value_or(kDefaultPath);  // the first PATH=, as getenv() finds it
  s.candidates = path_candidates(name, s.path_value);
  return s;
}

Request searched_request(const Request& req, const PathSearch& search) {
  Request out = req;
  if (search.chosen >= 0) out.path = search.candidates[static_cast<std::size_t>(search.chosen)];
  if (!search.shell_argv.empty()) {
    out.path = "/bin/sh";
    out.argv = search.shell_argv;
  }
  return out;
}

Result<Request> command_request(const Request& req, const SystemFacts& facts) {
  if (req.path.find('/') != std::string::npos) return req;
  Request r = req;
  r.explain = false;
  PathSearch search;
  auto p = predict_command(r, facts, &search);
  if (!p) return p.error();
  if (search.chosen < 0) return Error{ENOENT, p->diagnosis};
  return searched_request(req, search);
}

namespace {

bool execvp_moves_on(int err) {
  return err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT;
}

std::string element_of(const std::string& candidate, const std::string& name) {
  std::string dir = candidate.substr(0, candidate.size() - name.size());
  if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.empty() ? "" : dir;
}

}  // namespace

Result<Prediction> predict_command(const Request& req, const SystemFacts& facts, PathSearch* search) {
  PathSearch local;
  PathSearch& s = search ? *search : local;
  s = path_candidates(req.path, req.envp);
  if (s.path_value.empty()) {  // a name with '/': no search
    s.chosen = 0;
    return predict(req, facts);
  }
  std::optional<Prediction> eacces;
  int eacces_at = -1;
  for (std::size_t i = 0; i < s.candidates.size(); ++i) {
    Request r = req;
    r.path = s.candidates[i];
    auto p = predict(r, facts);
    if (!p) return p;
    if (p->outcome == Outcome::error && p->err == ENOEXEC) {
      // A file the kernel cannot run: execvp runs it with /bin/sh as a script
      // (execvpe.c maybe_script_execute()), as shells do.
      Request sh = r;
      sh.path = "/bin/sh";
      sh.argv = {"/bin/sh", r.path};
      if (req.argv.size() > 1) sh.argv.insert(sh.argv.end(), req.argv.begin() + 1, req.argv.end());
      auto viash = predict(sh, facts);
      if (!viash) return viash;
      if (viash->outcome != Outcome::error) {
        s.chosen = static_cast<int>(i);
        s.entry = element_of(s.candidates[i], s.name);
        s.shell_argv = sh.argv;
        return viash;
      }
    }
    if (p->outcome == Outcome::error && p->err == EACCES) {
      if (!eacces) eacces = std::move(*p), eacces_at = static_cast<int>(i);
      continue;
    }
    if (p->outcome == Outcome::error && execvp_moves_on(p->err)) continue;
    s.chosen = static_cast<int>(i);
    s.entry = element_of(s.candidates[i], s.name);
    return p;
  }
  if (eacces) {
    s.chosen = eacces_at;
    s.entry = element_of(s.candidates[static_cast<std::size_t>(eacces_at)], s.name);
    return std::move(*eacces);
  }
  // Not found anywhere: execve's ENOENT for the name as given.
  Prediction p;
  p.outcome = Outcome::error;
  p.err = ENOENT;
  p.failed_step = "PATH search";
  p.failed_object = s.name;
  p.argv = req.argv;
  p.diagnosis = "no directory of PATH (" + s.path_value + ") holds an executable file " + s.name;
  p.fix = "install the program, add its directory to PATH, or name it by a path with a '/'";
  Check c;
  c.step = "PATH search";
  c.object = s.name;
  c.passed = false;
  c.detail = "not found in " + std::to_string(s.candidates.size()) + " PATH elements";
  c.rule = "glibc posix/execvpe.c __execvpe_common()";
  p.checks.push_back(std::move(c));
  return p;
}

}  // namespace procforge::exec
