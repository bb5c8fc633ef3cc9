// execvp's candidate list (exec::path_candidates()), the one every PATH
// search in procforge walks: spawn's child, the exec model, profile. The
// rules are glibc's posix/execvpe.c __execvpe_common().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "procforge/environment.hpp"
#include "procforge/exec.hpp"

namespace procforge {
namespace {

using Candidates = std::vector<std::string>;

TEST(PathCandidates, without_path_execvp_searches_confstr_cs_path) {
  const auto s = exec::path_candidates("ls", std::vector<std::string>{"HOME=/root"});
  EXPECT_EQ(s.path_value, "/bin:/usr/bin");
  EXPECT_EQ(s.candidates, (Candidates{"/bin/ls", "/usr/bin/ls"}));
}

TEST(PathCandidates, an_empty_element_is_the_name_alone_in_the_current_directory) {
  EXPECT_EQ(exec::path_candidates("ls", ":/bin:"), (Candidates{"ls", "/bin/ls", "ls"}));
  EXPECT_EQ(exec::path_candidates("ls", ""), (Candidates{"ls"}));
}

TEST(PathCandidates, an_empty_path_is_searched_not_replaced_by_the_default) {
  const auto s = exec::path_candidates("ls", std::vector<std::string>{"PATH="});
  EXPECT_EQ(s.candidates, (Candidates{"ls"}));
}

TEST(PathCandidates, the_first_path_entry_wins_as_getenv_finds_it) {
  const auto s = exec::path_candidates("ls", std::vector<std::string>{"PATHX=/x", "PATH=/a/", "PATH=/b"});
  EXPECT_EQ(s.candidates, (Candidates{"/a/ls"}));
}

TEST(PathCandidates, a_name_with_a_slash_is_not_searched) {
  EXPECT_EQ(exec::path_candidates("./ls", "/bin"), (Candidates{"./ls"}));
  EXPECT_TRUE(exec::path_candidates("./ls", std::vector<std::string>{"PATH=/bin"}).path_value.empty());
}

TEST(EnvironmentEdits, unset_then_set_replacing_the_key_in_place_of_its_entries) {
  const std::vector<std::string> base{"A=1", "B=2", "A=3", "C"};
  std::vector<std::string_view> env(base.begin(), base.end());
  // The edited views point into SET's strings: they must outlive ENV.
  const std::vector<std::string> unset{"C"}, set{"A=9", "D=4"};
  ASSERT_TRUE(env::apply_edits(env, unset, set).ok());
  EXPECT_EQ(std::vector<std::string>(env.begin(), env.end()), (Candidates{"B=2", "A=9", "D=4"}));
}

TEST(EnvironmentEdits, a_set_entry_that_is_not_key_value_is_einval) {
  std::vector<std::string_view> env;
  for (const std::string bad : {"NOEQUALS", "=value"}) {
    auto st = env::apply_edits(env, {}, {bad});
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().err, EINVAL);
  }
}

}  // namespace
}  // namespace procforge
