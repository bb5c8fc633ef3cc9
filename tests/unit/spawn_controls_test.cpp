// One test per control of procforge::spawn::Options: each spawns the static
// probe (tests/support/probe_state.c), which reports what the kernel says the
// new process really has, and asserts that the control changed that fact.
// Tests that need root or a kernel feature the machine lacks skip, saying why.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "spawn_test_util.hpp"
#include "support/probe_copy.hpp"
#include "support/run_command.hpp"

namespace {

using namespace spawn_test;
using ps::FdAction;
using ps::Options;
using ps::Stdio;
using ps::Strategy;

#define ASSERT_RAN(r) ASSERT_TRUE((r).ok()) << (r).describe()
#define SKIP_UNLESS_ROOT(what) \
  if (!is_root()) GTEST_SKIP() << what << " needs root (CAP_SETUID/CAP_SYS_ADMIN...); running as uid " << ::geteuid()

std::string octal(unsigned v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0%o", v);
  return buf;
}

std::uint64_t mask_bits(const sigset_t& set) {
  std::uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig)
    if (sigismember(&set, sig) == 1) bits |= std::uint64_t{1} << (sig - 1);
  return bits;
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string fd_target(int fd) {
  char buf[4096];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1);
  return n < 0 ? std::string("?") : std::string(buf, static_cast<std::size_t>(n));
}

int open_file(const std::string& path, int flags = O_RDWR | O_CREAT, mode_t mode = 0644) {
  return ::open(path.c_str(), flags, mode);
}

// An fd number that is certainly not open in this process.
int closed_fd() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(fd);
  return fd + 1000;
}

// Restores a signal's disposition at scope exit.
class SignalGuard {
 public:
  SignalGuard(int sig, void (*handler)(int)) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, &old_);
  }
  ~SignalGuard() { ::sigaction(sig_, &old_, nullptr); }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  int sig_;
  struct sigaction old_ {};
};

// Blocks signals in this thread for the scope.
class MaskGuard {
 public:
  explicit MaskGuard(std::initializer_list<int> sigs) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : sigs) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~MaskGuard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  MaskGuard(const MaskGuard&) = delete;
  MaskGuard& operator=(const MaskGuard&) = delete;

 private:
  sigset_t old_{};
};

void noop_handler(int) {}

// probe_options() for a child that is no longer root (in the parent's user
// namespace) when it calls execve(): the probe is run from a copy any user
// can reach, since the build tree may not be.
Options probe_options_for_anyone() {
  auto o = probe_options();
  std::string why;
  o.path = procforge::testsupport::probe_for_anyone("probe_state", &why);
  if (o.path.empty()) ADD_FAILURE() << why;
  return o;
}

// ---------------------------------------------------------------- argv, env, cwd

TEST(SpawnControls, argv_is_passed_exactly_including_empty_and_odd_bytes) {
  auto o = probe_options({"", "two words", "new\nline", "tab\there"});
  o.argv[0] = "custom-argv0";
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("argc"), "5");
  EXPECT_EQ(r.facts.get("argv[0]"), "custom-argv0");
  EXPECT_EQ(r.facts.get("argv[1]"), "");
  EXPECT_EQ(r.facts.get("argv[2]"), "two words");
  EXPECT_EQ(r.facts.get("argv[3]"), "new\\nline");
  EXPECT_EQ(r.facts.get("argv[4]"), "tab\\x09here");
}

TEST(SpawnControls, empty_argv_defaults_to_path) {
  auto o = probe_options();
  o.argv.clear();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("argc"), "1");
  EXPECT_EQ(r.facts.get("argv[0]"), probe_path());
}

TEST(SpawnControls, explicit_env_replaces_the_parent_environment) {
  ::setenv("PF_TEST_PARENT_ONLY", "1", 1);
  auto o = probe_options();
  o.inherit_env = false;
  o.envp = {"A=1", "B=two words", "EMPTY="};
  auto r = run(o);
  ::unsetenv("PF_TEST_PARENT_ONLY");
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.list("env"), (std::vector<std::string>{"A=1", "B=two words", "EMPTY="}));
  EXPECT_EQ(r.facts.get("envc"), "3");
}

TEST(SpawnControls, empty_explicit_env_gives_no_variables) {
  auto o = probe_options();
  o.inherit_env = false;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("envc"), "0");
}

TEST(SpawnControls, inherited_env_applies_set_and_unset_edits) {
  ::setenv("PF_TEST_KEEP", "kept", 1);
  ::setenv("PF_TEST_OVERRIDE", "old", 1);
  ::setenv("PF_TEST_DROP", "dropped", 1);
  auto o = probe_options();
  o.set_env = {"PF_TEST_NEW=new value", "PF_TEST_OVERRIDE=new"};
  o.unset_env = {"PF_TEST_DROP", "PF_TEST_NEVER_SET"};
  auto r = run(o);
  ::unsetenv("PF_TEST_KEEP");
  ::unsetenv("PF_TEST_OVERRIDE");
  ::unsetenv("PF_TEST_DROP");
  ASSERT_RAN(r);
  auto env = r.facts.list("env");
  auto count = [&](const std::string& prefix) {
    return std::count_if(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
  };
  auto has = [&](const std::string& e) { return std::find(env.begin(), env.end(), e) != env.end(); };
  EXPECT_TRUE(has("PF_TEST_KEEP=kept"));
  EXPECT_TRUE(has("PF_TEST_NEW=new value"));
  EXPECT_TRUE(has("PF_TEST_OVERRIDE=new"));
  EXPECT_EQ(count("PF_TEST_OVERRIDE="), 1) << "an override must replace, not duplicate";
  EXPECT_EQ(count("PF_TEST_DROP="), 0);
  EXPECT_TRUE(has("PATH=" + std::string(::getenv("PATH") ? ::getenv("PATH") : "")));
}

TEST(SpawnControls, cwd_is_changed_before_exec) {
  TempDir dir;
  auto o = probe_options();
  o.cwd = dir.path();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("cwd"), dir.path());
}

TEST(SpawnControls, program_without_slash_is_searched_in_path) {
  std::string old = ::getenv("PATH") ? ::getenv("PATH") : "";
  ::setenv("PATH", (std::string(PROCFORGE_PROBE_DIR) + ":" + old).c_str(), 1);
  auto o = probe_options();
  o.path = "probe_state";
  auto r = run(o);
  auto o2 = o;
  o2.search_path = false;
  o2.cwd = "/";
  auto r2 = run(o2);
  ::setenv("PATH", old.c_str(), 1);
  ASSERT_RAN(r);
  EXPECT_FALSE(r2.spawned) << "search_path=false must not search PATH";
  EXPECT_EQ(r2.err, ENOENT) << r2.error;
}

// ---------------------------------------------------------------- fds

TEST(SpawnControls, dup2_places_parent_fd_on_child_fd_and_clears_cloexec) {
  TempDir dir;
  int a = open_file(dir.file("a"), O_RDWR | O_CREAT | O_CLOEXEC);
  ASSERT_GE(a, 0);
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, 7, a, "", 0, 0644});
  auto r = run(o);
  ::close(a);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[7]"), dir.file("a"));
  EXPECT_EQ(r.facts.get("cloexec[7]"), "0");
  if (a != 7) {
    EXPECT_EQ(r.facts.fds().count(a), 0u) << "the source fd was not kept";
  }
}

TEST(SpawnControls, dup2_onto_itself_clears_cloexec) {
  TempDir dir;
  int a = open_file(dir.file("self"), O_RDWR | O_CREAT | O_CLOEXEC);
  ASSERT_GE(a, 0);
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, a, a, "", 0, 0644});
  auto r = run(o);
  ::close(a);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(a) + "]"), dir.file("self"))
      << "dup2(fd, fd) is a no-op that leaves close-on-exec set: the fd must still reach the child";
  EXPECT_EQ(r.facts.get("cloexec[" + std::to_string(a) + "]"), "0");
}

// "source" is a parent fd: a chain 3->4, 4->3 swaps, it does not collapse
// onto one file as two sequential dup2 calls would.
TEST(SpawnControls, dup2_chain_swaps_two_fds) {
  TempDir dir;
  int a = open_file(dir.file("a"));
  int b = open_file(dir.file("b"));
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Put them on 3 and 4 when those are free, as in the example.
  if (::fcntl(3, F_GETFD) < 0 && ::fcntl(4, F_GETFD) < 0 && a != 3 && a != 4 && b != 3 && b != 4) {
    ::dup2(a, 3);
    ::dup2(b, 4);
    ::close(a);
    ::close(b);
    a = 3;
    b = 4;
  }
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, b, a, "", 0, 0644});
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, a, b, "", 0, 0644});
  auto r = run(o);
  ::close(a);
  ::close(b);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(b) + "]"), dir.file("a")) << "fd " << a << "->" << b;
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(a) + "]"), dir.file("b")) << "fd " << b << "->" << a;
}

TEST(SpawnControls, open_action_creates_file_on_requested_fd) {
  TempDir dir;
  auto o = probe_options();
  o.umask = 022;
  o.fd_actions.push_back(
      FdAction{FdAction::Kind::open, 5, -1, dir.file("created"), O_WRONLY | O_CREAT | O_TRUNC, 0640});
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[5]"), dir.file("created"));
  EXPECT_EQ(std::strtoul(r.facts.get("fdflags[5]").c_str(), nullptr, 8) & O_ACCMODE,
            static_cast<unsigned long>(O_WRONLY));
  EXPECT_EQ(r.facts.get("cloexec[5]"), "0");
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("created").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(SpawnControls, open_action_with_zero_flags_opens_read_only) {
  TempDir dir;
  ::close(open_file(dir.file("ro")));
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::open, 9, -1, dir.file("ro"), 0, 0644});
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[9]"), dir.file("ro"));
  EXPECT_EQ(std::strtoul(r.facts.get("fdflags[9]").c_str(), nullptr, 8) & O_ACCMODE,
            static_cast<unsigned long>(O_RDONLY));
}

TEST(SpawnControls, close_action_closes_a_standard_fd) {
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::close, 2, -1, "", 0, 0644});
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.fds().count(2), 0u) << r.facts.get("fds");
  EXPECT_EQ(r.facts.fds().count(1), 1u);
}

TEST(SpawnControls, close_other_fds_keeps_only_stdio_and_keep_list) {
  TempDir dir;
  int a = open_file(dir.file("a"));                                // inheritable, not kept
  int b = open_file(dir.file("b"));                                // inheritable, kept
  int c = open_file(dir.file("c"), O_RDWR | O_CREAT | O_CLOEXEC);  // close-on-exec, kept
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_GE(c, 0);
  auto o = probe_options();
  o.keep_fds = {b, c};
  auto r = run(o);
  for (int fd : {a, b, c}) ::close(fd);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.fds(), (std::set<int>{0, 1, 2, b, c})) << r.facts.get("fds");
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(b) + "]"), dir.file("b"));
  EXPECT_EQ(r.facts.get("cloexec[" + std::to_string(b) + "]"), "0");
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(c) + "]"), dir.file("c")) << "keep_fds clears close-on-exec";
  EXPECT_EQ(r.facts.get("cloexec[" + std::to_string(c) + "]"), "0");
}

TEST(SpawnControls, close_other_fds_false_leaves_inheritable_fds_open) {
  TempDir dir;
  int a = open_file(dir.file("a"));
  int c = open_file(dir.file("c"), O_RDWR | O_CREAT | O_CLOEXEC);
  auto o = probe_options();
  o.close_other_fds = false;
  auto r = run(o);
  ::close(a);
  ::close(c);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[" + std::to_string(a) + "]"), dir.file("a"));
  EXPECT_EQ(r.facts.fds().count(c), 0u) << "close-on-exec fds still close at exec";
}

// ---------------------------------------------------------------- stdio

TEST(SpawnControls, stdin_null_is_dev_null) {
  auto o = probe_options();
  o.stdin_.kind = Stdio::Kind::null;
  o.stderr_.kind = Stdio::Kind::null;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[0]"), "/dev/null");
  EXPECT_EQ(r.facts.get("fd[2]"), "/dev/null");
}

TEST(SpawnControls, stdout_file_is_created_truncated_and_write_only) {
  TempDir dir;
  std::string path = dir.file("out.txt");
  {
    std::string junk(1 << 20, 'x');
    int fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto o = probe_options();
  o.stdout_.kind = Stdio::Kind::file;
  o.stdout_.path = path;
  auto r = run(o);
  ASSERT_TRUE(r.spawned) << r.error;
  EXPECT_TRUE(r.exit.exited && r.exit.status == 0);
  Facts f = parse_facts(read_text(path));
  ASSERT_TRUE(f.complete()) << f.raw.substr(0, 200);
  EXPECT_EQ(f.get("fd[1]"), path);
  EXPECT_EQ(std::strtoul(f.get("fdflags[1]").c_str(), nullptr, 8) & O_ACCMODE, static_cast<unsigned long>(O_WRONLY));
  EXPECT_EQ(f.raw.find('x' + std::string(10, 'x')), std::string::npos) << "the file was not truncated";
}

TEST(SpawnControls, stdin_file_opens_read_only_by_default) {
  TempDir dir;
  ::close(open_file(dir.file("in")));
  auto o = probe_options();
  o.stdin_.kind = Stdio::Kind::file;
  o.stdin_.path = dir.file("in");
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[0]"), dir.file("in"));
  EXPECT_EQ(std::strtoul(r.facts.get("fdflags[0]").c_str(), nullptr, 8) & O_ACCMODE,
            static_cast<unsigned long>(O_RDONLY));
}

TEST(SpawnControls, stderr_pipe_gives_parent_the_read_end) {
  auto o = probe_options();
  o.stderr_.kind = Stdio::Kind::pipe;
  auto child = ps::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  ASSERT_GE(child->stderr_fd, 0);
  ASSERT_GE(child->stdout_fd, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(child->stderr_fd, &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  std::string text;
  ASSERT_TRUE(read_all(child->stdout_fd, &text));
  auto ex = child->wait(std::chrono::seconds(20));
  ASSERT_TRUE(ex.ok());
  Facts f = parse_facts(text);
  EXPECT_EQ(f.get("fd[2]"), "pipe:[" + std::to_string(st.st_ino) + "]");
  EXPECT_EQ(f.get("cloexec[2]"), "0");
}

TEST(SpawnControls, stdin_fd_passes_a_parent_fd) {
  TempDir dir;
  int a = open_file(dir.file("src"), O_RDONLY | O_CREAT | O_CLOEXEC);
  auto o = probe_options();
  o.stdin_.kind = Stdio::Kind::fd;
  o.stdin_.fd = a;
  auto r = run(o);
  ::close(a);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[0]"), dir.file("src"));
  EXPECT_EQ(r.facts.get("cloexec[0]"), "0");
}

// Stdio sources are parent fds even when they are 0..2 themselves: stdin from
// the parent's stderr and stderr from the parent's stdin is a swap.
TEST(SpawnControls, stdio_from_parent_fds_0_and_2_swaps) {
  TempDir dir;
  int fa = open_file(dir.file("A")), fb = open_file(dir.file("B"));
  int saved0 = ::dup(0), saved2 = ::dup(2);
  ASSERT_GE(saved0, 0);
  ASSERT_GE(saved2, 0);
  ::dup2(fa, 0);
  ::dup2(fb, 2);
  auto o = probe_options();
  o.stdin_.kind = Stdio::Kind::fd;
  o.stdin_.fd = 2;
  o.stderr_.kind = Stdio::Kind::fd;
  o.stderr_.fd = 0;
  auto r = run(o);
  ::dup2(saved0, 0);
  ::dup2(saved2, 2);
  for (int fd : {saved0, saved2, fa, fb}) ::close(fd);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[0]"), dir.file("B"));
  EXPECT_EQ(r.facts.get("fd[2]"), dir.file("A"));
}

TEST(SpawnControls, inherited_stderr_is_the_parents) {
  auto o = probe_options();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("fd[2]"), fd_target(2));
}

// ---------------------------------------------------------------- signals

TEST(SpawnControls, signal_mask_is_reset_by_default) {
  MaskGuard blocked({SIGUSR1, SIGTERM});
  auto r = run(probe_options());
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sigmask"), "0x0");
}

TEST(SpawnControls, signal_mask_is_inherited_when_asked) {
  MaskGuard blocked({SIGUSR1, SIGTERM});
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  auto o = probe_options();
  o.reset_signal_mask = false;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sigmask"), hex(mask_bits(cur)))
      << "the child must get the calling thread's mask, not the all-blocked mask used around clone";
}

TEST(SpawnControls, explicit_signal_mask_is_installed) {
  MaskGuard blocked({SIGUSR1});
  sigset_t want;
  sigemptyset(&want);
  sigaddset(&want, SIGUSR2);
  sigaddset(&want, SIGRTMIN + 2);
  auto o = probe_options();
  o.signal_mask = want;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sigmask"), hex(mask_bits(want)));
}

TEST(SpawnControls, ignored_signal_is_reset_to_default) {
  SignalGuard ign(SIGPIPE, SIG_IGN);
  auto r = run(probe_options());
  ASSERT_RAN(r);
  EXPECT_FALSE(r.facts.has("sig[13]")) << r.facts.get("sig[13]");
}

// Every disposition default in the new program, glibc's internal signals
// (32 SIGCANCEL, 33 SIGSETXID) included. glibc 2.36's posix_spawn child sets
// those two to SIG_IGN (spawni.c: is_internal_signal() -> SIG_IGN) and the
// exec keeps them ignored; the posix_spawn strategy shows that difference.
TEST(SpawnControls, every_disposition_is_default_internal_signals_included) {
  auto r = run(probe_options());
  ASSERT_RAN(r);
  for (int sig = 1; sig <= 64; ++sig) {
    const std::string key = "sig[" + std::to_string(sig) + "]";
    EXPECT_FALSE(r.facts.has(key)) << key << "=" << r.facts.get(key);
  }
  auto o = probe_options();
  o.strategy = Strategy::posix_spawn;
  auto glibc = run(o);
  ASSERT_RAN(glibc);
  std::printf("[ note     ] posix_spawn strategy: sig[32]=%s sig[33]=%s (glibc's internal signals)\n",
              glibc.facts.has("sig[32]") ? glibc.facts.get("sig[32]").c_str() : "default",
              glibc.facts.has("sig[33]") ? glibc.facts.get("sig[33]").c_str() : "default");
}

TEST(SpawnControls, ignored_signal_is_inherited_when_asked) {
  SignalGuard ign(SIGPIPE, SIG_IGN);
  auto o = probe_options();
  o.reset_signal_dispositions = false;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sig[13]"), "ign");
}

TEST(SpawnControls, parent_handler_becomes_default_not_ignore) {
  SignalGuard h(SIGUSR2, noop_handler);
  auto o = probe_options();
  o.reset_signal_dispositions = false;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_FALSE(r.facts.has("sig[12]")) << r.facts.get("sig[12]");
}

TEST(SpawnControls, ignore_signals_sets_sig_ign_after_the_reset) {
  auto o = probe_options();
  o.ignore_signals = {SIGHUP, SIGTERM};
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sig[1]"), "ign");
  EXPECT_EQ(r.facts.get("sig[15]"), "ign");
  EXPECT_FALSE(r.facts.has("sig[2]"));
}

// ---------------------------------------------------------------- session, group, tty, pdeathsig

TEST(SpawnControls, setsid_makes_a_session_and_group_leader) {
  auto o = probe_options();
  o.setsid = true;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sid"), r.facts.get("pid"));
  EXPECT_EQ(r.facts.get("pgid"), r.facts.get("pid"));
  EXPECT_NE(r.facts.num("sid"), ::getsid(0));
}

TEST(SpawnControls, process_group_zero_makes_own_group_in_same_session) {
  auto o = probe_options();
  o.process_group = 0;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("pgid"), r.facts.get("pid"));
  EXPECT_EQ(r.facts.num("sid"), ::getsid(0));
}

TEST(SpawnControls, process_group_joins_an_existing_group) {
  auto leader_opts = probe_options({"--pause"});
  leader_opts.stdout_.kind = Stdio::Kind::null;
  leader_opts.process_group = 0;
  auto leader = ps::spawn(leader_opts);
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  auto o = probe_options();
  o.process_group = leader->pid();
  auto r = run(o);
  ASSERT_TRUE(leader->kill(SIGKILL).ok());
  (void)leader->wait(std::chrono::seconds(10));
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.num("pgid"), leader->pid());
}

TEST(SpawnControls, controlling_tty_is_acquired_after_setsid) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminals: posix_openpt: " << std::strerror(errno);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::string slave = ::ptsname(master);
  struct stat st {};
  ASSERT_EQ(::stat(slave.c_str(), &st), 0);
  auto o = probe_options();
  o.setsid = true;
  o.controlling_tty = slave;
  auto r = run(o);
  ::close(master);
  ASSERT_RAN(r);
  unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
  unsigned long tty_nr = (min & 0xffu) | (maj << 8) | ((min & ~0xffu) << 12);  // new_encode_dev
  EXPECT_EQ(r.facts.get("tty_nr"), std::to_string(tty_nr));
}

TEST(SpawnControls, controlling_tty_without_setsid_is_refused) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminals";
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  auto o = probe_options();
  o.controlling_tty = std::string(::ptsname(master));
  auto r = run(o);
  ::close(master);
  ASSERT_FALSE(r.spawned) << "controlling_tty is documented as 'with setsid'; without it TIOCSCTTY cannot work";
  // TIOCSCTTY from a process that leads no session: EPERM (drivers/tty/tty_jobctrl.c tiocsctty()).
  EXPECT_EQ(r.err, EPERM) << r.error;
  EXPECT_NE(r.error.find("making " + *o.controlling_tty + " the controlling terminal: EPERM"), std::string::npos)
      << r.error;
}

TEST(SpawnControls, pdeathsig_is_set) {
  auto o = probe_options();
  o.pdeathsig = SIGTERM;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("pdeathsig"), std::to_string(SIGTERM));
}

// ---------------------------------------------------------------- rlimits

struct RlimitCase {
  int resource;
  const char* name;
  rlim_t soft, hard;
};

class SpawnRlimit : public ::testing::TestWithParam<RlimitCase> {};

TEST_P(SpawnRlimit, limit_is_set_in_child) {
  const auto& c = GetParam();
  struct rlimit cur {};
  ASSERT_EQ(::getrlimit(c.resource, &cur), 0);
  if (cur.rlim_max != RLIM_INFINITY && c.hard > cur.rlim_max && !has_cap(CAP_SYS_RESOURCE))
    GTEST_SKIP() << "raising the hard limit of " << c.name << " from " << cur.rlim_max << " to " << c.hard
                 << " needs CAP_SYS_RESOURCE, which this process lacks";
  auto o = probe_options();
  o.rlimits.push_back(ps::Rlimit{c.resource, c.soft, c.hard});
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("rlimit[" + std::to_string(c.resource) + "]"),
            std::to_string(c.soft) + "," + std::to_string(c.hard));
}

INSTANTIATE_TEST_SUITE_P(
    EveryResource, SpawnRlimit,
    ::testing::Values(
        RlimitCase{RLIMIT_CPU, "cpu", 1000, 2000}, RlimitCase{RLIMIT_FSIZE, "fsize", 1ull << 30, 1ull << 31},
        RlimitCase{RLIMIT_DATA, "data", 1ull << 30, 1ull << 31},
        RlimitCase{RLIMIT_STACK, "stack", 4ull << 20, 16ull << 20}, RlimitCase{RLIMIT_CORE, "core", 4096, 8192},
        RlimitCase{RLIMIT_RSS, "rss", 1ull << 30, 1ull << 31}, RlimitCase{RLIMIT_NPROC, "nproc", 500, 1000},
        RlimitCase{RLIMIT_NOFILE, "nofile", 64, 128}, RlimitCase{RLIMIT_MEMLOCK, "memlock", 65536, 131072},
        RlimitCase{RLIMIT_AS, "as", 1ull << 30, 1ull << 31}, RlimitCase{RLIMIT_LOCKS, "locks", 100, 200},
        RlimitCase{RLIMIT_SIGPENDING, "sigpending", 100, 200}, RlimitCase{RLIMIT_MSGQUEUE, "msgqueue", 4096, 8192},
        RlimitCase{RLIMIT_NICE, "nice", 5, 10}, RlimitCase{RLIMIT_RTPRIO, "rtprio", 1, 2},
        RlimitCase{RLIMIT_RTTIME, "rttime", 1000000, 2000000}),
    [](const ::testing::TestParamInfo<RlimitCase>& p) { return std::string(p.param.name); });

TEST(SpawnControls, rlimit_infinity_is_passed_as_infinity) {
  struct rlimit cur {};
  ::getrlimit(RLIMIT_CORE, &cur);
  if (cur.rlim_max != RLIM_INFINITY && !has_cap(CAP_SYS_RESOURCE))
    GTEST_SKIP() << "raising RLIMIT_CORE's hard limit to infinity needs CAP_SYS_RESOURCE";
  auto o = probe_options();
  o.rlimits.push_back(ps::Rlimit{RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY});
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("rlimit[4]"), "inf,inf");
}

// ---------------------------------------------------------------- umask, nice, scheduler

TEST(SpawnControls, umask_is_set) {
  auto o = probe_options();
  o.umask = 027;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("umask"), octal(027));
}

TEST(SpawnControls, nice_is_set_absolutely) {
  errno = 0;
  int parent_nice = ::getpriority(PRIO_PROCESS, 0);
  auto o = probe_options();
  o.nice = 7;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("nice"), "7") << "parent nice " << parent_nice;
}

TEST(SpawnControls, sched_batch_is_set) {
  auto o = probe_options();
  o.sched_policy = SCHED_BATCH;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sched"), std::to_string(SCHED_BATCH));
}

TEST(SpawnControls, sched_idle_is_set) {
  auto o = probe_options();
  o.sched_policy = SCHED_IDLE;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("sched"), std::to_string(SCHED_IDLE));
}

// ---------------------------------------------------------------- credentials

// Gives the test process supplementary groups for the scope (root only).
class GroupsGuard {
 public:
  explicit GroupsGuard(std::vector<gid_t> groups) {
    int n = ::getgroups(0, nullptr);
    old_.resize(static_cast<std::size_t>(n > 0 ? n : 0));
    if (n > 0) ::getgroups(n, old_.data());
    ok_ = ::setgroups(groups.size(), groups.data()) == 0;
  }
  ~GroupsGuard() { ::setgroups(old_.size(), old_.data()); }
  GroupsGuard(const GroupsGuard&) = delete;
  GroupsGuard& operator=(const GroupsGuard&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  std::vector<gid_t> old_;
  bool ok_ = false;
};

TEST(SpawnControls, uid_and_gid_set_all_three_ids_and_drop_supplementary_groups) {
  SKIP_UNLESS_ROOT("changing uid/gid");
  GroupsGuard parent_groups({4242, 4343});
  ASSERT_TRUE(parent_groups.ok());
  auto o = probe_options_for_anyone();
  o.uid = 65534;
  o.gid = 65534;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("uid"), "65534,65534,65534");
  EXPECT_EQ(r.facts.get("gid"), "65534,65534,65534");
  EXPECT_EQ(r.facts.get("groups"), "") << "with uid/gid set and no groups, supplementary groups are cleared";
  EXPECT_EQ(r.facts.get("CapEff"), "0000000000000000");
}

TEST(SpawnControls, explicit_groups_are_set) {
  SKIP_UNLESS_ROOT("setgroups");
  auto o = probe_options_for_anyone();
  o.uid = 65534;
  o.gid = 65534;
  o.groups = std::vector<gid_t>{65534, 100};
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("groups"), "100,65534");  // the kernel keeps them sorted
}

TEST(SpawnControls, gid_alone_leaves_uid_unchanged) {
  SKIP_UNLESS_ROOT("setgid");
  auto o = probe_options();
  o.gid = 100;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("gid"), "100,100,100");
  std::string u = std::to_string(::getuid());
  EXPECT_EQ(r.facts.get("uid"), u + "," + u + "," + u);
}

TEST(SpawnControls, capability_bounding_set_keeps_only_listed) {
  SKIP_UNLESS_ROOT("dropping from the bounding set (CAP_SETPCAP)");
  auto o = probe_options();
  o.capability_bounding = std::vector<int>{CAP_KILL, CAP_NET_BIND_SERVICE};
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("CapBnd"), "0000000000000420");
  EXPECT_EQ(r.facts.get("CapEff"), "0000000000000420")
      << "root's effective set after exec is limited by the bounding set";
}

TEST(SpawnControls, ambient_capability_survives_switch_to_non_root) {
  SKIP_UNLESS_ROOT("ambient capabilities with a uid change");
  auto o = probe_options();
  o.uid = 65534;
  o.gid = 65534;
  o.ambient_capabilities = {CAP_NET_BIND_SERVICE};
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("uid"), "65534,65534,65534");
  EXPECT_EQ(r.facts.get("CapAmb"), "0000000000000400");
  EXPECT_EQ(r.facts.get("CapEff"), "0000000000000400");
  EXPECT_EQ(r.facts.get("CapPrm"), "0000000000000400");
}

TEST(SpawnControls, no_new_privs_is_set) {
  auto o = probe_options();
  o.no_new_privs = true;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("NoNewPrivs"), "1");
}

TEST(SpawnControls, no_new_privs_is_off_by_default) {
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) GTEST_SKIP() << "this process already has no_new_privs";
  auto r = run(probe_options());
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("NoNewPrivs"), "0");
}

std::vector<std::uint64_t> pack(const std::vector<sock_filter>& prog) {
  std::vector<std::uint64_t> words(prog.size());
  static_assert(sizeof(sock_filter) == sizeof(std::uint64_t));
  std::memcpy(words.data(), prog.data(), prog.size() * sizeof(sock_filter));
  return words;
}

// x86_64 only; any other arch (x32/i386 entry) is allowed untouched.
std::vector<std::uint64_t> filter_for_getppid(std::uint32_t action) {
  return pack({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  });
}

TEST(SpawnControls, seccomp_filter_makes_getppid_fail_with_eperm) {
  auto o = probe_options();
  o.no_new_privs = true;  // lets the test run unprivileged too
  o.seccomp_filter = filter_for_getppid(SECCOMP_RET_ERRNO | EPERM);
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("Seccomp"), "2");
  EXPECT_EQ(r.facts.get("ppid"), "!" + std::to_string(EPERM));
  EXPECT_EQ(r.facts.num("pid") > 0, true) << "other syscalls are untouched";
}

TEST(SpawnControls, seccomp_kill_filter_kills_on_the_filtered_syscall) {
  auto o = probe_options();
  o.no_new_privs = true;
  o.seccomp_filter = filter_for_getppid(SECCOMP_RET_KILL_PROCESS);
  auto r = run(o);
  ASSERT_TRUE(r.spawned) << r.error << " (the filter is installed last, so execve itself must pass)";
  EXPECT_FALSE(r.exit.exited);
  EXPECT_EQ(r.exit.status, SIGSYS);
}

// ---------------------------------------------------------------- namespaces

struct NsCase {
  int flag;
  const char* name;
};

class SpawnNamespace : public ::testing::TestWithParam<NsCase> {};

TEST_P(SpawnNamespace, child_is_in_a_new_namespace) {
  const auto& c = GetParam();
  if (own_ns(c.name)[0] == '!') GTEST_SKIP() << "the kernel has no " << c.name << " namespaces";
  if (!is_root() && c.flag != CLONE_NEWUSER) GTEST_SKIP() << "a " << c.name << " namespace needs CAP_SYS_ADMIN";
  auto o = probe_options();
  o.namespaces = c.flag;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_NE(r.facts.get(std::string("ns.") + c.name), own_ns(c.name));
  EXPECT_EQ(r.facts.get("ns.net") == own_ns("net"), c.flag != CLONE_NEWNET) << "only the requested namespace changes";
}

INSTANTIATE_TEST_SUITE_P(Every, SpawnNamespace,
                         ::testing::Values(NsCase{CLONE_NEWUSER, "user"}, NsCase{CLONE_NEWPID, "pid"},
                                           NsCase{CLONE_NEWNS, "mnt"}, NsCase{CLONE_NEWNET, "net"},
                                           NsCase{CLONE_NEWUTS, "uts"}, NsCase{CLONE_NEWIPC, "ipc"},
                                           NsCase{CLONE_NEWCGROUP, "cgroup"}, NsCase{CLONE_NEWTIME, "time"}),
                         [](const ::testing::TestParamInfo<NsCase>& p) { return std::string(p.param.name); });

TEST(SpawnControls, user_namespace_maps_root_inside_to_current_ids) {
  auto o = probe_options();
  o.namespaces = CLONE_NEWUSER;
  auto r = run(o);
  if (!r.spawned && r.err == EPERM && !is_root()) GTEST_SKIP() << "unprivileged user namespaces are disabled";
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("uid"), "0,0,0");
  EXPECT_EQ(r.facts.get("gid"), "0,0,0");
  EXPECT_EQ(r.facts.get("uid_map[0]"), "0 " + std::to_string(::geteuid()) + " 1");
  EXPECT_EQ(r.facts.get("gid_map[0]"), "0 " + std::to_string(::getegid()) + " 1");
}

TEST(SpawnControls, user_namespace_uses_explicit_maps) {
  SKIP_UNLESS_ROOT("mapping ids other than one's own");
  auto o = probe_options_for_anyone();
  o.namespaces = CLONE_NEWUSER;
  o.uid_map = {ps::IdMap{0, 100000, 1000}};
  o.gid_map = {ps::IdMap{0, 200000, 10}};
  o.uid = 0;  // ids inside the new namespace: become its root
  o.gid = 0;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("uid_map[0]"), "0 100000 1000");
  EXPECT_EQ(r.facts.get("gid_map[0]"), "0 200000 10");
  EXPECT_EQ(r.facts.get("uid"), "0,0,0");
  EXPECT_EQ(r.facts.get("gid"), "0,0,0");
}

// Id maps the kernel refuses (overlapping ranges: EINVAL from map_write())
// fail the spawn with the file and errno; the waiting child sees EOF on its
// sync pipe and gives up: neither side waits for ever.
TEST(SpawnControls, user_namespace_maps_the_kernel_refuses_fail_without_hanging) {
  auto o = probe_options();
  o.namespaces = CLONE_NEWUSER;
  o.uid_map = {ps::IdMap{0, ::geteuid(), 1}, ps::IdMap{0, ::geteuid(), 1}};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run(o);
  if (!r.spawned && r.err == EPERM && !is_root()) GTEST_SKIP() << "unprivileged user namespaces are disabled";
  EXPECT_FALSE(r.spawned);
  EXPECT_EQ(r.err, EINVAL) << r.describe();
  EXPECT_NE(r.describe().find("uid_map"), std::string::npos) << r.describe();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(SpawnControls, pid_namespace_with_mount_namespace_gives_pid_1_and_fresh_proc) {
  SKIP_UNLESS_ROOT("pid and mount namespaces");
  auto o = probe_options();
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("pid"), "1");
  EXPECT_EQ(r.facts.get("ppid"), "0");
  EXPECT_EQ(r.facts.get("proc_pids"), "1") << "a fresh /proc shows only the new namespace's pids";
  EXPECT_NE(r.facts.get("ns.mnt"), own_ns("mnt"));
}

TEST(SpawnControls, pid_namespace_without_mount_proc_keeps_host_proc) {
  SKIP_UNLESS_ROOT("pid and mount namespaces");
  auto o = probe_options();
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS;
  o.mount_proc = false;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("pid"), "1");
  EXPECT_GT(r.facts.num("proc_pids"), 1);
}

TEST(SpawnControls, uts_namespace_sets_hostname_without_touching_the_parents) {
  SKIP_UNLESS_ROOT("a uts namespace");
  utsname before{};
  ::uname(&before);
  auto o = probe_options();
  o.namespaces = CLONE_NEWUTS;
  o.hostname = "pf-probe-host";
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("hostname"), "pf-probe-host");
  utsname after{};
  ::uname(&after);
  EXPECT_STREQ(after.nodename, before.nodename);
}

TEST(SpawnControls, cgroup_namespace_makes_current_cgroups_the_root) {
  SKIP_UNLESS_ROOT("a cgroup namespace");
  auto o = probe_options();
  o.namespaces = CLONE_NEWCGROUP;
  auto r = run(o);
  ASSERT_RAN(r);
  auto lines = r.facts.list("cgroup");
  ASSERT_FALSE(lines.empty());
  for (const auto& l : lines) EXPECT_EQ(l.substr(l.size() - 2), ":/") << l;
}

// ---------------------------------------------------------------- cgroups

TEST(SpawnCgroup, cgroup2_directory_is_created_and_child_is_born_in_it) {
  SKIP_UNLESS_ROOT("creating cgroups");
  std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount";
  const std::string parent_controllers = read_text(mount + "/cgroup.subtree_control");
  OwnCgroup cg(mount, /*create=*/false);  // the library creates it
  ASSERT_FALSE(cg.path().empty());
  auto o = probe_options();
  o.cgroup = cg.path();
  auto r = run(o);
  EXPECT_EQ(read_text(mount + "/cgroup.subtree_control"), parent_controllers)
      << "without limits the spawn must not touch the parent cgroup's controllers";
  ASSERT_RAN(r);
  EXPECT_TRUE(is_dir(cg.path()));
  EXPECT_EQ(cgroup_of(r.facts, ""), cg.name());
  EXPECT_EQ(r.cgroups_created, std::vector<std::string>{cg.path()}) << "the spawn reports the directory it created";
  auto removed = ps::remove_cgroups(r.cgroups_created);
  EXPECT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_FALSE(is_dir(cg.path())) << "remove_cgroups removed it";
  EXPECT_TRUE(ps::remove_cgroups(r.cgroups_created).ok()) << "ENOENT is not an error";
}

TEST(SpawnCgroup, cgroup2_existing_directory_is_used) {
  SKIP_UNLESS_ROOT("creating cgroups");
  std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount";
  OwnCgroup cg(mount, /*create=*/true);
  ASSERT_FALSE(cg.path().empty()) << cg.why();
  auto o = probe_options();
  o.cgroup = cg.path();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(cgroup_of(r.facts, ""), cg.name());
  EXPECT_TRUE(r.cgroups_created.empty()) << "an existing directory was not created by the spawn";
  EXPECT_EQ(r.strategy == Strategy::clone3 || r.strategy == Strategy::clone_vfork || r.strategy == Strategy::fork,
            true);
}

TEST(SpawnCgroup, cgroup2_limits_are_written) {
  SKIP_UNLESS_ROOT("creating cgroups");
  std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount";
  std::string ctl = read_text(mount + "/cgroup.subtree_control");
  for (const char* need : {"memory", "pids", "cpu"})
    if (ctl.find(need) == std::string::npos)
      GTEST_SKIP() << "the " << need << " controller is not enabled for children of " << mount
                   << " (cgroup.subtree_control: '" << trim(ctl) << "'); it is bound to a v1 hierarchy here";
  OwnCgroup cg(mount, /*create=*/false);
  auto o = probe_options();
  o.cgroup = cg.path();
  o.cgroup_limits.memory_max = 64ull << 20;
  o.cgroup_limits.pids_max = 7;
  o.cgroup_limits.cpu_max_us = 50000;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(cgroup_of(r.facts, ""), cg.name());
  EXPECT_EQ(trim(read_text(cg.path() + "/memory.max")), std::to_string(64ull << 20));
  EXPECT_EQ(trim(read_text(cg.path() + "/pids.max")), "7");
  EXPECT_EQ(trim(read_text(cg.path() + "/cpu.max")), "50000 100000");
}

struct V1Case {
  const char* controller;
  const char* name;
};

class SpawnCgroupV1 : public ::testing::TestWithParam<V1Case> {};

TEST_P(SpawnCgroupV1, child_joins_and_limit_is_written) {
  SKIP_UNLESS_ROOT("creating cgroups");
  std::string controller = GetParam().controller;
  std::string mount = "/sys/fs/cgroup/" + controller;
  if (!is_dir(mount) || ::access((mount + "/cgroup.procs").c_str(), F_OK) != 0)
    GTEST_SKIP() << "no cgroup v1 hierarchy for " << controller << " at " << mount;
  OwnCgroup cg(mount, /*create=*/true);
  ASSERT_FALSE(cg.path().empty()) << cg.why();
  auto o = probe_options();
  o.cgroup = cg.path();
  std::string file, want;
  if (controller == "pids") {
    o.cgroup_limits.pids_max = 7;
    file = "pids.max";
    want = "7";
  } else if (controller == "memory") {
    o.cgroup_limits.memory_max = 64ull << 20;
    file = "memory.limit_in_bytes";
    want = std::to_string(64ull << 20);
  } else {
    o.cgroup_limits.cpu_max_us = 50000;
    file = "cpu.cfs_quota_us";
    want = "50000";
  }
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_TRUE(r.cgroups_created.empty()) << "an existing directory was not created by the spawn";
  EXPECT_EQ(cgroup_of(r.facts, controller), cg.name());
  EXPECT_EQ(trim(read_text(cg.path() + "/" + file)), want);
  if (controller == "cpu") {
    EXPECT_EQ(trim(read_text(cg.path() + "/cpu.cfs_period_us")), "100000");
  }
}

INSTANTIATE_TEST_SUITE_P(Controllers, SpawnCgroupV1,
                         ::testing::Values(V1Case{"pids", "pids"}, V1Case{"memory", "memory"}, V1Case{"cpu", "cpu"}),
                         [](const ::testing::TestParamInfo<V1Case>& p) { return std::string(p.param.name); });

// ---------------------------------------------------------------- strategies

class SpawnStrategy : public ::testing::TestWithParam<Strategy> {};

TEST_P(SpawnStrategy, runs_the_probe_and_reports_the_strategy) {
  auto o = probe_options({"x"});
  o.strategy = GetParam();
  auto child = ps::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  if (GetParam() == Strategy::automatic) {
    EXPECT_TRUE(child->strategy() == Strategy::clone3 || child->strategy() == Strategy::clone_vfork)
        << ps::strategy_name(child->strategy());
  } else {
    EXPECT_EQ(child->strategy(), GetParam()) << ps::strategy_name(child->strategy());
  }
  if (child->strategy() == Strategy::clone3) {
    EXPECT_GE(child->pidfd(), 0) << "clone3 uses CLONE_PIDFD";
  }
  EXPECT_GT(child->pid(), 0);
  EXPECT_GT(child->timings().total.count(), 0);
  EXPECT_LE(child->timings().prepare.count(), child->timings().total.count());
  std::string text;
  ASSERT_TRUE(read_all(child->stdout_fd, &text));
  auto ex = child->wait(std::chrono::seconds(20));
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  EXPECT_TRUE(ex->exited);
  EXPECT_EQ(ex->status, 0);
  Facts f = parse_facts(text);
  EXPECT_EQ(f.get("argv[1]"), "x");
  EXPECT_EQ(f.num("pid"), child->pid());
  EXPECT_EQ(f.num("ppid"), ::getpid());
}

// The controls every strategy (posix_spawn included) must honour.
TEST_P(SpawnStrategy, honours_the_common_controls) {
  TempDir dir;
  int a = open_file(dir.file("a"), O_RDWR | O_CREAT | O_CLOEXEC);
  int leak = open_file(dir.file("leak"));
  SignalGuard ign(SIGPIPE, SIG_IGN);
  MaskGuard blocked({SIGUSR1});
  auto o = probe_options();
  o.strategy = GetParam();
  o.cwd = dir.path();
  o.inherit_env = false;
  o.envp = {"ONLY=1"};
  o.stdin_.kind = Stdio::Kind::null;
  // posix_spawn can only close "everything from fd N up" (addclosefrom_np), so
  // it refuses to keep an fd above 2 while closing the others: give it the
  // dup2 as its own test below.
  const bool keeps_high_fds = GetParam() != Strategy::posix_spawn;
  if (keeps_high_fds) o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, 6, a, "", 0, 0644});
  o.setsid = true;
  auto r = run(o);
  ::close(a);
  ::close(leak);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("cwd"), dir.path());
  EXPECT_EQ(r.facts.list("env"), std::vector<std::string>{"ONLY=1"});
  EXPECT_EQ(r.facts.get("fd[0]"), "/dev/null");
  if (keeps_high_fds) {
    EXPECT_EQ(r.facts.get("fd[6]"), dir.file("a"));
    EXPECT_EQ(r.facts.fds(), (std::set<int>{0, 1, 2, 6}));
  } else {
    EXPECT_EQ(r.facts.fds(), (std::set<int>{0, 1, 2}));
  }
  EXPECT_EQ(r.facts.get("sigmask"), "0x0");
  EXPECT_FALSE(r.facts.has("sig[13]"));
  EXPECT_EQ(r.facts.get("sid"), r.facts.get("pid"));
}

TEST_P(SpawnStrategy, missing_program_is_execve_enoent) {
  auto o = probe_options();
  o.strategy = GetParam();
  o.path = "/nonexistent-procforge/prog";
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, ENOENT) << r.error;
  EXPECT_NE(r.error.find("execve"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("/nonexistent-procforge/prog"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("ENOENT"), std::string::npos) << r.error;
}

TEST_P(SpawnStrategy, bad_cwd_is_chdir_enoent) {
  auto o = probe_options();
  o.strategy = GetParam();
  o.cwd = "/nonexistent-procforge-dir";
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, ENOENT) << r.error;
  EXPECT_TRUE(r.error.find("chdir") != std::string::npos || r.error.find("directory") != std::string::npos)
      << "names the step: " << r.error;
  EXPECT_NE(r.error.find("/nonexistent-procforge-dir"), std::string::npos) << r.error;
}

TEST_P(SpawnStrategy, keeping_fds_above_2_is_done_or_refused_never_leaked) {
  TempDir dir;
  int a = open_file(dir.file("a"), O_RDWR | O_CREAT | O_CLOEXEC);
  int leak = open_file(dir.file("leak"));
  auto o = probe_options();
  o.strategy = GetParam();
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, 6, a, "", 0, 0644});
  o.keep_fds = {a};
  auto r = run(o);
  ::close(a);
  ::close(leak);
  if (GetParam() == Strategy::posix_spawn && !r.spawned) {
    EXPECT_TRUE(r.err == EOPNOTSUPP || r.err == ENOTSUP) << r.error;
    EXPECT_NE(r.error.find("posix_spawn"), std::string::npos) << r.error;
    return;
  }
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.fds(), (std::set<int>{0, 1, 2, 6, a}));
}

// The library's own fds in the child (error pipe, stdout pipe end...) take the
// lowest free numbers; fd actions that target exactly those numbers must
// still land, and a failure must still be reported.
std::vector<int> lowest_free_fds(int n) {
  std::vector<int> held, out;
  for (int i = 0; i < n; ++i) held.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  for (int fd : held) {
    out.push_back(fd);
    ::close(fd);
  }
  return out;
}

TEST_P(SpawnStrategy, fd_actions_onto_the_librarys_own_fd_numbers_still_land) {
  if (GetParam() == Strategy::posix_spawn) GTEST_SKIP() << "posix_spawn refuses to keep fds above 2";
  TempDir dir;
  int a = open_file(dir.file("a"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ::dup2(a, 900);  // move it out of the low range
  ::close(a);
  a = 900;
  auto targets = lowest_free_fds(6);
  auto o = probe_options();
  o.strategy = GetParam();
  for (int t : targets) o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, t, a, "", 0, 0644});
  auto r = run(o);
  auto bad = o;
  bad.path = "/nonexistent-procforge/prog";
  auto rb = run(bad);
  ::close(a);
  ASSERT_RAN(r);
  for (int t : targets) EXPECT_EQ(r.facts.get("fd[" + std::to_string(t) + "]"), dir.file("a")) << "fd " << t;
  EXPECT_FALSE(rb.spawned);
  EXPECT_EQ(rb.err, ENOENT) << "the failure report must survive fd actions onto its channel: " << rb.error;
}

TEST_P(SpawnStrategy, namespaces_work_with_this_strategy) {
  SKIP_UNLESS_ROOT("namespaces");
  if (GetParam() == Strategy::posix_spawn)
    GTEST_SKIP() << "posix_spawn cannot create namespaces (refusal tested elsewhere)";
  auto o = probe_options();
  o.strategy = GetParam();
  o.namespaces =
      CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME | CLONE_NEWPID | CLONE_NEWNS;
  o.hostname = "pf-strategy-host";
  auto r = run(o);
  if (GetParam() == Strategy::vfork) {
    // vfork() takes no clone flags, and unshare() in a child that shares the
    // parent's memory cannot move it into a new pid namespace: refusing is
    // the only honest answer (silently ignoring the control would not be).
    EXPECT_FALSE(r.spawned) << "vfork cannot put the child into new pid/user namespaces";
    EXPECT_EQ(r.err, EINVAL) << r.error;
    EXPECT_NE(r.error.find("namespace"), std::string::npos) << r.error;
    return;
  }
  ASSERT_RAN(r);
  for (const char* ns : {"uts", "ipc", "net", "cgroup", "time", "pid", "mnt"})
    EXPECT_NE(r.facts.get(std::string("ns.") + ns), own_ns(ns)) << ns;
  EXPECT_EQ(r.facts.get("hostname"), "pf-strategy-host");
  EXPECT_EQ(r.facts.get("pid"), "1");
  EXPECT_EQ(r.facts.get("proc_pids"), "1");
}

TEST_P(SpawnStrategy, cgroup2_placement_works_with_this_strategy) {
  SKIP_UNLESS_ROOT("creating cgroups");
  if (GetParam() == Strategy::posix_spawn) GTEST_SKIP() << "glibc 2.36 posix_spawn has no POSIX_SPAWN_SETCGROUP";
  std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount";
  OwnCgroup cg(mount, /*create=*/true);
  ASSERT_FALSE(cg.path().empty()) << cg.why();
  auto o = probe_options();
  o.strategy = GetParam();
  o.cgroup = cg.path();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(cgroup_of(r.facts, ""), cg.name());
}

TEST_P(SpawnStrategy, large_argv_and_env_fit) {
  auto o = probe_options();
  o.strategy = GetParam();
  for (int i = 0; i < 50000; ++i) o.argv.push_back("arg" + std::to_string(i));
  for (int i = 0; i < 20000; ++i) o.set_env.push_back("PF_BIG_" + std::to_string(i) + "=v");
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.facts.get("argc"), "50001");
  EXPECT_EQ(r.facts.get("argv[50000]"), "arg49999");
  EXPECT_GE(r.facts.num("envc"), 20000);
}

// A signal that reaches the child between clone and exec must never run one
// of the caller's handlers there (with CLONE_VM it would run on the
// caller's memory): the child meets the default action, as it would right
// after its exec. The child is held in open() of a FIFO (stdin), signalled
// there, then released; SIGUSR1's default action kills it.
std::atomic<int> handled_in_process{0};
void count_handler(int) { handled_in_process.fetch_add(1); }

// The pid of a child of thread `tid`, from /proc/self/task/TID/children.
pid_t child_of(pid_t tid) {
  std::string text = read_text("/proc/self/task/" + std::to_string(tid) + "/children");
  return text.empty() ? -1 : static_cast<pid_t>(std::atoi(text.c_str()));
}

// Spawns o with stdin on a FIFO, so that the child waits in open() during
// its setup, sends it `sig` there, then lets it go on. The exit, or why not.
struct SetupSignalRun {
  std::string error;  // empty when spawned and reaped
  ps::Child::Exit exit;
};
SetupSignalRun signal_during_setup(ps::Options o, int sig) {
  TempDir dir;
  const std::string fifo = dir.file("hold");
  if (::mkfifo(fifo.c_str(), 0600) != 0) return {"mkfifo failed", {}};
  o.stdin_.kind = Stdio::Kind::file;
  o.stdin_.path = fifo;
  const pid_t me = static_cast<pid_t>(::syscall(SYS_gettid));
  std::thread helper([&] {
    pid_t child = -1;
    for (int i = 0; i < 5000 && child <= 0; ++i) {
      child = child_of(me);
      if (child <= 0) ::usleep(1000);
    }
    if (child <= 0) return;
    ::usleep(20000);  // let it reach open()
    ::kill(child, sig);
    ::usleep(20000);
    // Where the signal is blocked or ignored, the child still waits for a writer.
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  });
  auto child = ps::spawn(o);
  helper.join();
  if (!child) return {child.error().message, {}};
  auto ex = child->wait(std::chrono::seconds(10));
  if (!ex) return {ex.error().message, {}};
  return {"", *ex};
}

TEST_P(SpawnStrategy, a_signal_during_setup_meets_the_default_action_not_a_handler) {
  if (GetParam() == Strategy::posix_spawn) GTEST_SKIP() << "glibc's child; its own blocking is glibc's business";
  SignalGuard handler(SIGUSR1, count_handler);
  handled_in_process = 0;
  auto o = probe_options({"--exit", "0"});
  o.strategy = GetParam();
  // With SIG_IGN inherited the child's own reset loop has nothing to do
  // where the kernel cleared the handlers, so only CLONE_CLEAR_SIGHAND (or
  // the blocking and loop of the other strategies) stands between the
  // signal and the caller's handler.
  o.reset_signal_dispositions = false;
  auto r = signal_during_setup(o, SIGUSR1);
  ASSERT_EQ(r.error, "");
  EXPECT_FALSE(r.exit.exited) << "the child was not killed by the signal (status " << r.exit.status << ")";
  EXPECT_EQ(r.exit.status, SIGUSR1);
  EXPECT_EQ(handled_in_process.load(), 0) << "the caller's SIGUSR1 handler ran (in the child)";
}

// A signal the child asked to block, arriving during its setup, stays
// pending and blocked into the new program (as with posix_spawn's
// POSIX_SPAWN_SETSIGMASK): it must not kill the child first.
TEST_P(SpawnStrategy, a_signal_the_child_blocks_does_not_kill_it_during_setup) {
  auto o = probe_options({"--exit", "0"});
  o.strategy = GetParam();
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  o.signal_mask = mask;
  auto r = signal_during_setup(o, SIGTERM);
  ASSERT_EQ(r.error, "");
  EXPECT_TRUE(r.exit.exited) << "killed by signal " << r.exit.status;
  EXPECT_EQ(r.exit.status, 0);
}

// Likewise a signal the child asked to ignore.
TEST_P(SpawnStrategy, a_signal_the_child_ignores_does_not_kill_it_during_setup) {
  if (GetParam() == Strategy::posix_spawn) GTEST_SKIP() << "posix_spawn cannot ignore signals (refused elsewhere)";
  auto o = probe_options({"--exit", "0"});
  o.strategy = GetParam();
  o.ignore_signals = {SIGHUP};
  auto r = signal_during_setup(o, SIGHUP);
  ASSERT_EQ(r.error, "");
  EXPECT_TRUE(r.exit.exited) << "killed by signal " << r.exit.status;
  EXPECT_EQ(r.exit.status, 0);
}

INSTANTIATE_TEST_SUITE_P(All, SpawnStrategy,
                         ::testing::Values(Strategy::automatic, Strategy::clone3, Strategy::clone_vfork,
                                           Strategy::posix_spawn, Strategy::fork, Strategy::vfork),
                         [](const ::testing::TestParamInfo<Strategy>& p) {
                           return std::string(ps::strategy_name(p.param));
                         });

TEST(SpawnStrategyNames, names_round_trip_and_unknown_is_rejected) {
  for (Strategy s : {Strategy::automatic, Strategy::clone3, Strategy::clone_vfork, Strategy::posix_spawn,
                     Strategy::fork, Strategy::vfork}) {
    auto back = ps::strategy_from_name(ps::strategy_name(s));
    ASSERT_TRUE(back.has_value()) << ps::strategy_name(s);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(ps::strategy_from_name("teleport").has_value());
  EXPECT_EQ(ps::strategy_from_name("auto"), Strategy::automatic);
  EXPECT_EQ(ps::strategy_from_name("clone"), Strategy::clone_vfork);
  EXPECT_EQ(ps::strategy_from_name("posix-spawn"), Strategy::posix_spawn);
}

TEST(SpawnNames, namespaces_are_spelled_as_unshare_does) {
  const std::pair<const char*, int> names[] = {
      {"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},        {"net", CLONE_NEWNET},
      {"uts", CLONE_NEWUTS},   {"ipc", CLONE_NEWIPC}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  for (const auto& [name, flag] : names) {
    EXPECT_EQ(ps::namespace_from_name(name), flag) << name;
    ASSERT_NE(ps::namespace_name(flag), nullptr) << name;
    EXPECT_EQ(ps::namespace_from_name(ps::namespace_name(flag)), flag) << name;
  }
  EXPECT_FALSE(ps::namespace_from_name("bogus").has_value());
}

TEST(SpawnNames, rlimits_are_spelled_as_prlimit_does) {
  const std::pair<const char*, int> names[] = {
      {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
      {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  for (const auto& [name, res] : names) {
    EXPECT_EQ(ps::rlimit_from_name(name), res) << name;
    ASSERT_NE(ps::rlimit_name(res), nullptr) << name;
    EXPECT_STREQ(ps::rlimit_name(res), name);
  }
  EXPECT_FALSE(ps::rlimit_from_name("bogus").has_value());
}

TEST(SpawnStrategyNames, automatic_forks_only_for_user_namespace_maps) {
  if (!is_root()) GTEST_SKIP() << "user namespace with explicit maps needs root";
  auto o = probe_options();
  o.namespaces = CLONE_NEWUSER;
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_EQ(r.strategy, Strategy::fork) << ps::strategy_name(r.strategy);
  auto plain = run(probe_options());
  ASSERT_RAN(plain);
  EXPECT_NE(plain.strategy, Strategy::fork);
}

TEST(SpawnStrategyNames, never_fork_refuses_when_fork_would_be_needed) {
  auto o = probe_options();
  o.namespaces = CLONE_NEWUSER;
  o.never_fork = true;
  auto r = run(o);
  if (r.spawned) {
    EXPECT_NE(r.strategy, Strategy::fork) << "never_fork was set but the child was forked";
    ADD_FAILURE() << "the header says user-namespace maps need fork; expected a refusal, got strategy "
                  << ps::strategy_name(r.strategy);
  } else {
    EXPECT_EQ(r.err, EPERM) << r.error;
    EXPECT_NE(r.error.find("fork"), std::string::npos) << "the refusal should say that fork was needed: " << r.error;
  }
}

TEST(SpawnStrategyNames, posix_spawn_refuses_controls_it_cannot_do) {
  auto o = probe_options();
  o.strategy = Strategy::posix_spawn;
  o.namespaces = CLONE_NEWUTS;
  auto r = run(o);
  EXPECT_FALSE(r.spawned) << "posix_spawn cannot create namespaces; it must refuse, not ignore the control";
  EXPECT_EQ(r.err, ENOTSUP) << r.error;
  EXPECT_NE(r.error.find("cannot create namespaces"), std::string::npos) << r.error;
  auto o2 = probe_options();
  o2.strategy = Strategy::posix_spawn;
  o2.capability_bounding = std::vector<int>{CAP_KILL};
  auto r2 = run(o2);
  EXPECT_FALSE(r2.spawned) << "posix_spawn cannot drop bounding capabilities";
  EXPECT_EQ(r2.err, ENOTSUP) << r2.error;
  EXPECT_NE(r2.error.find("cannot change capabilities"), std::string::npos) << r2.error;
}

// ---------------------------------------------------------------- errors

TEST(SpawnErrors, non_executable_file_is_execve_eacces) {
  TempDir dir;
  std::string path = dir.file("not-exec");
  int fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_EQ(::write(fd, "#!/bin/sh\n", 10), 10);
  ::close(fd);
  auto o = probe_options();
  o.path = path;
  auto r = run(o);
  if (r.spawned && is_root()) FAIL() << "root still needs an x bit to exec";
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, EACCES) << r.error;
  EXPECT_NE(r.error.find("execve"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(path), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("EACCES"), std::string::npos) << r.error;
}

TEST(SpawnErrors, executable_garbage_is_execve_enoexec) {
  TempDir dir;
  std::string path = dir.file("garbage");
  int fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  ASSERT_EQ(::write(fd, "\x01\x02garbage", 9), 9);
  ::close(fd);
  auto o = probe_options();
  o.path = path;
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, ENOEXEC) << r.error;
  EXPECT_NE(r.error.find(path), std::string::npos) << r.error;
}

TEST(SpawnErrors, oversized_argument_is_execve_e2big) {
  auto o = probe_options({std::string(200 * 1024, 'a')});  // > MAX_ARG_STRLEN (32 pages)
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, E2BIG) << r.error;
  EXPECT_NE(r.error.find("execve"), std::string::npos) << r.error;
}

TEST(SpawnErrors, bad_dup2_source_is_ebadf) {
  int bad = closed_fd();
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::dup2, 5, bad, "", 0, 0644});
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, EBADF) << r.error;
  EXPECT_NE(r.error.find("dup"), std::string::npos) << "names the step: " << r.error;
  EXPECT_NE(r.error.find(std::to_string(bad)), std::string::npos) << "names the fd: " << r.error;
  EXPECT_NE(r.error.find("EBADF"), std::string::npos) << r.error;
}

TEST(SpawnErrors, open_action_on_missing_file_is_enoent_naming_the_path) {
  auto o = probe_options();
  o.fd_actions.push_back(FdAction{FdAction::Kind::open, 5, -1, "/nonexistent-procforge/in", 0, 0644});
  auto r = run(o);
  ASSERT_FALSE(r.spawned);
  EXPECT_EQ(r.err, ENOENT) << r.error;
  EXPECT_NE(r.error.find("/nonexistent-procforge/in"), std::string::npos) << r.error;
}

// Setting a uid needs CAP_SETUID: run the spawn from a forked helper that
// dropped to nobody, and bring back the error.
TEST(SpawnErrors, setting_uid_without_privilege_is_eperm) {
  SKIP_UNLESS_ROOT("dropping to an unprivileged helper");
  const procforge::testsupport::ForkResult helper = procforge::testsupport::run_forked([](int fd) {
    std::string msg;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      msg = "0\nhelper could not drop privileges";
    } else {
      auto o = probe_options();
      o.stdout_.kind = Stdio::Kind::null;
      o.uid = 1000;
      auto c = ps::spawn(o);
      if (c.ok()) {
        (void)c->wait(std::chrono::seconds(10));
        msg = "0\nspawn succeeded";
      } else {
        msg = std::to_string(c.error().err) + "\n" + c.error().message;
      }
    }
    (void)!::write(fd, msg.data(), msg.size());
    return 0;
  });
  ASSERT_TRUE(helper.started);
  const std::string& text = helper.out;
  auto nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos) << text;
  int err = std::atoi(text.substr(0, nl).c_str());
  std::string message = text.substr(nl + 1);
  EXPECT_EQ(err, EPERM) << message;
  EXPECT_NE(message.find("uid"), std::string::npos) << message;
  EXPECT_NE(message.find("1000"), std::string::npos) << message;
  EXPECT_NE(message.find("EPERM"), std::string::npos) << message;
}

// ---------------------------------------------------------------- Child

TEST(SpawnChild, wait_reports_exit_status) {
  auto o = probe_options({"--exit", "3"});
  o.stdout_.kind = Stdio::Kind::inherit;
  auto r = run(o);
  ASSERT_TRUE(r.spawned) << r.error;
  EXPECT_TRUE(r.exit.exited);
  EXPECT_EQ(r.exit.status, 3);
  EXPECT_EQ(r.exit.shell_status(), 3);
}

TEST(SpawnChild, wait_timeout_kills_and_reaps) {
  auto o = probe_options({"--pause"});
  o.stdout_.kind = Stdio::Kind::inherit;
  auto child = ps::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  pid_t pid = child->pid();
  auto ex = child->wait(std::chrono::milliseconds(100));
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  EXPECT_TRUE(ex->timed_out);
  EXPECT_FALSE(ex->exited);
  EXPECT_EQ(ex->status, SIGKILL);
  EXPECT_EQ(ex->shell_status(), 128 + SIGKILL);
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << "already reaped";
  EXPECT_EQ(errno, ECHILD);
}

TEST(SpawnChild, wait_timeout_kills_the_whole_group_of_a_leader) {
  auto o = probe_options({"--pause"});
  o.stdout_.kind = Stdio::Kind::inherit;
  o.process_group = 0;
  auto leader = ps::spawn(o);
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  auto mo = probe_options({"--pause"});
  mo.stdout_.kind = Stdio::Kind::inherit;
  mo.process_group = leader->pid();
  auto member = ps::spawn(mo);
  ASSERT_TRUE(member.ok()) << member.error().message;
  auto a = leader->wait(std::chrono::milliseconds(100));
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->timed_out);
  auto b = member->wait(std::chrono::seconds(5));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->timed_out) << "the group member survived the leader's timeout kill";
  EXPECT_EQ(b->status, SIGKILL);
}

TEST(SpawnChild, exit_reports_wall_time_and_usage) {
  auto o = probe_options();
  auto r = run(o);
  ASSERT_RAN(r);
  EXPECT_GT(r.exit.wall.count(), 0);
  EXPECT_GT(r.exit.usage.ru_maxrss, 0) << "rusage of the reaped child";
}

TEST(SpawnChild, kill_delivers_the_signal) {
  auto o = probe_options({"--pause"});
  o.stdout_.kind = Stdio::Kind::inherit;
  auto child = ps::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  ASSERT_TRUE(child->kill(SIGTERM).ok());
  auto ex = child->wait(std::chrono::seconds(10));
  ASSERT_TRUE(ex.ok());
  EXPECT_FALSE(ex->exited);
  EXPECT_EQ(ex->status, SIGTERM);
}

TEST(SpawnChild, kill_whole_group_reaches_the_group_leader_and_members) {
  auto o = probe_options({"--pause"});
  o.stdout_.kind = Stdio::Kind::inherit;
  o.process_group = 0;
  auto leader = ps::spawn(o);
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  auto mo = probe_options({"--pause"});
  mo.stdout_.kind = Stdio::Kind::inherit;
  mo.process_group = leader->pid();
  auto member = ps::spawn(mo);
  ASSERT_TRUE(member.ok()) << member.error().message;
  ASSERT_TRUE(leader->kill(SIGTERM, /*whole_group=*/true).ok());
  auto a = leader->wait(std::chrono::seconds(10));
  auto b = member->wait(std::chrono::seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->status, SIGTERM);
  EXPECT_FALSE(b->timed_out) << "the member was not signalled";
  EXPECT_EQ(b->status, SIGTERM);
}

TEST(SpawnChild, destructor_kills_and_reaps_a_running_child) {
  pid_t pid = -1;
  {
    auto o = probe_options({"--pause"});
    o.stdout_.kind = Stdio::Kind::inherit;
    auto child = ps::spawn(o);
    ASSERT_TRUE(child.ok()) << child.error().message;
    pid = child->pid();
  }
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << "the destructor must reap: no zombie";
  EXPECT_EQ(errno, ECHILD);
  EXPECT_NE(::access(("/proc/" + std::to_string(pid)).c_str(), F_OK), 0);
}

TEST(SpawnChild, moved_child_is_reaped_once) {
  auto o = probe_options({"--exit", "0"});
  o.stdout_.kind = Stdio::Kind::inherit;
  auto child = ps::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  ps::Child moved = std::move(*child);
  auto ex = moved.wait(std::chrono::seconds(10));
  ASSERT_TRUE(ex.ok());
  EXPECT_TRUE(ex->exited);
}

}  // namespace
