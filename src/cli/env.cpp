#include "cli/env.hpp"

#include <cstring>
#include <iostream>

extern char** environ;

namespace procforge::cli {

std::vector<std::string> edited_environment(bool clear, const std::vector<std::string>& set,
                                            const std::vector<std::string>& unset, std::string* bad) {
  std::vector<std::string> env;
  if (!clear)
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  auto drop = [&](const std::string& key) {
    std::erase_if(env,
                  [&](const std::string& kv) { return kv.compare(0, key.size() + 1, key + "=") == 0 || kv == key; });
  };
  for (const auto& k : unset) drop(k);
  for (const auto& kv : set) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      *bad = "--env takes KEY=VALUE, got '" + kv + "'";
      return {};
    }
    drop(kv.substr(0, eq));
    env.push_back(kv);
  }
  return env;
}

Result<exec::Request> command_request(const exec::Request& req) {
  if (req.path.find('/') != std::string::npos) return req;
  exec::Request r = req;
  r.explain = false;
  exec::PathSearch search;
  auto p = exec::predict_command(r, exec::SystemFacts::probe(), &search);
  if (!p) return p.error();
  if (search.chosen < 0) return Error{ENOENT, p->diagnosis};
  exec::Request out = req;
  out.path = search.candidates[static_cast<std::size_t>(search.chosen)];
  if (!search.shell_argv.empty()) {
    out.path = "/bin/sh";
    out.argv = search.shell_argv;
  }
  return out;
}

std::string exec_failure_words(exec::Request req, int err) {
  req.explain = false;
  auto p = exec::predict_command(req, exec::SystemFacts::probe());
  if (!p || p->outcome != exec::Outcome::error || p->err != err || p->diagnosis.empty()) return "";
  return "  why  " + p->diagnosis + "\n" + (p->fix.empty() ? "" : "  fix  " + p->fix + "\n");
}

std::string loader_failure(const exec::Request& req, const Error& e) {
  const std::string words = e.err ? exec_failure_words(req, e.err) : "";
  if (words.empty()) return e.message + "\n";
  return "execve " + req.path + ": " + errno_name(e.err) + " (" + std::strerror(e.err) + ")\n" + words;
}

std::optional<int> resolve_command(const std::string& subcommand, exec::Request& req) {
  auto found = command_request(req);
  if (found) {
    req = *found;
    return std::nullopt;
  }
  if (found.error().err != ENOENT) {
    std::cerr << "procforge " << subcommand << ": " << found.error().message << "\n";
    return 2;
  }
  std::cerr << "procforge " << subcommand << ": execve " << req.path << ": ENOENT (No such file or directory)\n  why  "
            << found.error().message << "\n";
  return 127;
}

}  // namespace procforge::cli
