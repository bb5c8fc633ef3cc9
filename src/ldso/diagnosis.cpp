// Plain words for the failures ld.so stops a start with, kept apart from the
// rules (search, versions) so that the rules read like glibc and the words
// can improve alone. The messages they explain are ld.so's own:
// elf/dl-load.c _dl_map_object() "cannot open shared object file",
// elf/dl-version.c match_symbol() "version `%s' not found (required by %s)",
// sysdeps/x86/dl-prop.h "CPU ISA level is lower than required",
// elf/dl-lookup.c _dl_lookup_symbol_x() "undefined symbol: %s%s%s".
#include <cstdio>
#include <utility>

#include "procforge/format.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

namespace {

const Object* object_named(const Prediction& p, const std::string& name) {
  for (const auto& o : p.objects)
    if (o.name == name || (o.path && *o.path == name)) return &o;
  return nullptr;
}

// "version `GLIBC_2.99' not found (required by ./prog)" -> {"GLIBC_2.99", "./prog"}.
std::pair<std::string, std::string> version_and_requirer(const std::string& message) {
  auto a = message.find('`'), b = message.find('\'');
  auto r = message.find("(required by ");
  if (a == std::string::npos || b == std::string::npos || b < a) return {};
  std::string requirer;
  if (r != std::string::npos) requirer = message.substr(r + 13, message.size() - r - 14);
  return {message.substr(a + 1, b - a - 1), requirer};
}

// The places tried, as a person would name them: each directory once, its
// glibc-hwcaps and legacy hwcap subdirectories folded into it (ld.so tries
// those first, dl-load.c open_path() over each r_search_path_elem).
std::string places(const std::vector<std::string>& tried, const std::string& name) {
  if (tried.empty()) return "no place (no search path applies)";
  std::vector<std::string> dirs;
  for (const auto& t : tried) {
    const bool path =
        t.size() > name.size() + 1 && t.compare(t.size() - name.size() - 1, std::string::npos, "/" + name) == 0;
    dirs.push_back(path ? t.substr(0, t.size() - name.size() - 1) : t);
  }
  // D is a hwcap subdirectory of BASE: glibc-hwcaps/NAME, or the legacy
  // tls/PLATFORM/HWCAP chains (elf/dl-hwcaps.c, dl-hwcaps_split.c).
  auto subdir_of = [](const std::string& d, const std::string& base) {
    if (d.size() <= base.size() + 1 || d.compare(0, base.size() + 1, base + "/") != 0) return false;
    std::string rest = d.substr(base.size() + 1);
    if (rest.rfind("glibc-hwcaps/", 0) == 0) return true;
    for (std::size_t i = 0; i <= rest.size();) {
      std::size_t j = std::min(rest.find('/', i), rest.size());
      const std::string c = rest.substr(i, j - i);
      if (c != "tls" && c != "x86_64" && c != "haswell" && c != "xeon_phi" && c != "avx512_1") return false;
      i = j + 1;
    }
    return true;
  };
  std::vector<std::string> kept;
  bool folded = false;
  for (const auto& d : dirs) {
    while (!kept.empty() && subdir_of(kept.back(), d)) kept.pop_back(), folded = true;
    kept.push_back(d);
  }
  return join(kept, ", ") + (folded ? " (each with its hwcap subdirectories first)" : "");
}

Diagnosis missing_version(const Prediction& p, const LoaderError& e, const SystemInfo& sys) {
  auto [version, requirer] = version_and_requirer(e.message);
  if (version.empty()) return {};
  // ld.so names the object by its path (l_name); the words use its DT_NEEDED name.
  const Object* lib = object_named(p, e.object);
  const std::string name = lib ? lib->name : e.object.substr(e.object.rfind('/') + 1);
  const std::string path = lib && lib->path ? *lib->path : e.object;
  int major = 0, minor = 0;
  // Only a version newer than the system's glibc means "built on a newer
  // system"; an older one missing means an older libc.so.6 was found first
  // (LD_LIBRARY_PATH, RPATH), which the generic words below say.
  if (version.rfind("GLIBC_", 0) == 0 && std::sscanf(version.c_str() + 6, "%d.%d", &major, &minor) == 2 &&
      std::make_pair(major, minor) > std::make_pair(sys.glibc_major, sys.glibc_minor)) {
    const std::string ours = std::to_string(sys.glibc_major) + "." + std::to_string(sys.glibc_minor);
    const std::string needed = std::to_string(major) + "." + std::to_string(minor);
    return {requirer + " needs glibc " + needed + " or newer (symbol version " + version + " of " + name +
                "), and this system has glibc " + ours + ": it was built on a system with a newer glibc",
            "run it where glibc " + needed + " or newer is installed, or rebuild it against glibc " + ours +
                " (on this system, or on the oldest system it must run on)"};
  }
  return {requirer + " needs symbol version " + version + " of " + name + ", which the " + name + " found here (" +
              path + ") does not define: it is older than the one " + requirer + " was built against",
          "install the newer " + name + " (the package that provides it), or rebuild " + requirer +
              " against the installed one"};
}

// "undefined symbol: NAME[, version V]" of OBJECT: who refers to what, and
// what to do; WHEN says when ld.so looks it up.
Diagnosis undefined_symbol(const LoaderError& e, const std::string& when) {
  const std::string what = e.message.substr(e.message.find(": ") + 2);
  const auto comma = what.find(", version ");
  const std::string sym = what.substr(0, comma);
  const std::string version = comma == std::string::npos ? "" : " (version " + what.substr(comma + 10) + ")";
  return {"no object of ld.so's global scope defines " + sym + version + ", which " + e.object + " refers to; " + when,
          "run it with the library that defines " + sym + version +
              " (the one it was linked against: an older or different build lacks it), or relink " + e.object +
              " against the libraries installed"};
}

}  // namespace

std::string missing_object_fix(const std::string& name) {
  return "make " + name +
         " findable: install the package that provides it (then run ldconfig if it went to a directory of "
         "/etc/ld.so.conf), or add its directory to LD_LIBRARY_PATH, or relink the program with -Wl,-rpath,DIR";
}

std::string missing_object_fix(const std::string& name, const Prediction& p) {
  if (p.kind != LoaderKind::musl) return missing_object_fix(name);
  // musl 1.2.3 ldso/dynlink.c load_library(): LD_LIBRARY_PATH, RPATH/RUNPATH, then the path file.
  return "make " + name + " findable: add its directory to LD_LIBRARY_PATH, or to musl's path file (" +
         (p.system_path_from.empty() ? std::string("/etc/ld-musl-x86_64.path") : p.system_path_from) +
         ", one directory a line), or relink the program with -Wl,-rpath,DIR";
}

Diagnosis diagnose(const Prediction& p, const SystemInfo& sys) {
  if (!p.error && !p.first_call_errors.empty())
    return undefined_symbol(p.first_call_errors.front().error,
                            "it is called through a lazy PLT slot, so the start succeeds and ld.so looks it up at the "
                            "first call, where the program stops (with LD_BIND_NOW=1 or -z now, at start-up)");
  if (!p.error) return {};
  const LoaderError& e = *p.error;
  if (e.stage == LoaderError::Stage::versions) return missing_version(p, e, sys);
  if (e.stage == LoaderError::Stage::relocating && e.occasion == "symbol lookup error")
    return undefined_symbol(e,
                            "ld.so looks it up while relocating at start-up (a data reference, or a PLT slot bound "
                            "now: LD_BIND_NOW, -z now), before the program runs");
  if (e.stage == LoaderError::Stage::musl_relocating) {
    // musl 1.2.3 ldso/dynlink.c do_relocs(): one global namespace, no versions.
    const auto colon = e.message.find(": symbol not found");
    if (e.message == "unsupported relocation type 37")  // R_X86_64_IRELATIVE
      return {"musl's loader cannot relocate " + e.object +
                  ": it has an R_X86_64_IRELATIVE relocation (an IFUNC), which musl does not support",
              "rebuild " + e.object + " without IFUNCs (__attribute__((ifunc)), target_clones) for musl"};
    if (colon == std::string::npos) return {"musl's loader cannot relocate " + e.object + ": " + e.message, ""};
    const std::string sym = e.message.substr(0, colon);
    return {"no object musl's loader loaded defines " + sym + ", which " + e.object +
                " uses (musl looks in the program, then every library in load order, musl's libc included; it "
                "ignores symbol versions)",
            "load the library that defines " + sym + " (link " + e.object +
                " against it, or LD_PRELOAD it), or rebuild against the libraries installed"};
  }
  if (e.stage == LoaderError::Stage::relocating)
    // sysdeps/generic/dl-protected.h: the occasion is the symbol.
    return {"the program copies " + e.occasion + " (a copy relocation) or takes its address directly, and " +
                e.occasion + " is a protected symbol of " + e.object +
                ", which is marked GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (built with "
                "-mno-direct-extern-access): only references through the GOT may reach it",
            "rebuild the program with -fPIC or -mno-direct-extern-access (no copy relocation, no direct "
            "reference), or build " +
                e.object + " without that marking"};
  if (e.message == "CPU ISA level is lower than required")
    return {e.object + " was built for a newer x86-64 level than this CPU offers (it has x86-64-v" +
                std::to_string(sys.isa_level) + ")",
            "use a build of " + e.object + " for an older x86-64 level (baseline x86-64), or run on a newer CPU"};
  const Object* o = object_named(p, e.object);
  if (o && !o->path)
    return {std::string(p.kind == LoaderKind::musl ? "musl's loader" : "ld.so") + " cannot find " + o->name +
                (o->needed_by.empty() ? "" : ", which " + o->needed_by + " needs") + "; it looked in " +
                places(o->tried, o->name),
            missing_object_fix(o->name, p)};
  return {"ld.so stops at " + e.object + ": " + e.message, ""};
}

}  // namespace procforge::ldso
