// A user-space exec run by the spawn layer skips what the spawn child already
// did: with close_other_fds it asks about 0-2 and the kept fds instead of
// listing /proc/self/fd. Checked against the kernel: the same spawn with
// execve, then with the user exec, and probe_state's fd list compared; with
// close_other_fds off the /proc/self/fd scan runs, and must agree too. Also
// the signal mask, which the stub reinstalls last.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "procforge/loader.hpp"
#include "procforge/spawn.hpp"
#include "support/temp_dir_test.hpp"

namespace procforge {
namespace {

using namespace std::chrono_literals;

// One line of probe_state's report ("fds=0,1,2", "sigmask=0x0").
std::string line_of(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + "=", 0) == 0) return line;
  return "no " + key + " line in " + path;
}

class LoaderSpawn : public testing::TempDirTest {
 protected:
  // probe_state's `key` line after a spawn with execve or (user) the user-space exec.
  std::string seen(bool user, const std::string& key, const spawn::Options& base) {
    const std::string probe = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
    spawn::Options o = base;
    o.path = probe;
    o.argv = {"probe_state"};
    o.stdout_.kind = spawn::Stdio::Kind::file;
    o.stdout_.path = dir + (user ? "/user.out" : "/kernel.out");
    std::optional<loader::Prepared> prepared;
    if (user) {
      loader::Options lo;
      lo.request.path = probe;
      lo.request.argv = o.argv;
      for (char** e = environ; *e; ++e) lo.request.envp.emplace_back(*e);
      lo.for_child = true;
      lo.descriptor_floor = 9;  // above the fd actions' targets (7, 8)
      auto p = loader::prepare(lo);
      if (!p) return "prepare: " + p.error().message;
      prepared.emplace(std::move(*p));
      prepared->attach_to(o);
    }
    auto c = spawn::spawn(o);
    if (!c) return "spawn: " + c.error().message;
    auto e = c->wait(20s);
    if (!e || e->shell_status() != 0) return "probe_state did not exit 0";
    return line_of(o.stdout_.path, key);
  }
};

TEST_F(LoaderSpawn, close_on_exec_after_spawn_closes_what_execve_closes) {
  // fd 0 close-on-exec: inherited as it is, so only exec closes it.
  const int saved0 = dup(0);
  ASSERT_GE(saved0, 0);
  const int null = open("/dev/null", O_RDONLY);
  ASSERT_GE(null, 0);
  ASSERT_EQ(dup3(null, 0, O_CLOEXEC), 0);
  // Two fds above 2, one close-on-exec and one not, each kept by spawn
  // (keep_fds clears close-on-exec) and each left to the default.
  // At 20 and up: clear of the fd actions' targets (7, 8) below.
  const int cloexec = fcntl(null, F_DUPFD_CLOEXEC, 20);
  const int plain = fcntl(null, F_DUPFD, 20);
  ASSERT_GE(cloexec, 0);
  ASSERT_GE(plain, 0);

  for (bool close_others : {true, false}) {
    for (const auto& keep : {std::vector<int>{}, std::vector<int>{cloexec, plain}}) {
      spawn::Options o;
      o.keep_fds = keep;
      o.close_other_fds = close_others;
      // Targets above 2 are kept too: a file opened onto 7, and onto 8 a
      // copy of the close-on-exec fd (dup2 clears the flag).
      spawn::FdAction onto7, onto8;
      onto7.kind = spawn::FdAction::Kind::open;
      onto7.fd = 7;
      onto7.path = "/dev/null";
      onto8.kind = spawn::FdAction::Kind::dup2;
      onto8.fd = 8;
      onto8.source = cloexec;
      o.fd_actions = {onto7, onto8};
      const std::string kernel = seen(false, "fds", o);
      const std::string user = seen(true, "fds", o);
      SCOPED_TRACE("close_other_fds " + std::to_string(close_others) + ", keep " + std::to_string(keep.size()));
      EXPECT_EQ(user, kernel);
      const std::string listed = kernel.substr(kernel.find('=') + 1) + ",";
      EXPECT_NE(listed.rfind("0,", 0), 0u) << kernel;  // fd 0 went with the exec
      const bool plain_open = !keep.empty() || !close_others;
      EXPECT_EQ(("," + listed).find("," + std::to_string(plain) + ",") != std::string::npos, plain_open) << kernel;
      EXPECT_NE(("," + listed).find(",7,8,"), std::string::npos) << kernel;
    }
  }
  dup2(saved0, 0);
  close(saved0);
  close(null);
  close(cloexec);
  close(plain);
}

// A user-space exec's own files must survive the fd actions: spawn refuses
// to keep an fd that an action also targets, instead of mapping the wrong file.
TEST_F(LoaderSpawn, a_kept_fd_that_an_action_targets_is_refused) {
  loader::Options lo;
  lo.request.path = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
  lo.request.argv = {"probe_state"};
  lo.for_child = true;
  auto p = loader::prepare(lo);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_FALSE(p->descriptors().empty());
  spawn::Options o;
  o.path = lo.request.path;
  o.argv = lo.request.argv;
  p->attach_to(o);
  spawn::FdAction over;
  over.kind = spawn::FdAction::Kind::open;
  over.fd = p->descriptors().front();
  over.path = "/dev/null";
  o.fd_actions = {over};
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, EINVAL);
  EXPECT_NE(c.error().message.find("descriptor_floor"), std::string::npos) << c.error().message;
}

// The stub reinstalls the mask enter() found: the empty one from a constant
// word, any other from the region. Both must reach the program.
TEST_F(LoaderSpawn, the_program_starts_with_the_signal_mask_execve_leaves) {
  for (const auto& blocked : {std::vector<int>{}, std::vector<int>{SIGUSR1, SIGTERM, SIGRTMIN + 3}}) {
    spawn::Options o;
    sigset_t set;
    sigemptyset(&set);
    for (int sig : blocked) sigaddset(&set, sig);
    o.signal_mask = set;
    const std::string kernel = seen(false, "sigmask", o);
    EXPECT_EQ(seen(true, "sigmask", o), kernel);
    EXPECT_EQ(kernel == "sigmask=0x0", blocked.empty()) << kernel;
  }
}

}  // namespace
}  // namespace procforge
