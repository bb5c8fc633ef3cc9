// execvp's PATH search, as glibc 2.36 does it (posix/execvpe.c
// __execvpe_common()): for a name without '/', each element of PATH (the
// target environment's; confstr(_CS_PATH) "/bin:/usr/bin" without one; an
// empty element is the current directory) joined with the name, execve tried
// on each in order. ENOENT, ENOTDIR, ESTALE, ENODEV and ETIMEDOUT move on to
// the next; EACCES is remembered and moves on (the call fails with EACCES if
// nothing better turns up); any other outcome ends the search. Each
// candidate's execve is the exec model's prediction.
#include <cerrno>

#include "procforge/exec.hpp"

namespace procforge::exec {

PathSearch path_candidates(const std::string& name, const std::vector<std::string>& envp) {
  PathSearch s;
  s.name = name;
  if (name.empty() || name.find('/') != std::string::npos) {
    s.candidates.push_back(name);
    return s;
  }
  s.path_value = "/bin:/usr/bin";
  for (const auto& kv : envp)
    if (kv.rfind("PATH=", 0) == 0) {
      s.path_value = kv.substr(5);
      break;  // the first PATH=, as getenv() finds it
    }
  for (std::size_t start = 0;;) {
    const std::size_t colon = s.path_value.find(':', start);
    const std::string dir = s.path_value.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    s.candidates.push_back(dir.empty() ? name : dir + (dir.back() == '/' ? "" : "/") + name);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return s;
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
