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
  const Map& m = st.maps[static_cast<std::size_t>(l)];
  return m.facts && (m.facts->flags_1 & DF_1_NODEFLIB);
}

}  // namespace

Found search(State& st, int loader, const std::string& name, bool secure_load) {
  Found out;
  st.tried.clear();
  auto take = [&](const Attempt& a, FoundBy by, std::string via) {
    out.ok = true;
    out.path = a.path;
    out.facts = a.facts;
    out.by = by;
    out.via = std::move(via);
    out.in_subdir = a.in_subdir;
  };

  if (name.find('/') != std::string::npos) {
    // Names with a slash: DSTs expanded for the loader, no search.
    std::string real = name;
    if (loader >= 0 && dst_count(name))
      real = dst_substitute(name, st.dst_for(st.maps[static_cast<std::size_t>(loader)]));
    Attempt a;
    if (try_open(st, real, a, out)) take(a, FoundBy::slash_name, "the name contains '/'");
    if (!out.ok) out.err = st.last_errno;
    return out;
  }

  const int fallback = loader >= 0 ? loader : st.main;
  const Map* lm = loader >= 0 ? &st.maps[static_cast<std::size_t>(loader)] : nullptr;
  if (!lm || !lm->facts || !lm->facts->runpath) {
    bool did_main = false;
    for (int l = loader; l >= 0; l = st.maps[static_cast<std::size_t>(l)].loader) {
      const auto& dirs = st.rpath_of(l);
      if (dirs.empty()) continue;
      Attempt a = open_path(st, name, dirs, secure_load, out);
      if (out.fatal) return out;
      if (a.found) {
        take(a, FoundBy::rpath, "DT_RPATH of " + st.display(l) + ": " + a.dir);
        return out;
      }
      did_main |= l == st.main;
    }
    if (!did_main) {
      const auto& dirs = st.rpath_of(st.main);
      if (!dirs.empty()) {
        Attempt a = open_path(st, name, dirs, secure_load, out);
        if (out.fatal) return out;
        if (a.found) {
          take(a, FoundBy::rpath, "DT_RPATH of " + st.display(st.main) + ": " + a.dir);
          return out;
        }
      }
    }
  }
  if (!st.library_path.empty()) {
    Attempt a = open_path(st, name, st.library_path, secure_load, out);
    if (out.fatal) return out;
    if (a.found) {
      take(a, FoundBy::ld_library_path,
           "LD_LIBRARY_PATH: " + (a.dir.empty() ? std::string("(current directory)") : a.dir));
      return out;
    }
  }
  if (loader >= 0) {
    const auto& dirs = st.runpath_of(loader);
    if (!dirs.empty()) {
      Attempt a = open_path(st, name, dirs, secure_load, out);
      if (out.fatal) return out;
      if (a.found) {
        take(a, FoundBy::runpath, "DT_RUNPATH of " + st.display(loader) + ": " + a.dir);
        return out;
      }
    }
  }
  if (!(secure_load && st.secure) && st.cache) {
    std::optional<std::string> cached = st.cache->lookup(name, *st.sys);
    if (!cached) st.tried.push_back(st.sys->cache_path + ": no entry for " + name);
    if (cached && has_nodeflib(st, fallback)) {
      for (const auto& d : st.sys->system_dirs)
        if (cached->compare(0, d.size(), d) == 0) {
          st.tried.push_back(*cached + " (ld.so.cache; refused: DF_1_NODEFLIB)");
          cached.reset();
          break;
        }
    }
    if (cached) {
      Attempt a;
      if (try_open(st, *cached, a, out)) {
        take(a, FoundBy::ld_so_cache, st.sys->cache_path + ": " + name + " => " + *cached);
        return out;
      }
      if (out.fatal) return out;
    }
  }
  if (!has_nodeflib(st, fallback)) {
    std::vector<SearchDir> sysdirs;
    for (const auto& d : st.sys->system_dirs) sysdirs.push_back({d, d});
    Attempt a = open_path(st, name, sysdirs, secure_load, out);
    if (out.fatal) return out;
    if (a.found) {
      take(a, FoundBy::default_dirs, "system search path: " + a.dir);
      return out;
    }
  }
  out.err = st.last_errno;
  return out;
}

}  // namespace procforge::ldso::detail
