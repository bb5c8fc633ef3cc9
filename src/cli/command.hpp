// Subcommands register themselves with the CLI: their options and what to
// run. (main.cpp splits PROGRAM [ARG...] off the command line by asking the
// subcommand's CLI::App which of its options take a value.)
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace procforge::cli {

struct Command {
  CLI::App* app;
  std::function<int(std::vector<std::string> command)> run;  // command = PROGRAM [ARG...]
};

void add_explain(CLI::App& app, std::vector<Command>& commands);
void add_run(CLI::App& app, std::vector<Command>& commands);
void add_bench(CLI::App& app, std::vector<Command>& commands);
void add_exec(CLI::App& app, std::vector<Command>& commands);
void add_profile(CLI::App& app, std::vector<Command>& commands);
void add_version(CLI::App& app, std::vector<Command>& commands);
void add_demo(CLI::App& app, std::vector<Command>& commands);
void add_batch(CLI::App& app, std::vector<Command>& commands);
void add_serve(CLI::App& app, std::vector<Command>& commands);
void add_ldd(CLI::App& app, std::vector<Command>& commands);
// `procforge manpage` and `procforge completion`, generated from the other subcommands' definitions.
void add_manual(CLI::App& app, std::vector<Command>& commands);
bool has_manual_page(const std::string& subcommand);

// "procforge 0.1.0 (git 0123456789ab)".
std::string version_line();

}  // namespace procforge::cli
