// Programs whose symbol bindings exercise ld.so's lookup rules (elf/dl-lookup.c):
// interposition by LD_PRELOAD, a protected definition, a symbol with several
// versions (default, older, hidden), a weak undefined reference, a copy
// relocation, an IFUNC, DT_SYMBOLIC, TLS, STB_GNU_UNIQUE, DF_1_GROUP (ld
// -Bgroup) objects, weak definitions before global ones (LD_DYNAMIC_WEAK);
// and, for ldd -d/-r, references nothing defines (function, data,
// versioned) and copy relocations whose sizes differ. What ld.so makes of them is never written here: the
// tests ask the real ld.so.
#pragma once

#include <string>
#include <vector>

#include "procforge/result.hpp"
#include "support/ldso_fixtures.hpp"

namespace procforge::testsupport {

struct BindingCase {
  std::string name;
  std::string program;           // absolute path
  std::vector<std::string> env;  // LD_PRELOAD=... when the case needs it
  bool starts = true;            // false: a strong reference is undefined (ld.so stops under BIND_NOW)
};

// Builds every case in DIR with gcc.
Result<std::vector<BindingCase>> build_binding_cases(FixtureDir& dir);

// Programs whose references nothing defines when they run, each built
// against a stand-in library that defined them, then replaced by one that
// does not: a function called through a lazy PLT slot, the same linked
// -z now, a versioned function whose version is still defined, data through
// the GOT and through a copy relocation, a library's own call (lazy, and
// in a library linked -z now), and a weak reference (starts). Each prints
// "before" (flushed), then, given an argument, makes every call and data
// read it has, then prints "after".
Result<std::vector<BindingCase>> build_lookup_error_cases(FixtureDir& dir);

}  // namespace procforge::testsupport
