// procforge: the process-creation pipeline, stage by stage.
//   procforge SUBCOMMAND [opts] [PROGRAM [ARG...]]   (procforge alone: usage, exit 2)
// Each subcommand lives in its own *_cmd.cpp and registers itself here.
#include <sys/stat.h>

#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"

namespace procforge::cli {

namespace {

// Whether arg names an option of app that takes its value as the next word
// (any option but a flag; "--name=value" is one word and no name). An
// option whose value may be left out (run --server [SOCKET]) takes the next
// word only when it names a socket: otherwise that word is the program.
bool takes_separate_value(const CLI::App& app, const std::string& arg, const char* next) {
  const CLI::Option* opt = app.get_option_no_throw(arg);
  if (opt == nullptr || opt->get_items_expected_max() == 0) return false;
  if (opt->get_items_expected_min() > 0) return true;
  struct stat st {};
  return next && stat(next, &st) == 0 && S_ISSOCK(st.st_mode);
}

struct CommandLine {
  const Command* sub = nullptr;      // the subcommand named, if any
  std::vector<std::string> ours;     // procforge's own words
  std::vector<std::string> program;  // PROGRAM [ARG...]
};

// Splits the command line into procforge's own words and PROGRAM [ARG...]:
// after the subcommand, options stop at "--" or at the first word that is
// neither an option nor an option's value, so the program's own flags are
// never taken for ours.
CommandLine split_command(int argc, char** argv, const std::vector<Command>& commands) {
  CommandLine line;
  int i = 1;
  for (; i < argc && !line.sub; ++i) {
    line.ours.emplace_back(argv[i]);
    for (const auto& c : commands)
      if (c.app->get_name() == line.ours.back()) line.sub = &c;
  }
  if (!line.sub) return line;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    line.ours.push_back(a);
    if (takes_separate_value(*line.sub->app, a, i + 1 < argc ? argv[i + 1] : nullptr) && i + 1 < argc)
      line.ours.emplace_back(argv[++i]);
  }
  for (; i < argc; ++i) line.program.emplace_back(argv[i]);
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"procforge: Linux process creation, stage by stage", "procforge"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", version_line());
  std::vector<Command> commands;
  add_explain(app, commands);
  add_ldd(app, commands);
  add_run(app, commands);
  add_bench(app, commands);
  add_exec(app, commands);
  add_profile(app, commands);
  add_batch(app, commands);
  add_serve(app, commands);
  add_version(app, commands);
  add_demo(app, commands);
  add_manual(app, commands);
  for (const auto& c : commands) add_color_option(*c.app);  // every one, so that a script may pass it to any

  CommandLine line = split_command(argc, argv, commands);
  if (auto refused = parse_or_status(app, line.sub ? line.sub->app->get_name() : "", line.ours)) return *refused;
  for (const auto& c : commands)
    if (*c.app) return c.run(std::move(line.program));
  // No subcommand: say what there is, as git and ip do, and fail.
  std::cerr << "usage: procforge SUBCOMMAND [OPTIONS] [--] [PROGRAM [ARG...]]\n\nsubcommands:\n";
  for (const auto& c : commands) {
    std::string name = c.app->get_name();
    name.resize(10, ' ');
    std::cerr << "  " << name << c.app->get_description() << "\n";
  }
  std::cerr << "\n'procforge SUBCOMMAND --help' for a subcommand's options; 'procforge demo' to see one run.\n";
  return kExitCannot;
}

}  // namespace procforge::cli

int main(int argc, char** argv) { return procforge::cli::main(argc, argv); }
