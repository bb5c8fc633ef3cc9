// The exec corpus's binfmt_misc entries outlive a run that crashes (the
// table is the user namespace's, not the mount's): the corpus's first use of
// binfmt_misc must unregister such leftovers, and only them. The work runs
// in a forked child with a private mount namespace, so that mounting
// binfmt_misc there changes nothing for the test process.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/exec_corpus.hpp"
#include "support/run_command.hpp"

namespace {

using namespace procforge::testsupport;

const std::string kDir = "/proc/sys/fs/binfmt_misc";

std::string hex(long v) {
  char b[24];
  std::snprintf(b, sizeof b, "%lx", v);
  return b;
}

bool registered(const std::string& name) { return ::access((kDir + "/" + name).c_str(), F_OK) == 0; }

bool write_to(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return static_cast<bool>(f);
}

// A pid at or above pid_max is never a live process: the owner of an entry
// left by a run that crashed.
long dead_pid() {
  long pid_max = 0;
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  return pid_max;
}

TEST(ExecCorpusBinfmt, first_use_unregisters_entries_of_runs_that_are_gone) {
  if (::geteuid() != 0) GTEST_SKIP() << "registering binfmt_misc entries needs root";
  if (::access(kDir.c_str(), F_OK) != 0) GTEST_SKIP() << "the kernel has no binfmt_misc (" << kDir << ")";
  ASSERT_GT(dead_pid(), 0) << "cannot read /proc/sys/kernel/pid_max";
  const ForkResult r = run_forked([](int fd) {
    auto say = [fd](const std::string& line) { return ::write(fd, line.data(), line.size()) < 0 ? 1 : 0; };
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return say("setup: no private mount namespace\n") + 2;
    if (::access((kDir + "/register").c_str(), F_OK) != 0 &&
        ::mount("binfmt_misc", kDir.c_str(), "binfmt_misc", 0, nullptr) != 0)
      return say("setup: cannot mount binfmt_misc\n") + 2;
    // One entry of a crashed run, one of a run still going (this child; the
    // corpus names its own a, p, m and e).
    const std::string stale = std::string(kBinfmtPrefix) + "z_" + hex(dead_pid());
    const std::string live = std::string(kBinfmtPrefix) + "z_" + hex(::getpid());
    for (const auto& name : {stale, live})
      if (!write_to(kDir + "/register", ":" + name + ":E::" + name + "::/nonexistent/interp:"))
        return say("setup: cannot register " + name + "\n") + 2;
    Unavailable why;
    const bool set_up = SharedEnv::get().binfmt(&why) != nullptr;
    std::string facts = "corpus: " + (set_up ? std::string("registered") : why.why) + "\n";
    facts += std::string("stale: ") + (registered(stale) ? "registered" : "gone") + "\n";
    facts += std::string("live: ") + (registered(live) ? "registered" : "gone") + "\n";
    write_to(kDir + "/" + live, "-1");
    SharedEnv::get().teardown();
    return say(facts);
  });
  ASSERT_TRUE(r.started);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("corpus: registered\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stale: gone\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("live: registered\n"), std::string::npos) << "another run's entries must stay\n" << r.out;
}

}  // namespace
