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
// PROGRAM is the name ld.so's messages start with (its _dl_argv[0]).
nlohmann::json render_loader_json(const std::string& program, const ldso::Prediction& p);
std::string render_loader_text(const std::string& program, const ldso::Prediction& p, bool color);
// The ld.so request for an exec prediction, when the program runs and has a
// PT_INTERP; nullopt otherwise. RELOCATIONS: also count relocation work.
std::optional<ldso::Request> loader_request(const exec::Request& req, const exec::Prediction& p, bool relocations);
// The system's ld.so facts, probed once per process (batch mode shares them).
const ldso::SystemInfo& loader_system();
// The ld.so prediction for an exec prediction (loader_request() + resolve());
// a prediction that cannot be made comes back as a warning.
std::optional<ldso::Prediction> predict_loader(const exec::Request& req, const exec::Prediction& p, bool relocations);

}  // namespace procforge::cli
