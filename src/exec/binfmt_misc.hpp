// binfmt_misc registrations as fs/binfmt_misc.c matches them: read from the
// mounted /proc/sys/fs/binfmt_misc, newest registration first (list_add() at
// the head of misc->entries; inode numbers grow with registration order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exec/shebang.hpp"

namespace procforge::exec {

struct MiscEntry {
  std::string name;
  bool enabled = false;
  std::string interpreter;
  std::string flags;  // subset of "POCF"
  bool magic_mode = false;
  std::uint32_t offset = 0;
  std::vector<std::uint8_t> magic, mask;
  std::string extension;  // without the dot
  std::uint64_t inode = 0;
};

struct MiscRegistry {
  bool enabled = false;  // the "status" file
  std::vector<MiscEntry> entries;
};

MiscRegistry read_binfmt_misc(const std::string& dir);

// search_binfmt_handler(): first enabled entry whose magic (at offset, under
// mask) matches buf, or whose extension equals what follows the last '.' of
// `name` (bprm->interp: the path given to execve, or the previous interpreter).
const MiscEntry* match_misc(const MiscRegistry& reg, const BinprmBuf& buf, const std::string& name);

}  // namespace procforge::exec
