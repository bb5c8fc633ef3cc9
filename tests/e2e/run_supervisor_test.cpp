// End-to-end tests of `procforge run` as a supervisor: signals sent to
// procforge reach the program, a timeout ends the program's whole process
// group (no survivors) and exits 124 as timeout(1) does, output redirections
// keep the order of 2>&1, and a failed exec gets explain's why and fix.
#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "procforge/spawn.hpp"
#include "support/procforge_cli.hpp"
#include "support/temp_dir_test.hpp"

namespace {

using namespace std::chrono_literals;
using procforge::spawn::Child;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Whether PID is gone (or only a zombie waiting for its new parent), after
// waiting up to two seconds for init to reap it.
bool process_gone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class RunSupervisor : public procforge::testing::TempDirTest {
 protected:
  // Starts procforge ARGS... with stdout and stderr in files.
  Child start(const std::vector<std::string>& args) {
    return procforge::testing::start_procforge(args, dir + "/.out", dir + "/.err");
  }
  // procforge's shell status; fails the test if it takes more than 20 s.
  int finish(Child& c) {
    auto e = c.wait(20s);
    EXPECT_TRUE(e.ok());
    if (!e) return -1;
    EXPECT_FALSE(e->timed_out) << "procforge itself did not end";
    return e->shell_status();
  }
  int run(const std::vector<std::string>& args) {
    Child c = start(args);
    return c.pid() > 0 ? finish(c) : -1;
  }
  // Waits until the program wrote its pid to FILE (it is running).
  pid_t wait_for_pid_file(const std::string& file) {
    for (int i = 0; i < 500; ++i) {
      std::string s = slurp(file);
      if (!s.empty() && s.back() == '\n') return std::stoi(s);
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "the program never wrote " << file;
    return -1;
  }
  std::string err() { return slurp(dir + "/.err"); }
  std::string out() { return slurp(dir + "/.out"); }
};

TEST_F(RunSupervisor, timeout_ends_the_whole_process_group_and_exits_124) {
  const std::string pidfile = dir + "/bg.pid";
  int status = run({"run", "--timeout", "300ms", "--", "/bin/sh", "-c", "sleep 30 & echo $! > " + pidfile + "; wait"});
  EXPECT_EQ(status, 124) << err();
  EXPECT_NE(err().find("timed out after 300ms; sent SIGTERM to its process group"), std::string::npos) << err();
  pid_t bg = std::stoi(slurp(pidfile));
  EXPECT_TRUE(process_gone(bg)) << "the background sleep " << bg << " survived the timeout";
  if (!process_gone(bg)) kill(bg, SIGKILL);
}

TEST_F(RunSupervisor, kill_after_kills_a_group_that_ignores_the_timeout_signal) {
  const std::string pidfile = dir + "/bg.pid";
  const auto t0 = std::chrono::steady_clock::now();
  // The ignored TERM is inherited by the background sleep as well.
  int status = run({"run", "--timeout", "200ms", "--kill-after", "300ms", "--", "/bin/sh", "-c",
                    "trap '' TERM; sleep 30 & echo $! > " + pidfile + "; wait; sleep 30"});
  const auto took = std::chrono::steady_clock::now() - t0;
  // As timeout(1) -k: 128+9 when SIGKILL was needed.
  EXPECT_EQ(status, 128 + SIGKILL) << err();
  EXPECT_NE(err().find("sent SIGTERM to its process group, then SIGKILL after 300ms"), std::string::npos) << err();
  EXPECT_GE(took, 500ms);
  pid_t bg = std::stoi(slurp(pidfile));
  EXPECT_TRUE(process_gone(bg)) << "the background sleep " << bg << " survived --kill-after";
  if (!process_gone(bg)) kill(bg, SIGKILL);
}

TEST_F(RunSupervisor, kill_signal_chooses_the_timeout_signal) {
  int status = run({"run", "--timeout", "200ms", "--kill-signal", "USR1", "--", "/bin/sh", "-c",
                    "trap 'echo got USR1; exit 5' USR1; sleep 30 & wait"});
  EXPECT_EQ(status, 124) << err();
  EXPECT_EQ(out(), "got USR1\n");
}

TEST_F(RunSupervisor, inherit_signals_gives_the_program_procforges_mask_not_the_forwarded_set) {
  // procforge starts here with an empty mask (spawn's default); its forwarded
  // signals are blocked only in procforge itself.
  EXPECT_EQ(run({"run", "--inherit-signals", "--", "/bin/sh", "-c", "grep SigBlk /proc/self/status"}), 0) << err();
  EXPECT_EQ(out(), "SigBlk:\t0000000000000000\n");
  EXPECT_EQ(run({"run", "--inherit-signals", "--timeout", "300ms", "--", "/bin/sleep", "30"}), 124) << err();
}

TEST_F(RunSupervisor, a_real_time_timeout_signal_is_named_by_number_and_the_report_follows) {
  EXPECT_EQ(run({"run", "--report", "--timeout", "200ms", "--kill-signal", "40", "--", "/bin/sleep", "30"}), 124);
  EXPECT_NE(err().find("timed out after 200ms; sent signal 40 to its process group\n"), std::string::npos) << err();
  EXPECT_NE(err().find("strategy"), std::string::npos) << "the report after the message: " << err();
}

TEST_F(RunSupervisor, foreground_signals_the_program_only) {
  const std::string pidfile = dir + "/bg.pid";
  int status = run({"run", "--timeout", "300ms", "--foreground", "--", "/bin/sh", "-c",
                    "sleep 30 & echo $! > " + pidfile + "; wait"});
  EXPECT_EQ(status, 124) << err();
  EXPECT_NE(err().find("timed out after 300ms; sent SIGTERM\n"), std::string::npos) << err();
  pid_t bg = std::stoi(slurp(pidfile));
  EXPECT_FALSE(process_gone(bg)) << "--foreground's timeout reached the background sleep too";
  kill(bg, SIGKILL);
}

TEST_F(RunSupervisor, durations_that_make_no_sense_are_refused) {
  for (const char* bad : {"100", "-1s", "0s", "0", "5x", "s", "1e300s"}) {
    EXPECT_EQ(run({"run", "--timeout", bad, "--", "/bin/true"}), 2) << bad;
    EXPECT_NE(err().find("--timeout takes a duration above zero with its unit"), std::string::npos)
        << bad << ": " << err();
  }
  EXPECT_EQ(run({"run", "--timeout", "1s", "--kill-after", "-3s", "--", "/bin/true"}), 2);
  EXPECT_NE(err().find("--kill-after takes a duration"), std::string::npos) << err();
  EXPECT_EQ(run({"run", "--kill-after", "1s", "--", "/bin/true"}), 2);
  EXPECT_NE(err().find("go with --timeout"), std::string::npos) << err();
  EXPECT_EQ(run({"run", "--timeout", "1s", "--kill-signal", "NOPE", "--", "/bin/true"}), 2);
  EXPECT_EQ(run({"run", "--timeout", "1.5s", "--", "/bin/true"}), 0) << err();
}

// Each signal a supervisor passes on, sent to procforge by kill(2): the
// program's trap sees it and its exit status comes back.
class RunForwards : public RunSupervisor, public ::testing::WithParamInterface<int> {};

TEST_P(RunForwards, a_signal_sent_to_procforge_reaches_the_program) {
  const int sig = GetParam();
  const std::string name = sigabbrev_np(sig);
  const std::string ready = dir + "/ready";
  Child c = start({"run", "--", "/bin/sh", "-c",
                   "trap 'echo got " + name + "; exit 3' " + name + "; echo $$ > " + ready + "; sleep 30 & wait"});
  ASSERT_GT(c.pid(), 0);
  pid_t program = wait_for_pid_file(ready);
  ASSERT_GT(program, 0);
  ASSERT_EQ(kill(c.pid(), sig), 0);
  EXPECT_EQ(finish(c), 3) << err();
  EXPECT_EQ(out(), "got " + name + "\n");
}

INSTANTIATE_TEST_SUITE_P(Signals, RunForwards,
                         ::testing::Values(SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH),
                         [](const auto& i) { return std::string(sigabbrev_np(i.param)); });

TEST_F(RunSupervisor, sigterm_to_procforge_leaves_no_program_running) {
  const std::string ready = dir + "/ready";
  Child c = start({"run", "--", "/bin/sh", "-c", "echo $$ > " + ready + "; exec sleep 30"});
  ASSERT_GT(c.pid(), 0);
  pid_t program = wait_for_pid_file(ready);
  ASSERT_EQ(kill(c.pid(), SIGTERM), 0);
  EXPECT_EQ(finish(c), 128 + SIGTERM) << err();
  EXPECT_TRUE(process_gone(program));
}

TEST_F(RunSupervisor, stderr_onto_stdout_keeps_the_order_of_the_writes) {
  const std::string f = dir + "/o.txt";
  const std::string script = "echo 1; echo 2 >&2; echo 3; echo 4 >&2";
  EXPECT_EQ(run({"run", "--stdout", f, "--stderr", "stdout", "--", "/bin/sh", "-c", script}), 0) << err();
  EXPECT_EQ(slurp(f), "1\n2\n3\n4\n");
  // The same file named twice is opened once: neither stream overwrites the other.
  EXPECT_EQ(run({"run", "--stdout", f, "--stderr", dir + "/./o.txt", "--", "/bin/sh", "-c", script}), 0) << err();
  EXPECT_EQ(slurp(f), "1\n2\n3\n4\n");
  EXPECT_EQ(run({"run", "--append", "--stdout", f, "--stderr", "stdout", "--", "/bin/sh", "-c", "echo 5; echo 6 >&2"}),
            0);
  EXPECT_EQ(slurp(f), "1\n2\n3\n4\n5\n6\n");
  // 2>&1 onto procforge's own stdout.
  EXPECT_EQ(run({"run", "--stderr", "stdout", "--", "/bin/sh", "-c", script}), 0);
  EXPECT_EQ(out(), "1\n2\n3\n4\n");
  EXPECT_EQ(err(), "");
}

TEST_F(RunSupervisor, a_failed_exec_gets_explains_why_and_fix) {
  const std::string script = write("crlf.sh", "#!/bin/sh\r\necho hi\r\n", 0755);
  EXPECT_EQ(run({"run", "--", script}), 127);
  EXPECT_NE(err().find("execve " + script + ": ENOENT"), std::string::npos) << err();
  EXPECT_NE(err().find("why  the #! interpreter /bin/sh\\r does not exist: the script has Windows (CRLF) line ends"),
            std::string::npos)
      << err();
  EXPECT_NE(err().find("fix  convert the script to Unix line ends"), std::string::npos) << err();
  // The user-space exec, through run and exec, says the same.
  const std::string words = err().substr(err().find("\n  why  "));
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"run", "--loader=user", "--", script},
                                              std::vector<std::string>{"exec", "--", script}}) {
    EXPECT_EQ(run(cmd), 127) << cmd[0];
    EXPECT_EQ(err(), "procforge " + cmd[0] + ": execve " + script + ": ENOENT (No such file or directory)" + words)
        << cmd[0];
  }
  EXPECT_EQ(run({"run", "--clear-env", "--env", "PATH=" + dir, "--", "no-such-program"}), 127);
  EXPECT_NE(err().find("why  no directory of PATH (" + dir + ") holds an executable file no-such-program"),
            std::string::npos)
      << err();
}

TEST_F(RunSupervisor, ids_take_names_and_limits_take_suffixes) {
  if (geteuid() != 0) GTEST_SKIP() << "changing the uid needs root";
  const passwd* pw = getpwnam("nobody");
  const group* gr = getgrnam("nogroup");
  if (!pw || !gr) GTEST_SKIP() << "this system has no user nobody or group nogroup to name";
  const std::string ids = std::to_string(pw->pw_uid) + "\n" + std::to_string(gr->gr_gid) + "\n";
  EXPECT_EQ(run({"run", "--uid", "nobody", "--gid", "nogroup", "--rlimit", "nofile=1K", "--", "/bin/sh", "-c",
                 "id -u; id -g; ulimit -n"}),
            0)
      << err();
  EXPECT_EQ(out(), ids + "1024\n");
  EXPECT_EQ(err(), "");
  EXPECT_EQ(run({"run", "--uid", "nobody", "--", "/bin/true"}), 0);
  EXPECT_NE(err().find("warning: --uid without --gid keeps the group id"), std::string::npos) << err();
  EXPECT_EQ(run({"run", "--uid", "no-such-user-here", "--", "/bin/true"}), 2);
  EXPECT_NE(err().find("--uid takes a user name or id"), std::string::npos) << err();
}

TEST_F(RunSupervisor, a_cgroup_limit_without_a_cgroup_names_the_missing_flag) {
  EXPECT_EQ(run({"run", "--memory-max", "1M", "--", "/bin/true"}), 2);
  EXPECT_NE(err().find("--memory-max needs --cgroup PATH"), std::string::npos) << err();
}

}  // namespace
