// Small file helpers for the kernel's pseudo-files (/proc, cgroupfs), whose
// writes are requests: each write() is parsed whole, so a value goes in one
// call or not at all (kernel/user_namespace.c map_write(), cgroup's
// kernfs_fop_write_iter()).
#pragma once

#include <string>
#include <string_view>

namespace procforge {

// Opens PATH for writing and writes TEXT in a single write(). Returns 0, or
// the errno of the open or the write (EIO for a short write).
int write_whole(const std::string& path, std::string_view text);

}  // namespace procforge
