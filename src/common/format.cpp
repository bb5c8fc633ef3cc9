#include "procforge/format.hpp"

#include <sys/mman.h>

#include <cstdio>

namespace procforge {

std::string hex(std::uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string prot_string(int prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

}  // namespace procforge
