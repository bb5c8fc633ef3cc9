// The environment a command gives its program: this process's environ
// (unless cleared), minus --unset keys, plus --env KEY=VALUE (as env(1)).
#pragma once

#include <string>
#include <vector>

namespace procforge::cli {

// Empty and *bad set when a --env value is not KEY=VALUE.
std::vector<std::string> edited_environment(bool clear, const std::vector<std::string>& set,
                                            const std::vector<std::string>& unset, std::string* bad);

}  // namespace procforge::cli
