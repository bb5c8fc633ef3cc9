// The command-line front end: parse arguments, make one library call, render.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "procforge/exec.hpp"
#include "procforge/ldso.hpp"

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

// The dynamic linker's half (render_loader.cpp): JSON "loader" and the text
// section "dynamic linker".
nlohmann::json render_loader_json(const ldso::Prediction& p);
std::string render_loader_text(const std::string& program, const ldso::Prediction& p, bool color);
// The ld.so prediction for an exec prediction, when the program runs and has
// a PT_INTERP; nullopt otherwise.
std::optional<ldso::Prediction> predict_loader(const exec::Request& req, const exec::Prediction& p);

}  // namespace procforge::cli
