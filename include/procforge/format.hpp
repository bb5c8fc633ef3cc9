// Small formatting helpers shared by the library and its renderers.
//
//   hex(4096) == "0x1000";  prot_string(PROT_READ | PROT_EXEC) == "r-x"
//
// Pure functions of their arguments: safe from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace procforge {

std::string hex(std::uint64_t v);   // "0x1f"
std::string prot_string(int prot);  // PROT_READ|PROT_EXEC -> "r-x"

}  // namespace procforge
