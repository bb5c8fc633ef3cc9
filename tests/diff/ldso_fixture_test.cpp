// ld.so differential suite over the generated fixtures (support/ldso_fixtures):
// for every case the real ld.so says which objects load, from where, and
// what a run prints, and ldso::resolve() + check_all_versions() must say the
// same:
//   trace        the program exec'd with LD_TRACE_LOADED_OBJECTS=1 (the
//                kernel starts it, so $ORIGIN is /proc/self/exe's directory);
//   ld.so        `LD_TRACE_LOADED_OBJECTS=1 ld.so PROGRAM` (ld.so run as a
//                command, as ldd does; $ORIGIN from the name given) and
//                `ld.so --list PROGRAM` (the same, except that "not found" is
//                fatal);
//   real run     cases whose point is a fatal error run the program (they are
//                our own fixtures) and compare stderr byte for byte.
// Plus the safety test: an executable with DT_AUDIT whose audit module
// writes a canary when ld.so loads it. procforge must never leave the canary;
// ldd must (proof the fixture can detect execution).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "ldso/versions.hpp"
#include "support/ldso_fixtures.hpp"
#include "procforge/ldso.hpp"

namespace procforge::testsupport {
namespace {

namespace fs = std::filesystem;

const ldso::SystemInfo& sys() {
  static const ldso::SystemInfo s = ldso::SystemInfo::probe();
  return s;
}

std::vector<std::string> base_env(const LdsoCase& c) {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  env.insert(env.end(), c.env.begin(), c.env.end());
  return env;
}

// The trace lines ld.so prints (rtld.c, trace mode), without the vDSO and
// the load addresses: "name => path", "name => not found", or "name" when
// the name is the path.
std::vector<std::string> parse_trace(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '\t') continue;
    line.erase(0, 1);
    if (const auto p = line.rfind(" (0x"); p != std::string::npos) line.erase(p);
    if (line == sys().vdso_name) continue;
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> render_trace(const ldso::Prediction& p) {
  std::vector<std::string> lines;
  for (const auto& o : p.objects) {
    if (!o.path) lines.push_back(o.name + " => not found");
    else if (o.name == *o.path) lines.push_back(o.name);
    else lines.push_back(o.name + " => " + *o.path);
  }
  return lines;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

// The link map as check_all_versions() needs it, from a prediction: the
// main program first, then the trace order (= l_next order).
std::vector<ldso::LoadedObject> link_map_of(const ldso::Prediction& p, const ldso::Request& req) {
  std::vector<ldso::LoadedObject> objs;
  ldso::LoadedObject main;
  main.l_name = req.explicit_loader.empty() ? "" : req.program;
  main.libnames = {main.l_name};
  main.path = req.cwd.empty() || req.program[0] == '/' ? req.program : req.cwd + "/" + req.program;
  objs.push_back(main);
  for (const auto& o : p.objects) {
    ldso::LoadedObject lo;
    lo.faked = !o.path;
    lo.l_name = o.path.value_or(o.name);
    lo.libnames = {o.name};
    if (o.path) lo.path = (*o.path)[0] == '/' || req.cwd.empty() ? *o.path : req.cwd + "/" + *o.path;
    objs.push_back(lo);
  }
  return objs;
}

// What stderr holds: failed preloads, then the loading error (fatal in a
// real run; in trace mode only when it is not a plain "not found"), or, when
// loading worked, the version check's lines. EXIT_CODE: the status ld.so
// exits with.
std::vector<std::string> expected_stderr(const ldso::Prediction& p, const ldso::Request& req, bool trace_mode,
                                         int* exit_code) {
  *exit_code = 0;
  std::vector<std::string> lines;
  for (const auto& w : p.warnings)
    if (w.rfind("ERROR: ld.so:", 0) == 0) lines.push_back(w);
  const std::string argv0 = req.program;
  bool not_found = false;
  if (p.error)
    for (const auto& o : p.objects)
      if (!o.path && o.name == p.error->object) not_found = true;
  if (p.error && (!trace_mode || !not_found)) {
    *exit_code = 127;
    lines.push_back(argv0 + ": error while loading shared libraries: " + p.error->object + ": " + p.error->message);
    return lines;
  }
  for (const auto& d : ldso::check_all_versions(link_map_of(p, req), argv0, trace_mode)) {
    lines.push_back(ldso::version_line(argv0, d));
    if (d.fatal && !trace_mode) *exit_code = 1;
  }
  return lines;
}

class LdsoFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(LdsoFixture, agrees_with_real_ldso) {
  FixtureDir dir;
  std::string why;
  auto built = build_ldso_case(GetParam(), dir, &why);
  if (!built) GTEST_SKIP() << "fixture not built: " << why;
  const LdsoCase& c = *built;
  if (!c.canary.empty()) GTEST_SKIP() << "DT_AUDIT runs code under ld.so: covered by dt_audit_is_never_run";

  ldso::Request req;
  req.program = c.program;
  req.envp = base_env(c);
  req.cwd = c.cwd;
  req.secure = c.secure;

  auto predicted = ldso::resolve(req, sys());
  ASSERT_TRUE(predicted.ok()) << predicted.error().message;

  CommandOptions opts;
  opts.cwd = c.cwd;
  if (c.secure) opts.uid = 65534;

  if (!c.secure) {
    // Trace mode through the kernel.
    opts.env = base_env(c);
    opts.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
    const CommandResult traced = run_command({c.program}, opts);
    ASSERT_TRUE(traced.started);
    EXPECT_EQ(parse_trace(traced.out), render_trace(*predicted)) << "trace mode, stderr: " << traced.err;
    int code = 0;
    EXPECT_EQ(split_lines(traced.err), expected_stderr(*predicted, req, true, &code)) << "trace-mode stderr";
    EXPECT_EQ(traced.exit_code, code) << "trace-mode exit status";
  }
  if (c.list_with_ldso) {
    // ld.so run as a command, as ldd runs it: LD_TRACE_LOADED_OBJECTS=1 LDSO PROGRAM.
    ldso::Request lreq = req;
    lreq.explicit_loader = sys().ldso_path;
    auto listed_p = ldso::resolve(lreq, sys());
    ASSERT_TRUE(listed_p.ok()) << listed_p.error().message;
    opts.env = base_env(c);
    opts.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
    const CommandResult listed = run_command({sys().ldso_path, c.program}, opts);
    ASSERT_TRUE(listed.started);
    EXPECT_EQ(parse_trace(listed.out), render_trace(*listed_p)) << "LD_TRACE_LOADED_OBJECTS=1 ld.so, stderr: "
                                                                << listed.err;
    // `ld.so --list` differs (glibc 2.36, observed): a library that is not
    // found is fatal there, as in a real run, instead of a "not found" line.
    opts.env = base_env(c);
    const CommandResult dashlist = run_command({sys().ldso_path, "--list", c.program}, opts);
    ASSERT_TRUE(dashlist.started);
    if (listed_p->error) {
      EXPECT_EQ(dashlist.out, "");
      int code = 0;
      EXPECT_EQ(split_lines(dashlist.err), expected_stderr(*listed_p, lreq, false, &code)) << "ld.so --list stderr";
      EXPECT_EQ(dashlist.exit_code, 127);
    } else {
      EXPECT_EQ(parse_trace(dashlist.out), render_trace(*listed_p)) << "ld.so --list, stderr: " << dashlist.err;
    }
  }
  if (c.run_for_real) {
    opts.env = base_env(c);
    const CommandResult ran = run_command({c.program}, opts);
    ASSERT_TRUE(ran.started);
    int code = 0;
    const auto want = expected_stderr(*predicted, req, false, &code);
    EXPECT_EQ(split_lines(ran.err), want) << "real run stderr";
    EXPECT_EQ(ran.exit_code, code) << "real run exit status";
    // A fatal prediction for a real run must exist exactly when the run failed.
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LdsoFixture, ::testing::ValuesIn(ldso_case_names()),
                         [](const auto& info) { return info.param; });

TEST(LdsoSafety, dt_audit_is_never_run) {
  FixtureDir dir;
  std::string why;
  auto c = build_ldso_case("dt_audit", dir, &why);
  if (!c) GTEST_SKIP() << "fixture not built: " << why;
  ASSERT_FALSE(fs::exists(c->canary));

  // The library model and the CLI read the program; neither may run it.
  ldso::Request req;
  req.program = c->program;
  req.envp = {"PATH=/usr/bin:/bin"};
  auto p = ldso::resolve(req, sys());
  EXPECT_TRUE(p.ok());
  EXPECT_FALSE(fs::exists(c->canary)) << "ldso::resolve() ran the DT_AUDIT module";
  CommandOptions opts;
  opts.env = {"PATH=/usr/bin:/bin"};
  const CommandResult pf = run_command({PROCFORGE_BINARY, "explain", "--json", c->program}, opts);
  ASSERT_TRUE(pf.started);
  EXPECT_EQ(pf.exit_code, 0) << pf.err;
  EXPECT_FALSE(fs::exists(c->canary)) << "procforge explain ran the DT_AUDIT module";

  // Contrast: ldd (glibc 2.36) loads DT_AUDIT modules before its trace exit.
  const CommandResult ldd = run_command({"/usr/bin/ldd", c->program}, opts);
  ASSERT_TRUE(ldd.started);
  EXPECT_TRUE(fs::exists(c->canary)) << "ldd did not run la_version(): the fixture cannot detect execution, "
                                        "so the assertions above prove nothing. ldd said: "
                                     << ldd.out << ldd.err;
}

}  // namespace
}  // namespace procforge::testsupport
