// A test fixture with a fresh directory of its own (removed afterwards) and a
// helper to write files into it with a given mode.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace procforge::testing {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/procforge-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir = tmpl;
    chmod(dir.c_str(), 0755);  // other users (nobody) may traverse it
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    std::string p = dir + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    chmod(p.c_str(), mode);
    return p;
  }

  std::string dir;
};

}  // namespace procforge::testing
