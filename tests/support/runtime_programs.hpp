// The same small program (it prints one line) built with each toolchain a
// start can go through: glibc and musl, dynamic and static, Go (static, cgo,
// stripped) with several packages that have init functions, Rust (and
// stripped), and a program with no libc. Built by the tests with gcc,
// musl-gcc, go and rustc, once per build directory: the programs are kept
// under BUILD/runtime-programs/ and rebuilt only when their source changes
// (Go and Rust builds take seconds; a first Go build compiles the standard
// library into BUILD/runtime-programs/gocache). Test processes running side
// by side build under a lock, one at a time.
#pragma once

#include <string>
#include <vector>

namespace procforge::testsupport {

struct RuntimePrograms {
  std::string dir;    // BUILD/runtime-programs
  std::string error;  // a build that failed: what the compiler said
  // "" when the toolchain is missing (then missing says which).
  std::string missing;
  [[nodiscard]] std::string at(const std::string& name) const { return dir + "/" + name; }
};

// Names: c_glibc, c_glibc_static, c_musl, c_musl_static, go_static, go_cgo,
// go_stripped, rust, rust_stripped, nolibc. Go's packages p1, p2, p3 each
// run an init function that spins for a while (main imports p1, p1 p2, p2 p3).
const std::vector<std::string>& runtime_program_names();
// Builds what is missing or out of date (once per process) and returns where.
const RuntimePrograms& runtime_programs();

}  // namespace procforge::testsupport
