// Warm starts against cold starts: the same command spawned cold (spawn::spawn,
// a real execve) and warm (an instance of a template) must look the same to
// the program and to its caller: stdout, stderr, exit status, and what the
// program sees of its argv, environment and /proc. What should happen is
// never written here: the cold start decides. Each rule that sends a spawn
// cold is made to fire by a program built for it.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "procforge/spawn.hpp"
#include "procforge/warm.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"

namespace procforge {
namespace {

using testsupport::FixtureDir;

const std::string kProbe = std::string(PROCFORGE_PROBE_DIR) + "/warm_probe";

struct Ran {
  bool started = false;
  std::string error;  // spawn's error message when !started
  int status = -1;    // shell status
  std::string out, err;
};

// Runs o through `how` with stdout and stderr captured, draining both.
Ran run(const std::function<Result<spawn::Child>(const spawn::Options&)>& how, spawn::Options o,
        int timeout_ms = 10000) {
  o.stdout_.kind = spawn::Stdio::Kind::pipe;
  o.stderr_.kind = spawn::Stdio::Kind::pipe;
  Ran r;
  auto c = how(o);
  if (!c) {
    r.error = c.error().message;
    return r;
  }
  r.started = true;
  pollfd p[2] = {{c->stdout_fd, POLLIN, 0}, {c->stderr_fd, POLLIN, 0}};
  std::string* sink[2] = {&r.out, &r.err};
  int open = 2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || poll(p, 2, static_cast<int>(left.count())) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[65536];
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n > 0) sink[i]->append(buf, static_cast<std::size_t>(n));
      else {
        p[i].fd = -1;
        --open;
      }
    }
  }
  auto e = c->wait(std::chrono::milliseconds(1000));
  r.status = e ? e->shell_status() : -1;
  if (e && e->timed_out) r.status = -2;
  return r;
}

Result<spawn::Child> cold(const spawn::Options& o) { return spawn::spawn(o); }

struct WarmRun {
  Ran ran;
  warm::Report report;
};
WarmRun run_warm(warm::Pool& pool, const spawn::Options& o, int timeout_ms = 10000) {
  WarmRun w;
  w.ran = run([&](const spawn::Options& x) { return pool.spawn(x, &w.report); }, o, timeout_ms);
  return w;
}

spawn::Options probe(std::vector<std::string> args = {}) {
  spawn::Options o;
  o.path = kProbe;
  o.argv = {kProbe};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.inherit_env = false;
  o.envp = {"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C"};
  return o;
}

void expect_same(const Ran& c, const WarmRun& w, const std::string& what) {
  if (!c.started && !w.ran.started) {  // both could not start the program: the same error
    EXPECT_EQ(c.error, w.ran.error) << what;
    return;
  }
  ASSERT_TRUE(c.started) << what << ": cold: " << c.error;
  ASSERT_TRUE(w.ran.started) << what << ": warm: " << w.ran.error;
  EXPECT_EQ(c.status, w.ran.status) << what;
  EXPECT_EQ(c.out, w.ran.out) << what;
  EXPECT_EQ(c.err, w.ran.err) << what;
}

// ---- the probe: every fact main() and /proc give ---------------------------

struct ProbeCase {
  std::string name;
  std::function<void(spawn::Options&)> edit;
};

void PrintTo(const ProbeCase& c, std::ostream* os) { *os << c.name; }

class WarmProbe : public ::testing::TestWithParam<ProbeCase> {};

TEST_P(WarmProbe, instance_sees_what_a_cold_start_sees) {
  warm::Pool pool;
  spawn::Options o = probe({"first", "two words", "", "tab\there", "é"});
  GetParam().edit(o);
  Ran c = run(cold, o);
  // Twice: the first spawn starts the template, the second reuses it.
  for (int i = 0; i < 2; ++i) {
    WarmRun w = run_warm(pool, o);
    ASSERT_TRUE(w.report.warm) << w.report.fallback_reason;
    EXPECT_EQ(w.report.template_uses, static_cast<unsigned>(i + 1));
    expect_same(c, w, GetParam().name);
    EXPECT_EQ(w.ran.out.find("LD_PRELOAD"), std::string::npos);
    EXPECT_EQ(w.ran.out.find("PROCFORGE_WARM"), std::string::npos);
    EXPECT_EQ(w.ran.out.find("procforge_warm"), std::string::npos);
  }
  // A different argv and environment from the same template.
  spawn::Options other = o;
  other.argv = {"renamed-argv0", "x"};
  other.envp.push_back("EXTRA=1");
  Ran c2 = run(cold, other);
  WarmRun w2 = run_warm(pool, other);
  ASSERT_TRUE(w2.report.warm) << w2.report.fallback_reason;
  EXPECT_FALSE(w2.report.template_started);
  expect_same(c2, w2, GetParam().name + " (second argv)");
}

std::vector<ProbeCase> probe_cases() {
  return {
      {"plain", [](spawn::Options&) {}},
      {"exit_status", [](spawn::Options& o) { o.envp.push_back("WARM_PROBE_EXIT=3"); }},
      {"stderr", [](spawn::Options& o) { o.envp.push_back("WARM_PROBE_STDERR=to stderr"); }},
      {"cwd", [](spawn::Options& o) { o.cwd = "/usr/share"; }},
      {"umask", [](spawn::Options& o) { o.umask = 027; }},
      {"nice", [](spawn::Options& o) { o.nice = 5; }},
      {"rlimit_nofile",
       [](spawn::Options& o) {
         o.rlimits.push_back({RLIMIT_NOFILE, 200, 300});
       }},
      {"signal_mask",
       [](spawn::Options& o) {
         sigset_t s;
         sigemptyset(&s);
         sigaddset(&s, SIGUSR1);
         sigaddset(&s, SIGTERM);
         o.signal_mask = s;
       }},
      {"ignored_signals",
       [](spawn::Options& o) {
         o.ignore_signals = {SIGINT, SIGHUP};
       }},
      {"fd_actions",
       [](spawn::Options& o) {
         o.fd_actions.push_back({spawn::FdAction::Kind::open, 5, -1, "/etc/hostname", O_RDONLY, 0});
         static int shared = open("/etc/os-release", O_RDONLY | O_CLOEXEC);  // a file of the caller's
         o.fd_actions.push_back({spawn::FdAction::Kind::dup2, 7, shared, {}, 0, 0});
         o.stdin_.kind = spawn::Stdio::Kind::file;
         o.stdin_.path = "/etc/passwd";
       }},
      {"credentials",
       [](spawn::Options& o) {
         o.uid = 65534;
         o.gid = 65534;
         o.groups = std::vector<gid_t>{65534, 100};
         o.cwd = "/";
       }},
      {"no_new_privs", [](spawn::Options& o) { o.no_new_privs = true; }},
      {"setsid", [](spawn::Options& o) { o.setsid = true; }},
      {"unset_and_set_env",
       [](spawn::Options& o) {
         o.inherit_env = true;
         o.unset_env = {"PATH"};
         o.set_env = {"K=v with spaces"};
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(Warm, WarmProbe, ::testing::ValuesIn(probe_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// ---- real programs ---------------------------------------------------------

// Whether path is an ELF program a template can hold, by the pool's own rule.
bool glibc_program(const std::string& path, warm::Pool& pool) {
  spawn::Options o;
  o.path = path;
  o.argv = {path, "--version"};
  o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::null;
  (void)pool;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111) || (st.st_mode & 06000))
    return false;
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return std::string(magic, 4) ==
         "\x7f"
         "ELF";
}

TEST(WarmPrograms, hundred_programs_from_usr_bin_match_their_cold_start) {
  // Programs that answer --version quickly and the same way twice (cold);
  // then cold once more against warm. Interactive or slow ones are passed
  // over by the timeout.
  std::vector<std::string> candidates;
  for (const auto& e : std::filesystem::directory_iterator("/usr/bin")) candidates.push_back(e.path().string());
  std::sort(candidates.begin(), candidates.end());
  warm::Pool scan;
  int compared = 0, fell_back = 0;
  std::vector<std::string> mismatched, reasons;
  for (const auto& path : candidates) {
    if (compared >= 120) break;
    if (!glibc_program(path, scan)) continue;
    spawn::Options o;
    o.path = path;
    o.argv = {path, "--version"};
    o.inherit_env = false;
    o.envp = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C", "TERM=dumb"};
    o.cwd = "/";
    Ran a = run(cold, o, 2000);
    if (a.status < 0 || a.status >= 126) continue;
    Ran b = run(cold, o, 2000);
    if (a.out != b.out || a.err != b.err || a.status != b.status) continue;  // not deterministic
    warm::Pool pool;
    WarmRun w = run_warm(pool, o, 2000);
    if (!w.report.warm) {
      ++fell_back;
      reasons.push_back(path + ": " + w.report.fallback_reason);
      continue;
    }
    ++compared;
    if (a.out != w.ran.out || a.err != w.ran.err || a.status != w.ran.status)
      mismatched.push_back(path + " (status " + std::to_string(a.status) + " vs " + std::to_string(w.ran.status) +
                           ")\n  cold: " + a.out.substr(0, 200) + a.err.substr(0, 200) +
                           "\n  warm: " + w.ran.out.substr(0, 200) + w.ran.err.substr(0, 200));
  }
  std::string why;
  for (const auto& r : reasons) why += "  " + r + "\n";
  RecordProperty("compared", compared);
  std::cout << "[ warm ] " << compared << " programs compared, " << fell_back << " went cold:\n" << why;
  EXPECT_GE(compared, 100) << why;
  EXPECT_TRUE(mismatched.empty()) << [&] {
    std::string s;
    for (const auto& m : mismatched) s += m + "\n";
    return s;
  }();
}

// ---- the rules that send a spawn cold --------------------------------------

class WarmFallback : public ::testing::Test {
 protected:
  // Builds a C program (and optional extra gcc arguments) in the fixture dir.
  std::string build(const std::string& name, const std::string& source, std::vector<std::string> extra = {}) {
    dir.write(name + ".c", source);
    std::vector<std::string> args = {"-O1", "-o", name, name + ".c"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(dir.gcc(args)) << dir.error();
    return dir.at(name);
  }
  spawn::Options command(const std::string& path, std::vector<std::string> env = {}) {
    spawn::Options o;
    o.path = path;
    o.argv = {path};
    o.inherit_env = false;
    o.envp = {"PATH=/usr/bin:/bin"};
    o.envp.insert(o.envp.end(), env.begin(), env.end());
    return o;
  }
  // The spawn goes cold, says a reason containing `why`, and still does
  // exactly what the cold start does.
  void expect_cold(warm::Pool& pool, const spawn::Options& o, const std::string& why) {
    WarmRun w = run_warm(pool, o);
    EXPECT_FALSE(w.report.warm);
    EXPECT_NE(w.report.fallback_reason.find(why), std::string::npos) << w.report.fallback_reason;
    Ran c = run(cold, o);
    expect_same(c, w, why);
  }
  void expect_warm(warm::Pool& pool, const spawn::Options& o) {
    WarmRun w = run_warm(pool, o);
    EXPECT_TRUE(w.report.warm) << w.report.fallback_reason;
    Ran c = run(cold, o);
    expect_same(c, w, "warm");
  }

  FixtureDir dir;
  const char* hello = "#include <stdio.h>\nint main(int c, char** v) { printf(\"hello %s\\n\", v[0]); return 0; }\n";
};

TEST_F(WarmFallback, static_program) {
  warm::Pool pool;
  expect_cold(pool, command(build("static", hello, {"-static"})), "statically linked");
}

TEST_F(WarmFallback, program_of_another_libc) {
  warm::Pool pool;
  expect_cold(pool, command(build("musl", hello, {"-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"})),
              "not a glibc program");
}

TEST_F(WarmFallback, set_id_program) {
  std::string p = build("setid", hello);
  ASSERT_EQ(chmod(p.c_str(), 04755), 0);
  warm::Pool pool;
  expect_cold(pool, command(p), "set-id");
}

TEST_F(WarmFallback, program_with_file_capabilities) {
  std::string p = build("caps", hello);
  // struct vfs_cap_data, revision 2: CAP_NET_BIND_SERVICE permitted
  // (include/uapi/linux/capability.h).
  std::uint32_t cap[5] = {0x02000000, 1u << 10, 0, 0, 0};
  if (setxattr(p.c_str(), "security.capability", cap, sizeof cap, 0) != 0)
    GTEST_SKIP() << "cannot set file capabilities here: " << strerror(errno);
  warm::Pool pool;
  expect_cold(pool, command(p), "file capabilities");
}

TEST_F(WarmFallback, script) {
  std::string p = dir.write("s.sh", "#!/bin/sh\necho from a script\n", 0755);
  warm::Pool pool;
  expect_cold(pool, command(p), "#! script");
}

TEST_F(WarmFallback, threads_before_main) {
  std::string p = build("threads",
                        "#include <pthread.h>\n#include <stdio.h>\n#include <unistd.h>\n"
                        "static void* sleeper(void* a) { (void)a; for (;;) pause(); }\n"
                        "__attribute__((constructor)) static void start(void) { pthread_t t; "
                        "pthread_create(&t, 0, sleeper, 0); }\n"
                        "int main(void) { puts(\"main\"); return 0; }\n",
                        {"-pthread"});
  warm::Pool pool;
  expect_cold(pool, command(p), "threads before main");
}

TEST_F(WarmFallback, environment_read_before_main) {
  std::string p = build("envread",
                        "#include <stdio.h>\n#include <stdlib.h>\nstatic const char* seen;\n"
                        "__attribute__((constructor)) static void read_it(void) { seen = getenv(\"WARM_CFG\"); }\n"
                        "int main(void) { printf(\"%s\\n\", seen ? seen : \"(unset)\"); return 0; }\n");
  warm::Pool pool;
  expect_warm(pool, command(p, {"WARM_CFG=a"}));
  expect_warm(pool, command(p, {"WARM_CFG=a", "OTHER=not read"}));  // an unread variable may differ
  expect_cold(pool, command(p, {"WARM_CFG=b"}), "WARM_CFG differs");
  expect_cold(pool, command(p), "WARM_CFG differs");
}

TEST_F(WarmFallback, loader_and_libc_variables) {
  std::string p = build("hello", hello);
  warm::Pool pool;
  expect_warm(pool, command(p));
  expect_cold(pool, command(p, {"LD_BIND_NOW=1"}), "LD_BIND_NOW differs");
  expect_cold(pool, command(p, {"GLIBC_TUNABLES=glibc.malloc.check=3"}), "GLIBC_TUNABLES differs");
}

TEST_F(WarmFallback, replaced_library_and_program) {
  dir.write("lib1.c", "const char* word(void) { return \"one\"; }\n");
  dir.write("lib2.c", "const char* word(void) { return \"two\"; }\n");
  ASSERT_TRUE(dir.gcc({"-shared", "-fPIC", "-o", "libword.so", "lib1.c"})) << dir.error();
  std::string p = build("useslib",
                        "#include <stdio.h>\nconst char* word(void);\n"
                        "int main(void) { puts(word()); return 0; }\n",
                        {"-L.", "-lword", "-Wl,-rpath," + dir.path()});
  warm::Pool pool;
  expect_warm(pool, command(p));
  // Replaced as package managers do: a new file renamed over the old one.
  ASSERT_TRUE(dir.gcc({"-shared", "-fPIC", "-o", "libword.so.new", "lib2.c"})) << dir.error();
  ASSERT_EQ(rename(dir.at("libword.so.new").c_str(), dir.at("libword.so").c_str()), 0);
  expect_cold(pool, command(p), "libword.so was replaced");
  WarmRun again = run_warm(pool, command(p));
  EXPECT_TRUE(again.report.warm) << again.report.fallback_reason;
  EXPECT_TRUE(again.report.template_started);
  EXPECT_EQ(again.ran.out, "two\n");
  // The program modified in place.
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
  expect_cold(pool, command(p), "was modified");
}

TEST_F(WarmFallback, cwd_looked_at_before_main) {
  std::string p = build("cwdread",
                        "#include <stdio.h>\n#include <unistd.h>\nstatic char where[4096];\n"
                        "__attribute__((constructor)) static void look(void) { getcwd(where, sizeof where); }\n"
                        "int main(void) { puts(where); return 0; }\n");
  warm::Pool pool;
  spawn::Options o = command(p);
  o.cwd = "/usr";
  expect_warm(pool, o);
  expect_warm(pool, o);
  o.cwd = "/etc";
  expect_cold(pool, o, "looked at its working directory before main");
  // A program that does not look may change directory freely.
  std::string h = build("hello", hello);
  spawn::Options q = command(h);
  q.cwd = "/usr";
  expect_warm(pool, q);
  q.cwd = "/etc";
  expect_warm(pool, q);
}

TEST_F(WarmFallback, exits_before_main) {
  std::string p = build("exits",
                        "#include <stdlib.h>\n__attribute__((constructor)) static void bye(void) { exit(3); }\n"
                        "int main(void) { return 0; }\n");
  warm::Pool pool;
  expect_cold(pool, command(p), "exited with status 3 before main");
  expect_cold(pool, command(p), "exited with status 3 before main");  // remembered, not retried each time
}

TEST_F(WarmFallback, missing_library) {
  dir.write("lib1.c", "const char* word(void) { return \"one\"; }\n");
  ASSERT_TRUE(dir.gcc({"-shared", "-fPIC", "-o", "libgone.so", "lib1.c"})) << dir.error();
  std::string p =
      build("needsgone", "#include <stdio.h>\nconst char* word(void);\nint main(void) { puts(word()); return 0; }\n",
            {"-L.", "-lgone"});
  warm::Pool pool;
  expect_cold(pool, command(p), "exited with status 127 before main: ");
}

TEST_F(WarmFallback, output_before_main) {
  std::string p = build("chatty",
                        "#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { puts(\"early\"); "
                        "fflush(stdout); }\nint main(void) { puts(\"main\"); return 0; }\n");
  warm::Pool pool;
  expect_cold(pool, command(p), "before main");
}

TEST_F(WarmFallback, controls_that_act_before_execve) {
  warm::Pool pool;
  spawn::Options o = probe();
  o.pdeathsig = SIGKILL;
  expect_cold(pool, o, "parent-death signal");
  o = probe();
  o.close_other_fds = false;
  expect_cold(pool, o, "every fd of the caller");
  o = probe();
  o.rlimits.push_back({RLIMIT_STACK, 1 << 20, 1 << 20});
  expect_cold(pool, o, "RLIMIT_STACK");
}

// ---- faults ------------------------------------------------------------------

TEST(WarmFaults, killed_template_is_replaced_on_next_use) {
  warm::Pool pool;
  WarmRun a = run_warm(pool, probe());
  ASSERT_TRUE(a.report.warm) << a.report.fallback_reason;
  ASSERT_EQ(kill(a.report.template_pid, SIGKILL), 0);
  usleep(20000);
  WarmRun b = run_warm(pool, probe());
  EXPECT_TRUE(b.report.warm) << b.report.fallback_reason;
  EXPECT_TRUE(b.report.template_started);
  EXPECT_NE(b.report.template_pid, a.report.template_pid);
}

// The pids /proc lists as children of pid (every thread's list).
std::set<pid_t> children_of(pid_t pid) {
  std::set<pid_t> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream in(task.path() / "children");
    for (pid_t c; in >> c;) out.insert(c);
  }
  return out;
}

// The copy a template forks ahead of the next request.
pid_t spare_of(pid_t tpl) {
  for (int i = 0; i < 200; ++i) {
    for (pid_t c : children_of(getpid())) {
      std::ifstream stat("/proc/" + std::to_string(c) + "/stat");
      std::string line;
      std::getline(stat, line);
      // A copy of the template: the same program, not the template, not a zombie.
      if (c != tpl && line.find("(warm_probe)") != std::string::npos && line.find(") Z") == std::string::npos) return c;
    }
    usleep(5000);
  }
  return -1;
}

TEST(WarmFaults, killed_spare_ends_its_template_and_the_next_use_starts_afresh) {
  alarm(30);  // a template that missed its spare's death would leave the next spawn waiting for ever
  warm::Pool pool;
  WarmRun a = run_warm(pool, probe());
  ASSERT_TRUE(a.report.warm) << a.report.fallback_reason;
  pid_t spare = spare_of(a.report.template_pid);
  ASSERT_GT(spare, 0) << "no spare next to template " << a.report.template_pid;
  ASSERT_EQ(kill(spare, SIGKILL), 0);
  usleep(20000);
  WarmRun b = run_warm(pool, probe());
  EXPECT_TRUE(b.report.warm) << b.report.fallback_reason;
  EXPECT_TRUE(b.report.template_started);
  EXPECT_NE(b.report.template_pid, a.report.template_pid);
  pool.clear();
  EXPECT_EQ(children_of(getpid()), std::set<pid_t>{}) << "the killed spare or its template was not reaped";
  alarm(0);
}

TEST_F(WarmFallback, signals_forks_and_threads_in_main_behave_as_cold) {
  std::string crash = build("crash", "#include <signal.h>\nint main(void) { raise(SIGSEGV); return 0; }\n");
  std::string forks = build("forks",
                            "#include <pthread.h>\n#include <stdio.h>\n#include <sys/wait.h>\n#include <unistd.h>\n"
                            "static void* t(void* a) { return a; }\n"
                            "int main(void) { pthread_t th; pthread_create(&th, 0, t, 0); pthread_join(th, 0);\n"
                            "  pid_t p = fork(); if (p == 0) { puts(\"child\"); _exit(4); }\n"
                            "  int st; waitpid(p, &st, 0); printf(\"parent saw %d, pthread_self ok %d\\n\", "
                            "WEXITSTATUS(st), pthread_equal(pthread_self(), pthread_self()));\n"
                            "  fflush(stdout); return 0; }\n",
                            {"-pthread"});
  warm::Pool pool;
  expect_warm(pool, command(crash));
  WarmRun c = run_warm(pool, command(crash));
  EXPECT_EQ(c.ran.status, 128 + SIGSEGV);
  expect_warm(pool, command(forks));
  expect_warm(pool, command(forks));
}

TEST(WarmFaults, failed_control_reports_as_a_cold_spawn_does) {
  warm::Pool pool;
  spawn::Options o = probe();
  ASSERT_TRUE(run_warm(pool, o).report.warm);
  o.cwd = "/nonexistent/dir";
  auto c = spawn::spawn(o);
  warm::Report r;
  auto w = pool.spawn(o, &r);
  ASSERT_FALSE(c);
  ASSERT_FALSE(w);
  EXPECT_EQ(c.error().message, w.error().message);
  EXPECT_EQ(c.error().step, w.error().step);
  EXPECT_EQ(spawn::failure_status(c.error()), spawn::failure_status(w.error()));
}

TEST(WarmFaults, instance_times_out_and_is_killed_as_a_cold_child_is) {
  warm::Pool pool;
  spawn::Options o;
  o.path = "/bin/sleep";
  o.argv = {"sleep", "10"};
  warm::Report r;
  auto c = pool.spawn(o, &r);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(r.warm) << r.fallback_reason;
  EXPECT_GE(c->pidfd(), 0);
  auto e = c->wait(std::chrono::milliseconds(100));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE(e->timed_out);
  EXPECT_FALSE(e->exited);
  EXPECT_EQ(e->shell_status(), 128 + SIGKILL);
}

// The templates of a process that dies without cleaning up (SIGKILL) see
// their control socket close and exit: none outlives its pool's process.
TEST(WarmFaults, templates_end_with_the_process_that_made_them) {
  int pids[2];
  ASSERT_EQ(pipe(pids), 0);
  pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    close(pids[0]);
    warm::Pool pool;
    warm::Report r;
    auto c = pool.spawn(probe(), &r);
    if (c) (void)c->wait();
    int t = r.warm ? r.template_pid : -1;
    (void)!write(pids[1], &t, sizeof t);
    // Its spare too (forked once the instance took its request): the
    // owner's remaining children.
    std::set<pid_t> left = children_of(getpid());
    for (int i = 0; i < 400 && left.size() < 2; ++i) {
      usleep(5000);
      left = children_of(getpid());
    }
    int n = static_cast<int>(left.size());
    (void)!write(pids[1], &n, sizeof n);
    for (pid_t p : left) (void)!write(pids[1], &p, sizeof p);
    pause();
    _exit(0);
  }
  close(pids[1]);
  int tpl = -1, n = 0;
  ASSERT_EQ(read(pids[0], &tpl, sizeof tpl), static_cast<ssize_t>(sizeof tpl));
  ASSERT_EQ(read(pids[0], &n, sizeof n), static_cast<ssize_t>(sizeof n));
  std::vector<pid_t> left(static_cast<std::size_t>(n));
  for (pid_t& p : left) ASSERT_EQ(read(pids[0], &p, sizeof p), static_cast<ssize_t>(sizeof p));
  close(pids[0]);
  ASSERT_GT(tpl, 0) << "the owner's spawn was not warm";
  EXPECT_EQ(left.size(), 2u) << "the owner should have the template and its spare left";
  kill(owner, SIGKILL);
  waitpid(owner, nullptr, 0);
  // They are now init's children; here PID 1 may not reap, so a zombie
  // ("Z" in /proc/PID/stat) counts as ended.
  for (pid_t p : left) {
    bool ended = false;
    for (int i = 0; i < 200 && !ended; ++i) {
      std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
      std::string line;
      if (!std::getline(stat, line)) ended = true;
      else ended = line.substr(line.rfind(')') + 2, 1) == "Z";
      if (!ended) usleep(10000);
    }
    EXPECT_TRUE(ended) << (p == tpl ? "template " : "spare ") << p << " outlived its pool's process";
  }
}

std::set<std::string> open_fds() {
  std::set<std::string> s;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) s.insert(e.path().filename());
  return s;
}

TEST(WarmFaults, no_zombie_and_no_leaked_fd) {
  auto before = open_fds();
  {
    warm::Pool pool;
    for (int i = 0; i < 5; ++i) {
      WarmRun w = run_warm(pool, probe());
      ASSERT_TRUE(w.report.warm) << w.report.fallback_reason;
    }
    warm::Pool rotating(warm::Limits{1, std::chrono::seconds(60), std::chrono::seconds(10)});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(run_warm(rotating, probe()).report.warm);
  }
  EXPECT_EQ(open_fds(), before);
  siginfo_t si{};
  errno = 0;
  int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
  EXPECT_TRUE(r == -1 && errno == ECHILD) << "a child is left: pid " << si.si_pid;
}

// ---- rotation ----------------------------------------------------------------

std::string layout_of(warm::Pool& pool, warm::Report& r) {
  spawn::Options o = probe();
  o.envp.push_back("WARM_PROBE_LAYOUT=1");
  WarmRun w = run_warm(pool, o);
  r = w.report;
  EXPECT_TRUE(w.report.warm) << w.report.fallback_reason;
  return w.ran.err;
}

TEST(WarmRotation, instances_of_different_templates_differ_in_layout_and_at_random) {
  warm::Pool shared;
  warm::Report r1, r2;
  std::string a = layout_of(shared, r1), b = layout_of(shared, r2);
  EXPECT_EQ(r1.template_pid, r2.template_pid);
  EXPECT_EQ(a, b) << "instances of one template share the layout and AT_RANDOM (the reason to rotate)";

  warm::Pool rotating(warm::Limits{1, std::chrono::seconds(60), std::chrono::seconds(10)});
  std::string c = layout_of(rotating, r1), d = layout_of(rotating, r2);
  EXPECT_NE(r1.template_pid, r2.template_pid);
  auto line = [](const std::string& s, const std::string& key) {
    auto at = s.find(key + " ");
    return at == std::string::npos ? std::string() : s.substr(at, s.find('\n', at) - at);
  };
  for (const char* key : {"at_random", "stack", "libc"}) {
    EXPECT_FALSE(line(c, key).empty()) << c;
    EXPECT_NE(line(c, key), line(d, key)) << key;
  }

  warm::Pool aging(warm::Limits{1000, std::chrono::milliseconds(1), std::chrono::seconds(10)});
  layout_of(aging, r1);
  usleep(5000);
  layout_of(aging, r2);
  EXPECT_NE(r1.template_pid, r2.template_pid) << "max_age";
}

}  // namespace
}  // namespace procforge
