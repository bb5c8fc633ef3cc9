// spawn(): exit statuses, exec failures and their messages, the strategies,
// never_fork, timeouts, reaping, and spawning from many threads at once.
// (The per-control tests with the probe program live in spawn_controls_test.)
#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <thread>

#include "procforge/spawn.hpp"
#include "support/run_command.hpp"

namespace {

using namespace procforge;
using namespace procforge::spawn;
using namespace std::chrono_literals;

spawn::Options command(std::vector<std::string> argv) {
  spawn::Options o;
  o.path = argv.front();
  o.argv = std::move(argv);
  return o;
}

struct Ran {
  Child::Exit exit;
  std::string out;
  Strategy strategy = Strategy::automatic;
};

// Runs to completion with stdout on a pipe; fails the test on a spawn error.
Ran run(spawn::Options o) {
  o.stdout_.kind = Stdio::Kind::pipe;
  auto c = spawn::spawn(o);
  EXPECT_TRUE(c.ok()) << c.error().message;
  if (!c) return {};
  Ran r;
  r.strategy = c->strategy();
  char buf[4096];
  for (ssize_t n; (n = read(c->stdout_fd, buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  auto e = c->wait();
  EXPECT_TRUE(e.ok()) << e.error().message;
  if (e) r.exit = *e;
  return r;
}

// A temporary file with the given bytes and mode.
struct TempFile {
  std::string path;
  TempFile(const std::string& bytes, mode_t mode) {
    char tmpl[] = "/tmp/procforge-spawn-XXXXXX";
    int fd = mkstemp(tmpl);
    path = tmpl;
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
    chmod(path.c_str(), mode);
  }
  ~TempFile() { unlink(path.c_str()); }
};

TEST(SpawnBasic, bin_true_exits_zero_with_a_pidfd) {
  auto c = spawn::spawn(command({"/bin/true"}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_GT(c->pid(), 0);
  EXPECT_GE(c->pidfd(), 0);
  auto e = c->wait();
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->exited);
  EXPECT_EQ(e->status, 0);
  EXPECT_EQ(e->shell_status(), 0);
}

TEST(SpawnBasic, exit_status_is_the_programs) {
  auto r = run(command({"/bin/sh", "-c", "exit 7"}));
  EXPECT_TRUE(r.exit.exited);
  EXPECT_EQ(r.exit.status, 7);
}

TEST(SpawnBasic, death_by_signal_is_128_plus_n) {
  auto r = run(command({"/bin/sh", "-c", "kill -TERM $$"}));
  EXPECT_FALSE(r.exit.exited);
  EXPECT_EQ(r.exit.status, SIGTERM);
  EXPECT_EQ(r.exit.shell_status(), 128 + SIGTERM);
}

TEST(SpawnBasic, argv_reaches_the_program_and_path_is_searched) {
  auto r = run(command({"echo", "a b", "c"}));
  EXPECT_EQ(r.out, "a b c\n");
}

TEST(SpawnBasic, missing_program_is_execve_enoent) {
  auto c = spawn::spawn(command({"/nonexistent/x/y"}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, ENOENT);
  EXPECT_EQ(c.error().message, "execve /nonexistent/x/y: ENOENT");
  EXPECT_TRUE(exec_failed(c.error()));
}

TEST(SpawnBasic, path_search_miss_names_the_program_as_asked) {
  auto o = command({"procforge-no-such-program"});
  o.set_env = {"PATH=/nonexistent:/usr/bin"};
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, ENOENT);
  EXPECT_EQ(c.error().message, "execve procforge-no-such-program: ENOENT");
}

TEST(SpawnBasic, path_search_uses_the_childs_path) {
  TempFile script("#!/bin/sh\necho found\n", 0755);
  auto dir = script.path.substr(0, script.path.rfind('/'));
  auto name = script.path.substr(dir.size() + 1);
  auto o = command({name});
  o.set_env = {"PATH=/nonexistent:" + dir};
  EXPECT_EQ(run(o).out, "found\n");
}

TEST(SpawnBasic, path_search_skips_eacces_but_reports_it_when_nothing_else_runs) {
  TempFile noexec("#!/bin/sh\n", 0644);
  auto dir = noexec.path.substr(0, noexec.path.rfind('/'));
  auto name = noexec.path.substr(dir.size() + 1);
  auto o = command({name});
  o.set_env = {"PATH=" + dir + ":/nonexistent"};
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, EACCES);
  EXPECT_EQ(c.error().message, "execve " + noexec.path + ": EACCES");
}

TEST(SpawnBasic, non_executable_file_is_eacces) {
  auto c = spawn::spawn(command({"/etc/passwd"}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, EACCES);
  EXPECT_EQ(c.error().message, "execve /etc/passwd: EACCES");
}

TEST(SpawnBasic, unknown_format_is_enoexec_not_retried_with_sh) {
  TempFile junk("just text, no #! line\n", 0755);
  auto c = spawn::spawn(command({junk.path}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, ENOEXEC);
  EXPECT_EQ(c.error().message, "execve " + junk.path + ": ENOEXEC");
}

TEST(SpawnBasic, setup_failure_names_the_step_and_object) {
  auto o = command({"/bin/true"});
  o.cwd = "/nonexistent-dir";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, ENOENT);
  EXPECT_EQ(c.error().message, "changing directory to /nonexistent-dir: ENOENT");
  EXPECT_FALSE(exec_failed(c.error()));
}

TEST(SpawnBasic, failed_open_onto_stdout_names_the_file_and_fd) {
  auto o = command({"/bin/true"});
  o.stdout_.kind = Stdio::Kind::file;
  o.stdout_.path = "/nonexistent-dir/out";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().err, ENOENT);
  EXPECT_EQ(c.error().message, "opening /nonexistent-dir/out onto fd 1: ENOENT");
}

TEST(SpawnBasic, dup2_actions_read_their_sources_before_any_target_changes) {
  // P <- Q and Q <- P at once: a swap, not two copies of Q. Each source must be
  // read before an earlier action overwrites it.
  int a[2], b[2];
  ASSERT_EQ(pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(b, O_CLOEXEC), 0);
  const int P = a[1], Q = b[1];
  ASSERT_LT(std::max(P, Q), 10);  // sh's >&N takes one digit
  auto o = command({"/bin/sh", "-c", "echo to-P >&" + std::to_string(P) + "; echo to-Q >&" + std::to_string(Q)});
  o.fd_actions = {{FdAction::Kind::dup2, P, Q, "", 0, 0644}, {FdAction::Kind::dup2, Q, P, "", 0, 0644}};
  auto c = spawn::spawn(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  close(a[1]);
  close(b[1]);
  auto e = c->wait();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->status, 0);
  char in_a[64] = {}, in_b[64] = {};
  EXPECT_GT(read(a[0], in_a, sizeof in_a - 1), 0);
  EXPECT_GT(read(b[0], in_b, sizeof in_b - 1), 0);
  EXPECT_STREQ(in_a, "to-Q\n");  // what the child wrote to its P went to the parent's Q
  EXPECT_STREQ(in_b, "to-P\n");
  close(a[0]);
  close(b[0]);
}

TEST(SpawnBasic, other_fds_are_closed_unless_kept) {
  int null = open("/dev/null", O_RDONLY);
  int fd = fcntl(null, F_DUPFD, 40);  // not close-on-exec, and above what ls itself opens
  close(null);
  ASSERT_GE(fd, 40);
  auto o = command({"/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"});
  auto r = run(o);
  // sh's own fds: 0 1 2 and the one ls opens for /proc/self/fd
  EXPECT_EQ(r.out.find(" " + std::to_string(fd) + " "), std::string::npos) << r.out;
  o.keep_fds = {fd};
  r = run(o);
  EXPECT_NE(r.out.find(" " + std::to_string(fd) + " "), std::string::npos) << r.out;
  close(fd);
}

TEST(SpawnBasic, environment_edits) {
  auto o = command({"/bin/sh", "-c", "echo \"$PF_A/$PF_B/${HOME-unset}\""});
  o.set_env = {"PF_A=1", "PF_B=2"};
  o.unset_env = {"HOME"};
  EXPECT_EQ(run(o).out, "1/2/unset\n");
  o.inherit_env = false;
  o.envp = {"PF_A=x"};
  o.set_env = {};
  EXPECT_EQ(run(o).out, "x//unset\n");
}

TEST(SpawnBasic, rusage_counts_the_childs_cpu) {
  auto r = run(command({"/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"}));
  auto cpu = r.exit.usage.ru_utime.tv_sec * 1000000 + r.exit.usage.ru_utime.tv_usec +
             r.exit.usage.ru_stime.tv_sec * 1000000 + r.exit.usage.ru_stime.tv_usec;
  EXPECT_GT(cpu, 10000);  // 10 ms at least
  EXPECT_GT(r.exit.usage.ru_maxrss, 0);
  EXPECT_GT(r.exit.usage.ru_minflt, 0);
}

class SpawnBasicStrategy : public ::testing::TestWithParam<Strategy> {};

TEST_P(SpawnBasicStrategy, runs_and_says_which_strategy_ran) {
  auto o = command({"/bin/sh", "-c", "echo $0 $1", "zero", "one"});
  o.strategy = GetParam();
  auto r = run(o);
  EXPECT_EQ(r.out, "zero one\n");
  EXPECT_EQ(r.exit.status, 0);
  Strategy expect = GetParam() == Strategy::automatic ? Strategy::clone3 : GetParam();
  EXPECT_EQ(r.strategy, expect) << strategy_name(r.strategy);
}

TEST_P(SpawnBasicStrategy, reports_exec_failure_as_execve_enoent) {
  auto o = command({"/nonexistent/prog"});
  o.strategy = GetParam();
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "execve /nonexistent/prog: ENOENT");
}

TEST_P(SpawnBasicStrategy, reports_a_failed_control_with_its_step) {
  if (GetParam() == Strategy::posix_spawn) GTEST_SKIP() << "posix_spawn returns one errno, not the step";
  auto o = command({"/bin/true"});
  o.strategy = GetParam();
  o.cwd = "/nonexistent-dir";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "changing directory to /nonexistent-dir: ENOENT");
}

INSTANTIATE_TEST_SUITE_P(All, SpawnBasicStrategy,
                         ::testing::Values(Strategy::automatic, Strategy::clone3, Strategy::clone_vfork,
                                           Strategy::vfork, Strategy::fork, Strategy::posix_spawn),
                         [](const auto& i) { return std::string(strategy_name(i.param)); });

// Runs body in a child process whose seccomp filter refuses clone3 with
// EPERM, as container profiles do (moby/moby#42680), and returns what body
// returned (or why it could not run).
std::string with_clone3_refused(std::string (*body)()) {
  const procforge::testsupport::ForkResult helper = procforge::testsupport::run_forked([body](int fd) {
    // nr == clone3 ? ERRNO(EPERM) : ALLOW
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog {
      4, f
    };
    std::string msg = "helper could not install the filter";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0)
      msg = body();
    (void)!write(fd, msg.data(), msg.size());
    return 0;
  });
  if (!helper.started) return "fork failed";
  return helper.out.empty() ? "the helper said nothing" : helper.out;
}

// The automatic strategy must fall back to clone when clone3 is refused with EPERM.
TEST(SpawnBasic, clone3_refused_with_eperm_falls_back_to_clone) {
  auto ran = with_clone3_refused([]() -> std::string {
    auto c = spawn::spawn(command({"/bin/true"}));
    if (!c) return c.error().message;
    (void)c->wait();
    return strategy_name(c->strategy());
  });
  EXPECT_EQ(ran, "clone_vfork");
}

// Spawns spawn() must refuse before anything runs: each with the errno and
// the words that name what was refused.
struct Refusal {
  const char* name;
  void (*set)(spawn::Options&);
  int err;
  const char* message;  // words of the error's message
};

const Refusal kRefusals[] = {
    {"never_fork_with_the_fork_strategy",
     [](spawn::Options& o) {
       o.strategy = Strategy::fork;
       o.never_fork = true;
     },
     EPERM, "never_fork is set and the fork strategy was asked for"},
    {"never_fork_with_a_user_namespace",
     [](spawn::Options& o) {
       o.namespaces = CLONE_NEWUSER;
       o.never_fork = true;
     },
     EPERM,
     "a user namespace needs the fork strategy (the parent writes the id maps while the child waits) and "
     "never_fork is set"},
    {"a_user_namespace_with_a_shared_memory_strategy",
     [](spawn::Options& o) {
       o.namespaces = CLONE_NEWUSER;
       o.strategy = Strategy::clone3;
     },
     EINVAL, "a user namespace needs the fork strategy"},
    {"a_namespace_with_vfork",
     [](spawn::Options& o) {
       o.namespaces = CLONE_NEWUTS;
       o.strategy = Strategy::vfork;
     },
     EINVAL, "the vfork strategy cannot create namespaces"},
    {"posix_spawn_with_rlimits",
     [](spawn::Options& o) {
       o.strategy = Strategy::posix_spawn;
       o.rlimits = {{RLIMIT_NOFILE, 64, 64}};
     },
     ENOTSUP, "the posix_spawn strategy cannot set rlimits"},
    {"an_fd_action_onto_a_negative_fd",
     [](spawn::Options& o) {
       o.fd_actions.push_back(FdAction{FdAction::Kind::open, -1, -1, "/dev/null", 0, 0644});
     },
     EBADF, "fd action with target fd -1"},
    {"ignoring_sigkill", [](spawn::Options& o) { o.ignore_signals = {SIGKILL}; }, EINVAL, "cannot ignore signal 9"},
    {"a_hostname_without_a_uts_namespace", [](spawn::Options& o) { o.hostname = "pf-refused"; }, EINVAL,
     "setting the hostname needs a new uts namespace"},
    {"cgroup_limits_without_a_cgroup", [](spawn::Options& o) { o.cgroup_limits.pids_max = 10; }, EINVAL,
     "cgroup limits need a cgroup path"},
    {"a_cgroup_outside_every_cgroup_mount", [](spawn::Options& o) { o.cgroup = "/tmp/procforge-not-a-cgroup"; }, ENOENT,
     "cgroup /tmp/procforge-not-a-cgroup is not inside a mounted cgroup hierarchy"},
    {"a_cgroup_path_that_climbs_out_of_its_hierarchy", [](spawn::Options& o) { o.cgroup = "../procforge-escape"; },
     EINVAL, "/../procforge-escape leaves its hierarchy"},
};

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.name; }

class SpawnRefusal : public ::testing::TestWithParam<Refusal> {};

TEST_P(SpawnRefusal, is_refused_with_its_errno_and_nothing_runs) {
  TempFile marker("", 0644);
  ASSERT_EQ(unlink(marker.path.c_str()), 0);
  auto o = command({"/bin/sh", "-c", ": > \"$0\"", marker.path});
  GetParam().set(o);
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok()) << "spawned with strategy " << strategy_name(c->strategy());
  EXPECT_EQ(c.error().err, GetParam().err) << c.error().message;
  EXPECT_NE(c.error().message.find(GetParam().message), std::string::npos) << c.error().message;
  EXPECT_FALSE(exec_failed(c.error())) << c.error().message;
  struct stat st {};
  EXPECT_NE(stat(marker.path.c_str(), &st), 0) << "the program ran";
}

INSTANTIATE_TEST_SUITE_P(All, SpawnRefusal, ::testing::ValuesIn(kRefusals),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(SpawnBasic, user_namespace_uses_fork_and_maps_the_caller_to_root) {
  auto o = command({"/bin/sh", "-c", "id -u; id -g; echo $$"});
  o.namespaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS;
  auto r = run(o);
  EXPECT_EQ(r.strategy, Strategy::fork);
  EXPECT_EQ(r.out, "0\n0\n1\n");
}

TEST(SpawnBasic, timeout_kills_and_reaps) {
  auto o = command({"/bin/sleep", "30"});
  auto c = spawn::spawn(o);
  ASSERT_TRUE(c.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto e = c->wait(100ms);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(e->timed_out);
  EXPECT_FALSE(e->exited);
  EXPECT_EQ(e->status, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(SpawnBasic, timeout_kills_the_whole_process_group) {
  // The shell's own child (sleep) must die too, or the pipe stays open.
  auto o = command({"/bin/sh", "-c", "sleep 30; echo late"});
  o.setsid = true;
  o.stdout_.kind = Stdio::Kind::pipe;
  auto c = spawn::spawn(o);
  ASSERT_TRUE(c.ok());
  auto e = c->wait(100ms);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->timed_out);
  struct pollfd p {
    c->stdout_fd, POLLIN, 0
  };
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the grandchild kept the pipe open";
  char b;
  EXPECT_EQ(read(c->stdout_fd, &b, 1), 0);
}

TEST(SpawnBasic, wait_without_timeout_of_a_fast_child_is_not_a_timeout) {
  auto c = spawn::spawn(command({"/bin/true"}));
  ASSERT_TRUE(c.ok());
  auto e = c->wait(10s);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->timed_out);
  EXPECT_TRUE(e->exited);
}

TEST(SpawnBasic, destroying_a_running_child_kills_and_reaps_it) {
  pid_t pid;
  {
    auto c = spawn::spawn(command({"/bin/sleep", "30"}));
    ASSERT_TRUE(c.ok());
    pid = c->pid();
  }
  siginfo_t info{};
  EXPECT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);  // already reaped: no zombie left
}

TEST(SpawnBasic, a_moved_child_is_waited_once) {
  auto c = spawn::spawn(command({"/bin/true"}));
  ASSERT_TRUE(c.ok());
  Child moved = std::move(*c);
  auto e = moved.wait();
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(moved.wait().ok());
}

TEST(SpawnBasic, many_threads_spawn_at_once) {
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto o = command({"/bin/sh", "-c", "exit $1", "sh", std::to_string((t + i) % 5)});
        o.strategy = i % 2 ? Strategy::automatic : Strategy::clone_vfork;
        auto c = spawn::spawn(o);
        if (!c) {
          ++bad;
          continue;
        }
        auto e = c->wait();
        (e && e->exited && e->status == (t + i) % 5 ? good : bad)++;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(good, 200);
  EXPECT_EQ(bad, 0);
}

// The calling thread's whole mask as the kernel holds it, bit (signo-1);
// glibc's internal signals included, which pthread_sigmask hides.
std::uint64_t thread_mask() {
  std::uint64_t m = 0;
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &m, sizeof m);
  return m;
}
void set_thread_mask(std::uint64_t m) { syscall(SYS_rt_sigprocmask, SIG_SETMASK, &m, nullptr, sizeof m); }

constexpr std::uint64_t sig_bit(int sig) { return std::uint64_t{1} << (sig - 1); }

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Caller masks to spawn with: an empty one, and one that a restore to the
// empty mask (or to anything but the caller's) would not give back.
constexpr std::uint64_t kCallerMasks[] = {0, sig_bit(SIGUSR1) | sig_bit(SIGTERM) | sig_bit(40)};

// Spawns o with each caller mask, once running and once failing in the
// child (a missing cwd), and returns the first mask that did not come back.
std::string mask_changes(spawn::Options o) {
  const std::uint64_t saved = thread_mask();
  std::string changed;
  for (std::uint64_t caller : kCallerMasks) {
    for (bool fails : {false, true}) {
      auto run = o;
      if (fails) run.cwd = "/nonexistent-procforge-dir";
      set_thread_mask(caller);
      auto c = spawn::spawn(run);
      const std::uint64_t after = thread_mask();
      set_thread_mask(saved);
      if (c) (void)c->wait();
      if (c.ok() == fails) return std::string(fails ? "spawn did not fail" : "spawn failed: " + c.error().message);
      if (after != caller && changed.empty())
        changed =
            "caller mask " + hex(caller) + " is " + hex(after) + " after a spawn that " + (fails ? "failed" : "ran");
    }
  }
  return changed;
}

// Every path that blocks signals around the clone (clone.cpp): the
// strategies whose child may still have the caller's handlers (legacy
// clone, vfork, fork), and the clone3 spawns whose child asks to block or
// ignore signals; the others to show that they leave the mask alone too.
struct MaskPath {
  const char* name;
  void (*set)(spawn::Options&);
};

const MaskPath kMaskPaths[] = {
    {"automatic", [](spawn::Options&) {}},
    {"clone3", [](spawn::Options& o) { o.strategy = Strategy::clone3; }},
    {"clone_vfork", [](spawn::Options& o) { o.strategy = Strategy::clone_vfork; }},
    {"vfork", [](spawn::Options& o) { o.strategy = Strategy::vfork; }},
    {"fork", [](spawn::Options& o) { o.strategy = Strategy::fork; }},
    {"posix_spawn", [](spawn::Options& o) { o.strategy = Strategy::posix_spawn; }},
    {"automatic_ignoring_a_signal", [](spawn::Options& o) { o.ignore_signals = {SIGUSR2}; }},
    {"clone3_ignoring_a_signal",
     [](spawn::Options& o) {
       o.strategy = Strategy::clone3;
       o.ignore_signals = {SIGUSR2};
     }},
    {"automatic_with_a_child_mask",
     [](spawn::Options& o) {
       sigset_t s;
       sigemptyset(&s);
       sigaddset(&s, SIGHUP);
       o.signal_mask = s;
     }},
    {"automatic_forking_for_a_user_namespace", [](spawn::Options& o) { o.namespaces = CLONE_NEWUSER; }},
};

void PrintTo(const MaskPath& m, std::ostream* os) { *os << m.name; }

class SpawnMaskRestored : public ::testing::TestWithParam<MaskPath> {};

TEST_P(SpawnMaskRestored, the_callers_signal_mask_is_the_same_after_spawn_returns) {
  auto o = command({"/bin/true"});
  GetParam().set(o);
  if (o.namespaces & CLONE_NEWUSER) {
    auto probe = spawn::spawn(o);
    if (!probe && probe.error().err == EPERM && geteuid() != 0)
      GTEST_SKIP() << "unprivileged user namespaces are disabled: " << probe.error().message;
  }
  EXPECT_EQ(mask_changes(o), "");
}

INSTANTIATE_TEST_SUITE_P(All, SpawnMaskRestored, ::testing::ValuesIn(kMaskPaths),
                         [](const auto& i) { return std::string(i.param.name); });

// The automatic strategy's fallback to clone blocks signals as well.
TEST(SpawnBasic, the_callers_signal_mask_is_the_same_after_the_fallback_to_clone) {
  auto changed = with_clone3_refused([]() -> std::string {
    auto o = command({"/bin/true"});
    auto c = spawn::spawn(o);
    if (!c) return c.error().message;
    if (c->strategy() != Strategy::clone_vfork) return std::string("ran ") + strategy_name(c->strategy());
    (void)c->wait();
    auto diff = mask_changes(o);
    return diff.empty() ? "restored" : diff;
  });
  EXPECT_EQ(changed, "restored");
}

TEST(SpawnBasic, names_round_trip) {
  EXPECT_EQ(strategy_from_name("auto"), Strategy::automatic);
  EXPECT_EQ(strategy_from_name("clone"), Strategy::clone_vfork);
  EXPECT_EQ(strategy_from_name("posix-spawn"), Strategy::posix_spawn);
  EXPECT_FALSE(strategy_from_name("spoon"));
  EXPECT_EQ(rlimit_from_name("nofile"), RLIMIT_NOFILE);
  EXPECT_EQ(rlimit_from_name("RLIMIT_AS"), RLIMIT_AS);
  EXPECT_STREQ(rlimit_name(RLIMIT_STACK), "stack");
  EXPECT_EQ(namespace_from_name("mount"), CLONE_NEWNS);
  EXPECT_EQ(namespace_from_name("time"), CLONE_NEWTIME);
}

}  // namespace
