// End-to-end tests of `procforge run`: the shell's exit statuses (the
// program's, 128+N, 127 not found, 126 not executable, 125 a control failed),
// the messages that name the step and errno, a clean stdout with --json, and
// --loader=user running the program through the user-space exec.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "procforge/spawn.hpp"
#include "support/procforge_cli.hpp"
#include "support/temp_dir_test.hpp"
#include "support/probe_copy.hpp"

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
};

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
  EXPECT_NE(r.err.find("never_fork"), std::string::npos) << r.err;
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

}  // namespace
