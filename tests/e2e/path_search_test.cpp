// End-to-end tests of PATH search in explain, exec and run: a PROGRAM without
// '/' is the file execvp() settles on. The oracle is env(1), which runs its
// command with execvp(): each case's program is a script that prints its own
// path, so the real search names the file it chose.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "support/ldso_fixtures.hpp"
#include "support/temp_dir_test.hpp"

namespace {

using procforge::testsupport::CommandOptions;
using procforge::testsupport::CommandResult;
using procforge::testsupport::run_command;

struct Layout {
  const char* name;
  // Per directory a, b, c of PATH=a:b:c: what holds "pf-tool" there.
  // 'x' an executable script, 'r' a file without x bits, 'd' a directory,
  // 'n' an executable without a #! line (execvp runs it with /bin/sh), '-' nothing.
  const char* dirs;
  const char* path;  // PATH, with a b c for the directories ("" element: the working directory)
};

void PrintTo(const Layout& l, std::ostream* os) { *os << l.name; }

class PathSearch : public procforge::testing::TempDirTest, public ::testing::WithParamInterface<Layout> {
 protected:
  std::string path_value;

  void SetUp() override {
    TempDirTest::SetUp();
    const Layout& l = GetParam();
    for (int i = 0; i < 3; ++i) {
      const std::string d = dir + "/" + std::string(1, static_cast<char>('a' + i));
      mkdir(d.c_str(), 0755);
      const std::string f = d + "/pf-tool";
      switch (l.dirs[i]) {
        case 'x':
          write(std::string(1, static_cast<char>('a' + i)) + "/pf-tool", "#!/bin/sh\necho \"$0\"\n", 0755);
          break;
        case 'r':
          write(std::string(1, static_cast<char>('a' + i)) + "/pf-tool", "#!/bin/sh\necho \"$0\"\n", 0644);
          break;
        case 'd': mkdir(f.c_str(), 0755); break;
        case 'n': write(std::string(1, static_cast<char>('a' + i)) + "/pf-tool", "echo \"$0\"\n", 0755); break;
        default: break;
      }
    }
    for (const char* c = l.path; *c; ++c)
      path_value += (*c == 'a' || *c == 'b' || *c == 'c') ? dir + "/" + *c : std::string(1, *c);
  }
  CommandResult in_cwd(const std::vector<std::string>& argv) {
    CommandOptions o;
    o.cwd = dir + "/c";  // the working directory: an empty PATH element finds c/pf-tool
    o.env = {"PATH=/usr/bin:/bin"};
    return run_command(argv, o);
  }
};

TEST_P(PathSearch, explain_settles_on_the_file_execvp_runs) {
  const CommandResult real = in_cwd({"/usr/bin/env", "PATH=" + path_value, "pf-tool"});
  const CommandResult pf =
      in_cwd({PROCFORGE_BINARY, "explain", "--json", "--clear-env", "--env", "PATH=" + path_value, "pf-tool"});
  const auto j = nlohmann::json::parse(pf.out);
  const auto& search = j["execve"]["path_search"];
  ASSERT_TRUE(search.is_object()) << pf.out;
  EXPECT_EQ(search["path"], path_value);
  if (real.exit_code == 0) {
    // The script printed the path it was run as.
    EXPECT_EQ(search["found"].get<std::string>() + "\n", real.out) << "execvp ran " << real.out;
    EXPECT_EQ(j["execve"]["result"], "ok");
    EXPECT_EQ(pf.exit_code, 0);
  } else {
    // env(1) exits 127 when execvp fails with ENOENT, 126 otherwise.
    EXPECT_EQ(j["execve"]["errno"], real.exit_code == 127 ? "ENOENT" : "EACCES") << real.err;
    EXPECT_EQ(pf.exit_code, 1);
  }
}

TEST_P(PathSearch, exec_runs_the_file_execvp_runs) {
  const CommandResult real = in_cwd({"/usr/bin/env", "PATH=" + path_value, "pf-tool"});
  const CommandResult pf =
      in_cwd({PROCFORGE_BINARY, "exec", "--clear-env", "--env", "PATH=" + path_value, "--", "pf-tool"});
  if (real.exit_code == 127) {
    EXPECT_EQ(pf.exit_code, 127) << pf.err;
  } else {
    EXPECT_EQ(pf.exit_code, real.exit_code) << pf.err;
    EXPECT_EQ(pf.out, real.out);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, PathSearch,
                         ::testing::Values(Layout{"first_element", "xx-", "a:b"},
                                           Layout{"second_element", "-x-", "a:b"},
                                           Layout{"not_executable_is_passed_over", "rx-", "a:b"},
                                           Layout{"only_not_executable_is_eacces", "r--", "a:b"},
                                           Layout{"a_directory_is_passed_over", "dx-", "a:b"},
                                           Layout{"nowhere_is_enoent", "---", "a:b"},
                                           Layout{"empty_element_is_the_working_directory", "--x", "a::b"},
                                           Layout{"trailing_colon_is_the_working_directory", "--x", "a:"},
                                           Layout{"no_format_is_run_by_sh", "n--", "a:b"},
                                           Layout{"no_format_before_a_script", "nx-", "a:b"}),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(PathSearchCli, no_path_search_asks_the_literal_execve_question) {
  CommandOptions o;
  o.cwd = "/";
  o.env = {"PATH=/usr/bin:/bin"};
  const CommandResult searched = run_command({PROCFORGE_BINARY, "explain", "ls"}, o);
  EXPECT_EQ(searched.exit_code, 0) << searched.out;
  EXPECT_NE(searched.out.find("  found   ls in PATH element /usr/bin (1 of 2)\n"), std::string::npos) << searched.out;
  const CommandResult literal = run_command({PROCFORGE_BINARY, "explain", "--no-path-search", "ls"}, o);
  EXPECT_EQ(literal.exit_code, 1);
  EXPECT_NE(literal.out.find("execve fails with ENOENT"), std::string::npos) << literal.out;
}

}  // namespace
