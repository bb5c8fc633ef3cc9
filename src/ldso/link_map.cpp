// The link map ld.so builds at start-up, in glibc 2.36's order:
//   1. the main program, ld.so itself (named by PT_INTERP and its SONAME)
//      and the vDSO are on the list before anything is searched
//      (elf/rtld.c dl_main);
//   2. LD_PRELOAD, then /etc/ld.so.preload, each loaded with the executable
//      as loader and __RTLD_SECURE; a failing preload is reported and
//      ignored (rtld.c do_preload, handle_preload_list);
//   3. a breadth-first walk of DT_NEEDED in dynamic-section order, each
//      object once (l_reserved); DT_FILTER/DT_AUXILIARY objects go before the
//      object that names them; a DT_AUXILIARY that fails is ignored
//      (elf/dl-deps.c _dl_map_object_deps);
//   4. dedup before searching by name, path or SONAME of a loaded object,
//      after opening by device and inode (dl-load.c _dl_map_object,
//      _dl_map_object_from_fd); trace mode fakes a "not found" entry and goes
//      on, a real run stops at the first one;
//   5. ld.so itself is taken off the list and put back after the object
//      that precedes it in the search list, if anything needed it (rtld.c
//      "Remove _dl_rtld_map from the chain");
//   6. the symbol-version check over the finished list (elf/dl-version.c,
//      versions.cpp), then the x86 ISA-level check;
//   7. on request, each object's start-up relocation work (relocations.cpp).
// The trace list (LD_TRACE_LOADED_OBJECTS, ldd) is that list without the main
// program and the vDSO.
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <list>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "ldso/relocations.hpp"
#include "ldso/versions.hpp"

namespace procforge::ldso {

const char* found_by_name(FoundBy f) {
  switch (f) {
    case FoundBy::main_program: return "main_program";
    case FoundBy::interpreter: return "interpreter";
    case FoundBy::preload_env: return "LD_PRELOAD";
    case FoundBy::preload_file: return "ld.so.preload";
    case FoundBy::slash_name: return "slash_name";
    case FoundBy::rpath: return "DT_RPATH";
    case FoundBy::ld_library_path: return "LD_LIBRARY_PATH";
    case FoundBy::runpath: return "DT_RUNPATH";
    case FoundBy::ld_so_cache: return "ld.so.cache";
    case FoundBy::default_dirs: return "default_dirs";
    case FoundBy::already_loaded: return "already_loaded";
    case FoundBy::not_found: return "not_found";
  }
  return "?";
}

namespace detail {

DstContext State::dst_for(const Map& m) const {
  DstContext c;
  c.origin = m.origin;
  c.lib = sys->lib;
  c.platform = sys->platform;
  c.secure = secure;
  c.is_executable = m.is_main;
  c.trusted_dirs = sys->system_dirs;
  return c;
}

const std::vector<SearchDir>& State::rpath_of(int l) {
  Map& m = maps[static_cast<std::size_t>(l)];
  if (!m.rpath_dirs) {
    m.rpath_dirs.emplace();
    // The executable's DT_RPATH is ignored when it has DT_RUNPATH
    // (_dl_init_paths); other objects keep theirs (cache_rpath).
    const bool usable = m.facts && !m.faked && m.facts->rpath && !(m.is_main && m.facts->runpath);
    if (usable && !m.facts->rpath->empty()) *m.rpath_dirs = split_search_path(*m.facts->rpath, ":", dst_for(m));
  }
  return *m.rpath_dirs;
}

const std::vector<SearchDir>& State::runpath_of(int l) {
  Map& m = maps[static_cast<std::size_t>(l)];
  if (!m.runpath_dirs) {
    m.runpath_dirs.emplace();
    if (m.facts && !m.faked && m.facts->runpath && !m.facts->runpath->empty())
      *m.runpath_dirs = split_search_path(*m.facts->runpath, ":", dst_for(m));
  }
  return *m.runpath_dirs;
}

std::string State::display(int l) const {
  const Map& m = maps[static_cast<std::size_t>(l)];
  if (m.is_main) return m.report.path.value_or(m.l_name);
  return m.l_name.empty() ? m.libnames.front() : m.l_name;
}

}  // namespace detail

namespace {

using detail::DepEntry;
using detail::Found;
using detail::Map;
using detail::State;

// dirname of a path as _dl_new_object() computes l_origin: relative names
// are put after the current directory; nothing is canonicalised.
std::optional<std::string> origin_of(const std::string& path, const std::string& cwd) {
  if (path.empty()) return std::nullopt;
  std::string full;
  if (path[0] == '/') {
    full = path;
  } else {
    if (cwd.empty()) return std::nullopt;
    full = cwd;
    if (full.back() != '/') full += '/';
    full += path;
  }
  const auto slash = full.rfind('/');
  return slash == 0 ? std::string("/") : full.substr(0, slash);
}

std::string join(const std::string& cwd, const std::string& path) {
  if (path.empty() || path[0] == '/' || cwd.empty()) return path;
  return cwd + (cwd.back() == '/' ? "" : "/") + path;
}

// The last LD_NAME=value in envp (process_envvars: later entries overwrite).
std::optional<std::string> env_value(const std::vector<std::string>& envp, const std::string& name) {
  std::optional<std::string> v;
  const std::string prefix = name + "=";
  for (const auto& e : envp)
    if (e.compare(0, prefix.size(), prefix) == 0) v = e.substr(prefix.size());
  return v;
}

struct MapResult {
  int map = -1;
  bool loaded_new = false;
  std::optional<LoaderError> error;  // not found, refused, or fatal
  bool fatal = false;                // the whole load stops (not only this name)
  std::string errstring;             // the error without errno text (for preload warnings)
};

class Linker {
 public:
  Linker(State& st, std::string cwd) : st_(st), cwd_(std::move(cwd)) {}

  std::list<int> chain;  // the namespace list (l_next order)

  int add_map(Map m) {
    st_.maps.push_back(std::move(m));
    const int idx = static_cast<int>(st_.maps.size()) - 1;
    chain.push_back(idx);
    return idx;
  }

  // _dl_map_object(): by name first, then search, then by file identity.
  MapResult map_object(int loader, const std::string& name, bool secure_load, bool trace) {
    MapResult r;
    for (int l : chain) {
      Map& m = st_.maps[static_cast<std::size_t>(l)];
      if (m.faked) continue;
      bool match = name == m.l_name;
      for (const auto& n : m.libnames) match |= n == name;
      if (!match && !m.soname_added && m.facts && m.facts->soname && *m.facts->soname == name) {
        m.libnames.push_back(name);
        m.soname_added = true;
        match = true;
      }
      if (match) {
        r.map = l;
        return r;
      }
    }
    Found f = detail::search(st_, loader, name, secure_load);
    if (f.fatal) {
      r.error = f.fatal;
      r.fatal = true;
      r.errstring = f.fatal->message;
      return r;
    }
    if (!f.ok) {
      if (f.other_class) {
        r.errstring = "wrong ELF class: ELFCLASS32";
        r.error = LoaderError{name, r.errstring};
      } else {
        // _dl_signal_error(errno, ...): the errno text only when errno is
        // not 0, as when nothing at all was tried (DF_1_NODEFLIB, no paths).
        r.errstring = "cannot open shared object file";
        r.error = LoaderError{name, f.err ? r.errstring + ": " + std::strerror(f.err) : r.errstring};
      }
      if (trace) {
        Map m;
        m.l_name = name;
        m.libnames = {name};
        m.loader = loader;
        m.faked = true;
        m.report.name = name;
        m.report.found_by = FoundBy::not_found;
        m.report.needed_by = loader >= 0 ? st_.display(loader) : "";
        m.report.tried = st_.tried;
        r.map = add_map(std::move(m));
        r.loaded_new = true;
      }
      return r;
    }
    // _dl_map_object_from_fd(): the same file already loaded under another
    // name. ld.so's own map and the main program's carry no file identity.
    for (int l : chain) {
      Map& m = st_.maps[static_cast<std::size_t>(l)];
      if (m.faked || m.is_main || m.is_rtld || m.is_vdso || !m.facts) continue;
      if (detail::same_file(*m.facts, *f.facts)) {
        bool known = false;
        for (const auto& n : m.libnames) known |= n == name;
        if (!known) m.libnames.push_back(name);
        r.map = l;
        return r;
      }
    }
    if (!f.facts->map_message.empty()) {
      r.errstring = f.facts->map_message;
      r.error = LoaderError{name, r.errstring};
      r.fatal = true;
      return r;
    }
    Map m;
    m.l_name = f.path;
    m.libnames = {name};
    m.facts = f.facts;
    m.loader = loader;
    m.origin = origin_of(f.path, cwd_);
    m.report.name = name;
    m.report.path = f.path;
    m.report.found_by = f.by;
    m.report.found_via = f.via;
    m.report.hwcaps_subdir = f.in_subdir;
    m.report.needed_by = loader >= 0 ? st_.display(loader) : "";
    r.map = add_map(std::move(m));
    r.loaded_new = true;
    return r;
  }

  // rtld.c do_preload(): errors are printed and ignored.
  void preload(const std::string& fname, const char* where, FoundBy by, std::vector<std::string>& warnings,
               std::vector<int>& preloads) {
    MapResult r = map_object(st_.main, fname, /*secure_load=*/true, /*trace=*/false);
    if (r.error) {
      warnings.push_back("ERROR: ld.so: object '" + fname + "' from " + where + " cannot be preloaded (" + r.errstring +
                         "): ignored.");
      return;
    }
    if (!r.loaded_new) return;  // a duplicate
    Map& m = st_.maps[static_cast<std::size_t>(r.map)];
    m.report.found_by = by;
    m.report.needed_by.clear();
    m.report.found_via = std::string(where) + (m.report.found_via.empty() ? "" : ", " + m.report.found_via);
    preloads.push_back(r.map);
  }

 private:
  State& st_;
  std::string cwd_;
};

// LD_PRELOAD: split at ' ' and ':' (handle_preload_list), with the secure
// mode filter of dso_name_valid_for_suid().
std::vector<std::string> split_preload_env(const std::string& v, bool secure) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p < v.size()) {
    const std::size_t len = std::strcspn(v.c_str() + p, " :");
    std::string fname = len > 0 && len < PATH_MAX ? v.substr(p, len) : std::string();
    p += len;
    if (p < v.size()) ++p;
    if (secure && (fname.size() >= NAME_MAX || fname.find('/') != std::string::npos)) continue;
    if (!fname.empty()) out.push_back(fname);
  }
  return out;
}

// /etc/ld.so.preload: '#' comments to end of line, names separated by
// ' ', '\t', '\n' or ':'.
std::vector<std::string> read_preload_file(const std::string& path) {
  std::vector<std::string> out;
  if (::access(path.c_str(), R_OK) != 0) return out;
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return out;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  bool comment = false;
  std::string cur;
  for (char c : text) {
    if (c == '#') comment = true;
    if (c == '\n') comment = false;
    const bool sep = comment || c == ' ' || c == '\t' || c == '\n' || c == ':' || c == '#';
    if (sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct Node {
  int map;
  bool done;
};

// Fills Object::relocations, Prediction::program_relocations and the
// start-up estimate. ld.so relocates itself eagerly in every mode.
void count_relocations(const Request& req, const State& st, const std::list<int>& chain, int rtld,
                       const std::string& cwd, Prediction& p) {
  const bool bind_now = env_bind_now(req.envp);
  std::vector<RelocationWork> works;
  bool complete = true;
  auto count = [&](const Map& m) -> std::optional<Relocations> {
    if (m.faked || m.is_vdso || !m.report.path) return std::nullopt;
    const std::string& shown = *m.report.path;
    auto w = analyze_relocations(join(cwd, shown), bind_now || m.is_rtld);
    if (!w) {
      p.warnings.push_back("relocations of " + shown + " not counted: " + w.error().message);
      complete = false;
      return std::nullopt;
    }
    for (const auto& problem : w->problems) {
      p.warnings.push_back("relocations of " + shown + " partly counted: " + problem);
      complete = false;
    }
    works.push_back(*w);
    return summarize(*w);
  };
  std::size_t i = 0;
  bool rtld_counted = false;
  for (int l : chain) {
    const Map& m = st.maps[static_cast<std::size_t>(l)];
    if (m.is_vdso) continue;
    if (m.is_main) {
      p.program_relocations = count(m);
      continue;
    }
    rtld_counted |= m.is_rtld;
    if (i < p.objects.size()) p.objects[i++].relocations = count(m);
  }
  // Off the search list when nothing needed it, but it still relocates itself.
  if (!rtld_counted && rtld >= 0) count(st.maps[static_cast<std::size_t>(rtld)]);
  if (!p.error && complete) p.startup_estimate_us = estimate_startup(works).total_ns() / 1000.0;
}

}  // namespace

Result<Prediction> resolve(const Request& req, const SystemInfo& sys) {
  Prediction p;
  State st;
  st.sys = &sys;
  st.capstrs = sys.subdirs();
  st.secure = req.secure;

  // The working directory everything relative is opened from.
  std::string cwd;
  UniqueFd cwd_dir;
  if (!req.cwd.empty()) {
    cwd_dir.reset(::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cwd_dir) return Error(errno, "opening the working directory " + req.cwd + ": " + errno_name(errno));
    cwd = req.cwd;
  } else {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) cwd = buf;
  }
  const int cwd_fd = cwd_dir ? cwd_dir.get() : AT_FDCWD;
  st.cwd_fd = cwd_fd;
  if (!cwd.empty() && cwd[0] != '/') {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) cwd = join(buf, cwd);
  }

  // 1. The main program: the kernel mapped it (or ld.so opened it with
  // __RTLD_OPENEXEC when run as a command).
  detail::Opened prog = detail::open_file(cwd_fd, req.program);
  if (!prog.facts) return Error(prog.err, "opening " + req.program + ": " + errno_name(prog.err));
  if (prog.facts->verify != detail::FileFacts::Verify::ok)
    return Error(ENOEXEC, req.program + ": not an x86-64 ELF file ld.so can load (" +
                              (prog.facts->verify_message.empty() ? std::string("wrong ELF class or machine")
                                                                  : prog.facts->verify_message) +
                              ")");
  if (!prog.facts->read_problem.empty()) p.warnings.push_back(req.program + ": " + prog.facts->read_problem);
  const bool explicit_mode = !req.explicit_loader.empty();
  if (!prog.facts->has_dynamic) {
    p.dynamic = false;
    p.warnings.emplace_back("not a dynamic executable: no PT_DYNAMIC, ld.so loads nothing");
    return p;
  }
  if (!explicit_mode && !prog.facts->interp) {
    p.dynamic = false;
    p.warnings.emplace_back("no PT_INTERP: the kernel starts the program without ld.so");
    return p;
  }
  const std::string interp = prog.facts->interp.value_or("");

  Linker lk(st, cwd);
  {
    Map m;
    m.is_main = true;
    m.facts = prog.facts;
    m.l_name = explicit_mode ? req.program : "";
    m.libnames = {m.l_name};
    if (explicit_mode) {
      m.origin = origin_of(req.program, cwd);
    } else {
      // _dl_get_origin(): readlink("/proc/self/exe"), i.e. the resolved path.
      char real[PATH_MAX];
      if (::realpath(join(cwd, req.program).c_str(), real)) m.origin = origin_of(real, "/");
    }
    m.report.name = req.program;
    m.report.path = req.program;
    m.report.found_by = FoundBy::main_program;
    m.reserved = true;
    st.main = lk.add_map(std::move(m));
  }
  int rtld = -1;
  {
    Map m;
    m.is_rtld = true;
    const std::string file = explicit_mode ? req.explicit_loader : interp;
    m.l_name = file;
    m.libnames = {interp.empty() ? file : interp};
    detail::Opened o = detail::open_file(cwd_fd, file);
    if (!o.facts) o = detail::open_file(AT_FDCWD, sys.ldso_path);
    if (o.facts) m.facts = o.facts;
    if (m.facts && m.facts->soname && *m.facts->soname != m.libnames.front()) m.libnames.push_back(*m.facts->soname);
    if (!m.facts || !m.facts->soname) m.libnames.emplace_back("ld-linux-x86-64.so.2");
    m.soname_added = true;
    m.report.name = m.libnames.front();
    m.report.path = file;
    m.report.found_by = FoundBy::interpreter;
    m.report.found_via = explicit_mode ? "ld.so run as a command: " + file : "PT_INTERP of " + req.program;
    rtld = lk.add_map(std::move(m));
  }
  int vdso = -1;
  {
    Map m;
    m.is_vdso = true;
    m.l_name = sys.vdso_name;
    m.libnames = {sys.vdso_name};
    m.report.name = sys.vdso_name;
    vdso = lk.add_map(std::move(m));
  }

  // The environment ld.so reads (rtld.c process_envvars).
  const Map& main_map = st.maps[static_cast<std::size_t>(st.main)];
  const DstContext main_ctx = st.dst_for(main_map);
  if (auto llp = env_value(req.envp, "LD_LIBRARY_PATH")) {
    if (req.secure) p.warnings.emplace_back("LD_LIBRARY_PATH is ignored in secure mode (AT_SECURE)");
    else st.library_path = parse_library_path(*llp, main_ctx);
  }
  for (const auto& d : st.library_path) p.library_path.push_back(d.dir);
  if (env_value(req.envp, "GLIBC_TUNABLES"))
    p.warnings.emplace_back(
        "GLIBC_TUNABLES is set: tunables that change the search (glibc.cpu.hwcaps, "
        "glibc.cpu.hwcap_mask) are not modelled");
  if (env_value(req.envp, "LD_AUDIT"))
    p.warnings.emplace_back(
        "LD_AUDIT is set: audit modules are loaded (and run) before the program's "
        "dependencies; their effect on the search is not modelled");
  if (auto c = detail::shared_cache(sys.cache_path)) st.cache = std::move(*c);
  else if (c.error().err != ENOENT) p.warnings.push_back(c.error().message + " (ld.so ignores it)");

  // 2. Preloads.
  std::vector<int> preloads;
  if (auto pre = env_value(req.envp, "LD_PRELOAD"))
    for (const auto& name : split_preload_env(*pre, req.secure))
      lk.preload(name, "LD_PRELOAD", FoundBy::preload_env, p.warnings, preloads);
  for (const auto& name : read_preload_file(sys.preload_path))
    lk.preload(name, sys.preload_path.c_str(), FoundBy::preload_file, p.warnings, preloads);

  // 3. Breadth-first over DT_NEEDED (elf/dl-deps.c).
  std::list<Node> known;
  known.push_back({st.main, false});
  for (int l : preloads) {
    known.push_back({l, false});
    st.maps[static_cast<std::size_t>(l)].reserved = true;
  }
  auto move_in_chain_before = [&](int what, int before) {
    lk.chain.remove(what);
    for (auto it = lk.chain.begin(); it != lk.chain.end(); ++it)
      if (*it == before) {
        lk.chain.insert(it, what);
        return;
      }
    lk.chain.push_back(what);
  };
  auto note_error = [&](const LoaderError& e) {
    if (!p.error) p.error = e;
  };
  bool stop = false;
  for (auto runp = known.begin(); runp != known.end() && !stop;) {
    const int l = runp->map;
    runp->done = true;
    Map* lm = &st.maps[static_cast<std::size_t>(l)];
    const auto l_node = runp;
    bool inserted = false;
    const auto deps = (lm->facts && !lm->faked) ? lm->facts->deps : std::vector<DepEntry>{};
    for (const auto& d : deps) {
      lm = &st.maps[static_cast<std::size_t>(l)];
      // expand_dst(): DSTs in DT_NEEDED and filters.
      std::string name = d.name;
      if (dst_count(name)) {
        if (req.secure) {
          note_error({d.name, "DST not allowed in SUID/SGID programs"});
          stop = true;
          break;
        }
        name = dst_substitute(name, st.dst_for(*lm));
        if (name.empty()) {
          if (d.kind == DepEntry::Kind::auxiliary) {
            note_error({d.name, "empty dynamic string token substitution"});
            stop = true;
            break;
          }
          p.warnings.push_back(st.display(l) + ": " + d.name + " expands to nothing and is skipped");
          continue;
        }
      }
      MapResult r = lk.map_object(l, name, false, /*trace=*/true);
      if (d.kind == DepEntry::Kind::needed) {
        if (r.fatal) {
          note_error(*r.error);
          stop = true;
          break;
        }
        if (r.error) note_error(*r.error);  // not found: a real run stops here, trace mode goes on
        Map& dep = st.maps[static_cast<std::size_t>(r.map)];
        if (dep.report.needed_by.empty() && !dep.is_main && dep.report.found_by != FoundBy::preload_env &&
            dep.report.found_by != FoundBy::preload_file)
          dep.report.needed_by = st.display(l);
        if (!dep.reserved) {
          known.push_back({r.map, false});
          dep.reserved = true;
        }
        continue;
      }
      // DT_AUXILIARY / DT_FILTER: failures of an auxiliary are ignored.
      if (r.fatal) {
        if (d.kind == DepEntry::Kind::auxiliary) continue;
        note_error(*r.error);
        stop = true;
        break;
      }
      if (r.error && d.kind == DepEntry::Kind::filter) note_error(*r.error);
      if (r.map < 0) continue;
      Map& aux = st.maps[static_cast<std::size_t>(r.map)];
      aux.report.filter = true;
      if (aux.report.needed_by.empty() && !aux.is_main) aux.report.needed_by = st.display(l);
      if (aux.reserved) {
        // Already in the list: moved before L if it is behind it, else left.
        auto late = std::next(l_node);
        while (late != known.end() && late->map != r.map) ++late;
        if (late == known.end()) continue;
        known.erase(late);
      }
      auto it = known.insert(l_node, {r.map, false});
      aux.reserved = true;
      move_in_chain_before(r.map, l);
      if (!inserted) runp = it;
      inserted = true;
    }
    if (stop) break;
    if (runp->done) do
        ++runp;
      while (runp != known.end() && runp->done);
  }

  // 5. ld.so goes back after its predecessor in the search list, if needed.
  lk.chain.remove(rtld);
  {
    int prev = -1;
    bool found = false;
    // Trace mode leaves its "not found" placeholders out of the search list.
    for (const auto& n : known) {
      if (st.maps[static_cast<std::size_t>(n.map)].faked) continue;
      if (n.map == rtld && prev >= 0) {
        found = true;
        break;
      }
      prev = n.map;
    }
    if (found) {
      auto it = lk.chain.begin();
      while (it != lk.chain.end() && *it != prev) ++it;
      if (it != lk.chain.end()) lk.chain.insert(std::next(it), rtld);
    }
  }

  // 6. Symbol versions (versions.cpp), over the complete link map in l_next
  // order, main program first. Only a run that loaded everything gets here;
  // it prints every line and then exits with 1 if one was fatal.
  if (!p.error && !stop) {
    std::vector<LinkMapObject> objects;
    for (int l : lk.chain) {
      const Map& m = st.maps[static_cast<std::size_t>(l)];
      LinkMapObject o;
      o.l_name = m.l_name;
      o.libnames = m.libnames;
      o.faked = m.faked;
      // Tables come with the facts read during the search; the vDSO has no
      // file to read: matched by name, never checked.
      if (m.facts && m.facts->versions) o.tables = m.facts->versions;
      else if (m.facts && !m.facts->versions_problem.empty())
        p.warnings.push_back("version check skipped for " + st.display(l) + ": " + m.facts->versions_problem);
      else if (!m.faked && !m.is_vdso) o.path = join(cwd, m.is_main ? req.program : m.l_name);
      objects.push_back(std::move(o));
    }
    if (auto e = check_versions(objects, req.program, p.warnings)) p.error = std::move(*e);
  }

  // x86 ISA level (sysdeps/x86/dl-prop.h dl_isa_level_check): a real run
  // refuses an object that needs a higher level than the CPU has.
  if (!p.error && !stop) {
    const std::uint32_t cpu = (1u << sys.isa_level) - 1;
    for (auto it = known.rbegin(); it != known.rend(); ++it) {
      const Map& m = st.maps[static_cast<std::size_t>(it->map)];
      if (m.is_rtld || m.faked || !m.facts) continue;
      if ((m.facts->isa_1_needed & cpu) != m.facts->isa_1_needed) {
        p.error = LoaderError{m.is_main ? req.program : m.l_name, "CPU ISA level is lower than required"};
        break;
      }
    }
  }

  for (int l : lk.chain) {
    if (l == st.main || l == vdso) continue;
    p.objects.push_back(st.maps[static_cast<std::size_t>(l)].report);
  }

  // 7. On request, the relocation work each object gives ld.so at start-up
  // (relocations.cpp), and the cost model's estimate when the run gets there.
  if (req.relocations) count_relocations(req, st, lk.chain, rtld, cwd, p);
  return p;
}

}  // namespace procforge::ldso
