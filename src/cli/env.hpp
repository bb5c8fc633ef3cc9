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
// itself when it has a '/'. Nullopt, with *why, when no element holds it.
std::optional<std::string> command_path(const exec::Request& req, std::string* why);

}  // namespace procforge::cli
