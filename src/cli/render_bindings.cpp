// explain --bindings: every symbol lookup of start-up (ldso::Prediction::
// bindings) as text, one line each in ld.so's order, and as JSON (the
// "bindings" array of the loader object, docs/schema/explain.schema.json).
#include "cli/cli.hpp"
#include "common/ansi.hpp"

namespace procforge::cli {

using nlohmann::json;

json render_bindings_json(const ldso::Prediction& p) {
  json out = json::array();
  for (const auto& b : *p.bindings)
    out.push_back({{"object", b.object},
                   {"symbol", b.symbol},
                   {"version", b.version ? json(*b.version) : json(nullptr)},
                   {"target", b.target ? json(*b.target) : json(nullptr)},
                   {"target_version", b.target_version},
                   {"kind", b.protected_symbol ? "protected" : "normal"},
                   {"weak", b.weak},
                   {"relocation", b.relocation},
                   {"definition_type", b.definition_type},
                   {"from_cache", b.from_cache},
                   {"at_first_call", b.at_first_call}});
  return out;
}

std::string render_bindings_text(const std::string& program, const ldso::Prediction& p, bool color) {
  if (!p.bindings) return "";
  const Style st(color);
  std::string s =
      "  " + st.bold("symbol bindings") + " (" + std::to_string(p.bindings->size()) + " lookups, in ld.so's order)\n";
  for (const auto& b : *p.bindings) {
    s += "    " + b.object + ": " + (b.protected_symbol ? "protected" : "normal") + " `" + b.symbol + "'";
    if (b.version) s += " [" + *b.version + "]";
    if (b.target) {
      s += " -> " + *b.target;
      if (!b.target_version.empty()) s += " (" + b.target_version + ")";
    } else {
      s += b.weak ? " -> nothing (weak: 0)" : " -> " + st.red("undefined");
    }
    s += "  " + b.relocation;
    if (b.definition_type == "IFUNC") s += ", IFUNC: its resolver is called";
    else if (!b.definition_type.empty()) s += ", " + b.definition_type;
    if (b.from_cache) s += ", from the lookup cache";
    if (b.at_first_call) s += ", lazy: at the first call";
    s += "\n";
  }
  if (p.error && p.error->stage == ldso::LoaderError::Stage::relocating)
    s += "    " + st.red("ld.so stops start-up: ") + ldso::error_line(program, *p.error) + "  (exit " +
         std::to_string(ldso::exit_status(*p.error)) + ")\n";
  for (const auto& f : p.first_call_errors)
    s += "    " + st.red("the first call to " + f.symbol + " stops the program: ") +
         ldso::error_line(program, f.error) + "  (exit " + std::to_string(ldso::exit_status(f.error)) + ")\n";
  return s;
}

}  // namespace procforge::cli
