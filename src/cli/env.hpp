// The environment a command gives its program: this process's environ
// (unless cleared), minus --unset keys, plus --env KEY=VALUE (as env(1)).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "procforge/exec.hpp"

namespace procforge::cli {

// Empty and *bad set when a --env value is not KEY=VALUE.
std::vector<std::string> edited_environment(bool clear, const std::vector<std::string>& set,
                                            const std::vector<std::string>& unset, std::string* bad);

// The file execvp(req.path, ...) settles on in req.envp's PATH (the exec
// model's prediction of each candidate, exec::predict_command()); req.path
// itself when it has a '/'. An Error with ENOENT and the search's diagnosis
// when no element holds it, or the model's own error when it cannot tell.
// With the /bin/sh retry of a file the kernel cannot run, req's path and argv
// become /bin/sh's.
Result<exec::Request> command_request(const exec::Request& req);
// command_request() for SUBCOMMAND: REQ becomes the exec to make, or the
// failure is printed ("procforge SUBCOMMAND: ...") and its exit status
// returned: 127 not found, 2 when the question could not be answered.
std::optional<int> resolve_command(const std::string& subcommand, exec::Request& req);

// After an exec of REQ failed with ERR: explain's why and fix for it, as
// "  why  ...\n  fix  ...\n" ("" when the model does not predict ERR).
// Computed only after a failure, so that the fast path pays nothing.
std::string exec_failure_words(exec::Request req, int err);

// How a command reports an exec the user-space loader refused: the errno on
// the first line and explain's why and fix below it, as run and profile do
// after execve; the loader's own message when the model has no words for it.
std::string loader_failure(const exec::Request& req, const Error& e);

}  // namespace procforge::cli
