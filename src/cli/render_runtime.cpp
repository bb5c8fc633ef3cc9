// Rendering of the runtime a program starts through (runtime::identify):
// JSON "runtime" and the text section "runtime" of `procforge explain`.
#include <sstream>

#include "cli/cli.hpp"
#include "common/ansi.hpp"
#include "procforge/format.hpp"

namespace procforge::cli {

nlohmann::json render_runtime_json(const Result<runtime::Info>& r) {
  if (!r) return nullptr;
  return {{"name", r->name},
          {"language", runtime::language_name(r->language)},
          {"libc", runtime::libc_name(r->libc)},
          {"version", r->version},
          {"static", r->is_static},
          {"cgo", r->cgo},
          {"symbols", r->symbols},
          {"evidence", r->evidence},
          {"start", r->start}};
}

std::string render_runtime_text(const Result<runtime::Info>& r, bool color) {
  if (!r) return "";
  const Style st(color);
  std::ostringstream o;
  std::string what = r->name + (r->version.empty() ? "" : " " + r->version);
  if (r->language != runtime::Language::c && r->libc != runtime::Libc::none)
    what += std::string(" on ") + runtime::libc_name(r->libc);
  what += r->is_static ? ", static" : ", dynamic";
  if (r->cgo) what += " (cgo)";
  o << "\n" << st.bold("runtime") << "  " << what << st.dim("  [" + join(r->evidence, "; ") + "]") << "\n";
  o << "  start: " << r->start << "\n";
  if (!r->symbols && r->language != runtime::Language::c)
    o << "  " << st.dim("no .symtab (stripped): profile cannot find the runtime's own phases") << "\n";
  return o.str();
}

}  // namespace procforge::cli
