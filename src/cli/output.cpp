#include "cli/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/cli.hpp"

namespace procforge::cli {

namespace {

std::string& color_when() {
  static std::string when = "auto";
  return when;
}

}  // namespace

void add_color_option(CLI::App& app) {
  app.add_option("--color", color_when(),
                 "Colour: auto (on a terminal, unless NO_COLOR is set and not empty), always or never")
      ->type_name("WHEN")
      ->check(CLI::IsMember({"auto", "always", "never"}));
}

bool color_on(int fd) {
  const std::string& when = color_when();
  if (when != "auto") return when == "always";
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(fd) && (no_color == nullptr || *no_color == '\0');
}

void print_error(std::string_view subcommand, std::string_view message) {
  std::string line = "procforge";
  if (!subcommand.empty()) line.append(" ").append(subcommand);
  line.append(": ").append(message);
  if (line.back() != '\n') line += '\n';
  std::cerr << line << std::flush;
}

std::optional<int> parse_or_status(CLI::App& app, std::string_view subcommand, std::vector<std::string> words) {
  try {
    std::reverse(words.begin(), words.end());  // CLI11 takes a vector last-first
    app.parse(words);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    print_error(subcommand, std::string(e.what()) + " (--help lists the options)");
    return kExitCannot;
  }
}

nlohmann::json stamped(nlohmann::json doc, const char* schema_name) {
  doc["procforge_version"] = PROCFORGE_VERSION;
  doc["schema"] = schema_name;
  return doc;
}

}  // namespace procforge::cli
