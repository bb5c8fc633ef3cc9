// Path resolution and the open checks of open_exec(), as fs/namei.c does them
// for execve: path walk with search permission on each directory, symlinks
// (40 at most, protected_symlinks), NAME_MAX/PATH_MAX, then may_open() with
// MAY_EXEC|MAY_OPEN (file type, noexec mount, x permission) and finally
// exe_file_deny_write_access() (ETXTBSY).
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>

#include "exec/context.hpp"

namespace procforge::exec {

struct LookupResult {
  int err = 0;            // errno the kernel would return, 0 on success
  std::string resolved;   // path after symlinks (as far as resolved)
  std::string component;  // the component that failed
  std::string detail;     // plain words
  struct stat st {};      // the object found
};

// Resolve `path` (relative to `cwd`) following symlinks, as do_filp_open()
// with LOOKUP_FOLLOW. `from_kernel`: a name the kernel holds itself (an
// interpreter), for which "" means the cwd instead of ENOENT.
LookupResult path_lookup(const std::string& path, const std::string& cwd, const Credentials& creds,
                         bool from_kernel = false);

// Generic_permission() for MAY_EXEC with capability overrides; PATH names
// the object for its POSIX ACL (acl.hpp).
bool may_exec_file(const std::string& path, const struct stat& st, const Credentials& c);
bool may_search_dir(const std::string& path, const struct stat& st, const Credentials& c);

// open_exec(name): lookup + may_open + permission + ETXTBSY, recording each
// check on ctx. Returns the opened file, or nullopt after ctx.fail() when the
// kernel would refuse; an Error only when we cannot answer (e.g. we may not
// read a file the kernel could). `role` names the file in messages
// ("program", "#! interpreter", "ELF interpreter").
Result<std::optional<ExecFile>> open_exec(Context& ctx, const std::string& name, const std::string& role);

}  // namespace procforge::exec
