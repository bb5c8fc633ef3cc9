// What a test needs from the machine beyond the build: programs it runs as
// an oracle or reads as a subject, and a system big enough for a sweep.
// None of these programs is Essential on Debian, and a lean machine (a slim
// container) has few files: a test that needs more than the machine has
// skips, saying what is missing. scripts/bootstrap installs every program,
// so on CI none of these skips happens, and tests/skip_bounds.tsv allows
// none: scripts/check_skips shows them and fails a run that has them. A
// program that is there but fails is still the test's failure.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <initializer_list>
#include <string>

namespace procforge::testsupport {

// "" when every program is installed, else which are not and their packages.
std::string missing_programs(std::initializer_list<const char*> paths);

// Regular files (not symlinks) in dirs, descending into subdirectories when
// recursive: the most a sweep over them can find.
std::size_t regular_files_in(std::initializer_list<const char*> dirs, bool recursive);

}  // namespace procforge::testsupport

// GTEST_SKIP()s the test unless every program named is installed.
#define SKIP_UNLESS_INSTALLED(...)                                                          \
  do {                                                                                      \
    const std::string missing_ = ::procforge::testsupport::missing_programs({__VA_ARGS__}); \
    if (!missing_.empty()) GTEST_SKIP() << missing_;                                        \
  } while (0)

// GTEST_SKIP()s a sweep that wants more than `wanted` files when the machine
// has no more than that many in dirs, so could not pass however right the
// code is. With more files there, the sweep's own bound still holds.
#define SKIP_IF_TOO_FEW_FILES(wanted, recursive, ...)                                                           \
  do {                                                                                                          \
    const std::size_t there_ = ::procforge::testsupport::regular_files_in({__VA_ARGS__}, recursive);            \
    if (there_ <= (wanted))                                                                                     \
      GTEST_SKIP() << "only " << there_ << " regular files under " << #__VA_ARGS__ << ": the sweep wants more " \
                   << "than " << (wanted) << ", a lean machine cannot give them";                               \
  } while (0)
