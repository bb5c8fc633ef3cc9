// profile's refusals and abnormal programs: each must give a clear error or a
// note, never hang, and leave no child behind (every test ends by checking
// that this process has no unreaped child).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "procforge/profile.hpp"
#include "support/run_command.hpp"

namespace {

namespace fs = std::filesystem;
using namespace procforge::profile;

Options quick(std::vector<std::string> argv) {
  Options o;
  o.argv = std::move(argv);
  o.runs = 1;
  o.warmup = 0;
  o.untraced = false;
  o.audit_module = find_audit_module(PROCFORGE_BUILD_DIR);
  o.timeout = std::chrono::milliseconds(10000);
  return o;
}

void expect_no_children() {
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG | __WALL), -1);
  EXPECT_EQ(errno, ECHILD) << "a child was left behind";
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("procforge-profile-" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

TEST(ProfileErrors, missing_program_gives_enoent) {
  auto r = profile(quick({"/nonexistent/procforge-no-such-program"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_NE(r.error().message.find("/nonexistent/procforge-no-such-program"), std::string::npos);
  expect_no_children();
}

TEST(ProfileErrors, command_not_in_path_says_so) {
  auto r = profile(quick({"procforge-no-such-command-xyz"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_NE(r.error().message.find("not found in PATH"), std::string::npos) << r.error().message;
}

TEST(ProfileErrors, missing_library_is_a_program_that_fails_to_start) {
  // /bin/true with its DT_NEEDED libc.so.6 renamed: ld.so exits 127.
  std::ifstream in("/bin/true", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string from("libc.so.6\0", 10), to("libQ.so.6\0", 10);
  for (std::size_t p = bytes.find(from); p != std::string::npos; p = bytes.find(from, p)) bytes.replace(p, 10, to);
  fs::path exe = temp_dir() / "true-missing-lib";
  std::ofstream(exe, std::ios::binary) << bytes;
  fs::permissions(exe, fs::perms::owner_all);
  auto r = profile(quick({exe.string()}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("did not start"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("status 127"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("libQ.so.6"), std::string::npos)
      << "ld.so's message is quoted: " << r.error().message;
  fs::remove(exe);
  expect_no_children();
}

TEST(ProfileErrors, killed_program_is_reported_with_its_signal_and_phase) {
  auto r = profile(quick({"/bin/sh", "-c", "kill -9 $$"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->traced.size(), 1u);
  EXPECT_EQ(r->traced[0].end, RunEnd::killed);
  EXPECT_EQ(r->traced[0].status, SIGKILL);
  bool noted = false;
  for (const auto& n : r->notes) noted |= n.find("SIGKILL during main") != std::string::npos;
  EXPECT_TRUE(noted);
  expect_no_children();
}

TEST(ProfileErrors, forking_program_is_profiled_and_children_are_noted) {
  auto r = profile(quick({"/bin/sh", "-c", "/bin/true; /bin/true"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  bool noted = false;
  for (const auto& n : r->notes) noted |= n.find("children are not traced") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_GT(r->traced[0].child_minflt, 0);
  expect_no_children();
}

TEST(ProfileErrors, timeout_kills_and_reaps_the_tracee) {
  Options o = quick({"/bin/sleep", "30"});
  o.timeout = std::chrono::milliseconds(300);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = profile(o);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ETIMEDOUT);
  EXPECT_NE(r.error().message.find("killed pid"), std::string::npos) << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(5));
  expect_no_children();
}

TEST(ProfileErrors, ptrace_not_permitted_gives_a_sentence) {
  // A child installs a seccomp filter that answers ptrace with EPERM (as a
  // container policy would), then profiles; it reports through a pipe.
  const procforge::testsupport::ForkResult child = procforge::testsupport::run_forked([](int fd) {
    sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(f)), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) return 3;
    auto r = profile(quick({"/bin/true"}));
    std::string msg = r.ok() ? "OK" : r.error().message;
    (void)!write(fd, msg.data(), msg.size());
    return 0;
  });
  ASSERT_TRUE(child.exit_code == 0) << "could not install the seccomp filter";
  const std::string& msg = child.out;
  EXPECT_NE(msg.find("ptrace(PTRACE_TRACEME): EPERM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not permitted"), std::string::npos) << msg;
  expect_no_children();
}

TEST(ProfileErrors, script_shows_its_step_and_profiles_the_interpreter) {
  fs::path script = temp_dir() / "hello.sh";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  fs::permissions(script, fs::perms::owner_all);
  auto r = profile(quick({script.string()}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->chain.size(), 2u);
  EXPECT_NE(r->chain[0].find("#! /bin/sh"), std::string::npos) << r->chain[0];
  EXPECT_EQ(r->image, fs::canonical("/bin/sh").string());
  EXPECT_TRUE(r->phases[static_cast<int>(Phase::main)].present);
  fs::remove(script);
}

TEST(ProfileErrors, static_program_has_no_loader_phases) {
  if (!fs::exists("/sbin/ldconfig")) GTEST_SKIP() << "no static /sbin/ldconfig on this system";
  auto r = profile(quick({"/sbin/ldconfig", "--version"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind.rfind("static", 0), 0u) << r->kind;
  EXPECT_FALSE(r->phases[static_cast<int>(Phase::load_relocate)].present);
  EXPECT_FALSE(r->phases[static_cast<int>(Phase::load_relocate)].merged_into.empty());
  EXPECT_TRUE(r->phases[static_cast<int>(Phase::exec)].present);
  EXPECT_TRUE(r->libraries.empty());
}

}  // namespace
