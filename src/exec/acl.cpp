// POSIX ACLs in the permission checks (Linux 6.x):
//   fs/namei.c acl_permission_check(): the owner gets the owner bits and no
//   ACL; otherwise, when the inode has an access ACL and its group class bits
//   (the ACL mask, for a file with an ACL) are not all clear, check_acl()
//   decides unless it finds no ACL (-EAGAIN); otherwise the group bits when
//   the caller is in the file's group and they differ from the others' bits
//   in what is wanted, else the others' bits;
//   fs/posix_acl.c posix_acl_permission(): entries in order: ACL_USER_OBJ
//   (the owner, already handled), ACL_USER with the caller's fsuid, then the
//   group entries (ACL_GROUP_OBJ, ACL_GROUP) that match one of the caller's
//   groups, any one granting all of WANT, else EACCES if any matched; else
//   ACL_OTHER. ACL_USER and group entries are limited by ACL_MASK.
// The ACL is read with getxattr("system.posix_acl_access"); the entries are
// stored sorted by tag then id, as the kernel keeps them.
#include "exec/acl.hpp"

#include <sys/xattr.h>

#include <algorithm>

namespace procforge::exec {

namespace {

constexpr std::uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10, kOther = 0x20;

bool in_group(gid_t g, const Credentials& c) {
  return g == c.fsgid || std::find(c.groups.begin(), c.groups.end(), g) != c.groups.end();
}

std::uint32_t le(std::span<const std::uint8_t> b, std::size_t at, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint32_t>(b[at + i]) << (8 * i);
  return v;
}

// posix_acl_permission(): 0 allowed, EACCES refused, EIO a malformed ACL.
int posix_acl_permission(const std::vector<AclEntry>& acl, const struct stat& st, const Credentials& c, unsigned want) {
  auto masked = [&](std::size_t i) {
    for (std::size_t m = i + 1; m < acl.size(); ++m)
      if (acl[m].tag == kMask) return (acl[i].perm & acl[m].perm & want) == want ? 0 : EACCES;
    return (acl[i].perm & want) == want ? 0 : EACCES;
  };
  bool found = false;
  for (std::size_t i = 0; i < acl.size(); ++i) {
    const AclEntry& e = acl[i];
    switch (e.tag) {
      case kUserObj:
        if (st.st_uid == c.fsuid) return (e.perm & want) == want ? 0 : EACCES;
        break;
      case kUser:
        if (e.id == c.fsuid) return masked(i);
        break;
      case kGroupObj:
      case kGroup:
        if (in_group(e.tag == kGroupObj ? st.st_gid : e.id, c)) {
          found = true;
          if ((e.perm & want) == want) return masked(i);
        }
        break;
      case kMask: break;
      case kOther: return found ? EACCES : ((e.perm & want) == want ? 0 : EACCES);
      default: return EIO;
    }
  }
  return EIO;
}

}  // namespace

std::optional<std::vector<AclEntry>> parse_acl_xattr(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 4 || (bytes.size() - 4) % 8 != 0 || le(bytes, 0, 4) != 2) return std::nullopt;
  std::vector<AclEntry> out;
  for (std::size_t at = 4; at < bytes.size(); at += 8)
    out.push_back({static_cast<std::uint16_t>(le(bytes, at, 2)), static_cast<std::uint16_t>(le(bytes, at + 2, 2)),
                   le(bytes, at + 4, 4)});
  return out;
}

bool acl_permission_check(const std::string& path, const struct stat& st, const Credentials& c, unsigned want) {
  unsigned mode = st.st_mode;
  if (st.st_uid == c.fsuid) return (want & ~(mode >> 6) & 7) == 0;
  if (mode & S_IRWXG) {
    std::uint8_t buf[4 + 8 * 64];
    const ssize_t n = ::getxattr(path.c_str(), "system.posix_acl_access", buf, sizeof buf);
    if (n > 0)
      if (auto acl = parse_acl_xattr(std::span(buf, static_cast<std::size_t>(n))))
        return posix_acl_permission(*acl, st, c, want) == 0;
  }
  if (want & (mode ^ (mode >> 3)) & 7)
    if (in_group(st.st_gid, c)) mode >>= 3;
  return (want & ~mode & 7) == 0;
}

}  // namespace procforge::exec
