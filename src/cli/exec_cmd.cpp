// `procforge exec [--steps] PROGRAM [ARG...]`: replace this process's image
// with PROGRAM without the kernel's execve, printing each step (dispatch,
// every mapping with address and protection, the stack, the auxv, the entry)
// on stderr as it is decided: the exec pipeline in slow motion.
#include <unistd.h>

#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/output.hpp"
#include "common/ansi.hpp"
#include "procforge/user_exec.hpp"

namespace procforge::cli {

namespace {

struct ExecOptions {
  bool steps = false;
  bool no_aslr = false;
  bool no_set_mm = false;
  bool clear_env = false;
  std::string cwd;
  std::vector<std::string> set_env, unset_env;
};

int run_exec(const ExecOptions& o, std::vector<std::string> command) {
  if (command.empty()) {
    print_error("exec", "name a PROGRAM");
    return kExitCannot;
  }
  std::string bad;
  user_exec::Options lo;
  lo.request.envp = edited_environment(o.clear_env, o.set_env, o.unset_env, &bad);
  if (!bad.empty()) {
    print_error("exec", bad);
    return kExitCannot;
  }
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) {
    print_error("exec", "chdir " + o.cwd + ": " + errno_name(errno));
    return kExitCannot;
  }
  lo.request.path = command.front();
  lo.request.argv = command;
  if (auto failed = resolve_command("exec", lo.request)) return *failed;
  lo.randomize = !o.no_aslr;
  lo.set_mm = !o.no_set_mm;
  const bool color = o.steps && color_on(STDERR_FILENO);
  if (o.steps)
    lo.on_step = [color](const user_exec::Step& s) {
      std::string stage = s.stage;
      stage.resize(9, ' ');
      std::cerr << Style(color).bold(stage) << s.detail << "\n";
    };
  auto prepared = user_exec::prepare(lo);
  if (!prepared) {
    print_error("exec", user_exec_failure(lo.request, prepared.error()));
    // As a shell reports an exec failure.
    return prepared.error().err == ENOENT ? 127 : 126;
  }
  if (o.steps)
    for (const auto& d : prepared->differences()) std::cerr << "differs  " << d << "\n";
  std::cerr.flush();
  prepared->enter();
}

}  // namespace

void add_exec(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<ExecOptions>();
  auto* ex = app.add_subcommand("exec", "Replace procforge with PROGRAM by a user-space exec (no execve)");
  ex->add_flag("--steps", o->steps, "Print each step of the exec on stderr");
  ex->add_flag("--no-aslr", o->no_aslr, "Do not randomise (as with personality ADDR_NO_RANDOMIZE)");
  ex->add_flag("--no-set-mm", o->no_set_mm, "Do not set exe/cmdline/auxv/brk with prctl(PR_SET_MM_MAP)");
  ex->add_option("-C,--cwd", o->cwd, "Change to DIR first");
  add_environment_flags(*ex, o->set_env, o->unset_env, o->clear_env);
  ex->footer(
      "PROGRAM [ARG...] follows the options (or \"--\"); a PROGRAM without '/' is searched in PATH as execvp() "
      "does. On failure before the point of no return: "
      "127 if not found, 126 otherwise, with the kernel's errno.");
  commands.push_back({ex, [o](std::vector<std::string> command) { return run_exec(*o, std::move(command)); }});
}

}  // namespace procforge::cli
