// What the real ld.so prints on stderr for a program, predicted from an
// ldso::Prediction alone, and the comparison with what it did print: failed
// preloads, the loading error that stops a run, and every line of the
// symbol-version check (glibc 2.36 elf/rtld.c version_check_doit ->
// elf/dl-version.c, printed by print_missing_version), which trace mode
// prints too without stopping.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "procforge/ldso.hpp"

namespace procforge::testsupport {

std::vector<std::string> split_lines(const std::string& s);

// The version error is one of the version-check lines, but Prediction does
// not say which (the check prints every line before it exits), so it is kept
// apart and matched anywhere.
struct ExpectedStderr {
  std::vector<std::string> lines;
  std::optional<std::string> version_error;  // also printed, at its place among the version lines
  int exit_code = 0;
};

// For a run of REQ.program (ld.so's _dl_argv[0]); TRACE_MODE: with
// LD_TRACE_LOADED_OBJECTS=1, where a plain "not found" is faked and a
// version error does not stop the run.
ExpectedStderr expected_stderr(const ldso::Prediction& p, const ldso::Request& req, bool trace_mode);

// Only the symbol-version check's lines of expected_stderr() (for a run that
// got that far).
ExpectedStderr expected_version_lines(const ldso::Prediction& p, const ldso::Request& req);

// STDERR against E: the version error line anywhere, the rest in order.
::testing::AssertionResult stderr_matches(const std::string& stderr_text, const ExpectedStderr& e);

}  // namespace procforge::testsupport
