// prepare()'s bookkeeping that the differential tests do not see directly:
// the stub region a destroyed Prepared leaves is taken by the next prepare()
// (same address, and the program exec'd from it still runs as from a fresh
// one), and the steps in words are made only for someone who reads them.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <regex>
#include <string>

#include "procforge/loader.hpp"

namespace procforge::loader {
namespace {

Options probe_options() {
  Options o;
  o.request.path = std::string(PROCFORGE_PROBE_DIR) + "/probe_args";
  o.request.argv = {"probe_args", "reused"};
  o.request.envp = {"PROBE=1"};
  o.for_child = true;
  return o;
}

// The stub page's address, as differences() names it.
std::string stub_address(const Prepared& p) {
  static const std::regex stays(R"(stays mapped r-x at (0x[0-9a-f]+))");
  for (const auto& d : p.differences()) {
    std::smatch m;
    if (std::regex_search(d, m, stays)) return m[1];
  }
  return "";
}

// Runs enter() in a child with stdout on a pipe; returns what it printed,
// and its wait status through *status.
std::string run_in_child(const Prepared& p, int* status) {
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    p.enter();
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  waitpid(pid, status, 0);
  return text;
}

TEST(LoaderRegion, the_next_prepare_takes_the_region_and_its_exec_still_runs) {
  std::string first_address;
  {
    auto first = prepare(probe_options());
    ASSERT_TRUE(first.ok()) << first.error().message;
    first_address = stub_address(*first);
    ASSERT_FALSE(first_address.empty()) << "differences() no longer names the stub page";
  }
  auto second = prepare(probe_options());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(stub_address(*second), first_address) << "the region of a destroyed Prepared was not reused";

  int status = 0;
  const std::string out = run_in_child(*second, &status);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("argv[1]=reused\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nend\n"), std::string::npos) << out;
}

TEST(LoaderRegion, two_live_prepares_get_two_regions) {
  auto a = prepare(probe_options());
  auto b = prepare(probe_options());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(stub_address(*a), stub_address(*b));
  int status = 0;
  EXPECT_NE(run_in_child(*a, &status).find("argv[1]=reused\n"), std::string::npos);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(run_in_child(*b, &status).find("argv[1]=reused\n"), std::string::npos);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// A region taken again gets its jump slots through /proc/self/mem; where
// that write is refused (here by a seccomp filter on pwrite64, elsewhere by
// proc_mem.force_override=never), the code page is made writable for a
// moment instead, and the exec must run just the same. In a child, so that
// the filter stays there.
TEST(LoaderRegion, a_refused_proc_mem_write_falls_back_to_mprotect) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pwrite64, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(10);
    char c = 0;
    if (pwrite(out[1], &c, 1, 0) >= 0 || errno != EPERM) _exit(11);  // the filter holds
    std::string first_address;
    {
      auto first = prepare(probe_options());
      if (!first.ok()) _exit(12);
      first_address = stub_address(*first);
    }
    auto second = prepare(probe_options());
    if (!second.ok()) _exit(13);
    if (stub_address(*second) != first_address) _exit(14);  // not taken again: nothing tested
    int status = 0;
    const std::string text = run_in_child(*second, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.find("argv[1]=reused\n") == std::string::npos) _exit(15);
    _exit(0);
  }
  close(out[1]);
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: no seccomp; 11: filter not effective; 12/13: prepare failed; "
                                       "14: region not reused; 15: the exec from it failed";
}

int open_fds() {
  int n = 0;
  for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) >= 0;
  return n;
}

TEST(LoaderRegion, a_prepared_assigned_over_gives_back_its_files) {
  // The second of two prepares takes the first one's region and opens the
  // descriptor it keeps for writing the stub's slots: open it before counting.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(prepare(probe_options()).ok());
  const int before = open_fds();
  {
    auto a = prepare(probe_options());
    auto b = prepare(probe_options());
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_GT(open_fds(), before);
    *a = std::move(*b);  // a's own file must be closed here, not leaked
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(LoaderRegion, steps_are_made_only_when_asked_for) {
  auto quiet = prepare(probe_options());
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->steps().empty());

  Options o = probe_options();
  o.record_steps = true;
  auto recorded = prepare(o);
  ASSERT_TRUE(recorded.ok());
  bool entry = false;
  for (const auto& s : recorded->steps()) entry |= s.stage == "entry";
  EXPECT_TRUE(entry) << "no entry step among " << recorded->steps().size();

  int called = 0;
  Options cb = probe_options();
  cb.on_step = [&](const Step&) { ++called; };
  auto watched = prepare(cb);
  ASSERT_TRUE(watched.ok());
  EXPECT_EQ(static_cast<std::size_t>(called), recorded->steps().size());
}

}  // namespace
}  // namespace procforge::loader
