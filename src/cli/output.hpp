// How every subcommand speaks, so that procforge fits beside the tools it is
// used with:
//  - colour is decided in one place, from --color=auto|always|never and the
//    NO_COLOR convention (no-color.org: set and not empty, no colour in auto
//    mode; an explicit --color wins over it);
//  - errors go to stderr as "procforge SUBCOMMAND: message", as cp(1) and
//    git(1) prefix theirs, so that a script tells procforge's words from the
//    program's;
//  - every --json document carries "procforge_version" and "schema", the
//    name of its shape, with a JSON Schema for each in docs/schema/.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procforge::cli {

// --color=WHEN on APP. One invocation runs one subcommand, so the choice is
// process-wide, as NO_COLOR is.
void add_color_option(CLI::App& app);
// Whether what is written on FD gets colour: always, never, or (auto) when FD
// is a terminal and NO_COLOR is unset or empty.
bool color_on(int fd);

// "procforge SUBCOMMAND: MESSAGE" on stderr ("procforge: MESSAGE" without a
// subcommand), a newline added unless MESSAGE ends with one: every error, and
// the few other lines procforge says about itself there (a warning, a summary).
void print_error(std::string_view subcommand, std::string_view message);

// APP parses WORDS (procforge's own, in command-line order). nullopt when
// they parse; otherwise the exit status after --help's text (0) or a usage
// error printed by print_error() as SUBCOMMAND's (2).
std::optional<int> parse_or_status(CLI::App& app, std::string_view subcommand, std::vector<std::string> words);

// The shapes of the --json outputs, "procforge.NAME/VERSION"; the schema of
// each is docs/schema/NAME.schema.json. VERSION grows when a field is removed
// or changes meaning, not when one is added.
namespace schema {
inline constexpr const char* explain = "procforge.explain/1";
inline constexpr const char* explain_batch = "procforge.explain-batch/1";  // one object a line
inline constexpr const char* run = "procforge.run/1";
inline constexpr const char* profile = "procforge.profile/1";
inline constexpr const char* profile_compare = "procforge.profile-compare/1";
inline constexpr const char* bench_spawn = "procforge.bench-spawn/1";
inline constexpr const char* bench_warm = "procforge.bench-warm/1";
inline constexpr const char* bench = "procforge.bench/1";
inline constexpr const char* batch = "procforge.batch/1";  // one object a line
inline constexpr const char* version = "procforge.version/1";
inline constexpr const char* ldd = "procforge.ldd/1";
}  // namespace schema

// DOC with "procforge_version" and "schema" (one of schema::) added.
nlohmann::json stamped(nlohmann::json doc, const char* schema_name);

}  // namespace procforge::cli
