// Symbolic errno names come from glibc's strerrorname_np (glibc 2.32+), so
// the table stays in step with the C library the kernel's errnos are read from.
#include <cstring>
#include <string>

#include "procforge/result.hpp"

namespace procforge {

std::string errno_name(int err) {
  if (const char* name = strerrorname_np(err)) return name;
  return "E?" + std::to_string(err);
}

}  // namespace procforge
