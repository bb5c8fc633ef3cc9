// Where ld.so looks for a name: glibc 2.36 elf/dl-load.c _dl_map_object()
// (lines 2019-2196) and open_path() (1792-1889).
//   - a name with a '/' is opened as is (DSTs expanded for the loader);
//   - otherwise, unless the loader has DT_RUNPATH: DT_RPATH of the loader,
//     of its loader, and so on up, then of the executable; LD_LIBRARY_PATH;
//     the loader's DT_RUNPATH; /etc/ld.so.cache (not for __RTLD_SECURE
//     loads in secure mode; cache hits under a system dir are refused when
//     the loader has DF_1_NODEFLIB); the system directories (not with
//     DF_1_NODEFLIB).
//   - In each directory the glibc-hwcaps and legacy subdirectories come
//     first; a subdirectory that turns out not to exist is not tried again.
//     A list is abandoned after a directory that exists gave an error other
//     than ENOENT/EACCES.
#include <elf.h>
#include <sys/stat.h>

#include <cstring>

#include "ldso/detail.hpp"

namespace procforge::ldso::detail {

namespace {

struct Attempt {
  bool found = false;
  std::string path;
  std::shared_ptr<const FileFacts> facts;
  bool in_subdir = false;
  std::string dir;
};

// open_verify() on one path. Returns true when the file is usable; a fatal
// verdict is stored in *fatal (the search must stop).
bool try_open(State& st, const std::string& path, Attempt& a, Found& out) {
  st.tried.push_back(path);
  Opened o = open_file(st.cwd_fd, path);
  if (!o.facts) {
    st.last_errno = o.err;
    return false;
  }
  const FileFacts& f = *o.facts;
  if (f.verify == FileFacts::Verify::fatal) {
    std::string msg = f.verify_message;
    if (f.verify_errno) msg += std::string(": ") + std::strerror(f.verify_errno);
    out.fatal = LoaderError{path, msg};
    return false;
  }
  if (f.verify == FileFacts::Verify::skip) {
    if (f.other_class) out.other_class = true;
    st.last_errno = ENOENT;
    return false;
  }
  st.last_errno = 0;  // open_verify(): __set_errno (0) once the file is open
  a.found = true;
  a.path = path;
  a.facts = o.facts;
  return true;
}

// open_path(): every directory of one list, every subdirectory in each.
Attempt open_path(State& st, const std::string& name, const std::vector<SearchDir>& dirs, bool secure_load,
                  Found& out) {
  Attempt a;
  for (const auto& d : dirs) {
    bool here_any = false;
    for (std::size_t c = 0; c < st.capstrs.size(); ++c) {
      const std::string sub = d.dir + st.capstrs[c];
      const bool relative = d.dir.empty() || d.dir[0] != '/';
      // glibc keeps the status per directory and capstr index
      // (this_dir->status[cnt]), not per path: the legacy power set repeats
      // "tls/x86_64/" and "x86_64/" (hwcap bit and $PLATFORM), and each copy
      // is tried until its own stat() says it does not exist.
      const std::string key = d.dir + '\0' + std::to_string(c);
      auto status = st.dir_exists.find(key);
      if (!relative && status != st.dir_exists.end() && !status->second) continue;  // nonexisting
      const bool ok = try_open(st, sub + name, a, out);
      if (out.fatal) return a;
      if (!relative && status == st.dir_exists.end()) {
        bool exists = ok;
        if (!ok) {
          struct stat sb {};
          // stat() of the directory itself (with its trailing '/').
          const std::string target = sub.empty() ? std::string(".") : sub;
          if (fstatat(st.cwd_fd, target.c_str(), &sb, 0) != 0) st.last_errno = errno, exists = false;
          else exists = S_ISDIR(sb.st_mode);
        }
        st.dir_exists[key] = exists;
      }
      here_any |= relative || st.dir_exists[key];
      if (ok && secure_load && st.secure && !(a.facts->mode & S_ISUID)) {
        // A preload in secure mode must be set-uid to be used.
        a = Attempt{};
        st.last_errno = ENOENT;
        continue;
      }
      if (ok) {
        a.in_subdir = !st.capstrs[c].empty();
        a.dir = d.dir;
        return a;
      }
    }
    if (here_any && st.last_errno != ENOENT && st.last_errno != EACCES) return a;
  }
  return a;
}

bool has_nodeflib(const State& st, int l) {
  const Map& m = st.map(l);
  return m.facts && (m.facts->flags_1 & DF_1_NODEFLIB);
}

// One search for NAME. Each stage, in _dl_map_object()'s order, returns true
// when the search is over: found (OUT.ok), or a fatal open_verify() error
// (OUT.fatal).
class Search {
 public:
  Search(State& st, const std::string& name, bool secure_load, Found& out)
      : st_(st), name_(name), secure_load_(secure_load), out_(out) {}

  // A name with a '/' is opened as it is (DSTs expanded for the loader).
  void slash_name(int loader) {
    std::string real = name_;
    if (loader >= 0 && dst_count(name_)) real = dst_substitute(name_, st_.dst_for(st_.map(loader)));
    Attempt a;
    if (try_open(st_, real, a, out_)) take(a, FoundBy::slash_name, "the name contains '/'");
  }

  // DT_RPATH of the loader, of its loader and so on up, then of the
  // executable; none of it when the loader has DT_RUNPATH.
  bool rpaths(int loader) {
    if (loader >= 0 && st_.map(loader).facts && st_.map(loader).facts->runpath) return false;
    bool did_main = false;
    for (int l = loader; l >= 0; l = st_.map(l).loader) {
      const auto& dirs = st_.rpath_of(l);
      if (dirs.empty()) continue;
      if (in_dirs(dirs, FoundBy::rpath, "DT_RPATH of " + st_.display(l) + ": ")) return true;
      did_main |= l == st_.main;
    }
    return !did_main && in_dirs(st_.rpath_of(st_.main), FoundBy::rpath, "DT_RPATH of " + st_.display(st_.main) + ": ");
  }

  bool library_path() { return in_dirs(st_.library_path, FoundBy::ld_library_path, st_.library_path_source + ": "); }

  // DT_RUNPATH of the loader only (no chain).
  bool runpath(int loader) {
    return loader >= 0 &&
           in_dirs(st_.runpath_of(loader), FoundBy::runpath, "DT_RUNPATH of " + st_.display(loader) + ": ");
  }

  // /etc/ld.so.cache, not for __RTLD_SECURE loads in secure mode; a hit under
  // a system directory is refused when the loader (else the executable) has
  // DF_1_NODEFLIB.
  bool cache(int nodeflib_owner) {
    if ((secure_load_ && st_.secure) || !st_.cache) return false;
    std::optional<std::string> cached = st_.cache->lookup(name_, *st_.sys);
    if (!cached) st_.tried.push_back(st_.sys->cache_path + ": no entry for " + name_);
    if (cached && has_nodeflib(st_, nodeflib_owner)) {
      for (const auto& d : st_.sys->system_dirs)
        if (cached->compare(0, d.size(), d) == 0) {
          st_.tried.push_back(*cached + " (ld.so.cache; refused: DF_1_NODEFLIB)");
          cached.reset();
          break;
        }
    }
    if (!cached) return false;
    Attempt a;
    if (try_open(st_, *cached, a, out_)) {
      take(a, FoundBy::ld_so_cache, st_.sys->cache_path + ": " + name_ + " => " + *cached);
      return true;
    }
    return out_.fatal.has_value();
  }

  // The system directories, unless DF_1_NODEFLIB.
  bool default_dirs(int nodeflib_owner) {
    if (has_nodeflib(st_, nodeflib_owner)) return false;
    std::vector<SearchDir> sysdirs;
    for (const auto& d : st_.sys->system_dirs) sysdirs.push_back({d, d});
    return in_dirs(sysdirs, FoundBy::default_dirs, "system search path: ");
  }

 private:
  // open_path() over one list; VIA names the rule for the explanation.
  bool in_dirs(const std::vector<SearchDir>& dirs, FoundBy by, const std::string& via) {
    if (dirs.empty()) return false;
    Attempt a = open_path(st_, name_, dirs, secure_load_, out_);
    if (out_.fatal) return true;
    if (!a.found) return false;
    const bool cwd = a.dir.empty() && by == FoundBy::ld_library_path;
    take(a, by, via + (cwd ? std::string("(current directory)") : a.dir));
    return true;
  }

  void take(const Attempt& a, FoundBy by, std::string via) {
    out_.ok = true;
    out_.path = a.path;
    out_.facts = a.facts;
    out_.by = by;
    out_.via = std::move(via);
    out_.in_subdir = a.in_subdir;
  }

  State& st_;
  const std::string& name_;
  const bool secure_load_;
  Found& out_;
};

}  // namespace

Found search(State& st, int loader, const std::string& name, bool secure_load) {
  Found out;
  st.tried.clear();
  Search s(st, name, secure_load, out);
  const int nodeflib_owner = loader >= 0 ? loader : st.main;
  if (name.find('/') != std::string::npos) {
    s.slash_name(loader);
  } else if (s.rpaths(loader) || s.library_path() || s.runpath(loader) || s.cache(nodeflib_owner) ||
             s.default_dirs(nodeflib_owner)) {
    return out;
  }
  if (!out.ok) out.err = st.last_errno;
  return out;
}

}  // namespace procforge::ldso::detail
