// OpenWriters::scan(): every process's fds opened for writing and shared
// writable mappings, from /proc (see open_writers.hpp for why).
#include "procforge/open_writers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "common/maps.hpp"
#include "common/unique_fd.hpp"

namespace procforge::exec {

namespace {

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

using FileSet = std::set<std::pair<std::uint64_t, std::uint64_t>>;

// A memfd (the link text or maps path "/memfd:NAME (deleted)"): its file
// comes from mm/shmem.c's alloc_file_pseudo(), whose fs/file_table.c
// file_init_path() takes no write access, so even when open for writing it
// adds nothing to i_writecount and does not block an exec. (A writable
// reopen through /proc/PID/fd would, and is not told apart here.)
bool is_memfd(std::string_view path) { return path.starts_with("/memfd:"); }

// Regular files behind the descriptors in /proc/PID/fd whose link mode has
// S_IWUSR (opened with FMODE_WRITE), memfds left out.
void scan_fds(int pid_dir, FileSet& out) {
  UniqueFd fd_dir(openat(pid_dir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd_dir) return;
  DIR* fds = fdopendir(fd_dir.get());
  if (!fds) return;
  (void)fd_dir.release();  // closedir() closes it
  while (dirent* fe = readdir(fds)) {
    if (!all_digits(fe->d_name)) continue;
    struct stat link {};
    if (fstatat(dirfd(fds), fe->d_name, &link, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!(link.st_mode & S_IWUSR)) continue;
    struct stat target {};
    if (fstatat(dirfd(fds), fe->d_name, &target, 0) != 0) continue;
    if (!S_ISREG(target.st_mode)) continue;
    char text[16];
    const ssize_t n = readlinkat(dirfd(fds), fe->d_name, text, sizeof text);
    if (n > 0 && is_memfd(std::string_view(text, static_cast<std::size_t>(n)))) continue;
    out.insert({target.st_dev, target.st_ino});
  }
  closedir(fds);
}

// Shared writable mappings in /proc/PID/maps ("rw-s"), memfds left out.
void scan_maps(int pid_dir, FileSet& out) {
  for_each_mapping(openat(pid_dir, "maps", O_RDONLY | O_CLOEXEC), [&](const MapsLine& m) {
    if (m.inode != 0 && m.perms.size() >= 4 && m.perms[1] == 'w' && m.perms[3] == 's' && !is_memfd(m.path))
      out.insert({makedev(m.dev_major, m.dev_minor), m.inode});
    return true;
  });
}

}  // namespace

OpenWriters OpenWriters::scan() {
  OpenWriters w;
  DIR* proc = opendir("/proc");
  if (!proc) return w;
  while (dirent* pe = readdir(proc)) {
    if (!all_digits(pe->d_name)) continue;
    const UniqueFd pid_dir(openat(dirfd(proc), pe->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pid_dir) continue;
    scan_fds(pid_dir.get(), w.files_);
    scan_maps(pid_dir.get(), w.files_);
  }
  closedir(proc);
  return w;
}

}  // namespace procforge::exec
