// The command-line front end: parse arguments, make one library call, render.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "procforge/exec.hpp"
#include "procforge/ldso.hpp"
#include "procforge/runtime.hpp"

namespace procforge::cli {

// Exit statuses of `procforge explain`.
inline constexpr int kExitRuns = 0;    // execve would succeed and the image starts
inline constexpr int kExitFails = 1;   // execve would fail, or the new image is killed
inline constexpr int kExitCannot = 2;  // bad usage or the question cannot be answered

// The outcome of the whole start, the kernel's half and then ld.so's: the
// headline of explain's text, the top-level "result" of its JSON and the
// status column of a batch line.
struct Verdict {
  std::string outcome;  // "runs", "execve_fails", "killed" or "ldso_fails"
  std::string text;     // "runs: ...", "execve fails with ENOENT (...)", "fails in ld.so: ... (exit 127)"
  std::string why, fix;
  std::string detail = "-";  // the errno's name, the signal's, or ld.so's "exit 127"
  [[nodiscard]] bool fails() const { return outcome != "runs"; }
};
// LOADER: ld.so's half when it runs (null otherwise); PROGRAM: the name its
// messages start with.
Verdict start_verdict(const exec::Prediction& p, const ldso::Prediction* loader);
nlohmann::json verdict_json(const Verdict& v);

// How much of explain's text to show, one level per -v: the verdict, chain,
// argv and libraries fit a screen; the kernel's checks, the ELF headers, the
// exec plan and the relocation work take another; the initial stack and
// auxv the last. Every level shows what the one below it does, in the same
// place, so `-vv` is the whole report.
enum class Detail { summary = 0, plan = 1, full = 2 };
Detail detail_from_count(int verbose);

// SEARCH: execvp's PATH search that chose req.path (path_value empty: none).
std::string render_text(const exec::Request& req, const exec::Prediction& p, const Verdict& v,
                        const exec::PathSearch& search, bool color, Detail detail);
// The last line below anything but -vv: which flag shows what was left out
// of this start's report ("" when nothing was). LOADER as for start_verdict().
std::string render_detail_hint(const exec::Prediction& p, const ldso::Prediction* loader, Detail detail, bool color);
nlohmann::json path_search_json(const exec::PathSearch& search);
// SHOW_ENV: the environment's values too; by default only its keys, so that a
// report pasted somewhere does not carry the secrets an environment holds.
nlohmann::json render_json(const exec::Request& req, const exec::Prediction& p, bool show_env = false);
// One line for batch mode: path, outcome, errno or signal or ld.so's exit
// status, chain; kBatchHeader names the columns (the loader's two follow).
std::string render_line(const std::string& path, const exec::Prediction& p, const Verdict& v);
inline constexpr const char* kBatchHeader = "# path\tresult\tdetail\tchain\tobjects\tloader";

// The runtime the program starts through (render_runtime.cpp): JSON
// "runtime" (null when the file could not be identified) and the text
// section "runtime".
nlohmann::json render_runtime_json(const Result<runtime::Info>& r);
std::string render_runtime_text(const Result<runtime::Info>& r, bool color);

// The dynamic linker's half (render_loader.cpp): JSON "loader" and the text
// section "dynamic linker".
// PROGRAM is the name ld.so's messages start with (its _dl_argv[0]).
nlohmann::json render_loader_json(const std::string& program, const ldso::Prediction& p);
// explain --bindings (render_bindings.cpp): Prediction::bindings.
nlohmann::json render_bindings_json(const ldso::Prediction& p);
std::string render_bindings_text(const std::string& program, const ldso::Prediction& p, bool color);
// Below Detail::plan without the relocation work and the places tried for a
// missing object (their count only), and a cache hit's rule without the
// "NAME => PATH" its line already shows.
std::string render_loader_text(const std::string& program, const ldso::Prediction& p, bool color, Detail detail);
// Whether relocation work was counted for any object (the section -v adds).
bool has_relocations(const ldso::Prediction& p);
// The system's ld.so facts, probed once per process (batch mode shares them).
const ldso::SystemInfo& loader_system();

}  // namespace procforge::cli
