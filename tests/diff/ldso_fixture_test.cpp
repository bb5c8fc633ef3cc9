// ld.so differential suite over the generated fixtures (support/ldso_fixtures):
// for every case the real ld.so says which objects load, from where, and
// what a run prints, and ldso::resolve() alone (the search, the link map
// and the symbol-version check it runs) must say the same:
//   trace        the program exec'd with LD_TRACE_LOADED_OBJECTS=1 (the
//                kernel starts it, so $ORIGIN is /proc/self/exe's directory);
//   ld.so        `LD_TRACE_LOADED_OBJECTS=1 ld.so PROGRAM` (ld.so run as a
//                command, as ldd does; $ORIGIN from the name given) and
//                `ld.so --list PROGRAM` (the same, except that "not found" is
//                fatal);
//   LD_DEBUG     the trace run again with LD_DEBUG=libs: for every library
//                not found, the files ld.so tried, in order, against
//                Object::tried (glibc-hwcaps and legacy subdirectories,
//                directories known not to exist, the cache);
//   real run     cases whose point is a fatal error run the program (they are
//                our own fixtures) and compare stderr byte for byte; set-uid
//                cases (where trace mode is refused) run as nobody and print
//                their link map with dl_iterate_phdr.
// A case with its own ld.so.cache runs every real command in a private mount
// namespace where that file is bind-mounted over /etc/ld.so.cache.
// Plus the safety test: an executable with DT_AUDIT whose audit module
// writes a canary when ld.so loads it. procforge must never leave the canary;
// ldd must (proof the fixture can detect execution).
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "procforge/ldso.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/ldso_stderr.hpp"
#include "support/requires.hpp"

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

class LdsoFixture : public ::testing::TestWithParam<std::string> {};

// The files ld.so tried for each library it searched, from LD_DEBUG=libs
// (elf/dl-load.c open_path prints "trying file=PATH" before each open):
// NAME -> paths, for the first search of each name.
std::map<std::string, std::vector<std::string>> tried_by_ldso(const std::string& debug_output) {
  std::map<std::string, std::vector<std::string>> out;
  std::vector<std::string>* current = nullptr;
  for (const auto& line : split_lines(debug_output)) {
    if (auto p = line.find("find library="); p != std::string::npos) {
      const std::string name = line.substr(p + 13, line.find(" [", p) - p - 13);
      current = out.count(name) ? nullptr : &out[name];
    } else if (auto t = line.find(" trying file="); t != std::string::npos && current) {
      current->push_back(line.substr(t + 13));
    }
  }
  return out;
}

// What the model says ld.so tried for each object it did not find. A cache
// hit counts as tried even when DF_1_NODEFLIB then refuses it: elf/dl-cache.c
// _dl_load_cache_lookup prints "trying file=" for it; a cache miss is not a
// file.
std::map<std::string, std::vector<std::string>> tried_by_model(const ldso::Prediction& p) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& o : p.objects) {
    if (o.path || o.name.find('/') != std::string::npos || out.count(o.name)) continue;
    auto& files = out[o.name];
    const std::string tail = "/" + o.name;
    for (const auto& t : o.tried) {
      if (t.find(": no entry for ") != std::string::npos) continue;
      const std::string file = t.substr(0, t.find(" ("));
      if (file.size() >= tail.size() && file.compare(file.size() - tail.size(), std::string::npos, tail) == 0)
        files.push_back(file);
    }
  }
  return out;
}

// A case the machine cannot run skips; a fixture that does not build fails.
#define BUILD_CASE_OR_RETURN(var, name, dir)                                                         \
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");                                                             \
  auto var##_built = build_ldso_case(name, dir);                                                     \
  if (!var##_built && var##_built.error().err == EPERM) GTEST_SKIP() << var##_built.error().message; \
  ASSERT_TRUE(var##_built.ok()) << "building the fixture failed: " << var##_built.error().message;   \
  const LdsoCase& var = *var##_built

TEST_P(LdsoFixture, agrees_with_real_ldso) {
  FixtureDir dir;
  BUILD_CASE_OR_RETURN(c, GetParam(), dir);

  ldso::Request req;
  req.program = c.program;
  req.envp = base_env(c);
  req.cwd = c.cwd;
  req.secure = c.secure;

  // The real ld.so sees the case's cache at /etc/ld.so.cache; the model reads it.
  ldso::SystemInfo system = sys();
  if (!c.cache.empty()) system.cache_path = c.cache;
  auto predicted = ldso::resolve(req, system);
  ASSERT_TRUE(predicted.ok()) << predicted.error().message;

  CommandOptions opts;
  opts.cwd = c.cwd;
  if (c.secure) opts.uid = 65534;
  if (!c.cache.empty()) opts.bind_mounts = {{c.cache, "/etc/ld.so.cache"}};

  if (!c.secure) {
    // Trace mode through the kernel.
    opts.env = base_env(c);
    opts.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
    const CommandResult traced = run_command({c.program}, opts);
    ASSERT_TRUE(traced.started) << traced.err;
    EXPECT_EQ(parse_trace(traced.out), render_trace(*predicted)) << "trace mode, stderr: " << traced.err;
    const ExpectedStderr want = expected_stderr(*predicted, req, true);
    EXPECT_TRUE(stderr_matches(traced.err, want)) << "trace-mode stderr";
    EXPECT_EQ(traced.exit_code, want.exit_code) << "trace-mode exit status";
    // The same run with LD_DEBUG=libs: every file tried for a library not
    // found, in order (subdirectories, directories known not to exist).
    opts.env.emplace_back("LD_DEBUG=libs");
    const CommandResult debug = run_command({c.program}, opts);
    ASSERT_TRUE(debug.started) << debug.err;
    const auto ldso_tried = tried_by_ldso(debug.err);
    for (const auto& [name, files] : tried_by_model(*predicted)) {
      auto it = ldso_tried.find(name);
      EXPECT_EQ(it == ldso_tried.end() ? std::vector<std::string>{} : it->second, files)
          << "files tried for " << name << " (LD_DEBUG=libs)";
    }
  }
  if (c.list_with_ldso) {
    // ld.so run as a command, as ldd runs it: LD_TRACE_LOADED_OBJECTS=1 LDSO PROGRAM.
    ldso::Request lreq = req;
    lreq.explicit_loader = sys().ldso_path;
    auto listed_p = ldso::resolve(lreq, system);
    ASSERT_TRUE(listed_p.ok()) << listed_p.error().message;
    opts.env = base_env(c);
    opts.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
    const CommandResult listed = run_command({sys().ldso_path, c.program}, opts);
    ASSERT_TRUE(listed.started);
    EXPECT_EQ(parse_trace(listed.out), render_trace(*listed_p))
        << "LD_TRACE_LOADED_OBJECTS=1 ld.so, stderr: " << listed.err;
    EXPECT_TRUE(stderr_matches(listed.err, expected_stderr(*listed_p, lreq, true)))
        << "LD_TRACE_LOADED_OBJECTS=1 ld.so stderr";
    // `ld.so --list` differs (glibc 2.36, observed): a library that is not
    // found is fatal there, as in a real run, instead of a "not found" line.
    // A version error is not: the lines are printed and the list follows.
    opts.env = base_env(c);
    const CommandResult dashlist = run_command({sys().ldso_path, "--list", c.program}, opts);
    ASSERT_TRUE(dashlist.started);
    if (listed_p->error && listed_p->error->stage == ldso::LoaderError::Stage::loading) {
      EXPECT_EQ(dashlist.out, "");
      const ExpectedStderr want = expected_stderr(*listed_p, lreq, false);
      EXPECT_TRUE(stderr_matches(dashlist.err, want)) << "ld.so --list stderr";
      EXPECT_EQ(dashlist.exit_code, 127);
    } else {
      EXPECT_EQ(parse_trace(dashlist.out), render_trace(*listed_p)) << "ld.so --list, stderr: " << dashlist.err;
      EXPECT_TRUE(stderr_matches(dashlist.err, expected_stderr(*listed_p, lreq, true))) << "ld.so --list stderr";
      EXPECT_EQ(dashlist.exit_code, 0);
    }
  }
  if (c.run_for_real) {
    opts.env = base_env(c);
    const CommandResult ran = run_command({c.program}, opts);
    ASSERT_TRUE(ran.started) << ran.err;
    const ExpectedStderr want = expected_stderr(*predicted, req, false);
    EXPECT_TRUE(stderr_matches(ran.err, want)) << "real run stderr";
    EXPECT_EQ(ran.exit_code, want.exit_code) << "real run exit status";
    if (c.prints_link_map && ran.exit_code == 0) {
      // The run's link map after the main program ("") and the vDSO.
      std::vector<std::string> loaded;
      for (const auto& l : split_lines(ran.out))
        if (!l.empty() && l != sys().vdso_name) loaded.push_back(l);
      std::vector<std::string> mine;
      for (const auto& o : predicted->objects) mine.push_back(o.path.value_or("not found: " + o.name));
      EXPECT_EQ(loaded, mine) << "objects a real run loaded (dl_iterate_phdr)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LdsoFixture, ::testing::ValuesIn(ldso_case_names()),
                         [](const auto& param_info) { return param_info.param; });

// The CLI carries the integrated result: `explain --json` gives the version
// error with its stage and stderr line, relocation counts per object and no
// start-up estimate (the run stops before relocation); a program that loads
// gets the estimate; `explain --batch` adds the loader columns.
TEST(LdsoCli, explain_and_batch_carry_the_loader_part) {
  FixtureDir dir;
  BUILD_CASE_OR_RETURN(bad_case, "missing_symbol_version", dir);
  const LdsoCase* bad = &bad_case;
  CommandOptions opts;
  opts.env = {"PATH=/usr/bin:/bin"};
  const CommandResult pf = run_command({PROCFORGE_BINARY, "explain", "--json", bad->program}, opts);
  ASSERT_TRUE(pf.started);
  EXPECT_EQ(pf.exit_code, 1) << pf.err;
  const auto j = nlohmann::json::parse(pf.out)["loader"];
  ASSERT_TRUE(j["error"].is_object()) << j.dump(2);
  EXPECT_EQ(j["error"]["stage"], "versions");
  EXPECT_EQ(j["error"]["exit_status"], 1);
  const CommandResult ran = run_command({bad->program}, opts);
  EXPECT_EQ(j["error"]["stderr"].get<std::string>() + "\n", ran.err);
  EXPECT_TRUE(j["startup_estimate_us"].is_null());
  for (const auto& o : j["objects"]) {
    ASSERT_TRUE(o["relocations"].is_object()) << o.dump();
    for (const char* k : {"relative", "symbolic", "plt", "irelative", "tls", "copy", "pages_dirtied"})
      EXPECT_TRUE(o["relocations"][k].is_number_unsigned()) << k;
    EXPECT_TRUE(o["relocations"]["textrel"].is_boolean());
    EXPECT_TRUE(o["relocations"]["bind_now"].is_boolean());
  }

  const CommandResult ls = run_command({PROCFORGE_BINARY, "explain", "--json", "/usr/bin/ls"}, opts);
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  const auto l = nlohmann::json::parse(ls.out)["loader"];
  EXPECT_TRUE(l["error"].is_null());
  EXPECT_GT(l["startup_estimate_us"].get<double>(), 0.0);
  EXPECT_NE(l["startup_estimate_kind"].get<std::string>().find("estimate"), std::string::npos);
  // ld.so is a row too, eagerly bound whatever the environment.
  bool rtld = false;
  for (const auto& o : l["objects"])
    if (o["found_by"] == "interpreter") rtld = o["relocations"]["bind_now"].get<bool>();
  EXPECT_TRUE(rtld);

  const std::string list = bad->program + "\n/usr/bin/ls\n/dev/null\n";
  const std::string list_file = dir.write("batch.txt", list);
  const CommandResult batch = run_command({PROCFORGE_BINARY, "explain", "--batch", list_file}, opts);
  ASSERT_TRUE(batch.started);
  const auto lines = split_lines(batch.out);
  ASSERT_EQ(lines.size(), 4u) << batch.out;
  EXPECT_EQ(lines[0], "# path\tresult\tdetail\tchain\tobjects\tloader");
  EXPECT_NE(lines[1].find("\tldso\texit 1\t"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\tloader: " + j["error"]["object"].get<std::string>() + ": " +
                          j["error"]["message"].get<std::string>()),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find(std::to_string(l["objects"].size()) + " objects\tloader: ok"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("\t-\t-"), std::string::npos) << lines[3];
  EXPECT_EQ(batch.exit_code, 1) << "two of the three would not start";
  EXPECT_NE(batch.err.find("ld.so part for 2, 1 of them would stop"), std::string::npos) << batch.err;
}

TEST(LdsoSafety, dt_audit_is_never_run) {
  FixtureDir dir;
  BUILD_CASE_OR_RETURN(audit_case, "dt_audit", dir);
  const LdsoCase* c = &audit_case;
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
