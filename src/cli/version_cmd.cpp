// `procforge version [--json]` and `procforge --version`: what was built (the
// version, the git commit when built from a checkout) and what it runs on
// (the kernel's release, the glibc it was loaded with), for bug reports.
#include <gnu/libc-version.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "common/kernel_release.hpp"

namespace procforge::cli {

std::string version_line() {
  const std::string commit = PROCFORGE_GIT_COMMIT;
  return std::string("procforge ") + PROCFORGE_VERSION + (commit.empty() ? "" : " (git " + commit + ")");
}

void add_version(CLI::App& app, std::vector<Command>& commands) {
  auto json = std::make_shared<bool>(false);
  auto* v = app.add_subcommand("version", "The version built, its git commit, and the kernel and glibc it runs on");
  v->add_flag("--json", *json, "Machine-readable output");
  commands.push_back({v, [json](std::vector<std::string>) {
                        const std::string& release = kernel_release().text;
                        const std::string commit = PROCFORGE_GIT_COMMIT;
                        if (*json) {
                          nlohmann::json j{
                              {"git_commit", commit.empty() ? nlohmann::json(nullptr) : nlohmann::json(commit)},
                              {"kernel", release},
                              {"glibc", gnu_get_libc_version()}};
                          std::cout << stamped(std::move(j), schema::version).dump(2) << "\n";
                        } else {
                          std::cout << version_line() << "\n"
                                    << "kernel " << release << ", glibc " << gnu_get_libc_version() << "\n";
                        }
                        return 0;
                      }});
}

}  // namespace procforge::cli
