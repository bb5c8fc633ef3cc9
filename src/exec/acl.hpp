// The permission check of a lookup or an exec with POSIX ACLs: fs/namei.c
// acl_permission_check() and fs/posix_acl.c posix_acl_permission().
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "procforge/exec.hpp"

namespace procforge::exec {

struct AclEntry {
  std::uint16_t tag =
      0;  // ACL_USER_OBJ 0x01, ACL_USER 0x02, ACL_GROUP_OBJ 0x04, ACL_GROUP 0x08, ACL_MASK 0x10, ACL_OTHER 0x20
  std::uint16_t perm = 0;  // rwx: 4 2 1
  std::uint32_t id = 0;    // uid or gid (ACL_USER, ACL_GROUP)
};

// The system.posix_acl_access value (include/uapi/linux/posix_acl_xattr.h:
// a little-endian u32 version 2, then {u16 tag, u16 perm, u32 id} entries).
// Nullopt when the bytes are not such a value.
std::optional<std::vector<AclEntry>> parse_acl_xattr(std::span<const std::uint8_t> bytes);

// Whether C may have WANT (rwx bits, 1 = exec/search) on the object at PATH
// whose stat is ST, before any capability: the owner's bits, else the ACL
// (when the file has one and its group class bits are not all clear), else
// the group's or others' bits.
bool acl_permission_check(const std::string& path, const struct stat& st, const Credentials& c, unsigned want);

}  // namespace procforge::exec
