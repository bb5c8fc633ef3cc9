// End-to-end tests of the real `procforge` binary: exit statuses, the --json
// contract, bad input (FIFOs, unreadable and huge files, bad flags) that
// must give a clear message and never a hang or a crash, and the exec and
// explain flags compared with what the kernel does (its maps under setarch -R,
// its answer to an exec as another identity).
#include <gnu/libc-version.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/probe_copy.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir_test.hpp"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status = -1;  // exit status, or 128+signal
  std::string out, err;
  bool timed_out = false;
};

// Runs procforge with args (optionally under another uid), 20 s at most.
Outcome run(const std::vector<std::string>& args, const std::string& stdin_text = "", uid_t as_uid = 0) {
  // Another user may not be able to enter the build tree: it runs a copy.
  std::string why;
  const std::string binary =
      as_uid ? procforge::testsupport::executable_for_anyone(PROCFORGE_BINARY, &why) : PROCFORGE_BINARY;
  if (binary.empty()) {
    ADD_FAILURE() << why;
    return {};
  }
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  procforge::testsupport::CommandOptions o;
  o.inherit_env = true;
  o.stdin_text = stdin_text;
  o.timeout_ms = 20000;
  if (as_uid) {
    o.uid = as_uid;
    o.gid = as_uid;
    o.groups = std::vector<gid_t>{};
  }
  const auto r = procforge::testsupport::run_command(argv, o);
  if (!r.started) ADD_FAILURE() << "cannot run " << binary << ": " << r.err;
  return {r.signal != 0 ? 128 + r.signal : r.exit_code, r.out, r.err, r.timed_out};
}

class Cli : public procforge::testing::TempDirTest {};

TEST_F(Cli, no_arguments_prints_a_short_usage_and_exits_2) {
  Outcome r = run({});
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("usage: procforge SUBCOMMAND", 0), 0u) << r.err;
  for (const char* sub : {"explain", "run", "exec", "profile", "batch", "bench", "version", "demo"})
    EXPECT_NE(r.err.find("\n  " + std::string(sub) + " "), std::string::npos) << sub;
  EXPECT_LT(std::count(r.err.begin(), r.err.end(), '\n'), 20) << "a short usage";
}

TEST_F(Cli, version_names_the_build_the_kernel_and_glibc) {
  Outcome v = run({"--version"});
  EXPECT_EQ(v.status, 0) << v.err;
  EXPECT_EQ(v.out.rfind("procforge 0.", 0), 0u) << v.out;
  Outcome j = run({"version", "--json"});
  ASSERT_EQ(j.status, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(doc["kernel"], u.release);
  EXPECT_EQ(doc["glibc"], gnu_get_libc_version());
  EXPECT_EQ(v.out.substr(0, v.out.find(' ', 10)), "procforge " + doc["procforge_version"].get<std::string>());
  // Subcommands' usage lines carry the program's name.
  Outcome help = run({"explain", "--help"});
  EXPECT_NE(help.out.find("Usage: procforge explain"), std::string::npos) << help.out;
}

TEST_F(Cli, demo_explains_a_program_and_a_script_chain) {
  Outcome r = run({"demo"});
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("procforge explain /usr/bin/ls"), std::string::npos);
  EXPECT_NE(r.out.find("#! \"/bin/sh\" arg \"-e\""), std::string::npos) << r.out;
  // Each at explain's default: the verdict and the libraries, and where the rest is.
  EXPECT_NE(r.out.find("\ndynamic linker"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libc.so.6 => "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("auxv, in the kernel's order"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  -v adds the checks"), std::string::npos) << r.out;
}

TEST_F(Cli, json_contract_for_a_script_chain) {
  std::string inner = write("inner", "#!/bin/sh\necho hi\n", 0755);
  std::string outer = write("outer", "#!" + inner + " -x\n", 0755);
  Outcome r = run({"explain", "--json", outer, "a1"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["execve"]["result"], "ok");
  EXPECT_TRUE(j["execve"]["errno"].is_null());
  EXPECT_EQ(j["execve"]["argv"], (std::vector<std::string>{"/bin/sh", inner, "-x", outer, "a1"}));
  ASSERT_EQ(j["execve"]["chain"].size(), 3u);
  EXPECT_EQ(j["execve"]["chain"][0]["kind"], "script");
  EXPECT_EQ(j["execve"]["chain"][0]["interpreter"], inner);
  EXPECT_EQ(j["execve"]["chain"][0]["arg"], "-x");
  EXPECT_EQ(j["execve"]["chain"][1]["kind"], "script");
  EXPECT_EQ(j["execve"]["chain"][2]["kind"], "elf");
  EXPECT_TRUE(j.contains("elf") && j.contains("mappings") && j.contains("auxv"));
  EXPECT_FALSE(j["auxv"].empty());
}

TEST_F(Cli, missing_program_exits_1_with_enoent) {
  Outcome r = run({"explain", "--json", dir + "/nope"});
  EXPECT_EQ(r.status, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["execve"]["result"], "errno");
  EXPECT_EQ(j["execve"]["errno"], "ENOENT");
}

TEST_F(Cli, crlf_script_is_diagnosed_with_the_fix) {
  std::string s = write("crlf.sh", "#!/bin/sh\r\necho hi\r\n", 0755);
  Outcome r = run({"explain", s});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("ENOENT"), std::string::npos);
  EXPECT_NE(r.out.find("CRLF"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dos2unix"), std::string::npos);
}

TEST_F(Cli, fifo_is_refused_without_hanging) {
  std::string f = dir + "/fifo";
  ASSERT_EQ(mkfifo(f.c_str(), 0755), 0);
  Outcome r = run({"explain", "--json", f});
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(nlohmann::json::parse(r.out)["execve"]["errno"], "EACCES");
}

TEST_F(Cli, huge_sparse_file_is_answered_quickly) {
  std::string p = write("huge",
                        "\x7f"
                        "ELF",
                        0755);
  ASSERT_EQ(truncate(p.c_str(), 64ll << 30), 0);
  auto t0 = std::chrono::steady_clock::now();
  Outcome r = run({"explain", "--json", p});
  ASSERT_FALSE(r.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(nlohmann::json::parse(r.out)["execve"]["errno"], "ENOEXEC");
}

TEST_F(Cli, unreadable_but_executable_file_gives_a_clear_message_and_status_2) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run procforge as another user";
  std::string p = write("xonly", "#!/bin/sh\n", 0711);
  Outcome r = run({"explain", p}, "", 65534);
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("EACCES"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("without read permission"), std::string::npos) << r.err;
}

TEST_F(Cli, bad_flag_exits_2_with_a_message) {
  Outcome r = run({"explain", "--no-such-flag", "/bin/true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_FALSE(r.err.empty());
  Outcome r2 = run({"explain", "--env", "NOEQUALS", "/bin/true"});
  EXPECT_EQ(r2.status, 2);
  EXPECT_NE(r2.err.find("KEY=VALUE"), std::string::npos) << r2.err;
  Outcome r3 = run({"explain"});
  EXPECT_EQ(r3.status, 2);
}

TEST_F(Cli, environment_flags_shape_the_new_environment) {
  Outcome r = run(
      {"explain", "--json", "--show-env", "--clear-env", "--env", "A=1", "--env", "B=2", "--env", "A=3", "/bin/true"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["execve"]["envp"], (std::vector<std::string>{"B=2", "A=3"}));
  // Without --show-env the report names the keys only: pasting it leaks no value.
  Outcome keys = run({"explain", "--json", "--clear-env", "--env", "SECRET=hunter2", "/bin/true"});
  EXPECT_EQ(nlohmann::json::parse(keys.out)["execve"]["envp"], (std::vector<std::string>{"SECRET"}));
  EXPECT_EQ(keys.out.find("hunter2"), std::string::npos);
  bool found = false;
  for (auto& line : j["plan"]["stack"])
    if (line.get<std::string>().find("envp strings (2)") != std::string::npos) found = true;
  EXPECT_TRUE(found) << j["plan"]["stack"].dump();
  // --unset removes an inherited variable, as env -u does.
  ASSERT_EQ(setenv("PROCFORGE_E2E_VAR", "x", 1), 0);
  Outcome u = run({"explain", "--json", "--unset", "PROCFORGE_E2E_VAR", "/bin/true"});
  Outcome kept = run({"explain", "--json", "/bin/true"});
  unsetenv("PROCFORGE_E2E_VAR");
  auto has_var = [](const std::string& out) {
    const auto env = nlohmann::json::parse(out)["execve"]["envp"];
    return std::find(env.begin(), env.end(), "PROCFORGE_E2E_VAR") != env.end();
  };
  EXPECT_TRUE(has_var(kept.out)) << "inherited without --unset";
  EXPECT_FALSE(has_var(u.out)) << u.out;
}

TEST_F(Cli, cwd_flag_resolves_relative_programs) {
  write("tool", "#!/bin/sh\n", 0755);
  Outcome r = run({"explain", "--json", "-C", dir, "./tool"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["execve"]["argv"], (std::vector<std::string>{"/bin/sh", "./tool"}));
}

TEST_F(Cli, batch_mode_answers_every_line) {
  std::string a = write("a", "#!/bin/sh\n", 0755);
  std::string b = write("b", "text\n", 0644);
  Outcome r = run({"explain", "--batch", "-"}, a + "\n" + b + "\n" + dir + "/missing\n/dev/null\n");
  ASSERT_FALSE(r.timed_out);
  EXPECT_NE(r.out.find(a + "\tok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(b + "\terrno\tEACCES"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir + "/missing\terrno\tENOENT"), std::string::npos);
  EXPECT_NE(r.out.find("/dev/null\terrno\tEACCES"), std::string::npos);
  EXPECT_NE(r.err.find("4 files"), std::string::npos) << r.err;
}

// Whether the kernel randomizes at all (kernel.randomize_va_space != 0):
// only then can a run without --no-aslr be told from one with it.
bool kernel_randomizes() {
  std::ifstream in("/proc/sys/kernel/randomize_va_space");
  int v = 2;
  in >> v;
  if (v == 0) std::printf("[ note     ] randomize_va_space is 0: the run without --no-aslr is not compared\n");
  return v != 0;
}

// The lines of the shell's own /proc/self/maps that name path, read with
// builtins only so that no other process's maps are seen.
std::vector<std::string> maps_script_lines(const std::string& out, const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.size() > path.size() && l.compare(l.size() - path.size(), path.size(), path) == 0) lines.push_back(l);
  return lines;
}
// A first line of its own, so that every maps line follows a newline.
const char* const kPrintMaps = "echo maps; while read -r l; do echo \"$l\"; done < /proc/self/maps";

// The start addresses (hex, no 0x) of the "map" steps that map a file.
std::vector<std::string> file_map_steps(const std::string& steps) {
  std::vector<std::string> starts;
  std::istringstream in(steps);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("map ", 0) == 0 && l.find(" @0x") != std::string::npos) {
      auto a = l.find("0x");
      starts.push_back(l.substr(a + 2, l.find('-', a) - a - 2));
    }
  return starts;
}

TEST_F(Cli, exec_steps_prints_every_step_and_the_program_replaces_procforge) {
  Outcome r = run({"exec", "--steps", "--", "/bin/sh", "-c", std::string("echo ppid=$PPID; ") + kPrintMaps});
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* stage : {"dispatch ", "unmap ", "map ", "stack ", "auxv ", "entry "})
    EXPECT_TRUE(r.err.rfind(stage, 0) == 0 || r.err.find(std::string("\n") + stage) != std::string::npos)
        << "no '" << stage << "' step in:\n"
        << r.err;
  // The same process, now running the shell: its parent is still us.
  EXPECT_NE(r.out.find("ppid=" + std::to_string(getpid()) + "\n"), std::string::npos) << r.out;
  // Every file mapping a step announced is where the kernel shows one.
  auto starts = file_map_steps(r.err);
  EXPECT_GE(starts.size(), 8u) << "the shell's and ld.so's segments: " << r.err;
  for (const auto& a : starts)
    EXPECT_NE(r.out.find("\n" + a + "-"), std::string::npos) << "no mapping at 0x" << a << " in\n" << r.out;
}

// With --no-aslr the program and its stack sit where execve() puts them under
// setarch -R, run after run. (ld.so is not compared: it goes into the mmap
// area procforge already has, which user space cannot move.)
TEST_F(Cli, exec_no_aslr_maps_the_program_and_stack_where_the_kernel_does_without_aslr) {
  const std::string script = kPrintMaps;
  Outcome first = run({"exec", "--no-aslr", "--", "/bin/sh", "-c", script});
  Outcome second = run({"exec", "--no-aslr", "--", "/bin/sh", "-c", script});
  Outcome kernel = run({"run", "--", "/usr/bin/setarch", "-R", "/bin/sh", "-c", script});
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(second.status, 0) << second.err;
  ASSERT_EQ(kernel.status, 0) << kernel.err;
  const auto dash = fs::canonical("/bin/sh").string();
  auto program = maps_script_lines(first.out, dash);
  ASSERT_GE(program.size(), 3u) << first.out;
  EXPECT_EQ(program, maps_script_lines(second.out, dash));
  EXPECT_EQ(program, maps_script_lines(kernel.out, dash)) << kernel.out;
  auto stack_top = [](const std::string& out) {
    auto lines = maps_script_lines(out, "[stack]");
    return lines.empty() ? std::string("<no stack>") : lines[0].substr(lines[0].find('-'), 13);
  };
  EXPECT_EQ(stack_top(first.out), stack_top(kernel.out)) << first.out;
  EXPECT_EQ(stack_top(second.out), stack_top(kernel.out));
  // Without the flag the program moves from run to run.
  if (!kernel_randomizes()) return;
  Outcome random = run({"exec", "--", "/bin/sh", "-c", script});
  EXPECT_NE(maps_script_lines(random.out, dash), program) << random.out;
}

// explain --no-aslr gives exact addresses: the same in two runs, and for the
// program's segments those the kernel maps under setarch -R.
TEST_F(Cli, explain_no_aslr_prints_the_addresses_the_kernel_uses_without_aslr) {
  Outcome a = run({"explain", "--json", "--no-aslr", "/bin/sh"});
  Outcome b = run({"explain", "--json", "--no-aslr", "/bin/sh"});
  Outcome kernel = run({"run", "--", "/usr/bin/setarch", "-R", "/bin/sh", "-c", kPrintMaps});
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(kernel.status, 0) << kernel.err;
  auto ja = nlohmann::json::parse(a.out);
  EXPECT_EQ(ja["mappings"], nlohmann::json::parse(b.out)["mappings"]);
  EXPECT_EQ(ja["plan"], nlohmann::json::parse(b.out)["plan"]);
  std::vector<std::string> predicted;
  for (const auto& m : ja["mappings"]) {
    ASSERT_TRUE(m["address_known"].get<bool>()) << m.dump();
    if (m["object"] == "/bin/sh") predicted.push_back(m["start"].get<std::string>().substr(2));
  }
  ASSERT_GE(predicted.size(), 3u) << ja["mappings"].dump();
  for (const auto& start : predicted)
    EXPECT_NE(kernel.out.find("\n" + start + "-"), std::string::npos) << "0x" << start << " not in\n" << kernel.out;
  // Without the flag the addresses are not claimed.
  if (!kernel_randomizes()) return;
  const auto aslr = nlohmann::json::parse(run({"explain", "--json", "/bin/sh"}).out);
  ASSERT_FALSE(aslr["mappings"].empty());
  bool any_unknown = false;
  for (const auto& m : aslr["mappings"]) any_unknown |= !m["address_known"].get<bool>();
  EXPECT_TRUE(any_unknown) << aslr["mappings"].dump();
}

// --uid/--gid predict for another identity: the kernel's answer for a file
// that identity may not execute (checked by running it as that identity).
TEST_F(Cli, explain_uid_and_gid_predict_the_kernels_eacces_for_another_identity) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make files of another group and to run as another user";
  std::string owner_only = write("owner-only", "#!/bin/sh\n", 0700);
  std::string group_x = write("group-x", "#!/bin/sh\n", 0070);
  ASSERT_EQ(chown(group_x.c_str(), 0, 4242), 0);
  struct Case {
    std::string file, uid, gid, errno_name;
  };
  const Case cases[] = {
      {owner_only, "65534", "65534", "EACCES"}, {group_x, "65534", "65534", "EACCES"}, {group_x, "65534", "4242", ""}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file + " as " + c.uid + ":" + c.gid);
    Outcome e = run({"explain", "--json", "--uid", c.uid, "--gid", c.gid, c.file});
    auto j = nlohmann::json::parse(e.out);
    if (c.errno_name.empty()) {
      EXPECT_EQ(j["execve"]["result"], "ok") << e.out;
    } else {
      EXPECT_EQ(j["execve"]["errno"], c.errno_name) << e.out;
    }
    // The kernel, asked as that identity.
    Outcome k = run({"run", "--uid", c.uid, "--gid", c.gid, "--", c.file});
    EXPECT_EQ(k.status, c.errno_name.empty() ? 0 : 126) << k.err;
    if (!c.errno_name.empty()) {
      EXPECT_NE(k.err.find(": " + c.errno_name), std::string::npos) << k.err;
    }
  }
  // The same files as ourselves (root): no refusal.
  EXPECT_EQ(nlohmann::json::parse(run({"explain", "--json", owner_only}).out)["execve"]["result"], "ok");
}

}  // namespace

// `procforge bench spawn`: every strategy on a tiny budget, the --json
// contract, and flags it must refuse. The static target is the project's
// procforge-exit0 when the benchmarks are built, else /bin/true.
TEST_F(Cli, bench_spawn_runs_every_strategy_and_reports_json) {
  const fs::path exit0 = fs::path(PROCFORGE_BINARY).parent_path() / "bench" / "procforge-exit0";
  std::vector<std::string> args{"bench", "spawn", "--json", "--runs", "3", "--rss", "0"};
  if (!fs::exists(exit0)) {
    std::printf("[ note     ] %s not built (PROCFORGE_BENCH=OFF): /bin/true is the static target\n", exit0.c_str());
    args.insert(args.end(), {"--static-target", "/bin/true"});
  }
  auto r = run(args);
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["results"].is_array());
  std::set<std::string> strategies;
  for (const auto& s : j["results"]) {
    strategies.insert(s["strategy"].get<std::string>());
    EXPECT_EQ(s["runs"], 3);
    EXPECT_GT(s["median_us"].get<double>(), 0);
    EXPECT_EQ(s["parent_rss_mib"], 0);
  }
  EXPECT_EQ(strategies, (std::set<std::string>{"procforge", "procforge-keep-ign", "posix_spawn", "fork+exec",
                                               "vfork+exec", "clone-baseline", "clone+pidfd"}));
  EXPECT_EQ(j["results"].size(), 14u) << "7 strategies x 2 targets";
  bool goal = false;
  for (const auto& q : j["ratios"])
    if (q["name"] == "procforge / posix_spawn (static, 0 MiB)") goal = q.contains("goal") && q["goal"] == 0.9;
  EXPECT_TRUE(goal) << j["ratios"].dump();

  // The text shows each ratio against its baseline, with no verdict words of the project's own goals.
  args.erase(std::find(args.begin(), args.end(), "--json"));
  auto text = run(args);
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("procforge / posix_spawn (static, 0 MiB)"), std::string::npos) << text.out;
  for (const char* word : {"MISSED", " met", "goal"}) EXPECT_EQ(text.out.find(word), std::string::npos) << word;
}

TEST_F(Cli, bench_spawn_refuses_bad_sizes_and_unknown_strategies) {
  auto sizes = run({"bench", "spawn", "--rss", "12x"});
  EXPECT_EQ(sizes.status, 2);
  EXPECT_NE(sizes.err.find("--rss"), std::string::npos) << sizes.err;
  auto strategy = run({"bench", "spawn", "--strategies", "procforge,nope"});
  EXPECT_EQ(strategy.status, 2);
  EXPECT_NE(strategy.err.find("unknown strategy 'nope'"), std::string::npos) << strategy.err;
  auto target = run({"bench", "spawn", "--static-target", dir + "/missing"});
  EXPECT_NE(target.status, 0);
  EXPECT_NE(target.err.find("missing"), std::string::npos) << target.err;
}
