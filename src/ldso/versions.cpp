// Symbol-version checks of glibc 2.36 elf/dl-version.c, run by rtld.c dl_main
// over the complete link map before relocation:
//   _dl_check_all_versions  every object in l_next order, faked ones skipped;
//   _dl_check_map_versions  every Elf_Verneed: find_needed(vn_file) is the
//                           first object in the namespace whose l_name or one
//                           of whose libnames equals vn_file (_dl_name_match_p);
//                           trace mode skips a faked (not found) target;
//   match_symbol            for each Elf_Vernaux: no DT_VERDEF in the target
//                           -> "no version information available" (a warning,
//                           once per Vernaux); a Verdef with the same vd_hash
//                           and first name -> ok; else "weak version `%s' not
//                           found" (weak, warning) or "version `%s' not found"
//                           (fatal). All of them are printed; the run exits
//                           with 1 after the whole check if any was fatal.
// The required-by name and the object name are DSO_FILENAME(l_name): the
// l_name, or _dl_argv[0] for the main program (whose l_name is "").
#include "ldso/versions.hpp"

#include <elf.h>
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <tuple>

#include "ldso/relocations.hpp"

namespace procforge::ldso {

namespace {

bool has_tag(const elf::File& f, std::int64_t tag) {
  auto dyn = f.dynamic();
  if (!dyn) return false;
  for (const auto& d : *dyn)
    if (d.tag == tag) return true;
  return false;
}

// Tables by file identity: a /usr/bin sweep reads libc once, not per program.
using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t>;
std::mutex g_mutex;
std::map<Key, std::shared_ptr<const VersionTables>> g_cache;

Result<std::shared_ptr<const VersionTables>> tables_for(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    const Key key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    std::lock_guard lock(g_mutex);
    if (auto it = g_cache.find(key); it != g_cache.end()) return it->second;
  }
  auto bytes = read_object_bytes(path, &st);
  if (!bytes) return bytes.error();
  auto file = elf::File::parse(*bytes);
  if (!file) return file.error().with_context(path);
  auto t = VersionTables::from_file(*file);
  if (!t) return t.error().with_context(path);
  auto shared = std::make_shared<const VersionTables>(std::move(*t));
  const Key key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  std::lock_guard lock(g_mutex);
  g_cache.emplace(key, shared);
  return shared;
}

// _dl_name_match_p().
bool name_matches(std::string_view name, const LinkMapObject& o) {
  if (name == o.l_name) return true;
  for (const auto& n : o.libnames)
    if (name == n) return true;
  return false;
}

}  // namespace

Result<VersionTables> VersionTables::from_file(const elf::File& file) {
  VersionTables t;
  // ld.so only follows the dynamic section; elf::File falls back to section
  // headers when a tag is absent, so presence is checked on the tags.
  if (has_tag(file, DT_VERNEED)) {
    auto needs = file.version_needs();
    if (!needs) return needs.error();
    for (const auto& n : *needs) {
      Need need;
      need.file = std::string(n.file);
      for (const auto& a : n.entries)
        need.versions.push_back({std::string(a.name), a.hash, (a.flags & VER_FLG_WEAK) != 0});
      t.needs.push_back(std::move(need));
    }
  }
  if (has_tag(file, DT_VERDEF)) {
    t.has_verdef = true;
    auto defs = file.version_defs();
    if (!defs) return defs.error();
    for (const auto& d : *defs) t.defs.push_back({d.hash, d.names.empty() ? std::string() : std::string(d.names[0])});
  }
  return t;
}

Result<VersionTables> VersionTables::read(const std::string& path) {
  auto t = tables_for(path);
  if (!t) return t.error();
  return **t;
}

std::string version_line(std::string_view argv0, const VersionDiagnostic& d) {
  std::string s(argv0);
  s += ": ";
  s += d.object;
  s += ": ";
  s += d.message;
  return s;
}

std::vector<VersionDiagnostic> check_all_versions(const std::vector<LinkMapObject>& objects, std::string_view argv0,
                                                  bool trace_mode, std::vector<std::string>* problems) {
  std::vector<VersionDiagnostic> out;
  auto dso_filename = [&](const LinkMapObject& o) { return o.l_name.empty() ? std::string(argv0) : o.l_name; };
  // Tables, read at most once per object and only when needed.
  std::vector<std::shared_ptr<const VersionTables>> tables(objects.size());
  std::vector<bool> tried(objects.size(), false);
  auto tables_of = [&](std::size_t i) -> const VersionTables* {
    if (!tried[i]) {
      tried[i] = true;
      if (objects[i].tables) {
        tables[i] = objects[i].tables;
      } else if (!objects[i].path.empty()) {
        auto t = tables_for(objects[i].path);
        if (t) tables[i] = *t;
        else if (problems) problems->push_back("version check skipped: " + t.error().message);
      }
    }
    return tables[i].get();
  };

  for (std::size_t i = 0; i < objects.size(); ++i) {
    const LinkMapObject& map = objects[i];
    if (map.faked) continue;
    const VersionTables* mine = tables_of(i);
    if (!mine) continue;
    const std::string required_by = dso_filename(map);
    for (const auto& need : mine->needs) {
      // find_needed(): the whole namespace in l_next order.
      std::size_t n = 0;
      while (n < objects.size() && !name_matches(need.file, objects[n])) ++n;
      if (n == objects.size()) {
        // glibc asserts here (needed != NULL); it cannot happen for a link
        // map built from the same DT_NEEDED strings.
        if (problems)
          problems->push_back(required_by + ": version needs name " + need.file + ", which is not in the link map");
        continue;
      }
      const LinkMapObject& needed = objects[n];
      if (trace_mode && needed.faked) continue;
      const VersionTables* theirs = tables_of(n);
      if (!theirs) continue;  // unknown (e.g. the vDSO without a file): nothing to predict
      const std::string objname = dso_filename(needed);
      for (const auto& v : need.versions) {
        if (!theirs->has_verdef) {
          out.push_back({objname, "no version information available (required by " + required_by + ")", false});
          continue;
        }
        bool found = false;
        for (const auto& d : theirs->defs)
          if (d.hash == v.hash && d.name == v.name) {
            found = true;
            break;
          }
        if (found) continue;
        if (v.weak)
          out.push_back({objname, "weak version `" + v.name + "' not found (required by " + required_by + ")", false});
        else out.push_back({objname, "version `" + v.name + "' not found (required by " + required_by + ")", true});
      }
    }
  }
  return out;
}

std::optional<LoaderError> check_versions(const std::vector<LinkMapObject>& objects, std::string_view argv0,
                                          std::vector<std::string>& warnings, std::vector<VersionDiagnostic>* all) {
  std::optional<LoaderError> error;
  for (const auto& d : check_all_versions(objects, argv0, false, &warnings)) {
    if (all) all->push_back(d);
    if (d.fatal && !error) error = LoaderError{d.object, d.message, LoaderError::Stage::versions};
    else warnings.push_back(version_line(argv0, d));
  }
  return error;
}

std::string error_line(std::string_view argv0, const LoaderError& e) {
  if (e.stage == LoaderError::Stage::musl_loading) return "Error loading shared library " + e.object + ": " + e.message;
  if (e.stage == LoaderError::Stage::musl_relocating) return "Error relocating " + e.object + ": " + e.message;
  if (e.stage == LoaderError::Stage::versions) return version_line(argv0, {e.object, e.message, true});
  // elf/dl-error-skeleton.c fatal_error(): "%s: %s: %s%s%s" with the
  // occasion, and ": " only before a non-empty object name.
  std::string s(argv0);
  s += ": ";
  s += e.stage == LoaderError::Stage::relocating ? e.occasion : "error while loading shared libraries";
  s += ": ";
  s += e.object;
  if (!e.object.empty()) s += ": ";
  s += e.message;
  return s;
}

int exit_status(const LoaderError& e) { return e.stage == LoaderError::Stage::versions ? 1 : 127; }

}  // namespace procforge::ldso
