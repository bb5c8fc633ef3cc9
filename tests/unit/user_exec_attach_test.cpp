// user_exec::attach(): a spawn that ends in a user-space exec gives its
// program what the same spawn with execve() gives it. The kernel decides:
// each case runs once through execve and once through attach(), and
// probe_state's report of its argv and environment is compared.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "procforge/spawn.hpp"
#include "procforge/user_exec.hpp"
#include "support/temp_dir_test.hpp"

namespace procforge {
namespace {

using namespace std::chrono_literals;

class UserExecAttach : public testing::TempDirTest {
 protected:
  // probe_state's argv and environment lines after spawning with `base`,
  // through execve or (user) the user-space exec.
  std::string seen(bool user, spawn::Options o) {
    o.stdout_.kind = spawn::Stdio::Kind::file;
    o.stdout_.path = dir + (user ? "/user.out" : "/kernel.out");
    std::optional<user_exec::Attached> attached;
    if (user) {
      attached = user_exec::attach(o);
      if (!attached->prepared) return "attach: " + attached->prepared.error().message;
    }
    auto c = spawn::spawn(o);
    if (!c) return "spawn: " + c.error().message;
    auto e = c->wait(20s);
    if (!e || e->shell_status() != 0) return "probe_state did not exit 0";
    std::ifstream in(o.stdout_.path);
    std::string line, out;
    while (std::getline(in, line))
      for (const char* key : {"argc=", "argv[", "envc=", "env["})
        if (line.rfind(key, 0) == 0) out += line + "\n";
    return out;
  }

  static spawn::Options probe() {
    spawn::Options o;
    o.path = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
    o.argv = {"probe_state"};
    return o;
  }

  // probe_state's spawn, with NAME searched in a PATH of the child's own.
  static spawn::Options searching(const std::string& name, const std::string& path) {
    spawn::Options o = probe();
    o.path = name;
    o.inherit_env = false;
    o.envp = {"PATH=" + path};
    return o;
  }
};

// The kernel path applies --unset to an explicit environment too; the
// hand-off that lived in `procforge run` only merged the --env entries into
// it, so an unset key stayed in the program's environment.
TEST_F(UserExecAttach, unset_applies_to_an_explicit_environment) {
  spawn::Options o = probe();
  o.inherit_env = false;
  o.envp = {"KEEP=1", "DROP=2", "REPLACE=old"};
  o.unset_env = {"DROP"};
  o.set_env = {"REPLACE=new", "ADDED=3"};
  const std::string kernel = seen(false, o);
  EXPECT_EQ(kernel.find("DROP"), std::string::npos) << kernel;
  EXPECT_NE(kernel.find("REPLACE=new"), std::string::npos) << kernel;
  EXPECT_EQ(seen(true, o), kernel);
}

TEST_F(UserExecAttach, the_inherited_environment_is_edited_as_spawn_edits_it) {
  ASSERT_EQ(setenv("PROCFORGE_ATTACH_DROP", "1", 1), 0);
  spawn::Options o = probe();
  o.unset_env = {"PROCFORGE_ATTACH_DROP"};
  o.set_env = {"PROCFORGE_ATTACH_SET=1"};
  const std::string kernel = seen(false, o);
  const std::string user = seen(true, o);
  unsetenv("PROCFORGE_ATTACH_DROP");
  EXPECT_EQ(kernel.find("PROCFORGE_ATTACH_DROP"), std::string::npos) << kernel;
  EXPECT_EQ(user, kernel);
}

// execvp's search, in the PATH of the child's environment, finds the same file.
TEST_F(UserExecAttach, a_name_without_slash_is_searched_in_the_childs_path) {
  const spawn::Options o = searching("probe_state", std::string("/nonexistent:") + PROCFORGE_PROBE_DIR);
  const std::string kernel = seen(false, o);
  EXPECT_NE(kernel.find("argv[0]=probe_state"), std::string::npos) << kernel;
  EXPECT_EQ(seen(true, o), kernel);
}

TEST_F(UserExecAttach, a_program_not_in_path_is_a_failed_search_with_enoent) {
  spawn::Options o = searching("procforge-no-such-program", "/nonexistent");
  auto a = user_exec::attach(o);
  ASSERT_FALSE(a.prepared.ok());
  EXPECT_TRUE(a.search_failed);
  EXPECT_EQ(a.prepared.error().err, ENOENT);
  EXPECT_EQ(o.exec_replacement, nullptr);
}

// The library takes the identity over: the stub sets it, the spawn child
// must not (it would lose the right to set the exe link first).
TEST_F(UserExecAttach, the_identity_moves_from_the_spawn_to_the_stub) {
  spawn::Options o = probe();
  o.uid = getuid();
  o.gid = getgid();
  auto a = user_exec::attach(o);
  ASSERT_TRUE(a.prepared.ok()) << a.prepared.error().message;
  EXPECT_FALSE(o.uid);
  EXPECT_FALSE(o.gid);
  EXPECT_FALSE(o.groups);
  EXPECT_NE(o.exec_replacement, nullptr);
}

}  // namespace
}  // namespace procforge
