// Small formatting helpers shared by the library and its renderers.
#pragma once

#include <cstdint>
#include <string>

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge {

std::string hex(std::uint64_t v);   // "0x1f"
std::string prot_string(int prot);  // PROT_READ|PROT_EXEC -> "r-x"

}  // namespace procforge

#pragma GCC visibility pop
