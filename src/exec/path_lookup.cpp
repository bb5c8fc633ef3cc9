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

#include "exec/diagnosis.hpp"

namespace procforge::exec {

namespace {

constexpr std::size_t kPathMax = 4096;  // include/uapi/linux/limits.h PATH_MAX, counts the NUL
constexpr std::size_t kNameMax = 255;   // NAME_MAX
constexpr int kMaxSymlinks = 40;        // include/linux/namei.h MAXSYMLINKS

bool in_group(gid_t g, const Credentials& c) {
  return g == c.fsgid || std::find(c.groups.begin(), c.groups.end(), g) != c.groups.end();
}

// The permission bits that apply to the caller: fs/namei.c acl_permission_check().
unsigned class_bits(const struct stat& st, const Credentials& c) {
  if (st.st_uid == c.fsuid) return (st.st_mode >> 6) & 7;
  if (in_group(st.st_gid, c)) return (st.st_mode >> 3) & 7;
  return st.st_mode & 7;
}

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

int read_sysctl(const char* path, int fallback) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fallback;
  char buf[32] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? atoi(buf) : fallback;
}

// fs/namei.c may_follow_link(): with protected_symlinks, a symlink in a sticky
// world-writable directory is followed only by its owner or when the
// directory's owner owns the link.
bool may_follow_link(const struct stat& dir, const struct stat& link, const Credentials& c) {
  static const int protected_symlinks = read_sysctl("/proc/sys/fs/protected_symlinks", 1);
  if (!protected_symlinks) return true;
  if (!((dir.st_mode & S_ISVTX) && (dir.st_mode & S_IWOTH))) return true;
  if (c.fsuid == link.st_uid) return true;
  return dir.st_uid == link.st_uid;
}

}  // namespace

bool may_exec_file(const struct stat& st, const Credentials& c) {
  if (class_bits(st, c) & 1) return true;
  // capable_wrt_inode_uidgid(CAP_DAC_OVERRIDE) grants exec only when some x bit
  // is set (generic_permission()).
  return c.cap_dac_override && (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH));
}

bool may_search_dir(const struct stat& st, const Credentials& c) {
  if (class_bits(st, c) & 1) return true;
  return c.cap_dac_override || c.cap_dac_read_search;
}

LookupResult path_lookup(const std::string& path, const std::string& cwd, const Credentials& creds, bool from_kernel) {
  LookupResult r;
  if (path.empty() && from_kernel) {
    // open_exec("") of a kernel-held name (an empty #! interpreter or
    // PT_INTERP "\0"): getname_kernel() accepts "", which walks to the cwd.
    r.resolved = cwd;
    if (stat(cwd.c_str(), &r.st) != 0) r.err = errno;
    return r;
  }
  if (path.empty()) {
    r.err = ENOENT;
    r.detail = "the path is empty";
    return r;
  }
  if (path.size() >= kPathMax) {
    r.err = ENAMETOOLONG;
    r.detail = "the path is " + std::to_string(path.size()) + " bytes; PATH_MAX is 4096 including the NUL";
    return r;
  }
  std::string cur = path[0] == '/' ? "/" : cwd;
  if (stat(cur.c_str(), &r.st) != 0) {
    r.err = errno;
    r.resolved = cur;
    r.detail = "the starting directory cannot be examined";
    return r;
  }
  std::deque<std::string> todo;
  for (auto& p : split(path)) todo.push_back(std::move(p));
  bool want_dir = path.back() == '/';
  int links = 0;
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    if (comp.size() > kNameMax) {
      r.err = ENAMETOOLONG;
      r.component = comp.substr(0, 32) + "...";
      r.detail = "a path component is " + std::to_string(comp.size()) + " bytes; NAME_MAX is 255";
      return r;
    }
    if (!S_ISDIR(r.st.st_mode)) {
      r.err = ENOTDIR;
      r.resolved = cur;
      r.component = comp;
      r.detail = cur + " is not a directory";
      return r;
    }
    if (!may_search_dir(r.st, creds)) {
      r.err = EACCES;
      r.resolved = cur;
      r.component = comp;
      r.detail = "no search (x) permission on directory " + cur;
      return r;
    }
    if (comp == ".") continue;
    if (comp == "..") {
      cur = parent_of(cur);
      if (stat(cur.c_str(), &r.st) != 0) return r.err = errno, r;
      continue;
    }
    const std::string next = join(cur, comp);
    struct stat st {};
    if (lstat(next.c_str(), &st) != 0) {
      r.err = errno;
      r.resolved = next;
      r.component = comp;
      r.detail = r.err == ENOENT ? next + " does not exist" : "cannot examine " + next;
      return r;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) {
        r.err = ELOOP;
        r.resolved = next;
        r.detail = "more than 40 symbolic links while resolving the path (a loop?)";
        return r;
      }
      if (!may_follow_link(r.st, st, creds)) {
        r.err = EACCES;
        r.resolved = next;
        r.detail = "fs.protected_symlinks: the symlink " + next +
                   " is in a sticky world-writable directory and owned by someone else";
        return r;
      }
      std::string target(4096, '\0');
      ssize_t n = readlink(next.c_str(), target.data(), target.size());
      target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      // procfs "magic" links (/proc/PID/fd/N, /proc/PID/exe) jump to the
      // object itself; their text is not a path to walk.
      struct stat real {};
      bool magic = false;
      if (on_procfs(cur)) {
        struct stat via_text {};
        magic = target.empty() || target[0] != '/'
                    ? (target.find(':') != std::string::npos)
                    : (stat(target.c_str(), &via_text) != 0 || stat(next.c_str(), &real) != 0 ||
                       via_text.st_ino != real.st_ino || via_text.st_dev != real.st_dev);
      }
      if (magic) {
        if (stat(next.c_str(), &real) != 0) {
          r.err = errno;
          r.resolved = next;
          r.detail = "the /proc link " + next + " cannot be followed";
          return r;
        }
        cur = next;
        r.st = real;
        continue;
      }
      if (target.empty()) {
        r.err = ENOENT;
        r.resolved = next;
        r.detail = "empty symlink " + next;
        return r;
      }
      auto parts = split(target);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
      if (target[0] == '/') {
        cur = "/";
        stat("/", &r.st);
      }
      if (todo.empty() && target.back() == '/') want_dir = true;
      continue;
    }
    cur = next;
    r.st = st;
  }
  r.resolved = cur;
  if (want_dir && !S_ISDIR(r.st.st_mode)) {
    r.err = ENOTDIR;
    r.detail = cur + " is not a directory but the path ends in '/'";
  }
  return r;
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

Result<std::optional<ExecFile>> open_exec(Context& ctx, const std::string& name, const std::string& role) {
  const std::string rule_walk = "fs/namei.c path_openat() / link_path_walk()";
  // Only the program's own path comes from user space (getname(), which
  // refuses ""); interpreter names come from the kernel (getname_kernel()).
  LookupResult lr = path_lookup(name, ctx.cwd, ctx.req.creds, role != "program");
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
  f.fd = open(lr.resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  const int open_err = f.fd < 0 ? errno : 0;
  struct statfs sf {};
  if (f.fd >= 0 ? fstatfs(f.fd, &sf) == 0 : statfs(lr.resolved.c_str(), &sf) == 0) f.mount_flags = sf.f_flags;
  if (noexec(sf)) {
    ctx.check("noexec mount", name, false, "the filesystem holding it is mounted noexec", "fs/namei.c path_noexec()");
    ctx.fail(EACCES, "noexec mount", name,
             "the " + role + " " + name + " lies on a filesystem mounted noexec; no file there can be executed",
             "move it to an exec-mountable filesystem, remount without noexec, or run it through its "
             "interpreter explicitly (e.g. sh FILE)");
    return std::optional<ExecFile>{};
  }
  ctx.check("noexec mount", name, true, "mount allows exec", "fs/namei.c path_noexec()");
  if (!may_exec_file(lr.st, ctx.req.creds)) {
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

  if (f.fd < 0) {
    const int e = open_err;
    return Error(e, "reading " + role + " " + name + ": " + errno_name(e) +
                        (e == EACCES ? " (the kernel could execute it without read permission, but procforge "
                                       "needs to read it to predict more; run as its owner or as root)"
                                     : ""));
  }
  struct stat now {};
  if (fstat(f.fd, &now) != 0 || now.st_ino != lr.st.st_ino || now.st_dev != lr.st.st_dev || !S_ISREG(now.st_mode))
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
