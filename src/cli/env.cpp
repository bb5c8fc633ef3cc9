#include "cli/env.hpp"

#include <cstring>

#include "cli/output.hpp"
#include "procforge/environment.hpp"

namespace procforge::cli {

std::optional<std::string> bad_env_assignment(const std::vector<std::string>& set) {
  for (const auto& kv : set)
    if (!env::is_assignment(kv)) return "--env takes KEY=VALUE, got '" + kv + "'";
  return std::nullopt;
}

std::vector<std::string> edited_environment(bool clear, const std::vector<std::string>& set,
                                            const std::vector<std::string>& unset, std::string* bad) {
  if (auto usage = bad_env_assignment(set)) {
    *bad = *usage;
    return {};
  }
  auto env = env::edited(clear, unset, set);
  return env ? std::move(*env) : std::vector<std::string>{};
}

std::string exec_failure_words(exec::Request req, int err) {
  req.explain = false;
  auto p = exec::predict_command(req, exec::SystemFacts::probe());
  if (!p || p->outcome != exec::Outcome::error || p->err != err || p->diagnosis.empty()) return "";
  return "  why  " + p->diagnosis + "\n" + (p->fix.empty() ? "" : "  fix  " + p->fix + "\n");
}

std::string user_exec_failure(const exec::Request& req, const Error& e) {
  const std::string words = e.err ? exec_failure_words(req, e.err) : "";
  if (words.empty()) return e.message + "\n";
  return "execve " + req.path + ": " + errno_name(e.err) + " (" + std::strerror(e.err) + ")\n" + words;
}

int search_failure(const std::string& subcommand, const std::string& name, const Error& e) {
  if (e.err != ENOENT) {
    print_error(subcommand, e.message);
    return 2;
  }
  print_error(subcommand, "execve " + name + ": ENOENT (No such file or directory)\n  why  " + e.message);
  return 127;
}

std::optional<int> resolve_command(const std::string& subcommand, exec::Request& req) {
  auto found = exec::command_request(req, exec::SystemFacts::probe());
  if (!found) return search_failure(subcommand, req.path, found.error());
  req = std::move(*found);
  return std::nullopt;
}

void add_environment_flags(CLI::App& app, std::vector<std::string>& set, std::vector<std::string>& unset, bool& clear) {
  app.add_option("--env", set, "Set KEY=VALUE in the environment (one KEY=VALUE per --env)")->allow_extra_args(false);
  app.add_option("--unset", unset, "Remove KEY from the environment")->allow_extra_args(false);
  app.add_flag("--clear-env", clear, "Start from an empty environment");
}

}  // namespace procforge::cli
