// Small formatting helpers shared by the library and its renderers.
//
//   hex(4096) == "0x1000";  prot_string(PROT_READ | PROT_EXEC) == "r-x"
//
// Pure functions of their arguments: safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge {

std::string hex(std::uint64_t v);   // "0x1f"
std::string prot_string(int prot);  // PROT_READ|PROT_EXEC -> "r-x"

// The items with SEP between them: join(dirs, ", ") -> "/lib, /usr/lib";
// numbers in decimal (join(gids, ",") -> "4,24"). "" for no items.
template <class Range>
std::string join(const Range& items, std::string_view sep) {
  std::string s;
  bool first = true;
  for (const auto& item : items) {
    if (!std::exchange(first, false)) s += sep;
    if constexpr (std::is_arithmetic_v<std::remove_cvref_t<decltype(item)>>) s += std::to_string(item);
    else s += item;
  }
  return s;
}

}  // namespace procforge

#pragma GCC visibility pop
