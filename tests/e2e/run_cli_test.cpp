// End-to-end tests of `procforge run`: the shell's exit statuses (the
// program's, 128+N, 127 not found, 126 not executable, 125 a control failed),
// the messages that name the step and errno, a clean stdout with --json, and
// --loader=user running the program through the user-space exec, and each
// control flag checked on what the program's process shows (probe_state or
// the program's own /proc reads), never on what procforge says it did.
#include <gtest/gtest.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "procforge/spawn.hpp"
#include "support/probe_copy.hpp"
#include "support/procforge_cli.hpp"
#include "support/temp_dir_test.hpp"
#include "unit/spawn_test_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Outcome {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

class RunCli : public procforge::testing::TempDirTest {
 protected:
  // procforge ARGS..., stdout and stderr captured in files, 20 s at most.
  Outcome procforge(std::vector<std::string> args) {
    auto c = procforge::testing::start_procforge(args, dir + "/.out", dir + "/.err");
    if (c.pid() <= 0) return {};
    auto e = c.wait(20s);
    EXPECT_TRUE(e.ok());
    EXPECT_FALSE(e->timed_out);
    return {e->shell_status(), slurp(dir + "/.out"), slurp(dir + "/.err")};
  }

  static inline const std::string kProbe = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
};

// What probe_state, run by procforge, found in its process.
spawn_test::Facts facts_of(const Outcome& r) {
  auto f = spawn_test::parse_facts(r.out);
  EXPECT_TRUE(f.complete()) << "probe output:\n" << r.out << "\nstderr:\n" << r.err;
  return f;
}

TEST_F(RunCli, program_status_is_passed_through) {
  auto r = procforge({"run", "--", "/bin/sh", "-c", "echo out; exit 42"});
  EXPECT_EQ(r.status, 42);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(RunCli, program_flags_are_not_taken_for_ours) {
  auto r = procforge({"run", "/bin/echo", "--json", "-C", "x"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "--json -C x\n");
}

TEST_F(RunCli, killed_by_signal_is_128_plus_n) {
  auto r = procforge({"run", "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.status, 128 + 9);
}

TEST_F(RunCli, missing_program_is_127_with_the_step_and_errno) {
  auto r = procforge({"run", "--", dir + "/nope"});
  EXPECT_EQ(r.status, 127);
  EXPECT_EQ(first_line(r.err), "procforge run: execve " + dir + "/nope: ENOENT (No such file or directory)");
  EXPECT_NE(r.err.find("\n  why  the program " + dir + "/nope does not exist\n"), std::string::npos) << r.err;
}

TEST_F(RunCli, program_not_in_path_is_127) {
  auto r = procforge({"run", "--env", "PATH=" + dir, "--", "procforge-no-such-program"});
  EXPECT_EQ(r.status, 127);
  EXPECT_EQ(first_line(r.err), "procforge run: execve procforge-no-such-program: ENOENT (No such file or directory)");
}

TEST_F(RunCli, non_executable_file_is_126_eacces) {
  auto p = write("data", "#!/bin/sh\n", 0644);
  auto r = procforge({"run", "--", p});
  EXPECT_EQ(r.status, 126);
  EXPECT_EQ(first_line(r.err), "procforge run: execve " + p + ": EACCES (Permission denied)");
  EXPECT_NE(r.err.find("\n  fix  chmod +x " + p + "\n"), std::string::npos) << r.err;
}

TEST_F(RunCli, unknown_format_is_126_enoexec) {
  auto p = write("junk", "no interpreter line\n", 0755);
  auto r = procforge({"run", "--", p});
  EXPECT_EQ(r.status, 126);
  EXPECT_EQ(first_line(r.err), "procforge run: execve " + p + ": ENOEXEC (Exec format error)");
  EXPECT_NE(r.err.find("it is neither an ELF file nor a #! script"), std::string::npos) << r.err;
}

TEST_F(RunCli, failed_control_is_125_and_named) {
  auto r = procforge({"run", "-C", dir + "/missing", "--", "/bin/true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, "procforge run: changing directory to " + dir + "/missing: ENOENT (No such file or directory)\n");
}

TEST_F(RunCli, json_report_goes_to_stderr_and_stdout_stays_the_programs) {
  auto r = procforge({"run", "--json", "--", "/bin/echo", "hello"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "hello\n");
  auto j = nlohmann::json::parse(r.err);
  EXPECT_EQ(j["status"], 0);
  EXPECT_EQ(j["exit"]["exited"], true);
  EXPECT_TRUE(j["strategy"].is_string());
  EXPECT_GT(j["timings_ns"]["spawn_total"].get<long long>(), 0);
  EXPECT_TRUE(j["rusage"].contains("maxrss_kib"));
}

TEST_F(RunCli, report_file_holds_the_json) {
  auto r = procforge({"run", "--report-file", dir + "/rep.json", "--strategy", "fork", "--", "/bin/true"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
  auto j = nlohmann::json::parse(slurp(dir + "/rep.json"));
  EXPECT_EQ(j["strategy"], "fork");
}

TEST_F(RunCli, timeout_ends_the_program_with_status_124) {
  auto r = procforge({"run", "--timeout", "100ms", "--", "/bin/sleep", "30"});
  EXPECT_EQ(r.status, 124);
  EXPECT_NE(r.err.find("timed out after 100ms"), std::string::npos) << r.err;
}

TEST_F(RunCli, never_fork_refuses_fork) {
  auto r = procforge({"run", "--never-fork", "--strategy", "fork", "--", "/bin/true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, "procforge run: never_fork is set and the fork strategy was asked for (Operation not permitted)\n");
}

TEST_F(RunCli, controls_reach_the_program) {
  auto r = procforge({"run", "--clear-env", "--env", "A=1", "--rlimit", "nofile=64:128", "--umask", "027", "--stdin",
                      "null", "--", "/bin/sh", "-c", "echo $A; ulimit -n; ulimit -Hn; umask; cat"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "1\n64\n128\n0027\n");
}

TEST_F(RunCli, stdout_to_a_file) {
  auto r = procforge({"run", "--stdout", dir + "/o.txt", "--", "/bin/echo", "into the file"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(slurp(dir + "/o.txt"), "into the file\n");
}

TEST_F(RunCli, bad_values_are_usage_errors) {
  EXPECT_EQ(procforge({"run", "--rlimit", "bogus=1", "--", "/bin/true"}).status, 2);
  EXPECT_EQ(procforge({"run", "--ns", "bogus", "--", "/bin/true"}).status, 2);
  EXPECT_EQ(procforge({"run", "--strategy", "spoon", "--", "/bin/true"}).status, 2);
  EXPECT_EQ(procforge({"run"}).status, 2);
}

TEST_F(RunCli, user_loader_runs_the_program_with_its_status_and_output) {
  auto r = procforge({"run", "--loader=user", "--", "/bin/sh", "-c", "echo via-user-exec; exit 7"});
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "via-user-exec\n");
}

TEST_F(RunCli, user_loader_takes_the_identity_last_and_still_sets_the_exe_link) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  auto r = procforge({"run", "--loader=user", "--uid", "65534", "--gid", "65534", "--", "/bin/sh", "-c",
                      "id -u; readlink /proc/$$/exe"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "65534\n/usr/bin/dash\n");
}

TEST_F(RunCli, user_loader_reports_the_kernels_errno_before_the_point_of_no_return) {
  auto r = procforge({"run", "--loader=user", "--", "/nonexistent/prog"});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.err.find("ENOENT"), std::string::npos) << r.err;
  auto bad = procforge({"run", "--loader=bogus", "--", "/bin/true"});
  EXPECT_EQ(bad.status, 2);
}

// The same controls through both loaders: what probe_state sees of its
// process (fds, signal mask and dispositions, limits, ids, cwd, umask,
// namespaces, cgroup...) must be the same but for its pid, its parent's,
// its session and group ids, the path of the per-run output file behind
// fds 1 and 2, and how many processes /proc shows (the machine's business).
TEST_F(RunCli, user_loader_and_kernel_exec_leave_the_same_process_state) {
  std::string why;
  const std::string probe = procforge::testsupport::probe_for_anyone("probe_state", &why);  // run as 65534 too
  ASSERT_FALSE(probe.empty()) << why;
  std::vector<std::vector<std::string>> controls{
      {},
      {"--rlimit", "nofile=100:200", "-C", "/usr", "--umask", "077", "--env", "EXTRA=1", "--unset", "HOME"},
      {"--inherit-signals", "--no-new-privs", "--setsid"},
  };
  if (geteuid() == 0) controls.push_back({"--uid", "65534", "--gid", "65534", "--keep-fd", "0"});
  auto comparable = [](const std::string& text) {
    std::string out, line;
    std::istringstream in(text);
    while (std::getline(in, line))
      if (line.rfind("fd[1]=", 0) != 0 && line.rfind("fd[2]=", 0) != 0 && line.rfind("pid=", 0) != 0 &&
          line.rfind("ppid=", 0) != 0 && line.rfind("sid=", 0) != 0 && line.rfind("pgid=", 0) != 0 &&
          line.rfind("proc_pids=", 0) != 0)
        out += line + "\n";
    return out;
  };
  for (const auto& c : controls) {
    std::vector<std::string> kernel{"run"}, user{"run", "--loader=user"};
    for (const auto& a : c) kernel.push_back(a), user.push_back(a);
    kernel.insert(kernel.end(), {"--", probe, "x"});
    user.insert(user.end(), {"--", probe, "x"});
    auto k = procforge(kernel);
    auto u = procforge(user);
    std::string what;
    for (const auto& a : c) what += a + " ";
    ASSERT_EQ(k.status, 0) << what << k.err;
    ASSERT_EQ(u.status, 0) << what << u.err;
    ASSERT_NE(k.out.find("end"), std::string::npos) << what;
    EXPECT_EQ(comparable(u.out), comparable(k.out)) << "controls: " << what;
  }
}

// ---------------------------------------------------------------- controls, as the kernel shows them

TEST_F(RunCli, ns_uts_gives_the_program_a_uts_namespace_of_its_own) {
  if (!spawn_test::is_root()) GTEST_SKIP() << "a new uts namespace needs CAP_SYS_ADMIN";
  auto r = procforge({"run", "--ns", "uts", "--hostname", "pf-e2e-uts", "--", kProbe});
  ASSERT_EQ(r.status, 0) << r.err;
  auto f = facts_of(r);
  EXPECT_NE(f.get("ns.uts"), spawn_test::own_ns("uts"));
  EXPECT_EQ(f.get("hostname"), "pf-e2e-uts");
  EXPECT_EQ(f.get("ns.net"), spawn_test::own_ns("net")) << "only the uts namespace was asked for";
  // Without the flag the probe reports our own namespace, in the same spelling.
  EXPECT_EQ(facts_of(procforge({"run", "--", kProbe})).get("ns.uts"), spawn_test::own_ns("uts"));
}

TEST_F(RunCli, pgid_puts_the_program_in_that_process_group) {
  // A group to join, in our session: a sleeping process of ours leads it.
  procforge::spawn::Options lead;
  lead.path = "/bin/sleep";
  lead.argv = {"sleep", "30"};
  lead.process_group = 0;
  auto leader = procforge::spawn::spawn(lead);
  ASSERT_TRUE(leader.ok()) << leader.error().message;
  const std::string group = std::to_string(leader->pid());
  auto r = procforge({"run", "--pgid", group, "--", kProbe});
  ASSERT_EQ(r.status, 0) << r.err;
  auto f = facts_of(r);
  EXPECT_EQ(f.get("pgid"), group);
  EXPECT_NE(f.get("pid"), group);
  auto own = facts_of(procforge({"run", "--pgid", "0", "--", kProbe}));
  EXPECT_EQ(own.get("pgid"), own.get("pid")) << "--pgid 0: a group of its own";
}

TEST_F(RunCli, nice_shows_in_the_programs_proc_stat) {
  errno = 0;
  const int ours = getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  const int want = ours < 19 ? 19 : 18;  // away from ours, so that an ignored --nice shows
  if (want < ours && !spawn_test::is_root()) GTEST_SKIP() << "lowering the nice value needs CAP_SYS_NICE";
  // Field 19 of /proc/self/stat, read by the shell itself.
  auto r = procforge({"run", "--nice", std::to_string(want), "--", "/bin/sh", "-c",
                      "read -r s < /proc/self/stat; set -- $s; echo ${19}"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::to_string(want) + "\n");
}

TEST_F(RunCli, stderr_file_gets_the_programs_stderr_truncated) {
  auto file = write("err.txt", "an older and longer content\n", 0644);
  auto r = procforge({"run", "--stderr", file, "--", "/bin/sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(slurp(file), "err\n");
}

TEST_F(RunCli, groups_sets_the_programs_supplementary_groups) {
  if (!spawn_test::is_root()) GTEST_SKIP() << "setting ids and groups needs CAP_SETUID/CAP_SETGID";
  std::string why;
  const std::string probe = procforge::testsupport::probe_for_anyone("probe_state", &why);  // run as 65534
  ASSERT_FALSE(probe.empty()) << why;
  auto f = facts_of(procforge({"run", "--uid", "65534", "--gid", "65534", "--groups", "100,4242", "--", probe}));
  EXPECT_EQ(f.get("uid"), "65534,65534,65534");
  EXPECT_EQ(f.get("gid"), "65534,65534,65534");
  EXPECT_EQ(f.get("groups"), "100,4242");
  auto none = facts_of(procforge({"run", "--uid", "65534", "--gid", "65534", "--", probe}));
  EXPECT_EQ(none.get("groups"), "") << "with --uid/--gid and no --groups: none";
}

TEST_F(RunCli, cgroup_runs_the_program_in_a_cgroup_it_creates_and_removes_afterwards) {
  if (!spawn_test::is_root()) GTEST_SKIP() << "creating cgroups needs root";
  const std::string mount = spawn_test::cgroup2_mount();
  if (mount.empty())
    GTEST_SKIP() << "no cgroup2 hierarchy is mounted (neither /sys/fs/cgroup/unified nor /sys/fs/cgroup)";
  // Membership needs no controller; the test's own new directory holds procforge's.
  spawn_test::OwnCgroup parent(mount, /*create=*/true);
  ASSERT_FALSE(parent.path().empty()) << parent.why();
  const std::string inner = parent.path() + "/run";
  auto r = procforge({"run", "--cgroup", inner, "--", kProbe});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(spawn_test::cgroup_of(facts_of(r), ""), parent.name() + "/run");
  EXPECT_FALSE(spawn_test::is_dir(inner)) << "procforge created it, so it removes it after the run";
}

TEST_F(RunCli, pdeathsig_signals_the_program_when_procforge_dies) {
  // As child subreaper we adopt the program when procforge dies, and see how it ends.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  struct Unadopt {
    ~Unadopt() { prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); }
  } unadopt;
  auto pf = procforge::testing::start_procforge(
      {"run", "--pdeathsig", "TERM", "--", "/bin/sh", "-c", "echo $$; exec /bin/sleep 30"}, dir + "/.out",
      dir + "/.err");
  ASSERT_GT(pf.pid(), 0);
  // The pid appears once the program runs, its parent-death signal already set.
  pid_t program = 0;
  for (int i = 0; i < 2000 && program == 0; ++i) {
    program = static_cast<pid_t>(std::atoi(slurp(dir + "/.out").c_str()));
    if (program == 0) usleep(10000);
  }
  ASSERT_GT(program, 0) << "the program never printed its pid; stderr: " << slurp(dir + "/.err");
  ASSERT_TRUE(pf.kill(SIGKILL).ok());
  ASSERT_TRUE(pf.wait().ok());
  int st = 0;
  pid_t w = 0;
  for (int i = 0; i < 1000 && w == 0; ++i) {
    w = waitpid(program, &st, WNOHANG);
    if (w == 0) usleep(10000);
  }
  if (w == 0) {
    kill(program, SIGKILL);
    waitpid(program, &st, 0);
    FAIL() << "the program outlived procforge by 10 s: no parent-death signal";
  }
  ASSERT_EQ(w, program) << std::strerror(errno);
  ASSERT_TRUE(WIFSIGNALED(st)) << "exit status " << WEXITSTATUS(st);
  EXPECT_EQ(WTERMSIG(st), SIGTERM);
}

TEST_F(RunCli, report_prints_the_strategy_pid_and_timings_on_stderr) {
  auto r = procforge({"run", "--report", "--strategy", "fork", "--", kProbe});
  ASSERT_EQ(r.status, 0) << r.err;
  auto f = facts_of(r);
  EXPECT_NE(r.err.find("  strategy: fork, pid " + f.get("pid") + "\n"), std::string::npos) << r.err;
  auto at = r.err.find("  timings:");
  ASSERT_NE(at, std::string::npos) << r.err;
  double prepare = -1, clone_to_exec = -1, total = -1;
  ASSERT_EQ(std::sscanf(r.err.c_str() + at, "  timings:  prepare %lf us, clone to exec %lf us, spawn total %lf us",
                        &prepare, &clone_to_exec, &total),
            3)
      << r.err;
  EXPECT_GT(prepare, 0);
  EXPECT_GT(clone_to_exec, 0);
  EXPECT_GE(total, prepare + clone_to_exec) << r.err;
  EXPECT_NE(r.err.find("  exit:     status 0"), std::string::npos) << r.err;
  EXPECT_EQ(procforge({"run", "--", "/bin/true"}).err, "") << "no report without --report";
}

}  // namespace
