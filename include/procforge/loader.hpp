// The user-space exec's former name. "Loader" now means ld.so everywhere in
// procforge (explain's "loader" JSON, the ldso model); the user-space exec is
// procforge/user_exec.hpp. This header keeps code written against
// procforge::loader compiling: the same types and functions, found through a
// using-directive rather than a namespace alias, because code may also reopen
// the namespace (`namespace procforge::loader { ... }`), which an alias forbids.
#pragma once

#include "procforge/user_exec.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::loader {
using namespace user_exec;
}  // namespace procforge::loader

#pragma GCC visibility pop
