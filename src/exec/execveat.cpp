// execveat(dirfd, path, argv, envp, flags), and fexecve(fd), which glibc
// makes execveat(fd, "", argv, envp, AT_EMPTY_PATH). Linux 6.x fs/exec.c:
//   - getname_uflags(): an empty path is ENOENT unless AT_EMPTY_PATH;
//   - do_open_execat(): flags other than AT_SYMLINK_NOFOLLOW and
//     AT_EMPTY_PATH are EINVAL; AT_SYMLINK_NOFOLLOW makes a symlink as the
//     last component ELOOP; the lookup starts at dirfd (an empty path: the
//     descriptor's own file);
//   - alloc_bprm(): an absolute path (or AT_FDCWD) keeps its name; otherwise
//     bprm->filename is "/dev/fd/N" (empty path) or "/dev/fd/N/PATH", and
//     when N is close-on-exec that name will not exist after the exec:
//     BINPRM_FLAGS_PATH_INACCESSIBLE, which makes fs/binfmt_script.c
//     load_script() and fs/binfmt_misc.c load_misc_binary() fail with
//     ENOENT rather than start an interpreter that cannot open the script.
// The descriptor is one of the calling process's; the model names its file
// with /proc/self/fd/N.
#include "exec/execveat.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include "procforge/result.hpp"

namespace procforge::exec {

namespace {

constexpr const char* kRule = "fs/exec.c do_execveat_common() / alloc_bprm() / do_open_execat()";

// The file behind descriptor FD of this process; "" when it has no name a
// lookup could start from (deleted, a pipe, a memfd).
std::string descriptor_path(int fd) {
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<std::size_t>(n));
  if (path[0] != '/' || path.ends_with(" (deleted)")) return "";
  return path;
}

}  // namespace

bool execveat_start(Context& ctx, Bprm& b, std::string& lookup) {
  const Request& req = ctx.req;
  if (req.dirfd == AT_FDCWD && req.at_flags == 0) return true;
  const std::string name = req.path;
  if (name.empty() && !(req.at_flags & AT_EMPTY_PATH)) {
    ctx.check("execveat name", name, false, "empty path without AT_EMPTY_PATH", "fs/namei.c getname_flags()");
    ctx.fail(ENOENT, "execveat name", name, "execveat() was given an empty path without AT_EMPTY_PATH",
             "pass AT_EMPTY_PATH to execute the descriptor's own file (as fexecve() does)");
    return false;
  }
  if (req.at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) {
    ctx.check("execveat flags", name, false, "flags " + std::to_string(req.at_flags), kRule);
    ctx.fail(EINVAL, "execveat flags", name, "execveat() accepts only AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW",
             "drop the other flags");
    return false;
  }
  const bool relative = req.dirfd != AT_FDCWD && (name.empty() || name[0] != '/');
  if (relative) {
    const int fdflags = ::fcntl(req.dirfd, F_GETFD);
    const std::string at = fdflags < 0 ? "" : descriptor_path(req.dirfd);
    const std::string fdname = "/dev/fd/" + std::to_string(req.dirfd);
    if (fdflags < 0) {
      ctx.check("execveat descriptor", fdname, false, "not an open descriptor", kRule);
      ctx.fail(EBADF, "execveat descriptor", fdname, "descriptor " + std::to_string(req.dirfd) + " is not open",
               "pass an open descriptor");
      return false;
    }
    // A name looked up from a descriptor with no path (a deleted directory,
    // a memfd, a pipe): fs/namei.c path_init() refuses a start that is not a
    // directory (ENOTDIR); in a directory already removed, lookup finds
    // nothing (IS_DEADDIR: ENOENT).
    struct stat fd_st {};
    if (!name.empty() && at.empty() && ::fstat(req.dirfd, &fd_st) == 0) {
      const bool dir = S_ISDIR(fd_st.st_mode);
      ctx.check("execveat descriptor", fdname, false,
                dir ? "a directory already removed" : "not a directory, and a name follows", "fs/namei.c path_init()");
      ctx.fail(dir ? ENOENT : ENOTDIR, "execveat descriptor", fdname,
               "descriptor " + std::to_string(req.dirfd) +
                   (dir ? " is a directory that has been removed: nothing can be found in it"
                        : " is not a directory, so " + name + " cannot be looked up from it"),
               dir ? "open the directory that holds the program now" : "pass a directory descriptor, or AT_EMPTY_PATH");
      return false;
    }
    b.filename = name.empty() ? fdname : fdname + "/" + name;
    b.interp = b.filename;
    b.path_inaccessible = (fdflags & FD_CLOEXEC) != 0;
    if (name.empty()) {
      // open_exec() of the descriptor's own file, not of a path (open_exec()
      // in path_lookup.cpp takes it from the descriptor): a deleted file and
      // a memfd are executed as well.
      lookup = "";
    } else {
      ctx.cwd = at;
      lookup = name;
    }
    ctx.check("execveat", b.filename, true,
              (name.empty() ? "the file of descriptor " : "looked up from descriptor ") + std::to_string(req.dirfd) +
                  " (" + (at.empty() ? "no path: deleted, a memfd or a pipe" : at) + ")" +
                  (b.path_inaccessible ? ", close-on-exec: the name dies with the exec" : ""),
              kRule);
  }
  // AT_SYMLINK_NOFOLLOW: the last component may not be a symlink.
  struct stat st {};
  const std::string full = lookup.empty() || lookup[0] == '/' ? lookup : ctx.cwd + "/" + lookup;
  if ((req.at_flags & AT_SYMLINK_NOFOLLOW) && !lookup.empty() &&
      ::fstatat(AT_FDCWD, full.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    ctx.check("execveat flags", lookup, false, "AT_SYMLINK_NOFOLLOW and the last component is a symlink",
              "fs/namei.c trailing_symlink()");
    ctx.fail(ELOOP, "execveat flags", lookup, lookup + " is a symlink and AT_SYMLINK_NOFOLLOW was given",
             "execute the symlink's target, or drop AT_SYMLINK_NOFOLLOW");
    return false;
  }
  return true;
}

}  // namespace procforge::exec
