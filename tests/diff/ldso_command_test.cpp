// glibc's ld.so run as a command (`ld.so [OPTION]... FILE`), through the
// model as `procforge explain` runs it (exec::predict() of ld.so with that
// argv, then ldso::predict_after_exec(), which reads ld.so's command line as
// elf/rtld.c dl_main does) against the real ld.so run with the same argv, in
// the same directory and environment. Cases are generated: every option
// alone, every pair of the options that change a load, each with and without
// --list, on generated programs and libraries (RUNPATH $ORIGIN, a library with
// DT_RPATH, glibc-hwcaps subdirectories, a preload), plus the command lines
// that load nothing (--help, --version, the --list-* modes, --verify, refused
// options, no FILE). What ld.so does is never written here: it prints it.
//   --list        the trace lines (name => path, without addresses), stderr
//                 and the exit status;
//   a real run    the program prints its argv[0] and its link map
//                 (dl_iterate_phdr), stderr and the exit status;
//   LD_DEBUG=libs the rule each library was found by (the last "search"
//                 line before it: cache, RPATH, RUNPATH, library path,
//                 system directories) against Object::found_by;
//   early exits   the exit status, and a usage error's stderr byte for byte.
// Closing line: "ld.so command cases: N compared, M identical".
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>

#include "procforge/exec.hpp"
#include "procforge/ldso.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/ldso_stderr.hpp"
#include "support/requires.hpp"

namespace procforge::testsupport {
namespace {

const ldso::SystemInfo& sys() {
  static const ldso::SystemInfo s = ldso::SystemInfo::probe();
  return s;
}

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
const char* const kOwnCache = "ld.so.cache";  // in the fixture directory

// A program that prints its argv[0], then every object of its link map.
std::string program_source(const char* calls) {
  return std::string("#define _GNU_SOURCE\n#include <link.h>\n#include <stdio.h>\nint ") + calls +
         "(void);\n"
         "static int cb(struct dl_phdr_info *i, size_t s, void *d) { (void)s; (void)d; puts(i->dlpi_name); return 0; "
         "}\n"
         "int main(int argc, char **argv) { (void)argc; printf(\"argv0=%s\\n\", argv[0]); dl_iterate_phdr(cb, 0); "
         "return " +
         calls + "() != 1; }\n";
}

// The fixture: lib1/liba.so (and a copy in each glibc-hwcaps subdirectory
// this CPU uses, and in "custom"), lib2/liba.so, lib2/libb.so,
// lib2/libc2.so (DT_RPATH DIR/lib1, needs liba.so); m (needs liba.so,
// DT_RUNPATH $ORIGIN/lib2), mnot (needs liba.so), n (needs libc2.so), a
// text file.
bool build(FixtureDir& d) {
  d.write("a.c", "int a(void) { return 1; }\n");
  d.write("b.c", "int b(void) { return 2; }\n");
  d.write("c.c", "int a(void);\nint c(void) { return a(); }\n");
  d.write("m.c", program_source("a"));
  d.write("n.c", program_source("c"));
  d.write("txt", "not an ELF file\n");
  std::vector<std::string> hwcaps = sys().hwcaps_subdirs;
  hwcaps.emplace_back("custom");
  d.mkdirs("lib1");
  d.mkdirs("lib2");
  for (const auto& h : hwcaps) d.mkdirs("lib1/glibc-hwcaps/" + h);
  bool ok = d.gcc({"-shared", "-fPIC", "-o", "lib1/liba.so", "a.c"}) &&
            d.gcc({"-shared", "-fPIC", "-o", "lib2/liba.so", "a.c"}) &&
            d.gcc({"-shared", "-fPIC", "-o", "lib2/libb.so", "b.c"}) &&
            d.gcc({"-shared", "-fPIC", "-o", "lib2/libc2.so", "c.c", "-Llib1", "-la",
                   "-Wl,--disable-new-dtags,-rpath," + d.at("lib1")}) &&
            d.gcc({"-o", "m", "m.c", "-Llib1", "-la", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib2"}) &&
            d.gcc({"-o", "mnot", "m.c", "-Llib1", "-la"}) && d.gcc({"-o", "n", "n.c", "-Llib2", "-lc2"});
  for (const auto& h : hwcaps)
    ok = ok && d.gcc({"-shared", "-fPIC", "-o", "lib1/glibc-hwcaps/" + h + "/liba.so", "a.c"});
  // A cache of its own (kOwnCache, ldconfig over "cached" and the system's
  // directories) where a FILE without '/' is found: cached/libprogm.so is m
  // (DT_RUNPATH $ORIGIN/lib2, so cached/lib2/liba.so when $ORIGIN is the
  // cache entry's directory), and a glibc-hwcaps copy for this CPU is mnot
  // (which finds no liba.so).
  const std::string best = sys().hwcaps_subdirs.empty() ? "x86-64-v2" : sys().hwcaps_subdirs.front();
  d.mkdirs("cached/lib2");
  d.mkdirs("cached/glibc-hwcaps/" + best);
  d.write("ld.so.conf", d.at("cached") + "\n");
  CommandOptions o;
  o.env = kEnv;
  return ok && run_command({"/bin/cp", d.at("m"), d.at("cached/libprogm.so")}).exit_code == 0 &&
         run_command({"/bin/cp", d.at("mnot"), d.at("cached/glibc-hwcaps/" + best + "/libprogm.so")}).exit_code == 0 &&
         run_command({"/bin/cp", d.at("lib2/liba.so"), d.at("cached/lib2/liba.so")}).exit_code == 0 &&
         run_command({"/sbin/ldconfig", "-X", "-C", d.at(kOwnCache), "-f", d.at("ld.so.conf")}, o).exit_code == 0;
}

struct Case {
  std::string name;
  std::vector<std::string> args;  // after ld.so's name
  std::vector<std::string> env;   // added to kEnv
  bool fixture = true;            // FILE is a fixture program, which prints its argv[0] and link map
  bool own_cache = false;         // ld.so reads kOwnCache, bind-mounted over /etc/ld.so.cache
};

// Every option alone and every pair of those that change a load, on mnot
// (found only through the options), plus $ORIGIN, --inhibit-rpath and the
// environment's share on m and n; each once as a run and once with --list.
std::vector<Case> load_cases() {
  const std::string first = sys().hwcaps_subdirs.empty() ? "x86-64-v2" : sys().hwcaps_subdirs.front();
  const std::vector<std::vector<std::string>> options = {
      {"--library-path", "lib1"},
      {"--library-path", "lib2"},
      {"--preload", "libb.so"},
      {"--preload", "libb.so nope.so:lib2/libb.so"},
      {"--inhibit-cache"},
      {"--argv0", "renamed"},
      {"--glibc-hwcaps-prepend", "custom"},
      {"--glibc-hwcaps-prepend", "::custom:nothing"},
      {"--glibc-hwcaps-mask", first},
      {"--glibc-hwcaps-mask", ""},
      {"--glibc-hwcaps-mask", "nothing:" + first},
      {"--inhibit-rpath", ""},
  };
  auto label = [](const std::vector<std::string>& o) {
    std::string s;
    for (const auto& w : o)
      for (char ch : w) s += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    return s;
  };
  std::vector<Case> base;
  for (std::size_t i = 0; i < options.size(); ++i) {
    Case c{label(options[i]), options[i], {}};
    c.args.emplace_back("./mnot");
    base.push_back(c);
    for (std::size_t j = i + 1; j < options.size(); ++j) {
      Case p{label(options[i]) + "_" + label(options[j]), options[i], {}};
      p.args.insert(p.args.end(), options[j].begin(), options[j].end());
      p.args.emplace_back("./mnot");
      base.push_back(p);
    }
  }
  base.push_back({"origin_relative", {"./m"}, {}});
  base.push_back({"origin_dotdot", {"../" + std::string("FIXTURE") + "/m"}, {}});
  base.push_back({"inhibit_rpath_main_empty", {"--inhibit-rpath", "", "./m"}, {}});
  base.push_back({"inhibit_rpath_main_colon", {"--inhibit-rpath", ":", "./m"}, {}});
  base.push_back({"inhibit_rpath_trailing_empty", {"--inhibit-rpath", "x:", "./m"}, {}});
  base.push_back({"inhibit_rpath_library", {"--library-path", "lib2", "--inhibit-rpath", "lib2/libc2.so", "./n"}, {}});
  base.push_back({"inhibit_rpath_other", {"--library-path", "lib2", "--inhibit-rpath", "lib2/libc2", "./n"}, {}});
  base.push_back({"library_path_replaces_env", {"--library-path", "lib1", "./mnot"}, {"LD_LIBRARY_PATH=lib2"}});
  base.push_back({"env_library_path", {"./mnot"}, {"LD_LIBRARY_PATH=lib2"}});
  base.push_back({"preload_after_env", {"--preload", "lib2/libb.so", "./mnot"}, {"LD_PRELOAD=nope1.so"}});
  base.push_back({"no_rpath_found", {"./mnot"}, {}});
  base.push_back({"missing_file", {"--library-path", "lib1", "./nonexistent"}, {}});
  base.push_back({"text_file", {"./txt"}, {}});
  base.push_back({"own_interp_not_used", {"--argv0", "x", "--inhibit-cache", "./n"}, {"LD_LIBRARY_PATH=lib2"}});
  // A FILE without '/': the system's libc.so.6 (run, it prints its banner),
  // and names found only where ld.so does not look for it.
  base.push_back({"name_in_cache", {"libc.so.6"}, {}, false});
  base.push_back({"name_in_cache_hwcaps_prepend", {"--glibc-hwcaps-prepend", first, "libc.so.6"}, {}, false});
  base.push_back({"name_in_cache_inhibited", {"--inhibit-cache", "libc.so.6"}, {}, false});
  base.push_back({"name_in_library_path_env", {"liba.so"}, {"LD_LIBRARY_PATH=lib1"}, false});
  base.push_back({"name_in_library_path_option", {"--library-path", "lib1", "liba.so"}, {}, false});
  base.push_back({"name_in_working_directory", {"mnot"}, {}, false});
  base.push_back({"name_argv0", {"--argv0", "x", "nope.so"}, {}, false});
  // In a cache of the fixture's: $ORIGIN is the entry's directory, and the
  // entry for this CPU's glibc-hwcaps subdirectory is not the one taken.
  base.push_back({"name_in_own_cache", {"libprogm.so"}, {}, true, true});
  base.push_back({"name_in_own_cache_hwcaps_mask", {"--glibc-hwcaps-mask", first, "libprogm.so"}, {}, true, true});
  base.push_back({"name_in_own_cache_argv0", {"--argv0", "renamed", "libprogm.so"}, {}, true, true});
  std::vector<Case> out;
  for (const auto& c : base) {
    out.push_back(c);
    Case l = c;
    l.name = "list_" + c.name;
    l.args.insert(l.args.begin(), "--list");
    out.push_back(l);
  }
  return out;
}

// Command lines that load nothing, or only check FILE.
std::vector<Case> early_cases() {
  return {
      {"no_program", {}, {}},
      {"list_no_program", {"--list"}, {}},
      {"unknown_option", {"--bogus", "./m"}, {}},
      {"double_dash", {"--", "./m"}, {}},
      {"value_missing", {"--library-path"}, {}},
      {"version", {"--version", "--bogus"}, {}},
      {"help", {"--help"}, {}},
      {"help_with_program", {"--help", "./m"}, {}},
      {"list_tunables", {"--list-tunables"}, {}},
      {"list_diagnostics_then_list", {"--list-diagnostics", "--list", "./m"}, {}},
      {"verify_interp", {"--verify", "./m"}, {}},
      {"verify_library", {"--verify", "lib1/liba.so"}, {}},
      {"verify_text", {"--verify", "./txt"}, {}},
      {"verify_missing", {"--verify", "./nonexistent"}, {}},
      {"help_then_list", {"--help", "--list", "./m"}, {}},
      {"list_name_in_cache_libm", {"--list", "libm.so.6"}, {}},
      {"verify_name_in_cache", {"--verify", "libc.so.6"}, {}},
      {"verify_name_not_in_cache", {"--verify", "mnot"}, {}},
  };
}

// The trace lines of `ld.so --list` without the vDSO and the load addresses.
std::vector<std::string> parse_trace(const std::string& out) {
  std::vector<std::string> lines;
  for (auto line : split_lines(out)) {
    if (line.empty() || line[0] != '\t') continue;
    line.erase(0, 1);
    if (const auto p = line.rfind(" (0x"); p != std::string::npos) line.erase(p);
    if (line != sys().vdso_name) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> render_trace(const ldso::Prediction& p) {
  std::vector<std::string> lines;
  if (p.statically_linked) return {"statically linked"};
  for (const auto& o : p.objects)
    lines.push_back(!o.path ? o.name + " => not found" : o.name == *o.path ? o.name : o.name + " => " + *o.path);
  return lines;
}

// LD_DEBUG=libs: for each name searched, the kind of the last place
// searched before it was found ("cache", "RPATH", "RUNPATH", "library path",
// "system").
std::map<std::string, std::string> found_in(const std::string& debug) {
  std::map<std::string, std::string> out;
  std::string name;
  for (const auto& line : split_lines(debug)) {
    if (auto p = line.find("find library="); p != std::string::npos) {
      name = line.substr(p + 13, line.find(" [", p) - p - 13);
    } else if (line.find(" search cache=") != std::string::npos) {
      out[name] = "cache";
    } else if (line.find(" search path=") != std::string::npos) {
      out[name] = line.find("(RPATH from") != std::string::npos            ? "RPATH"
                  : line.find("(RUNPATH from") != std::string::npos        ? "RUNPATH"
                  : line.find("(system search path)") != std::string::npos ? "system"
                                                                           : "library path";
    }
  }
  return out;
}

std::string kind_of(ldso::FoundBy f) {
  switch (f) {
    case ldso::FoundBy::ld_so_cache: return "cache";
    case ldso::FoundBy::rpath: return "RPATH";
    case ldso::FoundBy::runpath: return "RUNPATH";
    case ldso::FoundBy::ld_library_path: return "library path";
    case ldso::FoundBy::default_dirs: return "system";
    default: return "";
  }
}

// Compares one case; false (with the differences added as failures) when the
// model and ld.so disagree.
bool compare(const Case& c, const std::string& dir) {
  const std::string ldso = sys().ldso_path;
  std::vector<std::string> argv = {ldso};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  std::vector<std::string> env = kEnv;
  env.insert(env.end(), c.env.begin(), c.env.end());
  exec::Request req;
  req.path = ldso;
  req.argv = argv;
  req.envp = env;
  req.cwd = dir;
  req.explain = false;
  auto ep = exec::predict(req, exec::SystemFacts::probe());
  EXPECT_TRUE(ep.ok() && ep->outcome == exec::Outcome::ok) << "the kernel half";
  if (!ep.ok()) return false;
  ldso::SystemInfo system = sys();
  if (c.own_cache) system.cache_path = dir + "/" + kOwnCache;
  const auto lreq = ldso::request_after_exec(req, *ep);
  const auto lp = ldso::predict_after_exec(req, *ep, system);
  EXPECT_TRUE(lreq && lreq->command && lp && lp->command) << "ld.so not recognised as run as a command";
  if (!lreq || !lp || !lp->command) return false;
  EXPECT_TRUE(lp->warnings.empty() || lp->dynamic) << "not predicted: " << lp->warnings.front();

  CommandOptions opts;
  opts.cwd = dir;
  opts.env = env;
  if (c.own_cache) opts.bind_mounts = {{dir + "/" + kOwnCache, "/etc/ld.so.cache"}};
  const CommandResult real = run_command(argv, opts);
  EXPECT_TRUE(real.started) << real.err;
  const int failures_before = ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
  using Mode = ldso::LoaderCommand::Mode;
  const Mode mode = lp->command->mode;
  if (lp->command_exit) {
    EXPECT_EQ(real.exit_code, *lp->command_exit) << "exit status; stderr: " << real.err;
    if (mode == Mode::usage) {
      EXPECT_EQ(real.err, ldso::usage_text(*lp->command));
    } else if (mode != Mode::verify) {
      EXPECT_NE(real.out, "") << "ld.so printed nothing";
    }
  } else if (mode == Mode::list) {
    const bool stopped = lp->error && lp->error->stage == ldso::LoaderError::Stage::loading;
    const ExpectedStderr want = expected_stderr(*lp, *lreq, !stopped);
    EXPECT_TRUE(stderr_matches(real.err, want));
    EXPECT_EQ(real.exit_code, stopped ? 127 : 0);
    if (!stopped) {
      EXPECT_EQ(parse_trace(real.out), render_trace(*lp)) << "stderr: " << real.err;
    }
  } else {
    const ExpectedStderr want = expected_stderr(*lp, *lreq, false);
    EXPECT_TRUE(stderr_matches(real.err, want));
    EXPECT_EQ(real.exit_code, want.exit_code);
    if (real.exit_code == 0 && c.fixture) {
      std::vector<std::string> printed = split_lines(real.out), loaded;
      EXPECT_FALSE(printed.empty()) << "no output";
      if (printed.empty()) return false;
      EXPECT_EQ(printed.front(), "argv0=" + lp->command->program_argv.front());
      for (std::size_t i = 1; i < printed.size(); ++i)
        if (!printed[i].empty() && printed[i] != sys().vdso_name) loaded.push_back(printed[i]);
      std::vector<std::string> mine;
      for (const auto& o : lp->objects) mine.push_back(o.path.value_or("not found: " + o.name));
      EXPECT_EQ(loaded, mine) << "objects a real run loaded (dl_iterate_phdr)";
    }
  }
  if (mode == Mode::list && !lp->error) {
    opts.env.emplace_back("LD_DEBUG=libs");
    const CommandResult debug = run_command(argv, opts);
    const auto found = found_in(debug.err);
    for (const auto& o : lp->objects) {
      const std::string kind = kind_of(o.found_by);
      auto it = found.find(o.name);
      if (kind.empty() || it == found.end()) continue;
      EXPECT_EQ(it->second, kind) << "where " << o.name << " was found (LD_DEBUG=libs)";
    }
  }
  return ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count() == failures_before;
}

TEST(LdsoCommand, explicit_loader_invocations_match_the_real_ldso) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  if (::access(sys().ldso_path.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << sys().ldso_path;
  FixtureDir dir;
  ASSERT_TRUE(build(dir)) << dir.error();
  const std::string leaf = dir.path().substr(dir.path().rfind('/') + 1);
  std::vector<Case> cases = load_cases();
  for (const auto& e : early_cases()) cases.push_back(e);
  std::size_t same = 0;
  for (auto c : cases) {
    for (auto& a : c.args)
      if (auto at = a.find("FIXTURE"); at != std::string::npos) a.replace(at, 7, leaf);
    SCOPED_TRACE("case " + c.name);
    same += compare(c, dir.path());
  }
  std::printf("ld.so command cases: %zu compared, %zu identical\n", cases.size(), same);
  EXPECT_EQ(same, cases.size());
}

}  // namespace
}  // namespace procforge::testsupport
