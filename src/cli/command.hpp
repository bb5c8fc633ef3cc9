// Subcommands register themselves with the CLI: their options, the options
// that take a value (so PROGRAM [ARG...] can be split off the command line
// before parsing), and what to run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace procforge::cli {

struct Command {
  CLI::App* app;
  std::vector<std::string> value_options;  // options followed by a separate value
  std::function<int(std::vector<std::string> command)> run;  // command = PROGRAM [ARG...]
};

void add_explain(CLI::App& app, std::vector<Command>& commands);
void add_run(CLI::App& app, std::vector<Command>& commands);
void add_bench(CLI::App& app, std::vector<Command>& commands);
void add_exec(CLI::App& app, std::vector<Command>& commands);
void add_profile(CLI::App& app, std::vector<Command>& commands);

// `procforge` with no arguments: the built-in default job.
int run_default();

}  // namespace procforge::cli
