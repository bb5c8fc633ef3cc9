// The command-line front end: parse arguments, make one library call, render.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "procforge/exec.hpp"

namespace procforge::cli {

// Exit statuses of `procforge explain`.
inline constexpr int kExitRuns = 0;      // execve would succeed and the image starts
inline constexpr int kExitFails = 1;     // execve would fail, or the new image is killed
inline constexpr int kExitCannot = 2;    // bad usage or the question cannot be answered

std::string render_text(const exec::Request& req, const exec::Prediction& p, bool color);
nlohmann::json render_json(const exec::Request& req, const exec::Prediction& p);
// One line for batch mode: path, result, errno or signal, chain.
std::string render_line(const std::string& path, const exec::Prediction& p);

int outcome_status(const exec::Prediction& p);

}  // namespace procforge::cli
