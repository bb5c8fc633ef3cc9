// The profiler's facts about a file (profile/image_facts.cpp) are read once
// per file, whatever name it is reached by: every run names the program
// /proc/PID/exe, a new name each time, and reading a large program again
// each run (a Rust program with std's symbols is 4 MiB) was most of the
// tracer's overhead on it.
#include <gtest/gtest.h>

#include <filesystem>

#include "profile/detail.hpp"

namespace {

using procforge::profile::detail::image_facts;

TEST(ProfileImageFacts, a_file_is_read_once_whatever_name_reaches_it) {
  const std::string real = std::filesystem::read_symlink("/proc/self/exe");
  auto by_proc = image_facts("/proc/self/exe");
  auto by_path = image_facts(real);
  ASSERT_TRUE(by_proc && by_path);
  EXPECT_EQ(*by_proc, *by_path);
  EXPECT_EQ((*by_proc)->entry, (*by_path)->entry);
}

}  // namespace
