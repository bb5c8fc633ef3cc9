// /proc/PID/maps, one parser for every stage that reads it (fs/proc/
// task_mmu.c show_map_vma(): "start-end perms offset major:minor inode
// path", the numbers in hex but the inode in decimal).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace procforge {

struct MapsLine {
  std::uint64_t start = 0, end = 0;
  std::string_view perms;  // "r-xp", "rw-s"
  std::uint64_t offset = 0;
  unsigned dev_major = 0, dev_minor = 0;
  std::uint64_t inode = 0;
  std::string_view path;  // "" for anonymous memory, "[vdso]", "/usr/lib/..."; valid during the call only
};

// Calls each(m) for every mapping of the maps file open on FD (which it
// closes) until each returns false. False when the file cannot be read.
bool for_each_mapping(int fd, const std::function<bool(const MapsLine&)>& each);
// The same for a path: "/proc/self/maps", "/proc/1234/maps".
bool for_each_mapping(const char* path, const std::function<bool(const MapsLine&)>& each);

}  // namespace procforge
