// Renderers of `procforge profile`: a terminal table with a bar per phase,
// JSON (the contract: "phases" in pipeline order with name, median_us, min_us,
// max_us, minflt, majflt; "wall_median_us"), and a self-contained HTML report
// with SVG waterfalls per phase and per library.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "procforge/profile.hpp"

namespace procforge::cli {

std::string render_profile_text(const profile::Profile& p, bool color);
std::string render_compare_text(const std::vector<profile::Profile>& ps, bool color);
nlohmann::json render_profile_json(const profile::Profile& p);
std::string render_profile_html(const std::vector<profile::Profile>& ps);

}  // namespace procforge::cli
