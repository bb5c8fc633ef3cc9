// The conventions every subcommand of the real `procforge` binary keeps, so
// that it behaves like the tools it sits beside:
//  - colour: --color=always gives escape sequences, --color=never and
//    NO_COLOR (in auto mode) none, and auto colours a terminal only (checked
//    on a real pseudo-terminal, as an interactive shell gives one);
//  - errors: a bad flag and a bad input give a first stderr line
//    "procforge SUBCOMMAND: " and an exit status that the subcommand's own
//    manual page lists (so the one table of statuses stays true).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "support/run_command.hpp"

extern char** environ;

namespace {

using procforge::testsupport::CommandOptions;
using procforge::testsupport::run_command;

const char* const kEsc = "\033[";

struct Outcome {
  int status = -1;
  std::string out, err;
};

// procforge ARGS with stdout and stderr on pipes; EXTRA_ENV added to ours.
Outcome run(const std::vector<std::string>& args, const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv{PROCFORGE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions o;
  o.inherit_env = true;
  o.env = extra_env;
  o.timeout_ms = 30000;
  const auto r = run_command(argv, o);
  EXPECT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << args.front();
  return {r.signal ? 128 + r.signal : r.exit_code, r.out, r.err};
}

// procforge ARGS with stdout and stderr on a new pseudo-terminal (stdin
// /dev/null), in an environment without NO_COLOR unless NO_COLOR gives its
// value: everything written to the terminal.
std::string run_on_terminal(const std::vector<std::string>& args, const char* no_color) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "NO_COLOR=", 9) != 0) env.emplace_back(*e);
  if (no_color) env.push_back(std::string("NO_COLOR=") + no_color);
  std::vector<std::string> argv{PROCFORGE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv, cenv;  // built before the fork: the child only execs
  for (auto& a : argv) cargv.push_back(a.data());
  for (auto& e : env) cenv.push_back(e.data());
  cargv.push_back(nullptr);
  cenv.push_back(nullptr);

  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    ADD_FAILURE() << "no pseudo-terminal: " << std::strerror(errno);
    return "";
  }
  const std::string slave = ptsname(master);
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    const int t = open(slave.c_str(), O_RDWR);
    const int null = open("/dev/null", O_RDONLY);
    if (t < 0 || null < 0 || dup2(null, 0) < 0 || dup2(t, 1) < 0 || dup2(t, 2) < 0) _exit(126);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  std::string out;
  char buf[4096];
  // Until the terminal closes (EIO once the last writer is gone), 30 s at most.
  for (pollfd p{master, POLLIN, 0}; poll(&p, 1, 30000) > 0;) {
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  EXPECT_TRUE(WIFEXITED(status)) << "procforge on a terminal did not exit: " << out;
  return out;
}

bool has_escape(const std::string& s) { return s.find(kEsc) != std::string::npos; }

// The invocations that colour something, and the stream they colour.
struct Coloured {
  std::vector<std::string> args;
  bool on_stderr;
};

std::vector<Coloured> coloured() {
  return {{{"explain", "/bin/true"}, false},
          {{"demo"}, false},
          {{"ldd", "--tree", "/bin/true"}, false},
          {{"profile", "-n", "1", "--warmup", "0", "--no-untraced", "--", "/bin/true"}, false},
          {{"exec", "--steps", "--", "/bin/true"}, true}};
}

// ARGS with --color=WHEN put after the subcommand's name.
std::vector<std::string> with_color(std::vector<std::string> args, const std::string& when) {
  args.insert(args.begin() + 1, "--color=" + when);
  return args;
}

TEST(Conventions, color_always_colours_every_subcommand_that_colours_even_through_a_pipe) {
  for (const auto& c : coloured()) {
    Outcome r = run(with_color(c.args, "always"), {"NO_COLOR=1"});  // --color=always wins over NO_COLOR
    EXPECT_EQ(r.status, 0) << c.args.front() << ": " << r.err;
    EXPECT_TRUE(has_escape(c.on_stderr ? r.err : r.out)) << c.args.front();
  }
}

TEST(Conventions, color_never_and_no_color_give_no_escape_sequences) {
  for (const auto& c : coloured()) {
    for (const auto& r : {run(with_color(c.args, "never")), run(c.args, {"NO_COLOR=1"})}) {
      EXPECT_EQ(r.status, 0) << c.args.front() << ": " << r.err;
      EXPECT_FALSE(has_escape(r.out)) << c.args.front() << ": " << r.out;
      EXPECT_FALSE(has_escape(r.err)) << c.args.front() << ": " << r.err;
    }
  }
}

// auto: colour on a terminal unless NO_COLOR is set and not empty
// (no-color.org); never, even there.
TEST(Conventions, color_auto_colours_a_terminal_unless_no_color_is_set_and_not_empty) {
  for (const auto& args : {std::vector<std::string>{"explain", "/bin/true"},
                           std::vector<std::string>{"exec", "--steps", "--", "/bin/true"}}) {
    EXPECT_TRUE(has_escape(run_on_terminal(args, nullptr))) << args.front();
    EXPECT_TRUE(has_escape(run_on_terminal(args, ""))) << args.front() << ": an empty NO_COLOR does not count";
    EXPECT_FALSE(has_escape(run_on_terminal(args, "1"))) << args.front();
    EXPECT_FALSE(has_escape(run_on_terminal(with_color(args, "never"), nullptr))) << args.front();
    EXPECT_TRUE(has_escape(run_on_terminal(with_color(args, "always"), "1"))) << args.front();
  }
  // Through a pipe, auto never colours.
  EXPECT_FALSE(has_escape(run({"explain", "/bin/true"}).out));
}

TEST(Conventions, every_subcommand_takes_color) {
  const std::vector<std::vector<std::string>> fine{{"explain", "--color=never", "/bin/true"},
                                                   {"run", "--color=never", "--", "/bin/true"},
                                                   {"exec", "--color", "never", "--", "/bin/true"},
                                                   {"version", "--color=never"},
                                                   {"ldd", "--color=never", "/bin/true"},
                                                   {"demo", "--color=never"},
                                                   {"manpage", "--color=never", "run"},
                                                   {"completion", "--color=never", "bash"}};
  for (const auto& args : fine) {
    Outcome r = run(args);
    EXPECT_EQ(r.status, 0) << args.front() << ": " << r.err;
  }
  Outcome bench = run({"bench", "spawn", "--color=never", "--runs", "1", "--rss", "0", "--strategies", "procforge",
                       "--static-target", "/bin/true"});
  EXPECT_EQ(bench.status, 0) << bench.err;
}

// The statuses the EXIT STATUS section of `procforge manpage SUB` lists.
std::vector<std::string> documented_statuses(const std::string& sub) {
  std::istringstream page(run({"manpage", sub}).out);
  std::vector<std::string> statuses;
  bool in_section = false, next_is_status = false;
  for (std::string line; std::getline(page, line);) {
    if (line.rfind(".SH", 0) == 0) in_section = line == ".SH EXIT STATUS";
    else if (in_section && line == ".TP") next_is_status = true;
    else if (next_is_status) statuses.push_back(line), next_is_status = false;
  }
  return statuses;
}

struct BadCall {
  std::string sub;
  std::vector<std::string> args;  // after the subcommand's name
  int status;
};

TEST(Conventions, errors_start_with_the_subcommand_and_exit_with_a_documented_status) {
  const std::vector<BadCall> calls{
      {"explain", {"--bogus", "/bin/true"}, 2},
      {"explain", {"--uid", "abc", "/bin/true"}, 2},  // a value CLI11 refuses
      {"explain", {"--env", "NOEQUALS", "/bin/true"}, 2},
      {"explain", {"--batch", "/nonexistent/list"}, 2},
      {"explain", {}, 2},
      {"run", {"--bogus", "/bin/true"}, 2},
      {"run", {"--timeout", "0", "--", "/bin/true"}, 2},
      {"run", {"--", "/nonexistent/program"}, 127},
      {"exec", {"--bogus", "/bin/true"}, 2},
      {"exec", {"-C", "/nonexistent/dir", "--", "/bin/true"}, 2},
      {"exec", {"--", "/nonexistent/program"}, 127},
      {"profile", {"--bogus", "/bin/true"}, 2},
      {"profile", {"--runs", "0", "--", "/bin/true"}, 2},
      {"profile", {"-n", "1", "--", "/nonexistent/program"}, 1},
      {"bench", {"--bogus"}, 2},
      {"bench", {"nope"}, 2},
      {"bench", {"spawn", "--bogus"}, 2},
      {"bench", {"spawn", "--rss", "12x"}, 2},
      {"version", {"--bogus"}, 2},
      {"ldd", {"--bogus", "/bin/true"}, 2},
      {"ldd", {"--env", "NOEQUALS", "/bin/true"}, 2},
      {"ldd", {}, 2},
      {"ldd", {"-r"}, 2},
      {"demo", {"--bogus"}, 2},
      {"manpage", {"--bogus"}, 2},
      {"manpage", {"nope"}, 2},
      {"completion", {"--bogus"}, 2},
      {"completion", {"fish"}, 2},
  };
  std::vector<BadCall> all = calls;
  for (const char* sub :
       {"explain", "ldd", "run", "exec", "profile", "bench", "version", "demo", "manpage", "completion"})
    all.push_back({sub, {"--color=sometimes"}, 2});
  for (const auto& c : all) {
    std::vector<std::string> args{c.sub};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Outcome r = run(args);
    std::string call = "procforge";
    for (const auto& a : args) call += " " + a;
    EXPECT_EQ(r.status, c.status) << call << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("procforge " + c.sub + ": ", 0), 0u) << call << "\n" << r.err;
    const auto documented = documented_statuses(c.sub);
    EXPECT_NE(std::find(documented.begin(), documented.end(), std::to_string(c.status)), documented.end())
        << call << ": status " << c.status << " is not in procforge-" << c.sub << "(1)";
  }
  // Without a subcommand, the same shape without one.
  Outcome r = run({"--bogus"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("procforge: ", 0), 0u) << r.err;
}

}  // namespace
