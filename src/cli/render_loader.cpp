// Rendering of the dynamic-linker half of `procforge explain`: the objects
// ld.so would load (ldso::Prediction), as JSON ("loader") and as the text
// section "dynamic linker": a dependency tree in which each object shows its
// path and the rule that found it; for a failure, the places tried in order
// and what to do about it; then (with -v) each object's start-up relocation
// work and the cost model's estimate of ld.so's start-up time (labelled an
// estimate).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "cli/cli.hpp"
#include "common/ansi.hpp"
#include "procforge/format.hpp"

namespace procforge::cli {

namespace {

using nlohmann::json;

json relocations_json(const std::optional<ldso::Relocations>& r) {
  if (!r) return nullptr;
  return {{"relative", r->relative},
          {"symbolic", r->symbolic},
          {"plt", r->plt},
          {"irelative", r->irelative},
          {"tls", r->tls},
          {"copy", r->copy},
          {"textrel", r->textrel},
          {"bind_now", r->bind_now},
          {"pages_dirtied", r->pages_dirtied},
          {"symbol_lookups", r->symbol_lookups}};
}

const char* kEstimateLabel =
    "estimate, not a measurement: ld.so start-up time from procforge's cost model (relocation counts x unit "
    "costs, src/ldso/relocations.hpp CostModel, calibrated once on one 2-vCPU VM); an order of magnitude for "
    "comparing programs";

// One compact line of relocation work: "1204 relative, 96 symbolic, 310 plt (lazy), 12 pages".
std::string relocation_line(const ldso::Relocations& r) {
  std::string s = std::to_string(r.relative) + " relative, " + std::to_string(r.symbolic) + " symbolic, " +
                  std::to_string(r.plt) + " plt (" + (r.bind_now ? "bound now" : "lazy") + ")";
  if (r.irelative) s += ", " + std::to_string(r.irelative) + " ifunc";
  if (r.tls) s += ", " + std::to_string(r.tls) + " tls";
  if (r.copy) s += ", " + std::to_string(r.copy) + " copy";
  if (r.textrel) s += ", TEXTREL";
  return s + "; " + std::to_string(r.pages_dirtied) + (r.pages_dirtied == 1 ? " page" : " pages") + " dirtied";
}

const char* stage_name(ldso::LoaderError::Stage s) {
  switch (s) {
    case ldso::LoaderError::Stage::versions: return "versions";
    case ldso::LoaderError::Stage::musl_loading: return "musl_loading";
    case ldso::LoaderError::Stage::musl_relocating: return "musl_relocating";
    case ldso::LoaderError::Stage::relocating: return "relocating";
    case ldso::LoaderError::Stage::loading: break;
  }
  return "loading";
}

// "musl 1.2.3" / "glibc 2.36": which loader's rules the section follows.
std::string loader_name(const ldso::Prediction& p) {
  if (p.kind == ldso::LoaderKind::musl) return "musl" + (p.loader_version.empty() ? "" : " " + p.loader_version);
  const auto& sys = loader_system();
  return "glibc " + std::to_string(sys.glibc_major) + "." + std::to_string(sys.glibc_minor);
}

// ld.so run as a command: what its command line asked for, and the exit
// of a run that loads nothing.
json command_json(const ldso::Prediction& p) {
  if (!p.command) return nullptr;
  const ldso::LoaderCommand& c = *p.command;
  auto opt = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  return {{"mode", ldso::loader_mode_name(c.mode)},
          {"program", c.program_argv.empty() ? json(nullptr) : json(c.program)},
          {"argv", c.program_argv},
          {"library_path", opt(c.library_path)},
          {"preload", opt(c.preload)},
          {"inhibit_rpath", opt(c.inhibit_rpath)},
          {"inhibit_cache", c.inhibit_cache},
          {"argv0", opt(c.argv0)},
          {"glibc_hwcaps_prepend", opt(c.hwcaps_prepend)},
          {"glibc_hwcaps_mask", opt(c.hwcaps_mask)},
          {"audit", c.audit},
          {"exit_status", p.command_exit ? json(*p.command_exit) : json(nullptr)},
          {"stderr", c.mode == ldso::LoaderCommand::Mode::usage ? json(ldso::usage_text(c)) : json(nullptr)}};
}

// The command line in words: the mode and the options that change the load.
std::string command_line_text(const ldso::LoaderCommand& c) {
  using Mode = ldso::LoaderCommand::Mode;
  std::string s;
  switch (c.mode) {
    case Mode::run: s = "loads and runs " + c.program; break;
    case Mode::list: s = "--list: lists what " + c.program + " loads, then exits (a name not found is fatal)"; break;
    case Mode::verify: s = "--verify: only checks " + c.program; break;
    case Mode::help: s = "--help: prints its help"; break;
    case Mode::version: s = "--version: prints its version"; break;
    case Mode::list_tunables: s = "--list-tunables: prints the tunables"; break;
    case Mode::list_diagnostics: s = "--list-diagnostics: prints its diagnostics"; break;
    case Mode::usage: s = "refuses its command line"; break;
  }
  auto add = [&](const char* name, const std::optional<std::string>& v) {
    if (v) s += std::string("; ") + name + " " + *v;
  };
  add("--library-path", c.library_path);
  add("--preload", c.preload);
  add("--inhibit-rpath", c.inhibit_rpath);
  add("--argv0", c.argv0);
  add("--glibc-hwcaps-prepend", c.hwcaps_prepend);
  add("--glibc-hwcaps-mask", c.hwcaps_mask);
  if (c.inhibit_cache) s += "; --inhibit-cache";
  for (const auto& a : c.audit) s += "; --audit " + a + " (audit modules are not modelled)";
  return s;
}

}  // namespace

json render_loader_json(const std::string& program, const ldso::Prediction& p) {
  json objects = json::array();
  for (const auto& o : p.objects)
    objects.push_back({{"name", o.name},
                       {"path", o.path ? json(*o.path) : json(nullptr)},
                       {"found_by", ldso::found_by_name(o.found_by)},
                       {"needed_by", o.needed_by},
                       {"found_via", o.found_via},
                       {"tried", o.tried},
                       {"relocations", relocations_json(o.relocations)}});
  json error = nullptr;
  const auto d = ldso::diagnose(p, loader_system());
  if (p.error)
    error = {{"object", p.error->object},
             {"why", d.why},
             {"fix", d.fix.empty() ? json(nullptr) : json(d.fix)},
             {"message", p.error->message},
             {"stage", stage_name(p.error->stage)},
             {"stderr", ldso::error_line(program, *p.error)},
             {"exit_status", ldso::exit_status(*p.error)}};
  json out = {{"kind", ldso::loader_kind_name(p.kind)},
              {"command", command_json(p)},
              {"version", loader_name(p).substr(loader_name(p).find(' ') + 1)},
              {"objects", objects},
              {"error", error},
              {"warnings", p.warnings},
              {"program_relocations", relocations_json(p.program_relocations)},
              {"startup_estimate_us", p.startup_estimate_us ? json(*p.startup_estimate_us) : json(nullptr)},
              {"startup_estimate_kind", kEstimateLabel}};
  if (p.bindings) out["bindings"] = render_bindings_json(p);
  if (p.bindings) {
    const bool stops = p.error && p.error->stage == ldso::LoaderError::Stage::relocating;
    out["binding_error"] = stops ? json(ldso::error_line(program, *p.error)) : json(nullptr);
    json lazy = json::array();
    for (const auto& f : p.first_call_errors)
      lazy.push_back({{"object", f.error.object},
                      {"symbol", f.symbol},
                      {"stderr", ldso::error_line(program, f.error)},
                      {"exit_status", ldso::exit_status(f.error)}});
    out["first_call_errors"] = std::move(lazy);
  }
  if (p.kind == ldso::LoaderKind::musl) {
    out["system_path"] = p.system_path;
    out["system_path_from"] = p.system_path_from;
  }
  return out;
}

bool has_relocations(const ldso::Prediction& p) {
  return p.program_relocations ||
         std::any_of(p.objects.begin(), p.objects.end(), [](const auto& ob) { return ob.relocations.has_value(); });
}

std::string render_loader_text(const std::string& program, const ldso::Prediction& p, bool color, Detail detail) {
  const Style st(color);
  std::ostringstream o;
  const bool musl = p.kind == ldso::LoaderKind::musl;
  o << "\n"
    << st.bold("dynamic linker")
    << st.dim(musl ? "  (" + loader_name(p) + " loader, ldso/dynlink.c rules, load order)"
                   : "  (" + loader_name(p) + " ld.so, trace-mode order)")
    << "\n";
  if (p.command) o << "  ld.so run as a command: " << command_line_text(*p.command) << "\n";
  if (p.command_exit) {
    o << "  "
      << (*p.command_exit ? st.red("exits with status " + std::to_string(*p.command_exit))
                          : st.green("exits with status 0"))
      << " before loading anything\n";
    std::istringstream usage(ldso::usage_text(*p.command));
    for (std::string l; std::getline(usage, l);) o << "  " << st.dim("ld.so prints: " + l) << "\n";
    return o.str();
  }
  if (!p.dynamic) {
    for (const auto& w : p.warnings) o << "  " << w << "\n";
    return o.str();
  }
  if (p.error)
    o << "  " << st.red("fails: " + p.error->object + ": " + p.error->message) << "\n"
      << "  "
      << st.dim(std::string(musl ? "the loader prints: " : "ld.so prints: ") + ldso::error_line(program, *p.error) +
                "  (exit status " + std::to_string(ldso::exit_status(*p.error)) + ")")
      << "\n";
  else o << "  all " << p.objects.size() << " objects found\n";
  if (musl && !p.system_path_from.empty())
    o << "  "
      << st.dim("last searched: " + (p.system_path.empty() ? std::string("nothing") : join(p.system_path, ":")) + " (" +
                p.system_path_from + ")")
      << "\n";

  // The tree: each object under the one whose DT_NEEDED first named it.
  std::map<std::string, std::vector<std::size_t>> children;
  std::map<std::string, bool> is_parent;
  is_parent[program] = true;
  for (const auto& ob : p.objects)
    if (ob.path) is_parent[*ob.path] = true;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < p.objects.size(); ++i) {
    const auto& ob = p.objects[i];
    if (!ob.needed_by.empty() && ob.needed_by != program && is_parent.count(ob.needed_by))
      children[ob.needed_by].push_back(i);
    else roots.push_back(i);
  }
  std::map<std::size_t, bool> shown;
  std::function<void(std::size_t, int)> show = [&](std::size_t i, int depth) {
    const auto& ob = p.objects[i];
    shown[i] = true;
    const std::string indent(2 + 2 * static_cast<std::size_t>(depth), ' ');
    if (!ob.path) {
      o << indent << ob.name << " => " << st.red("not found") << "\n";
      // Every hwcaps subdirectory of every directory: dozens of lines, which the verdict's why sums up.
      if (!ob.tried.empty() && detail == Detail::summary)
        o << indent << "    tried " << ob.tried.size() << " places (-v lists them)\n";
      else if (!ob.tried.empty()) {
        o << indent << "    tried, in order:\n";
        for (const auto& t : ob.tried) o << indent << "      " << t << "\n";
      }
      o << indent << "    fix: " << ldso::missing_object_fix(ob.name, p) << "\n";
      return;
    }
    o << indent << ob.name;
    if (*ob.path != ob.name) o << " => " << *ob.path;
    // The rule's name, then where it looked, unless that already starts with the name
    // ("LD_LIBRARY_PATH: /x", "DT_RUNPATH of y: /z", "/etc/ld.so.cache: ...").
    const std::string rule = ldso::found_by_name(ob.found_by);
    std::string via = ob.found_via;
    // The summary drops what the line already says: "/etc/ld.so.cache: NAME => PATH" is "/etc/ld.so.cache".
    const std::string restated = ": " + ob.name + " => " + *ob.path;
    if (detail == Detail::summary && via.size() > restated.size() && via.ends_with(restated))
      via.resize(via.size() - restated.size());
    // An ld.so option ("--library-path: /x", "--preload") names its rule itself.
    const bool named = via.substr(0, via.find(':')).find(rule) != std::string::npos || via.rfind("--", 0) == 0;
    o << st.dim("  [" + (named ? via : rule + (via.empty() ? "" : ": " + via)) + "]") << "\n";
    auto it = children.find(*ob.path);
    if (it != children.end())
      for (std::size_t c : it->second)
        if (!shown[c]) show(c, depth + 1);
  };
  o << "  " << program << "\n";
  for (std::size_t r : roots) show(r, 1);
  for (std::size_t i = 0; i < p.objects.size(); ++i)
    if (!shown[i]) show(i, 1);
  for (const auto& w : p.warnings) o << "  note    " << w << "\n";

  // Start-up relocation work, one line per object, in link-map order.
  if (detail >= Detail::plan && has_relocations(p)) {
    o << "  " << st.bold("relocations at start-up") << st.dim("  (counted from each file's dynamic section)") << "\n";
    std::size_t width = program.size();
    for (const auto& ob : p.objects)
      if (ob.relocations) width = std::max(width, ob.name.size());
    auto row = [&](const std::string& name, const ldso::Relocations& r) {
      o << "    " << name << std::string(width - name.size() + 2, ' ') << relocation_line(r) << "\n";
    };
    if (p.program_relocations) row(program, *p.program_relocations);
    for (const auto& ob : p.objects)
      if (ob.relocations) row(ob.name, *ob.relocations);
    if (p.startup_estimate_us) {
      char us[32];
      std::snprintf(us, sizeof us, "%.0f", *p.startup_estimate_us);
      o << "    estimated ld.so start-up: ~" << us << " us  "
        << st.dim(
               "(ESTIMATE from the cost model in src/ldso/relocations.hpp, calibrated once on one VM: an order "
               "of magnitude, not a measurement)")
        << "\n";
    }
  }
  return o.str();
}

}  // namespace procforge::cli
