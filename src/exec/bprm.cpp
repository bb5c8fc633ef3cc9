#include "exec/bprm.hpp"

#include <cstring>

namespace procforge::exec {

bool Bprm::push_front(const std::string& s) {
  // strnlen(): a string is copied up to its first NUL.
  const std::uint64_t len = strnlen(s.c_str(), s.size()) + 1;
  if (len > kMaxArgStrlen) return false;
  used += len;
  argv.push_front(s.substr(0, len - 1));
  const std::uint64_t vma = (used + 8 + 4095) & ~std::uint64_t{4095};  // 8 zero bytes at the top
  return used <= limit && vma <= rlimit_stack;
}

void Bprm::remove_arg_zero() {
  if (argv.empty()) return;
  used -= argv.front().size() + 1;
  argv.pop_front();
}

}  // namespace procforge::exec
