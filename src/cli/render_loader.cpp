// Rendering of the dynamic-linker half of `procforge explain`: the objects
// ld.so would load (ldso::Prediction), as JSON ("loader") and as the text
// section "dynamic linker": a dependency tree in which each object shows its
// path and the rule that found it; for a failure, the places tried in order
// and what to do about it.
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "cli/cli.hpp"

namespace procforge::cli {

namespace {

using nlohmann::json;

std::string fix_for(const ldso::Object& o) {
  return "make " + o.name +
         " findable: install the package that provides it (then run ldconfig if it went to a directory of "
         "/etc/ld.so.conf), or add its directory to LD_LIBRARY_PATH, or relink the program with -Wl,-rpath,DIR";
}

}  // namespace

json render_loader_json(const ldso::Prediction& p) {
  json objects = json::array();
  for (const auto& o : p.objects)
    objects.push_back({{"name", o.name},
                       {"path", o.path ? json(*o.path) : json(nullptr)},
                       {"found_by", ldso::found_by_name(o.found_by)},
                       {"needed_by", o.needed_by},
                       {"found_via", o.found_via},
                       {"tried", o.tried}});
  return {{"objects", objects},
          {"error", p.error ? json{{"object", p.error->object}, {"message", p.error->message}} : json(nullptr)},
          {"warnings", p.warnings}};
}

std::string render_loader_text(const std::string& program, const ldso::Prediction& p, bool color) {
  auto bold = [&](const std::string& s) { return color ? "\033[1m" + s + "\033[0m" : s; };
  auto red = [&](const std::string& s) { return color ? "\033[31m" + s + "\033[0m" : s; };
  auto dim = [&](const std::string& s) { return color ? "\033[2m" + s + "\033[0m" : s; };
  std::ostringstream o;
  o << "\n" << bold("dynamic linker") << dim("  (glibc ld.so, trace-mode order)") << "\n";
  if (!p.dynamic) {
    for (const auto& w : p.warnings) o << "  " << w << "\n";
    return o.str();
  }
  if (p.error) o << "  " << red("fails: " + p.error->object + ": " + p.error->message) << "\n";
  else o << "  all " << p.objects.size() << " objects found\n";

  // The tree: each object under the one whose DT_NEEDED first named it.
  std::map<std::string, std::vector<std::size_t>> children;
  std::map<std::string, bool> is_parent;
  is_parent[program] = true;
  for (const auto& ob : p.objects)
    if (ob.path) is_parent[*ob.path] = true;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < p.objects.size(); ++i) {
    const auto& ob = p.objects[i];
    if (!ob.needed_by.empty() && ob.needed_by != program && is_parent.count(ob.needed_by)) children[ob.needed_by].push_back(i);
    else roots.push_back(i);
  }
  std::map<std::size_t, bool> shown;
  std::function<void(std::size_t, int)> show = [&](std::size_t i, int depth) {
    const auto& ob = p.objects[i];
    shown[i] = true;
    const std::string indent(2 + 2 * static_cast<std::size_t>(depth), ' ');
    if (!ob.path) {
      o << indent << ob.name << " => " << red("not found") << "\n";
      if (!ob.tried.empty()) {
        o << indent << "    tried, in order:\n";
        for (const auto& t : ob.tried) o << indent << "      " << t << "\n";
      }
      o << indent << "    fix: " << fix_for(ob) << "\n";
      return;
    }
    o << indent << ob.name;
    if (*ob.path != ob.name) o << " => " << *ob.path;
    o << dim("  [" + std::string(ldso::found_by_name(ob.found_by)) + (ob.found_via.empty() ? "" : ": " + ob.found_via) +
             "]")
      << "\n";
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
  return o.str();
}

}  // namespace procforge::cli
