// prepare()'s bookkeeping that the differential tests do not see directly:
// the stub region a destroyed Prepared leaves is taken by the next prepare()
// (same address, and the program exec'd from it still runs as from a fresh
// one), and the steps in words are made only for someone who reads them.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <fstream>
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

// The stub's page is never writable and executable at once: rw- in the
// process that prepared it, r-x only in the one that runs it (enter()).
TEST(LoaderRegion, the_stub_page_is_executable_only_in_the_process_that_runs_it) {
  auto p = prepare(probe_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  const std::string at = stub_address(*p);
  ASSERT_FALSE(at.empty());
  std::ifstream maps("/proc/self/maps");
  std::string line, perms;
  while (std::getline(maps, line))
    if (line.rfind(at.substr(2) + "-", 0) == 0) perms = line.substr(line.find(' ') + 1, 4);
  EXPECT_EQ(perms, "rw-p") << "the stub page at " << at << " in the preparing process";
  int status = 0;
  EXPECT_NE(run_in_child(*p, &status).find("argv[1]=reused\n"), std::string::npos);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

// Where this process may not make memory executable (here a seccomp filter
// refuses mprotect with PROT_EXEC, as SELinux execmem or PaX would), a new
// region makes prepare() fail with that errno; a region taken again (checked
// when it was new) fails in enter(), which then dies with SIGSEGV. In a
// child, so that the filter stays there.
TEST(LoaderRegion, a_process_that_may_not_make_memory_executable_gets_an_error) {
  const pid_t pid = fork();
  if (pid == 0) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    // A spare region, checked before the filter, for the second half.
    { auto warm = prepare(probe_options()); }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      _exit(10);
    auto reused = prepare(probe_options());  // takes the spare: no check
    if (!reused.ok()) _exit(11);
    auto fresh = prepare(probe_options());  // a new region: checked, refused
    if (fresh.ok() || fresh.error().err != EACCES) _exit(12);
    if (fresh.error().message.find("making the stub executable") == std::string::npos) _exit(13);
    int status = 0;
    run_in_child(*reused, &status);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: no seccomp; 11: prepare on the spare failed; 12/13: the new region "
         "was not refused with EACCES and a message; 14: enter() did not die with SIGSEGV";
}

// The documented difference: the kernel executes a file its caller may only
// execute; a user-space exec must read what it maps, so a caller without
// read permission gets EACCES from prepare(), before anything is spawned.
// (procforge run --uid prepares as the invoking user and drops the identity
// last, which is how the exec corpus runs such files.) In a child that takes
// uid and gid 65534; needs root to switch.
TEST(LoaderRegion, a_caller_that_may_only_execute_the_file_gets_eacces) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  char dir[] = "/tmp/procforge-exec-only-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  chmod(dir, 0755);
  const std::string copy = std::string(dir) + "/probe";
  {
    std::ifstream in(std::string(PROCFORGE_PROBE_DIR) + "/probe_args", std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  }
  ASSERT_EQ(chmod(copy.c_str(), 0711), 0);  // root's file: others may execute, not read
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
      _exit(10);
    if (access(copy.c_str(), X_OK) != 0 || access(copy.c_str(), R_OK) == 0) _exit(11);  // the premise
    Options o = probe_options();
    o.request.path = copy;
    o.request.creds = exec::Credentials::current();
    auto p = prepare(o);
    if (p.ok()) _exit(12);
    if (p.error().err != EACCES) _exit(13);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  unlink(copy.c_str());
  rmdir(dir);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: could not switch identity; 11: the file is not execute-only for "
                                       "65534; 12: prepare() succeeded; 13: another errno";
}

int open_fds() {
  int n = 0;
  for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) >= 0;
  return n;
}

TEST(LoaderRegion, a_prepared_assigned_over_gives_back_its_files) {
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
