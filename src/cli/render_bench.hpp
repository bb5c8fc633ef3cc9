// Renderers of `procforge bench [SUITE...]`: terminal tables, JSON (schema
// procforge.bench/1, docs/schema/bench.schema.json) and the HTML page.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "procforge/bench.hpp"

namespace procforge::cli {

std::string render_bench_text(const bench::SuiteReport& r);
nlohmann::json render_bench_suites_json(const bench::SuiteReport& r);
std::string render_bench_html(const bench::SuiteReport& r);

}  // namespace procforge::cli
