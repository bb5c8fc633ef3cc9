// The link map ld.so builds at start-up, in glibc 2.36's order. resolve() is
// elf/rtld.c dl_main as a list of these stages (LinkMap's methods):
//   1. add_main_program, add_rtld, add_vdso: the main program, ld.so itself
//      (named by PT_INTERP and its SONAME) and the vDSO are on the list
//      before anything is searched (rtld.c dl_main, setup_vdso);
//   2. load_preloads: LD_PRELOAD, then /etc/ld.so.preload, each loaded with
//      the executable as loader and __RTLD_SECURE; a failing preload is
//      reported and ignored (rtld.c do_preload, handle_preload_list);
//   3. map_dependencies: a breadth-first walk of DT_NEEDED in dynamic-section
//      order, each object once (l_reserved); DT_FILTER/DT_AUXILIARY objects go
//      before the object that names them; a DT_AUXILIARY that fails is
//      ignored (elf/dl-deps.c _dl_map_object_deps);
//   4. map_object: dedup before searching by name, path or SONAME of a loaded
//      object, after opening by device and inode (elf/dl-load.c
//      _dl_map_object, _dl_map_object_from_fd); trace mode fakes a "not
//      found" entry and goes on, a real run stops at the first one;
//   5. put_back_rtld: ld.so itself is taken off the list and put back after
//      the object that precedes it in the search list, if anything needed it
//      (rtld.c "Remove _dl_rtld_map from the chain");
//   6. check_versions, check_isa_levels: the symbol-version check over the
//      finished list (elf/dl-version.c, versions.cpp), then the x86 ISA-level
//      check;
//   7. count_relocations, on request: each object's start-up relocation work
//      (relocations.cpp).
// The trace list (LD_TRACE_LOADED_OBJECTS, ldd) is that list without the main
// program and the vDSO. Where ld.so looks for one name is search.cpp; what it
// reads from one file is object_file.cpp.
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <list>

#include "common/unique_fd.hpp"
#include "ldso/bindings.hpp"
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

// dl-load.c decompose_rpath(): an object named in --inhibit-rpath (a ':'
// list of l_name values, matched whole; the main program's l_name is "" by
// then) has neither list. An empty element matches only before a ':'.
bool State::rpath_inhibited(const Map& m) const {
  if (!inhibit_rpath || secure) return false;
  const std::string where = m.is_main ? "" : m.l_name;
  const std::string& list = *inhibit_rpath;
  std::size_t at = 0;
  do {
    const std::size_t end = std::min(list.find(':', at), list.size());
    if (list.compare(at, end - at, where) == 0) return true;
    at = end == list.size() ? end : end + 1;
  } while (at < list.size());
  return false;
}

const std::vector<SearchDir>& State::rpath_of(int l) {
  Map& m = map(l);
  if (!m.rpath_dirs) {
    m.rpath_dirs.emplace();
    if (rpath_inhibited(m)) return *m.rpath_dirs;
    // The executable's DT_RPATH is ignored when it has DT_RUNPATH
    // (_dl_init_paths); other objects keep theirs (cache_rpath).
    const bool usable = m.facts && !m.faked && m.facts->rpath && !(m.is_main && m.facts->runpath);
    if (usable && !m.facts->rpath->empty()) *m.rpath_dirs = split_search_path(*m.facts->rpath, ":", dst_for(m));
  }
  return *m.rpath_dirs;
}

const std::vector<SearchDir>& State::runpath_of(int l) {
  Map& m = map(l);
  if (!m.runpath_dirs) {
    m.runpath_dirs.emplace();
    if (rpath_inhibited(m)) return *m.runpath_dirs;
    if (m.facts && !m.faked && m.facts->runpath && !m.facts->runpath->empty())
      *m.runpath_dirs = split_search_path(*m.facts->runpath, ":", dst_for(m));
  }
  return *m.runpath_dirs;
}

std::string State::display(int l) const {
  const Map& m = map(l);
  if (m.is_main) return m.report.path.value_or(m.l_name);
  return m.l_name.empty() ? m.libnames.front() : m.l_name;
}

// The program's PT_INTERP ("" when it has none or cannot be read).
std::string program_interp(const Request& req) {
  const UniqueFd dir(req.cwd.empty() ? -1 : ::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  const detail::Opened prog = detail::open_file(dir ? dir.get() : AT_FDCWD, req.program);
  return prog.facts && prog.facts->interp ? *prog.facts->interp : "";
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

// The directory everything relative is opened from: Request::cwd, or the
// caller's. PATH is absolute when it can be (l_origin of relative names).
struct WorkingDir {
  UniqueFd dir;  // none: the caller's (AT_FDCWD)
  std::string path;
  [[nodiscard]] int at() const { return dir ? dir.get() : AT_FDCWD; }
};

Result<WorkingDir> open_working_dir(const std::string& requested) {
  WorkingDir wd;
  if (!requested.empty()) {
    wd.dir.reset(::open(requested.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!wd.dir) return Error(errno, "opening the working directory " + requested + ": " + errno_name(errno));
    wd.path = requested;
  } else {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) wd.path = buf;
  }
  if (!wd.path.empty() && wd.path[0] != '/') {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) wd.path = join(buf, wd.path);
  }
  return wd;
}

// What ld.so learns of the main program: the kernel mapped it (or ld.so,
// run as a command, opened it with __RTLD_OPENEXEC). An Error when the
// question cannot be answered.
// FILE: the file opened (req.program, or what ld.so run as a command found
// for it in the cache).
Result<std::shared_ptr<const detail::FileFacts>> read_main_program(const Request& req, const std::string& file,
                                                                   int cwd_fd, Prediction& p) {
  detail::Opened prog = detail::open_file(cwd_fd, file);
  if (!prog.facts) return Error(prog.err, "opening " + req.program + ": " + errno_name(prog.err));
  const detail::FileFacts& f = *prog.facts;
  if (f.verify != detail::FileFacts::Verify::ok)
    return Error(ENOEXEC,
                 req.program + ": not an x86-64 ELF file ld.so can load (" +
                     (f.verify_message.empty() ? std::string("wrong ELF class or machine") : f.verify_message) + ")");
  if (!f.read_problem.empty()) p.warnings.push_back(req.program + ": " + f.read_problem);
  return prog.facts;
}

// Whether ld.so runs at all: a program without PT_DYNAMIC gives it nothing
// to do, and one without PT_INTERP is started by the kernel without it
// (unless ld.so is run as a command). Says why in P when not.
bool ldso_has_work(const Request& req, const detail::FileFacts& prog, Prediction& p) {
  if (!prog.has_dynamic) {
    p.dynamic = false;
    p.warnings.emplace_back("not a dynamic executable: no PT_DYNAMIC, ld.so loads nothing");
    return false;
  }
  if (req.explicit_loader.empty() && !prog.interp) {
    p.dynamic = false;
    p.warnings.emplace_back("no PT_INTERP: the kernel starts the program without ld.so");
    return false;
  }
  return true;
}

// rtld.c process_envvars() and _dl_init_paths(): the search inputs that come
// from the environment, and the ld.so.cache (_dl_load_cache_lookup() maps it
// at its first lookup; taken here up front from the process-wide parse, and
// a file ld.so would ignore is named in the warnings).
void read_search_inputs(const Request& req, State& st, Prediction& p) {
  const DstContext main_ctx = st.dst_for(st.map(st.main));
  // rtld.c dl_main: --library-path replaces LD_LIBRARY_PATH (state.library_path).
  auto llp = env_value(req.envp, "LD_LIBRARY_PATH");
  if (req.command && req.command->library_path) {
    llp = req.command->library_path;
    st.library_path_source = "--library-path";
  }
  if (llp) {
    if (req.secure) p.warnings.emplace_back("LD_LIBRARY_PATH is ignored in secure mode (AT_SECURE)");
    else st.library_path = parse_library_path(*llp, main_ctx);
  }
  for (const auto& d : st.library_path) p.library_path.push_back(d.dir);
  if (env_value(req.envp, "GLIBC_TUNABLES"))
    p.warnings.emplace_back(
        "GLIBC_TUNABLES is set: tunables that change the search (glibc.cpu.hwcaps, "
        "glibc.cpu.hwcap_mask) are not modelled");
  if (env_value(req.envp, "LD_AUDIT") || (req.command && !req.command->audit.empty()))
    p.warnings.emplace_back(
        "LD_AUDIT (or ld.so's --audit) is set: audit modules are loaded (and run) before the program's "
        "dependencies; their effect on the search is not modelled");
  // --inhibit-cache (GLRO(dl_inhibit_cache)): dl-load.c never asks the cache.
  if (req.command && req.command->inhibit_cache) return;
  if (auto c = detail::shared_cache(st.sys->cache_path)) st.cache = std::move(*c);
  else if (c.error().err != ENOENT) p.warnings.push_back(c.error().message + " (ld.so ignores it)");
}

// sysdeps/x86_64/dl-machine.h elf_machine_rela, R_X86_64_COPY: PROGRAM's
// copy REF of DEF is named when DEF is larger, and when it is smaller only
// with LD_WARN set to something (VERBOSE, GLRO(dl_verbose)).
std::optional<std::string> copy_size_warning(const std::string& program, const ObjectSymbols::Sym& def,
                                             const ObjectSymbols::Sym& ref, bool verbose) {
  if (def.size > ref.size || (def.size < ref.size && verbose))
    return program + ": Symbol `" + ref.name + "' has different size in shared object, consider re-linking";
  return std::nullopt;
}

// sysdeps/generic/dl-protected.h: a lookup found a protected definition
// that the executable copies or takes the address of. ld.so's warning goes
// to LINES; when OWNER (the defining object) needs indirect extern access,
// ld.so stops with an error (P.error). True: it stops here.
bool protected_lookup(const Bound& b, const std::string& symbol, const std::string& owner, bool owner_needs_indirect,
                      std::vector<std::string>& lines, Prediction& p) {
  lines.push_back(protected_warning(b, symbol, owner));
  if (!owner_needs_indirect) return false;
  p.error = LoaderError{owner, "error due to GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS",
                        LoaderError::Stage::relocating, symbol};
  return true;
}

// The first error is the one a real run stops with.
void note_error(Prediction& p, const LoaderError& e) {
  if (!p.error) p.error = e;
}

// The link map of one prediction, built in dl_main's order. Two lists, as in
// glibc: CHAIN_ is the namespace list (l_next order: what ldd prints and the
// version check walks), SEARCH_LIST_ the breadth-first list
// _dl_map_object_deps() builds (the main program's l_searchlist).
class LinkMap {
 public:
  // LIST_FATAL: `ld.so --list`, whose trace stops at a name not found
  // (dl-deps.c gets trace_mode only for rtld_mode_trace).
  LinkMap(State& st, std::string cwd, bool list_fatal) : st_(st), cwd_(std::move(cwd)), list_fatal_(list_fatal) {}

  void add_main_program(const Request& req, const std::string& file, std::shared_ptr<const detail::FileFacts> facts);
  void add_rtld(const Request& req);
  void add_vdso();
  void load_preloads(const Request& req, Prediction& p);
  void map_dependencies(const Request& req, Prediction& p);
  void put_back_rtld();
  void check_versions(const Request& req, Prediction& p) const;
  void check_isa_levels(const Request& req, Prediction& p) const;
  void list_version_info(Prediction& p) const;
  void find_unused(const Request& req, Prediction& p) const;
  void bind_symbols(const Request& req, Prediction& p) const;
  std::optional<std::vector<ScopeObject>> global_scope(const Request& req,
                                                       const std::function<bool(const Map&)>& bind_now,
                                                       std::vector<int>& maps, Prediction& p, const char* what) const;
  std::vector<int> relocation_order() const;
  // Fills P.objects, P.vdso_index and P.statically_linked.
  void trace_list(Prediction& p) const;
  void count_relocations(const Request& req, Prediction& p) const;

 private:
  // struct list of _dl_map_object_deps(): an object and whether its
  // dependencies have been mapped.
  struct Pending {
    int map;
    bool done;
  };
  using PendingIt = std::list<Pending>::iterator;

  int add_map(Map m);
  MapResult map_object(int loader, const std::string& name, bool secure_load, bool trace);
  int find_by_name(const std::string& name);
  int find_by_file(const std::string& name, const detail::FileFacts& facts);
  Map new_map(int loader, const std::string& name) const;
  void preload(const std::string& fname, const char* where, FoundBy by, Prediction& p);
  PendingIt map_deps_of(PendingIt node, const Request& req, Prediction& p);
  std::optional<std::string> expand_dep_name(int l, const DepEntry& d, bool secure, Prediction& p);
  void add_needed(int l, const MapResult& r, Prediction& p);
  std::optional<PendingIt> add_filtee(int l, PendingIt l_node, DepEntry::Kind kind, const MapResult& r, Prediction& p);
  void move_in_chain_before(int what, int before);
  void stop_with(Prediction& p, const LoaderError& e) {
    // Trace mode went on past names not found: the fatal error is the one
    // ld.so prints (dl-deps.c _dl_map_object_deps: the exception ends it).
    if (trace_) p.error = e;
    else note_error(p, e);
    stopped_ = true;
    p.stopped = true;
  }

  State& st_;
  bool trace_ = false;  // Request::trace, for the walk
  std::string cwd_;
  std::list<int> chain_;
  std::list<Pending> search_list_;
  std::vector<int> preloads_;
  int rtld_ = -1, vdso_ = -1;
  bool stopped_ = false;  // a fatal error ended the walk
  bool list_fatal_ = false;
};

int LinkMap::add_map(Map m) {
  st_.maps.push_back(std::move(m));
  const int idx = static_cast<int>(st_.maps.size()) - 1;
  chain_.push_back(idx);
  return idx;
}

// dl_main: the main program heads the list; its l_name is "" unless ld.so
// runs as a command. FILE is the file opened: its directory is $ORIGIN
// (dl-object.c _dl_new_object() takes it from the realname).
void LinkMap::add_main_program(const Request& req, const std::string& file,
                               std::shared_ptr<const detail::FileFacts> facts) {
  const bool explicit_mode = !req.explicit_loader.empty();
  Map m;
  m.is_main = true;
  m.facts = std::move(facts);
  m.l_name = explicit_mode ? req.program : "";
  m.libnames = {m.l_name};
  if (explicit_mode) {
    m.origin = origin_of(file, cwd_);
  } else {
    // _dl_get_origin(): readlink("/proc/self/exe"), i.e. the resolved path.
    char real[PATH_MAX];
    if (::realpath(join(cwd_, req.program).c_str(), real)) m.origin = origin_of(real, "/");
  }
  m.report.name = req.program;
  m.report.path = file;
  m.report.found_by = FoundBy::main_program;
  m.reserved = true;
  st_.main = add_map(std::move(m));
}

// dl_main: ld.so's own map, named by PT_INTERP and known by its SONAME too,
// so a DT_NEEDED of either finds it loaded.
void LinkMap::add_rtld(const Request& req) {
  const bool explicit_mode = !req.explicit_loader.empty();
  const std::string interp = st_.map(st_.main).facts->interp.value_or("");
  Map m;
  m.is_rtld = true;
  const std::string file = explicit_mode ? req.explicit_loader : interp;
  m.l_name = file;
  m.libnames = {interp.empty() ? file : interp};
  detail::Opened o = detail::open_file(st_.cwd_fd, file);
  if (!o.facts) o = detail::open_file(AT_FDCWD, st_.sys->ldso_path);
  if (o.facts) m.facts = o.facts;
  if (m.facts && m.facts->soname && *m.facts->soname != m.libnames.front()) m.libnames.push_back(*m.facts->soname);
  if (!m.facts || !m.facts->soname) m.libnames.emplace_back("ld-linux-x86-64.so.2");
  m.soname_added = true;
  m.report.name = m.libnames.front();
  m.report.path = file;
  m.report.found_by = FoundBy::interpreter;
  m.report.found_via = explicit_mode ? "ld.so run as a command: " + file : "PT_INTERP of " + req.program;
  rtld_ = add_map(std::move(m));
}

// setup_vdso(): the vDSO is on the list by its SONAME before any search.
void LinkMap::add_vdso() {
  Map m;
  m.is_vdso = true;
  m.l_name = st_.sys->vdso_name;
  m.libnames = {st_.sys->vdso_name};
  m.report.name = st_.sys->vdso_name;
  vdso_ = add_map(std::move(m));
}

// _dl_map_object(): a loaded object matched by name, path or (once) SONAME,
// before any search (_dl_name_match_p). -1: none.
int LinkMap::find_by_name(const std::string& name) {
  for (int l : chain_) {
    Map& m = st_.map(l);
    if (m.faked) continue;
    bool match = name == m.l_name;
    for (const auto& n : m.libnames) match |= n == name;
    if (!match && !m.soname_added && m.facts && m.facts->soname && *m.facts->soname == name) {
      m.libnames.push_back(name);
      m.soname_added = true;
      match = true;
    }
    if (match) return l;
  }
  return -1;
}

// _dl_map_object_from_fd(): the same file already loaded under another name
// (device and inode), which then answers to NAME too. ld.so's own map and the
// main program's carry no file identity. -1: none.
int LinkMap::find_by_file(const std::string& name, const detail::FileFacts& facts) {
  for (int l : chain_) {
    Map& m = st_.map(l);
    if (m.faked || m.is_main || m.is_rtld || m.is_vdso || !m.facts) continue;
    if (detail::same_file(*m.facts, facts)) {
      bool known = false;
      for (const auto& n : m.libnames) known |= n == name;
      if (!known) m.libnames.push_back(name);
      return l;
    }
  }
  return -1;
}

// _dl_new_object(): a map for NAME, requested by LOADER.
Map LinkMap::new_map(int loader, const std::string& name) const {
  Map m;
  m.l_name = name;
  m.libnames = {name};
  m.loader = loader;
  m.report.name = name;
  m.report.needed_by = loader >= 0 ? st_.display(loader) : "";
  return m;
}

// _dl_map_object(): by name first, then search, then by file identity.
// TRACE: a name not found gets a "not found" placeholder, as in trace mode
// (LD_TRACE_LOADED_OBJECTS), and the caller goes on.
MapResult LinkMap::map_object(int loader, const std::string& name, bool secure_load, bool trace) {
  MapResult r;
  if ((r.map = find_by_name(name)) >= 0) return r;
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
      Map m = new_map(loader, name);
      m.faked = true;
      m.report.found_by = FoundBy::not_found;
      m.report.tried = st_.tried;
      r.map = add_map(std::move(m));
      r.loaded_new = true;
    }
    return r;
  }
  if ((r.map = find_by_file(name, *f.facts)) >= 0) return r;
  if (!f.facts->map_message.empty()) {
    r.errstring = f.facts->map_message;
    r.error = LoaderError{name, r.errstring};
    r.fatal = true;
    return r;
  }
  Map m = new_map(loader, name);
  m.l_name = f.path;
  m.facts = f.facts;
  m.origin = origin_of(f.path, cwd_);
  m.report.path = f.path;
  m.report.found_by = f.by;
  m.report.found_via = f.via;
  m.report.hwcaps_subdir = f.in_subdir;
  r.map = add_map(std::move(m));
  r.loaded_new = true;
  return r;
}

// rtld.c do_preload(): errors are printed and ignored.
void LinkMap::preload(const std::string& fname, const char* where, FoundBy by, Prediction& p) {
  MapResult r = map_object(st_.main, fname, /*secure_load=*/true, /*trace=*/false);
  if (r.error) {
    p.warnings.push_back("ERROR: ld.so: object '" + fname + "' from " + where + " cannot be preloaded (" + r.errstring +
                         "): ignored.");
    p.trace_stderr.push_back(p.warnings.back());
    return;
  }
  if (!r.loaded_new) return;  // a duplicate
  Map& m = st_.map(r.map);
  m.report.found_by = by;
  m.report.needed_by.clear();
  m.report.found_via = std::string(where) + (m.report.found_via.empty() ? "" : ", " + m.report.found_via);
  preloads_.push_back(r.map);
}

// dl_main: LD_PRELOAD (handle_preload_list), --preload, then /etc/ld.so.preload, each
// loaded with the executable as loader and __RTLD_SECURE.
void LinkMap::load_preloads(const Request& req, Prediction& p) {
  if (auto pre = env_value(req.envp, "LD_PRELOAD"))
    for (const auto& name : split_preload_env(*pre, req.secure)) preload(name, "LD_PRELOAD", FoundBy::preload_env, p);
  // rtld.c dl_main: --preload's list after LD_PRELOAD's, split the same way.
  if (req.command && req.command->preload)
    for (const auto& name : split_preload_env(*req.command->preload, req.secure))
      preload(name, "--preload", FoundBy::preload_env, p);
  const std::string& file = st_.sys->preload_path;
  for (const auto& name : read_preload_file(file)) preload(name, file.c_str(), FoundBy::preload_file, p);
}

// elf/dl-deps.c _dl_map_object_deps(): a breadth-first walk from the main
// program and the preloads, each object's DT_NEEDED in dynamic-section order,
// each object once (l_reserved). Trace mode goes on past a name not found; a
// fatal error ends the walk.
void LinkMap::map_dependencies(const Request& req, Prediction& p) {
  trace_ = req.trace;
  search_list_.push_back({st_.main, false});
  for (int l : preloads_) {
    search_list_.push_back({l, false});
    st_.map(l).reserved = true;
  }
  for (auto runp = search_list_.begin(); runp != search_list_.end();) {
    runp = map_deps_of(runp, req, p);
    if (stopped_) break;
    while (runp != search_list_.end() && runp->done) ++runp;
  }
}

// The dependencies of one object. Returns where the walk goes on: the first
// filtee put before this object (it is walked next), else this object.
LinkMap::PendingIt LinkMap::map_deps_of(PendingIt node, const Request& req, Prediction& p) {
  const int l = node->map;
  node->done = true;
  PendingIt next = node;
  bool inserted = false;
  const Map& lm = st_.map(l);
  const auto deps = (lm.facts && !lm.faked) ? lm.facts->deps : std::vector<DepEntry>{};
  for (const auto& d : deps) {
    const auto name = expand_dep_name(l, d, req.secure, p);
    if (stopped_) break;
    if (!name) continue;
    MapResult r = map_object(l, *name, false, /*trace=*/true);
    if (d.kind == DepEntry::Kind::needed) {
      add_needed(l, r, p);
    } else if (auto it = add_filtee(l, node, d.kind, r, p); it && !inserted) {
      next = *it;
      inserted = true;
    }
    if (stopped_) break;
  }
  return next;
}

// dl-deps.c expand_dst(): DSTs in DT_NEEDED and filter names, for the object
// that names them. Nullopt: the entry is skipped, or (stopped_) the walk ends.
std::optional<std::string> LinkMap::expand_dep_name(int l, const DepEntry& d, bool secure, Prediction& p) {
  if (!dst_count(d.name)) return d.name;
  if (secure) {
    stop_with(p, {d.name, "DST not allowed in SUID/SGID programs"});
    return std::nullopt;
  }
  std::string name = dst_substitute(d.name, st_.dst_for(st_.map(l)));
  if (!name.empty()) return name;
  if (d.kind == DepEntry::Kind::auxiliary) {
    stop_with(p, {d.name, "empty dynamic string token substitution"});
    return std::nullopt;
  }
  p.warnings.push_back(st_.display(l) + ": " + d.name + " expands to nothing and is skipped");
  return std::nullopt;
}

// A DT_NEEDED object goes to the end of the search list, once.
void LinkMap::add_needed(int l, const MapResult& r, Prediction& p) {
  if (r.fatal || (r.error && list_fatal_)) return stop_with(p, *r.error);
  if (r.error) note_error(p, *r.error);  // not found: a real run stops here, trace mode goes on
  Map& dep = st_.map(r.map);
  st_.map(l).needed.push_back(r.map);
  if (dep.report.needed_by.empty() && !dep.is_main && dep.report.found_by != FoundBy::preload_env &&
      dep.report.found_by != FoundBy::preload_file)
    dep.report.needed_by = st_.display(l);
  if (!dep.reserved) {
    search_list_.push_back({r.map, false});
    dep.reserved = true;
  }
}

// A DT_FILTER / DT_AUXILIARY object (the filtee) goes before the object L
// that names it, in both lists; one already in the search list is moved
// there if it is behind L. The failure of an auxiliary is ignored. Returns
// the filtee's new node.
std::optional<LinkMap::PendingIt> LinkMap::add_filtee(int l, PendingIt l_node, DepEntry::Kind kind, const MapResult& r,
                                                      Prediction& p) {
  if (r.fatal) {
    if (kind != DepEntry::Kind::auxiliary) stop_with(p, *r.error);
    return std::nullopt;
  }
  if (r.error && kind == DepEntry::Kind::filter) {
    if (list_fatal_) {
      stop_with(p, *r.error);
      return std::nullopt;
    }
    note_error(p, *r.error);
  }
  if (r.map < 0) return std::nullopt;
  Map& filtee = st_.map(r.map);
  st_.map(l).needed.push_back(r.map);
  filtee.report.filter = true;
  if (filtee.report.needed_by.empty() && !filtee.is_main) filtee.report.needed_by = st_.display(l);
  if (filtee.reserved) {
    auto late = std::next(l_node);
    while (late != search_list_.end() && late->map != r.map) ++late;
    if (late == search_list_.end()) return std::nullopt;  // already before L: left where it is
    search_list_.erase(late);
  }
  auto it = search_list_.insert(l_node, {r.map, false});
  filtee.reserved = true;
  move_in_chain_before(r.map, l);
  return it;
}

void LinkMap::move_in_chain_before(int what, int before) {
  chain_.remove(what);
  for (auto it = chain_.begin(); it != chain_.end(); ++it)
    if (*it == before) {
      chain_.insert(it, what);
      return;
    }
  chain_.push_back(what);
}

// rtld.c "Remove _dl_rtld_map from the chain": ld.so leaves the namespace
// list and goes back after the object that precedes it in the search list,
// if anything needed it.
void LinkMap::put_back_rtld() {
  chain_.remove(rtld_);
  int prev = -1;
  bool found = false;
  // Trace mode leaves its "not found" placeholders out of the search list.
  for (const auto& n : search_list_) {
    if (st_.map(n.map).faked) continue;
    if (n.map == rtld_ && prev >= 0) {
      found = true;
      break;
    }
    prev = n.map;
  }
  if (!found) return;
  auto it = chain_.begin();
  while (it != chain_.end() && *it != prev) ++it;
  if (it != chain_.end()) chain_.insert(std::next(it), rtld_);
}

// Symbol versions (versions.cpp), over the complete link map in l_next
// order, main program first. Only a run that loaded everything gets here;
// it prints every line and then exits with 1 if one was fatal.
void LinkMap::check_versions(const Request& req, Prediction& p) const {
  std::vector<LinkMapObject> objects;
  for (int l : chain_) {
    const Map& m = st_.map(l);
    LinkMapObject o;
    o.l_name = m.l_name;
    o.libnames = m.libnames;
    o.faked = m.faked;
    // Tables come with the facts read during the search; the vDSO has no
    // file to read: matched by name, never checked.
    if (m.facts && m.facts->versions) o.tables = m.facts->versions;
    else if (m.facts && !m.facts->versions_problem.empty())
      p.warnings.push_back("version check skipped for " + st_.display(l) + ": " + m.facts->versions_problem);
    else if (!m.faked && !m.is_vdso) o.path = join(cwd_, m.is_main ? req.program : m.l_name);
    objects.push_back(std::move(o));
  }
  std::vector<VersionDiagnostic> all;
  const std::string argv0 = req.command ? req.command->message_name() : req.program;
  auto e = ldso::check_versions(objects, argv0, p.warnings, &all);
  if (!p.error) p.error = std::move(e);
  for (const auto& d : all) {
    // With LD_DEBUG set (ldd -u), _dl_signal_cerror() first prints each as a
    // debug line, "PID:\tOBJECT: error: OCCASION: MESSAGE (continued)"
    // (elf/dl-error-skeleton.c); the process id is not predictable.
    if (req.trace && req.unused)
      p.trace_stderr.push_back("  PID:\t" + d.object + ": error: version lookup error: " + d.message + " (continued)");
    p.trace_stderr.push_back(version_line(argv0, d));
  }
}

// The global scope of start-up, the main program's l_searchlist, which
// every object loaded at start-up searches (elf/dl-object.c _dl_new_object:
// l_scope[0] is the main map's searchlist; their own l_searchlist is empty):
// each object read whole, BIND_NOW(map) deciding whether its PLT slots are
// looked up; MAPS gets the map of each. Trace mode's placeholders are left
// out, the vDSO has nothing to read. Nullopt (said in P's warnings) when a
// file cannot be read.
std::optional<std::vector<ScopeObject>> LinkMap::global_scope(const Request& req,
                                                              const std::function<bool(const Map&)>& bind_now,
                                                              std::vector<int>& maps, Prediction& p,
                                                              const char* what) const {
  std::vector<ScopeObject> scope;
  for (const auto& n : search_list_) {
    const Map& m = st_.map(n.map);
    if (m.faked) continue;
    std::vector<std::string> names = m.libnames;
    names.push_back(m.l_name);
    maps.push_back(n.map);
    // Solaris's ld.so would keep this object's lookups inside its group;
    // glibc's does not (bindings.cpp), which a reader of -Bgroup may not expect.
    if (!req.trace && m.facts && (m.facts->flags_1 & DF_1_GROUP))
      p.warnings.push_back(st_.display(n.map) +
                           ": DF_1_GROUP (ld -Bgroup) is set; glibc's ld.so ignores it and looks its symbols up in "
                           "the global scope as for any other object");
    if (m.is_vdso) {
      scope.push_back({nullptr, false, std::move(names)});
      continue;
    }
    const std::string path = join(cwd_, m.is_main ? req.program : m.l_name);
    auto bytes = read_object_bytes(path);
    auto file = bytes ? elf::File::parse(*bytes) : Result<elf::File>(bytes.error());
    auto syms = file ? ObjectSymbols::read(*file, bind_now(m)) : Result<ObjectSymbols>(file.error());
    if (!syms) {
      p.warnings.push_back(std::string(what) + " not predicted: " + path + ": " + syms.error().message);
      return std::nullopt;
    }
    scope.push_back({std::make_shared<const ObjectSymbols>(std::move(*syms)), m.is_main, std::move(names)});
  }
  return scope;
}

// The order start-up relocates in: main_map->l_initfini from its last entry
// to its first (rtld.c dl_main). l_initfini is the search list (trace mode's
// placeholders left out) sorted by elf/dl-sort-maps.c _dl_sort_maps_dfs
// (glibc.rtld.dynamic_sort=2, 2.36's default): a depth-first walk over each
// object's DT_NEEDED objects (l_initfini), started from each object of the
// list from its last to its first, each finished object put in front; the
// main program has no edges yet (its l_initfini is being built) and is
// never entered through one. The main program then goes back to the front
// (force_first) unless it is libc.so.6 itself.
std::vector<int> LinkMap::relocation_order() const {
  std::vector<int> maps;
  for (const auto& n : search_list_)
    if (!st_.map(n.map).faked) maps.push_back(n.map);
  std::vector<bool> visited(st_.maps.size(), false);
  std::vector<int> rpo;  // built back to front
  std::function<void(int)> dfs = [&](int m) {
    const Map& map = st_.map(m);
    if (visited[static_cast<std::size_t>(m)] || map.faked) return;
    visited[static_cast<std::size_t>(m)] = true;
    if (!map.is_main)
      for (int d : map.needed)
        if (!visited[static_cast<std::size_t>(d)] && !st_.map(d).is_main) dfs(d);
    rpo.push_back(m);
  };
  for (auto it = maps.rbegin(); it != maps.rend(); ++it) dfs(*it);
  std::reverse(rpo.begin(), rpo.end());
  auto main = std::find(rpo.begin(), rpo.end(), st_.main);
  const Map& m = st_.map(st_.main);
  const bool main_is_libc = m.facts && m.facts->soname && *m.facts->soname == "libc.so.6";
  if (main != rpo.end() && !main_is_libc) std::rotate(rpo.begin(), main, std::next(main));
  std::reverse(rpo.begin(), rpo.end());
  return rpo;
}

// Start-up's symbol lookups, in rtld.c dl_main's order, through
// bindings.cpp's _dl_lookup_symbol_x():
//   normal run (Request::bindings): setup_vdso_pointers() (the vDSO's own
//     five functions, sysdeps/unix/sysv/linux/dl-vdso-setup.c), each
//     object's relocations in relocation_order() (ld.so's own left for
//     last), __rtld_malloc_init_real() (elf/dl-minimal.c: calloc, free,
//     malloc, realloc at GLIBC_2.2.5 in the main program's name), then ld.so's
//     relocations, eager; a lazy PLT slot binds at its first call;
//   trace mode with LD_WARN (ldd -d, and -r with LD_BIND_NOW): the same
//     objects but ld.so and the placeholders, and rtld.c print_unresolved()
//     prints each strong reference nothing defines, "undefined symbol: NAME
//     [, version V]\t(OBJECT)"; an R_X86_64_COPY whose definition's size
//     differs prints sysdeps/x86_64/dl-machine.h's warning (both ways with
//     LD_WARN).
// A lookup the object's one-entry cache answers (RESOLVE_MAP) is not a call:
// no error, no LD_DEBUG line.
void LinkMap::bind_symbols(const Request& req, Prediction& p) const {
  const bool trace = req.trace;
  const bool env_now = env_bind_now(req.envp);
  const bool dynamic_weak = env_dynamic_weak(req.envp, req.secure);
  // Trace mode looks PLT slots up only for ldd -r; a normal run's every slot
  // is listed (the lazy ones bind at their first call).
  auto bind_now = [&](const Map& m) { return !trace || m.is_rtld || req.check_symbols == Request::SymbolCheck::all; };
  std::vector<int> maps;
  auto scope_or = global_scope(req, bind_now, maps, p, trace ? "undefined symbols" : "bindings");
  if (!scope_or) return;
  const std::vector<ScopeObject>& scope = *scope_or;
  auto index_of = [&](int map) -> int {
    for (std::size_t i = 0; i < maps.size(); ++i)
      if (maps[i] == map) return static_cast<int>(i);
    return -1;
  };
  auto name_of = [&](std::size_t i) {
    const Map& m = st_.map(maps[i]);
    return m.is_main ? req.program : m.l_name;
  };
  UniqueTable unique;
  std::vector<Prediction::Binding> out;
  // A lookup error stops start-up: no lookup after it is made.
  bool stopped = false;
  // One object's lookups (FROM holds its references, made in the name of
  // scope entry UNDEF).
  auto relocate = [&](std::size_t undef, const ObjectSymbols& from, bool rtld_own) {
    const Map& m = st_.map(maps[undef]);
    const bool lazy = !rtld_own && !m.is_rtld && !env_now && !from.bind_now_flag;
    Bound last;
    for (const auto& l : from.lookups) {
      if (stopped) break;
      const bool first_call = lazy && l.type == R_X86_64_JUMP_SLOT;
      const bool cached = l.cached && !first_call;
      const Bound b = cached ? last : bind(scope, undef, from, l, unique, dynamic_weak);
      if (!cached) last = b;
      if (b.object == kLookupAsserts) {
        // elf/dl-lookup.c check_match()'s assertion: ld.so stops (exit 127).
        p.abort_line =
            "Inconsistency detected by ld.so: dl-lookup.c: 107: check_match: Assertion `version->filename == NULL || "
            "! _dl_name_match_p (version->filename, map)' failed!";
        return false;
      }
      const auto& ref = from.syms[l.sym];
      const bool weak = (ref.info >> 4) == STB_WEAK;
      const ObjectSymbols* def = b.object >= 0 ? scope[static_cast<std::size_t>(b.object)].symbols.get() : nullptr;
      // dl-protected.h: printed as the lookup is made (after trace mode's list).
      if (!cached && (trace || !first_call) && b.protected_use != Bound::ProtectedUse::none) {
        const auto owner = static_cast<std::size_t>(b.protected_owner);
        if (protected_lookup(b, ref.name, name_of(owner), scope[owner].symbols->indirect_extern_access,
                             trace ? p.symbol_lines : p.warnings, p)) {
          stopped = true;
          continue;
        }
      }
      if (trace) {
        if (!cached && b.object < 0 && !weak)
          p.symbol_lines.push_back("undefined symbol: " + ref.name + (b.version ? ", version " + b.version->name : "") +
                                   "\t(" + name_of(undef) + ")");
        // ldd -d/-r set LD_WARN=yes.
        if (l.type == R_X86_64_COPY && def)
          if (auto w = copy_size_warning(req.program, def->syms[b.sym], ref, true)) p.symbol_lines.push_back(*w);
        continue;
      }
      Prediction::Binding o;
      o.object = name_of(undef);
      o.symbol = ref.name;
      if (b.version) o.version = b.version->name;
      if (b.object >= 0) {
        o.target = name_of(static_cast<std::size_t>(b.object));
        o.target_version = def ? version_of(*def, b.sym) : "";
        o.definition_type = def ? symbol_type_name(def->syms[b.sym].info) : "";
      }
      o.protected_symbol = b.protected_ref;
      o.weak = weak;
      o.relocation = rtld_own ? "rtld" : relocation_name(l.type);
      o.from_cache = cached;
      o.at_first_call = first_call;
      if (b.object < 0 && !weak && !cached) {
        const LoaderError e{o.object,
                            "undefined symbol: " + ref.name + (b.version ? ", version " + b.version->name : ""),
                            LoaderError::Stage::relocating, "symbol lookup error"};
        if (first_call) p.first_call_errors.push_back({ref.name, e});
        else {
          p.error = e;
          stopped = true;
        }
      }
      out.push_back(std::move(o));
      // libc's IFUNC resolvers of gettimeofday and time ask for the vDSO's
      // function (sysdeps/unix/sysv/linux/x86/gettimeofday.c, time.c:
      // dl_vdso_vsym), a lookup of its own, at every relocation they resolve.
      if (def && !first_call && vdso_ >= 0 && (def->syms[b.sym].info & 0xf) == STT_GNU_IFUNC) {
        const Map& target = st_.map(maps[static_cast<std::size_t>(b.object)]);
        const bool libc = target.facts && target.facts->soname && *target.facts->soname == "libc.so.6";
        const std::string& n = def->syms[b.sym].name;
        const char* vdso_fn = n == "time"                                      ? "__vdso_time"
                              : (n == "gettimeofday" || n == "__gettimeofday") ? "__vdso_gettimeofday"
                                                                               : nullptr;
        if (libc && vdso_fn) {
          const std::string& v = st_.map(vdso_).l_name;
          out.push_back({v, vdso_fn, "LINUX_2.6", v, "LINUX_2.6", false, false, "rtld", "FUNC", false, false});
        }
      }
    }
    return true;
  };
  if (!trace && vdso_ >= 0)
    for (const char* f :
         {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu", "__vdso_clock_getres"}) {
      const std::string& v = st_.map(vdso_).l_name;
      out.push_back({v, f, "LINUX_2.6", v, "LINUX_2.6", false, false, "rtld", "FUNC", false, false});
    }
  for (int m : relocation_order()) {
    const int i = index_of(m);
    if (st_.map(m).is_rtld || i < 0 || !scope[static_cast<std::size_t>(i)].symbols) continue;
    if (!relocate(static_cast<std::size_t>(i), *scope[static_cast<std::size_t>(i)].symbols, false)) return;
  }
  if (trace) return;
  if (const int main = index_of(st_.main); main >= 0) {
    ObjectSymbols malloc_refs;
    malloc_refs.has_versym = true;
    malloc_refs.versions.resize(3);
    malloc_refs.versions[2] = {"GLIBC_2.2.5", elf_hash("GLIBC_2.2.5"), false, ""};
    malloc_refs.syms.emplace_back();
    for (const char* f : {"calloc", "free", "malloc", "realloc"}) {
      ObjectSymbols::Sym s;
      s.name = f;
      s.info = STB_GLOBAL << 4 | STT_FUNC;
      s.versym = 2;
      malloc_refs.lookups.push_back({static_cast<std::uint32_t>(malloc_refs.syms.size()), 0, 0, false});
      malloc_refs.syms.push_back(std::move(s));
    }
    if (!relocate(static_cast<std::size_t>(main), malloc_refs, true)) return;
  }
  if (const int rtld = index_of(rtld_); rtld >= 0 && scope[static_cast<std::size_t>(rtld)].symbols)
    if (!relocate(static_cast<std::size_t>(rtld), *scope[static_cast<std::size_t>(rtld)].symbols, false)) return;
  p.bindings = std::move(out);
}

// rtld.c dl_main with LD_DEBUG=unused: the main program is relocated
// against its search list, eagerly (trace mode binds every PLT slot too,
// LD_BIND_NOW or not: observed with LD_DEBUG=bindings on glibc 2.36), each object a lookup
// binds to is marked l_used (elf/dl-lookup.c, bindings.cpp); then, for each
// DT_NEEDED entry of the main program, the next object of the namespace
// list (the vDSO skipped) is named if it was not used. The walk trusts the
// list to follow DT_NEEDED order, as glibc does. The relocation's copy
// relocations print their size warnings first (ldd sets LD_WARN=yes only
// with -d or -r).
void LinkMap::find_unused(const Request& req, Prediction& p) const {
  std::vector<int> maps;
  auto scope = global_scope(
      req, [](const Map&) { return true; }, maps, p, "unused dependencies");
  if (!scope || scope->empty() || maps.front() != st_.main) return;
  const std::vector<ScopeObject>& scope_objects = *scope;
  const ObjectSymbols& refs = *scope_objects.front().symbols;
  const bool dynamic_weak = env_dynamic_weak(req.envp, req.secure);
  const bool verbose = req.check_symbols != Request::SymbolCheck::none;
  UniqueTable unique;
  std::vector<bool> used(st_.maps.size(), false);
  for (const auto& l : refs.lookups) {
    const Bound b = ldso::bind(scope_objects, 0, refs, l, unique, dynamic_weak);
    const int i = b.object;
    if (i == kLookupAsserts) {
      // elf/dl-lookup.c check_match(), glibc 2.36's line: ld.so stops (exit 127).
      if (st_.sys->glibc_major == 2 && st_.sys->glibc_minor == 36)
        p.abort_line =
            "Inconsistency detected by ld.so: dl-lookup.c: 107: check_match: Assertion `version->filename == NULL || "
            "! _dl_name_match_p (version->filename, map)' failed!";
      else p.warnings.emplace_back("unused dependencies not predicted: ld.so stops on an assertion (text unknown)");
      return;
    }
    // dl-protected.h, as in bind_symbols(): the warning, and a library that
    // needs indirect extern access stops ld.so.
    if (b.protected_use != Bound::ProtectedUse::none) {
      const auto owner = static_cast<std::size_t>(b.protected_owner);
      if (protected_lookup(b, refs.syms[l.sym].name, st_.map(maps[owner]).l_name,
                           scope_objects[owner].symbols->indirect_extern_access, p.symbol_lines, p)) {
        p.unused.emplace();  // the walk's lines, not the list (ldd.cpp)
        return;
      }
    }
    if (i < 0) continue;
    used[static_cast<std::size_t>(maps[static_cast<std::size_t>(i)])] = true;
    if (l.type == R_X86_64_COPY)
      if (auto w = copy_size_warning(req.program, scope_objects[static_cast<std::size_t>(i)].symbols->syms[b.sym],
                                     refs.syms[l.sym], verbose))
        p.symbol_lines.push_back(*w);
  }
  std::vector<std::string> unused;
  auto it = chain_.begin();
  for (const auto& d : st_.map(st_.main).facts->deps) {
    if (d.kind != DepEntry::Kind::needed) continue;
    if (it != chain_.end()) ++it;
    if (it != chain_.end() && *it == vdso_) ++it;
    if (it == chain_.end()) break;
    if (!used[static_cast<std::size_t>(*it)]) unused.push_back(st_.map(*it).l_name);
  }
  p.unused = std::move(unused);
}

// rtld.c dl_main, LD_VERBOSE in trace mode: every object of the namespace
// list with DT_VERNEED, each needed version with the object find_needed()
// gives (the main program's search list, last match first, trace mode's
// placeholders not in it) when match_version() finds the name among its
// Elf_Verdef (the first name of each, compared by name alone).
void LinkMap::list_version_info(Prediction& p) const {
  auto find_needed = [&](const std::string& file) -> const Map* {
    for (auto it = search_list_.rbegin(); it != search_list_.rend(); ++it) {
      const Map& m = st_.map(it->map);
      if (m.faked) continue;
      bool match = file == m.l_name;
      for (const auto& n : m.libnames) match |= file == n;
      if (match) return &m;
    }
    return nullptr;
  };
  auto defines = [](const Map& m, const std::string& version) {
    if (!m.facts || !m.facts->versions || !m.facts->versions->has_verdef) return false;
    for (const auto& d : m.facts->versions->defs)
      if (d.name == version) return true;
    return false;
  };
  for (int l : chain_) {
    const Map& m = st_.map(l);
    if (m.faked || !m.facts || !m.facts->versions || m.facts->versions->needs.empty()) continue;
    Prediction::VersionInfo info;
    info.object = m.l_name.empty() ? st_.display(l) : m.l_name;
    for (const auto& need : m.facts->versions->needs) {
      const Map* needed = find_needed(need.file);
      for (const auto& v : need.versions) {
        Prediction::VersionNeeded n{need.file, v.name, v.weak, std::nullopt};
        if (needed && defines(*needed, v.name)) n.path = needed->l_name;
        info.needs.push_back(std::move(n));
      }
    }
    p.version_info.push_back(std::move(info));
  }
}

// x86 ISA level (sysdeps/x86/dl-prop.h dl_isa_level_check): a real run
// refuses an object that needs a higher level than the CPU has.
void LinkMap::check_isa_levels(const Request& req, Prediction& p) const {
  const std::uint32_t cpu = (1u << st_.sys->isa_level) - 1;
  for (auto it = search_list_.rbegin(); it != search_list_.rend(); ++it) {
    const Map& m = st_.map(it->map);
    if (m.is_rtld || m.faked || !m.facts) continue;
    if ((m.facts->isa_1_needed & cpu) != m.facts->isa_1_needed) {
      p.error = LoaderError{m.is_main ? req.program : m.l_name, "CPU ISA level is lower than required"};
      return;
    }
  }
}

// What trace mode lists: the namespace list without the main program, and
// the vDSO's place in it.
void LinkMap::trace_list(Prediction& p) const {
  p.objects.clear();
  for (int l : chain_) {
    if (l == vdso_) p.vdso_index = p.objects.size();
    if (l == st_.main || l == vdso_) continue;
    p.objects.push_back(st_.map(l).report);
  }
  const Map& main = st_.map(st_.main);
  p.statically_linked = true;
  for (const auto& d : main.facts->deps) p.statically_linked &= d.kind != DepEntry::Kind::needed;
}

// Fills Object::relocations (P.objects must be trace_list()),
// Prediction::program_relocations and the start-up estimate. ld.so
// relocates itself eagerly in every mode.
void LinkMap::count_relocations(const Request& req, Prediction& p) const {
  const bool bind_now = env_bind_now(req.envp);
  std::vector<RelocationWork> works;
  bool complete = true;
  auto count = [&](const Map& m) -> std::optional<Relocations> {
    if (m.faked || m.is_vdso || !m.report.path) return std::nullopt;
    const std::string& shown = *m.report.path;
    auto w = analyze_relocations(join(cwd_, shown), bind_now || m.is_rtld);
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
  for (int l : chain_) {
    const Map& m = st_.map(l);
    if (m.is_vdso) continue;
    if (m.is_main) {
      p.program_relocations = count(m);
      continue;
    }
    rtld_counted |= m.is_rtld;
    if (i < p.objects.size()) p.objects[i++].relocations = count(m);
  }
  // Off the search list when nothing needed it, but it still relocates itself.
  if (!rtld_counted && rtld_ >= 0) count(st_.map(rtld_));
  if (!p.error && complete) p.startup_estimate_us = estimate_startup(works).total_ns() / 1000.0;
}

}  // namespace

// elf/rtld.c dl_main, as a list of its stages (the numbers of the file's
// opening comment).
Result<Prediction> resolve(const Request& req, const SystemInfo& given_sys) {
  // ld.so run as a command (command_line.cpp): a mode that loads nothing, or
  // a FILE ld.so cannot open, ends here; its hwcaps options change the
  // subdirectories searched and the cache's priorities.
  std::string main_file = req.program;
  if (req.command)
    if (auto early = detail::command_without_load(req, given_sys, main_file)) return std::move(*early);
  const SystemInfo command_sys = req.command ? detail::with_hwcaps_options(given_sys, *req.command) : SystemInfo{};
  const SystemInfo& sys = req.command ? command_sys : given_sys;
  // musl's loader has its own rules (musl.cpp): chosen by the loader that runs.
  if (req.explicit_loader.empty() ? is_musl_loader(detail::program_interp(req)) : is_musl_loader(req.explicit_loader))
    return detail::resolve_musl(req, sys);
  Prediction p;
  auto wd = open_working_dir(req.cwd);
  if (!wd) return wd.error();
  State st;
  st.sys = &sys;
  st.capstrs = sys.subdirs();
  st.secure = req.secure;
  st.cwd_fd = wd->at();

  // 1. The main program, ld.so and the vDSO are on the list before any
  // search; nothing more when ld.so has no work.
  if (main_file != req.program)
    p.warnings.push_back(req.program + " has no '/': ld.so looked it up in " + sys.cache_path + " only, and runs " +
                         main_file);
  auto prog = read_main_program(req, main_file, st.cwd_fd, p);
  if (!prog) return prog.error();
  if (!ldso_has_work(req, **prog, p)) return p;
  st.inhibit_rpath = req.command ? req.command->inhibit_rpath : std::nullopt;
  p.command = req.command;
  if (req.command) p.argv0 = req.command->message_name();
  LinkMap link_map(st, wd->path, req.command && req.command->mode == LoaderCommand::Mode::list);
  link_map.add_main_program(req, main_file, *prog);
  link_map.add_rtld(req);
  link_map.add_vdso();
  // process_envvars: LD_LIBRARY_PATH (its DSTs need the main program's
  // $ORIGIN), and the ld.so.cache.
  read_search_inputs(req, st, p);

  // 2. Preloads; 3-4. the breadth-first walk over DT_NEEDED, deduplicated;
  // 5. ld.so's own place in the list.
  link_map.load_preloads(req, p);
  link_map.map_dependencies(req, p);
  link_map.put_back_rtld();

  // 6. The checks of a run that loaded everything: symbol versions, then ISA
  // levels. Trace mode runs the version check past names not found.
  const bool checks = req.trace ? !p.stopped : !p.error;
  if (checks) link_map.check_versions(req, p);
  if (!p.error) link_map.check_isa_levels(req, p);
  link_map.trace_list(p);
  if (req.trace && checks) link_map.list_version_info(p);
  if (req.trace && req.unused && checks) link_map.find_unused(req, p);
  // 6b. Relocation's symbol lookups: ldd -d/-r's lines, or every binding.
  const bool check = req.trace && !req.unused && req.check_symbols != Request::SymbolCheck::none;
  if (checks && (check || (req.bindings && !req.trace))) link_map.bind_symbols(req, p);

  // 7. On request, each object's start-up relocation work and the cost
  // model's estimate when the run gets there.
  if (req.relocations) link_map.count_relocations(req, p);
  return p;
}

}  // namespace procforge::ldso
