#include "exec/path_lookup.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "exec/acl.hpp"
#include "exec/diagnosis.hpp"
#include "exec/system_facts.hpp"

namespace procforge::exec {

namespace {

constexpr std::size_t kPathMax = 4096;  // include/uapi/linux/limits.h PATH_MAX, counts the NUL
constexpr std::size_t kNameMax = 255;   // NAME_MAX
constexpr int kMaxSymlinks = 40;        // include/linux/namei.h MAXSYMLINKS

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

std::string parent_of(const std::string& dir) {
  if (dir == "/") return dir;
  auto slash = dir.rfind('/');
  return slash == 0 ? "/" : dir.substr(0, slash);
}

std::string join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

bool on_procfs(const std::string& path) {
  struct statfs sf {};
  return statfs(path.c_str(), &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

// fs/namei.c may_follow_link(): with protected_symlinks, a symlink in a sticky
// world-writable directory is followed only by its owner or when the
// directory's owner owns the link.
bool may_follow_link(const struct stat& dir, const struct stat& link, const Credentials& c) {
  static const long protected_symlinks = read_number("/proc/sys/fs/protected_symlinks", 1);
  if (!protected_symlinks) return true;
  if (!((dir.st_mode & S_ISVTX) && (dir.st_mode & S_IWOTH))) return true;
  if (c.fsuid == link.st_uid) return true;
  return dir.st_uid == link.st_uid;
}

}  // namespace

bool may_exec_file(const std::string& path, const struct stat& st, const Credentials& c) {
  if (acl_permission_check(path, st, c, 1)) return true;
  // capable_wrt_inode_uidgid(CAP_DAC_OVERRIDE) grants exec only when some x bit
  // is set (generic_permission()).
  return c.cap_dac_override && (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH));
}

bool may_search_dir(const std::string& path, const struct stat& st, const Credentials& c) {
  if (acl_permission_check(path, st, c, 1)) return true;
  return c.cap_dac_override || c.cap_dac_read_search;
}

namespace {

// procfs "magic" links (/proc/PID/fd/N, /proc/PID/exe) jump to the object
// itself (nd_jump_link()); their text is not a path to walk. Seen from user
// space: a link in procfs whose text does not name the object it leads to.
bool is_magic_link(const std::string& dir, const std::string& link, const std::string& target) {
  if (!on_procfs(dir)) return false;
  if (target.empty() || target[0] != '/') return target.find(':') != std::string::npos;
  struct stat via_text {
  }, real{};
  return stat(target.c_str(), &via_text) != 0 || stat(link.c_str(), &real) != 0 || via_text.st_ino != real.st_ino ||
         via_text.st_dev != real.st_dev;
}

// One walk of fs/namei.c (struct nameidata as far as the model needs it):
// where the walk is, what is left of the path, the symlinks followed, and
// the result being filled in. Each member is a stage of path_lookupat().
struct Walk {
  const Credentials& creds;
  LookupResult r;
  std::string cur;               // the directory (or, at the end, the object) reached
  std::deque<std::string> todo;  // components still to walk, symlink text spliced in
  bool want_dir = false;         // LOOKUP_DIRECTORY: the path (or a link's text) ends in '/'
  int links = 0;

  // Records the errno the walk stops with; false, so a stage can return it.
  bool stop(int err, std::string resolved, std::string component, std::string detail) {
    r.err = err;
    r.resolved = std::move(resolved);
    r.component = std::move(component);
    r.detail = std::move(detail);
    return false;
  }

  // getname() and path_init(): an empty name is ENOENT, PATH_MAX counts the
  // NUL; a relative walk starts at the cwd, an absolute one at /.
  bool path_init(const std::string& path, const std::string& cwd) {
    if (path.empty()) return stop(ENOENT, "", "", "the path is empty");
    if (path.size() >= kPathMax)
      return stop(ENAMETOOLONG, "", "",
                  "the path is " + std::to_string(path.size()) + " bytes; PATH_MAX is 4096 including the NUL");
    cur = path[0] == '/' ? "/" : cwd;
    if (stat(cur.c_str(), &r.st) != 0) {
      const int err = errno;
      return stop(err, cur, "", "the starting directory cannot be examined");
    }
    for (auto& p : split(path)) todo.push_back(std::move(p));
    want_dir = path.back() == '/';
    return true;
  }

  // link_path_walk() before each component: NAME_MAX, then may_lookup() on
  // the directory walked so far (a directory, with search permission).
  bool may_lookup(const std::string& comp) {
    if (comp.size() > kNameMax)
      return stop(ENAMETOOLONG, "", comp.substr(0, 32) + "...",
                  "a path component is " + std::to_string(comp.size()) + " bytes; NAME_MAX is 255");
    if (!S_ISDIR(r.st.st_mode)) return stop(ENOTDIR, cur, comp, cur + " is not a directory");
    if (!may_search_dir(cur, r.st, creds))
      return stop(EACCES, cur, comp, "no search (x) permission on directory " + cur);
    return true;
  }

  // handle_dots(): ".." goes to the parent (never above /).
  bool handle_dotdot() {
    cur = parent_of(cur);
    if (stat(cur.c_str(), &r.st) != 0) return r.err = errno, false;
    return true;
  }

  // pick_link() -> step_into(): a symlink costs one of MAXSYMLINKS follows,
  // must pass may_follow_link(), and its text is walked in place of the
  // component (an absolute one restarts at /); a magic link jumps instead.
  bool pick_link(const std::string& next, const struct stat& link) {
    if (++links > kMaxSymlinks)
      return stop(ELOOP, next, "", "more than 40 symbolic links while resolving the path (a loop?)");
    if (!may_follow_link(r.st, link, creds))
      return stop(EACCES, next, "",
                  "fs.protected_symlinks: the symlink " + next +
                      " is in a sticky world-writable directory and owned by someone else");
    std::string target(4096, '\0');
    ssize_t n = readlink(next.c_str(), target.data(), target.size());
    target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (is_magic_link(cur, next, target)) {
      struct stat real {};
      if (stat(next.c_str(), &real) != 0) {
        const int err = errno;
        return stop(err, next, "", "the /proc link " + next + " cannot be followed");
      }
      cur = next;
      r.st = real;
      return true;
    }
    if (target.empty()) return stop(ENOENT, next, "", "empty symlink " + next);
    auto parts = split(target);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
    if (target[0] == '/') {
      cur = "/";
      stat("/", &r.st);
    }
    if (todo.empty() && target.back() == '/') want_dir = true;
    return true;
  }

  // walk_component(): look the name up in the directory; a symlink is
  // followed, anything else becomes where the walk is.
  bool walk_component(const std::string& comp) {
    const std::string next = join(cur, comp);
    struct stat st {};
    if (lstat(next.c_str(), &st) != 0) {
      const int err = errno;
      return stop(err, next, comp, err == ENOENT ? next + " does not exist" : "cannot examine " + next);
    }
    if (S_ISLNK(st.st_mode)) return pick_link(next, st);
    cur = next;
    r.st = st;
    return true;
  }

  // link_path_walk() and the last component: each in turn, "." staying put.
  bool link_path_walk() {
    while (!todo.empty()) {
      const std::string comp = std::move(todo.front());
      todo.pop_front();
      if (!may_lookup(comp)) return false;
      if (comp == ".") continue;
      if (!(comp == ".." ? handle_dotdot() : walk_component(comp))) return false;
    }
    return true;
  }

  // complete_walk() with LOOKUP_DIRECTORY: a trailing '/' wants a directory.
  void complete_walk() {
    r.resolved = cur;
    if (want_dir && !S_ISDIR(r.st.st_mode)) {
      r.err = ENOTDIR;
      r.detail = cur + " is not a directory but the path ends in '/'";
    }
  }
};

}  // namespace

// fs/namei.c path_lookupat() with LOOKUP_FOLLOW, as do_filp_open() runs it.
LookupResult path_lookup(const std::string& path, const std::string& cwd, const Credentials& creds, bool from_kernel) {
  Walk w{creds, {}, {}, {}, false, 0};
  if (path.empty() && from_kernel) {
    // open_exec("") of a kernel-held name (an empty #! interpreter or
    // PT_INTERP "\0"): getname_kernel() accepts "", which walks to the cwd.
    w.r.resolved = cwd;
    if (stat(cwd.c_str(), &w.r.st) != 0) w.r.err = errno;
    return w.r;
  }
  if (w.path_init(path, cwd) && w.link_path_walk()) w.complete_walk();
  return w.r;
}

namespace {

const char* type_word(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// path_noexec(): MNT_NOEXEC on the mount (statfs reports it in f_flags,
// fs/statfs.c calculate_f_flags()) or SB_I_NOEXEC on the superblock (procfs,
// sysfs and a few pseudo filesystems set the latter).
bool noexec(const struct statfs& sf) {
  return (sf.f_flags & ST_NOEXEC) || sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC;
}

}  // namespace

namespace {

// execveat(DIRFD, "", AT_EMPTY_PATH): fs/namei.c path_init() with
// LOOKUP_EMPTY and an empty name starts and ends at DIRFD's own file (the
// working directory for AT_FDCWD), with no walk and no search permission
// asked of any directory. The file is reopened through its /proc/self/fd
// link, which works for a deleted file and a memfd too.
LookupResult descriptor_lookup(int dirfd, const std::string& cwd) {
  LookupResult r;
  r.resolved = dirfd == AT_FDCWD ? cwd : "/proc/self/fd/" + std::to_string(dirfd);
  if ((dirfd == AT_FDCWD ? ::stat(cwd.c_str(), &r.st) : ::fstat(dirfd, &r.st)) != 0) {
    r.err = errno;
    r.detail = "descriptor " + std::to_string(dirfd) + ": " + std::strerror(errno);
  }
  return r;
}

}  // namespace

Result<std::optional<ExecFile>> open_exec(Context& ctx, const std::string& name, const std::string& role) {
  const std::string rule_walk = "fs/namei.c path_openat() / link_path_walk()";
  // Only the program's own path comes from user space (getname(), which
  // refuses ""); interpreter names come from the kernel (getname_kernel()).
  const bool empty_path = role == "program" && name.empty() && (ctx.req.at_flags & AT_EMPTY_PATH);
  LookupResult lr = empty_path ? descriptor_lookup(ctx.req.dirfd, ctx.cwd)
                               : path_lookup(name, ctx.cwd, ctx.req.creds, role != "program");
  if (lr.err) {
    ctx.check("path lookup", name, false, lr.detail, rule_walk);
    auto d = diagnose_lookup(lr.err, role, name, lr);
    ctx.fail(lr.err, "path lookup", name, d.first, d.second);
    return std::optional<ExecFile>{};
  }
  ctx.check("path lookup", name, true, lr.resolved == name ? "found" : "resolves to " + lr.resolved, rule_walk);

  const mode_t m = lr.st.st_mode;
  const std::string rule_open = "fs/namei.c may_open()";
  if (!S_ISREG(m)) {
    std::string what = std::string(type_word(m));
    ctx.check("file type", name, false, (name.empty() ? lr.resolved : name) + " is " + what, rule_open);
    if (name.empty()) {
      auto d = diagnose_lookup(EACCES, role, name, lr);
      ctx.fail(EACCES, "file type", name, d.first, d.second);
    } else {
      ctx.fail(EACCES, "file type", name,
               "the " + role + " " + name + " is " + what + "; only regular files can be executed",
               S_ISDIR(m) ? "name the program inside the directory" : "point at a regular executable file");
    }
    return std::optional<ExecFile>{};
  }
  ctx.check("file type", name, true, "regular file", rule_open);

  // Opened now, so that the mount's flags come from the file itself (one
  // fstatfs instead of two walks of the path). O_NONBLOCK: if the file was
  // swapped for a FIFO since the lookup, never block. The kernel could exec
  // a file we may not read: then the flags come from the path, and the read
  // error is reported after the checks the kernel makes.
  ExecFile f;
  f.path = name;
  f.resolved = lr.resolved;
  f.st = lr.st;
  f.fd.reset(open(lr.resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  const int open_err = f.fd ? 0 : errno;
  struct statfs sf {};
  if (f.fd ? fstatfs(f.fd.get(), &sf) == 0 : statfs(lr.resolved.c_str(), &sf) == 0) f.mount_flags = sf.f_flags;
  if (noexec(sf)) {
    ctx.check("noexec mount", name, false, "the filesystem holding it is mounted noexec", "fs/namei.c path_noexec()");
    ctx.fail(EACCES, "noexec mount", name,
             "the " + role + " " + name + " lies on a filesystem mounted noexec; no file there can be executed",
             "move it to an exec-mountable filesystem, remount without noexec, or run it through its "
             "interpreter explicitly (e.g. sh FILE)");
    return std::optional<ExecFile>{};
  }
  ctx.check("noexec mount", name, true, "mount allows exec", "fs/namei.c path_noexec()");
  if (!may_exec_file(lr.resolved, lr.st, ctx.req.creds)) {
    const bool none = !(m & (S_IXUSR | S_IXGRP | S_IXOTH));
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(m & 07777));
    ctx.check("x permission", name, false, std::string("mode ") + mode, "fs/namei.c generic_permission()");
    ctx.fail(EACCES, "x permission", name,
             "the " + role + " " + name + " (mode " + mode + ") is not executable by uid " +
                 std::to_string(ctx.req.creds.fsuid) + (none ? "; it has no x bit at all, which even root needs" : ""),
             "chmod +x " + name);
    return std::optional<ExecFile>{};
  }
  ctx.check("x permission", name, true, "executable by the caller", "fs/namei.c generic_permission()");

  if (!f.fd) {
    const int e = open_err;
    return Error(e, "reading " + role + " " + name + ": " + errno_name(e) +
                        (e == EACCES ? " (the kernel could execute it without read permission, but procforge "
                                       "needs to read it to predict more; run as its owner or as root)"
                                     : ""));
  }
  struct stat now {};
  if (fstat(f.fd.get(), &now) != 0 || now.st_ino != lr.st.st_ino || now.st_dev != lr.st.st_dev || !S_ISREG(now.st_mode))
    return Error(EAGAIN, "reading " + role + " " + name + ": the file changed while it was examined");

  if (ctx.writers().contains(lr.st.st_dev, lr.st.st_ino)) {
    ctx.check("not open for writing", name, false, "a process holds it open for writing",
              "fs/exec.c exe_file_deny_write_access()");
    ctx.fail(ETXTBSY, "not open for writing", name,
             "the " + role + " " + name + " is open for writing by some process (still being written or copied?)",
             "wait for the writer to finish and close it (fuser -v " + name + " shows who holds it)");
    return std::optional<ExecFile>{};
  }
  ctx.check("not open for writing", name, true, "no writer", "fs/exec.c exe_file_deny_write_access()");
  return std::optional<ExecFile>{std::move(f)};
}

}  // namespace procforge::exec
