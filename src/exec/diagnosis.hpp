// Plain-words diagnoses and fixes for the kernel's refusals. Kept apart from
// the rules so the rules read like the kernel and the words can improve alone.
#pragma once

#include <string>
#include <utility>

namespace procforge::exec {

struct LookupResult;

// {diagnosis, fix} for a failed path walk of `name` (the `role` file).
std::pair<std::string, std::string> diagnose_lookup(int err, const std::string& role, const std::string& name,
                                                    const LookupResult& lr);

}  // namespace procforge::exec
