// How the commands that exec a program turn their flags into its
// environment and its file, and how they report an exec that failed. The
// work is the library's (procforge/environment.hpp, exec::command_request());
// this is its wording.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "procforge/exec.hpp"

namespace procforge::cli {

// This process's environ (unless cleared), minus --unset keys, plus --env
// KEY=VALUE (as env(1)): env::edited(). Empty and *bad set when a --env value
// is not KEY=VALUE.
std::vector<std::string> edited_environment(bool clear, const std::vector<std::string>& set,
                                            const std::vector<std::string>& unset, std::string* bad);
// --env, --unset and --clear-env, the same words in every subcommand that execs a program.
void add_environment_flags(CLI::App& app, std::vector<std::string>& set, std::vector<std::string>& unset, bool& clear);
// "--env takes KEY=VALUE, got '...'" for the first --env value that is not, if any.
std::optional<std::string> bad_env_assignment(const std::vector<std::string>& set);

// exec::command_request() for SUBCOMMAND: REQ becomes the exec to make, or
// the failure is printed and its exit status returned (search_failure()).
std::optional<int> resolve_command(const std::string& subcommand, exec::Request& req);
// A PATH search that failed for NAME, printed as "procforge SUBCOMMAND: ...":
// 127 when not found, 2 when the question could not be answered.
int search_failure(const std::string& subcommand, const std::string& name, const Error& e);

// After an exec of REQ failed with ERR: explain's why and fix for it, as
// "  why  ...\n  fix  ...\n" ("" when the model does not predict ERR).
// Computed only after a failure, so that the fast path pays nothing.
std::string exec_failure_words(exec::Request req, int err);

// How a command reports an exec the user-space exec refused: the errno on
// the first line and explain's why and fix below it, as run and profile do
// after execve; the user-space exec's own message when the model has no
// words for it.
std::string user_exec_failure(const exec::Request& req, const Error& e);

}  // namespace procforge::cli
