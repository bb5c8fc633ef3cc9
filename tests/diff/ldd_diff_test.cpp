// `procforge ldd` against the system's ldd (glibc's elf/ldd.bash.in, which
// runs `LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 FILE`): the same
// stdout once the load addresses " (0x...)" are taken off ldd's lines, the
// same stderr, the same exit status. What ldd should print is never written
// here: the real ldd prints it, procforge must print the same.
//   system sweep  every ELF file under /usr/bin, /usr/sbin,
//                 /usr/lib/x86_64-linux-gnu and /usr/libexec (support/
//                 system_elf): executables, libraries, objects ld.so refuses.
//                 Files with DT_AUDIT/DT_DEPAUDIT are not given to ldd (it
//                 would run their audit module) and are counted; so are
//                 32-bit files with PT_DYNAMIC, which ldd hands to
//                 /lib/ld-linux.so.2 and procforge refuses to answer for
//                 (status 2, outcome "not_modelled"); any other refusal is a
//                 failure. -v (the version information section) runs on every
//                 fourth file of the same list and -u (unused direct
//                 dependencies: the main program's symbol bindings) and -r
//                 (every object relocated, the undefined symbols listed) on
//                 every twelfth, -d on every twenty-fourth, unless
//                 PROCFORGE_LDD_SWEEP=all (the whole list takes ldd about
//                 20 s on 2 cores a pass);
//   fixtures      every ld.so fixture case (support/ldso_fixtures: RPATH,
//                 RUNPATH, $ORIGIN, names not found, version errors, failed
//                 preloads, hwcaps subdirectories, its own ld.so.cache
//                 bind-mounted in a private mount namespace for both tools)
//                 but the DT_AUDIT one; and the script's own cases: a name
//                 without '/', several files with their headers, a missing
//                 file, a directory, a text file, a static executable, a
//                 DT_NEEDED that is not ELF (ld.so stops: status 127 -> 1).
// Closing lines: "ldd sweep: N files compared, M identical (P%)", the files
// left out by reason, and every difference.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/binding_fixtures.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"
#include "support/run_command.hpp"
#include "support/system_elf.hpp"

namespace procforge::testsupport {
namespace {

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LC_ALL=C"};

// ldd's lines without the load address ld.so prints after each object, and
// with "  PID" for the process id LD_DEBUG's lines start with (ldd -u), which
// procforge prints so.
std::string strip_addresses(const std::string& out) {
  std::istringstream in(out);
  std::string line, s;
  while (std::getline(in, line)) {
    const auto at = line.rfind(" (0x");
    if (at != std::string::npos && line.back() == ')') line.resize(at);
    const auto tab = line.find(":\t");
    if (tab != std::string::npos && tab > 0 && line.find_first_not_of(" 0123456789") == tab)
      line = "  PID" + line.substr(tab);
    s += line + "\n";
  }
  return s;
}

struct Printed {
  std::string out, err;
  int status = -1;
  bool operator==(const Printed&) const = default;
};

std::string show(const Printed& p) {
  return "status " + std::to_string(p.status) + "\n      stdout: " + nlohmann::json(p.out).dump() +
         "\n      stderr: " + nlohmann::json(p.err).dump();
}

// Where both tools run: the environment (the whole of it), the working
// directory and the bind mounts of a private mount namespace.
struct Setting {
  std::vector<std::string> env = kEnv;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> mounts;
  // For ldd: the setting's environment. procforge runs in kEnv (its own
  // start must not see the case's LD_PRELOAD) and gets the setting's as --env.
  CommandOptions options(bool for_procforge = false) const {
    CommandOptions o;
    o.env = for_procforge ? kEnv : env;
    o.cwd = cwd;
    o.bind_mounts = mounts;
    o.timeout_ms = 60000;
    return o;
  }
};

Printed real_ldd(const std::vector<std::string>& flags, const std::string& file, const Setting& s) {
  std::vector<std::string> argv{"/usr/bin/ldd"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.emplace_back("--");
  argv.push_back(file);
  const auto r = run_command(argv, s.options());
  if (!r.started || r.timed_out || r.signal) return {"", "ldd did not run: " + r.err, -1};
  return {strip_addresses(r.out), r.err, r.exit_code};
}

// procforge ldd --json over FILES in one process: per file, the lines it
// says ldd prints, or "not_modelled" (status -2) with why.
std::vector<Printed> procforge_ldd(const std::vector<std::string>& flags, const std::vector<std::string>& files,
                                   const Setting& s, std::string& problem) {
  std::vector<std::string> argv{PROCFORGE_BINARY, "ldd", "--json", "--clear-env"};
  for (const auto& e : s.env) argv.push_back("--env=" + e);
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.emplace_back("--");
  argv.insert(argv.end(), files.begin(), files.end());
  const auto r = run_command(argv, s.options(true));
  std::vector<Printed> out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    problem = std::string("procforge ldd --json did not give JSON: ") + e.what() + "\n" + r.err;
    return out;
  }
  // Each real ldd starts its own shell: its lines come first in every file's stderr.
  const std::string shell = j["shell_stderr"];
  for (const auto& f : j["files"]) {
    if (f["outcome"] == "not_modelled") out.push_back({"", f["why"].get<std::string>(), -2});
    else out.push_back({f["stdout"], shell + f["stderr"].get<std::string>(), f["status"]});
  }
  if (out.size() != files.size()) problem = "procforge ldd answered for " + std::to_string(out.size()) + " files";
  return out;
}

struct Tally {
  std::size_t compared = 0, identical = 0;
  std::map<std::string, std::size_t> left_out;
  std::vector<std::string> differences;
};

// Both tools on FILES with FLAGS; ldd per file in two threads. ELF32: which
// files may be refused as not modelled.
// ALLOWED_REFUSAL: any refusal is counted under this reason instead.
void compare(const std::vector<std::string>& flags, const std::vector<std::string>& files,
             const std::vector<bool>& elf32, const Setting& s, Tally& t, const char* allowed_refusal = nullptr) {
  std::string problem;
  const auto mine = procforge_ldd(flags, files, s, problem);
  ASSERT_TRUE(problem.empty()) << problem;
  std::vector<Printed> real(files.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++)
      if (mine[i].status != -2) real[i] = real_ldd(flags, files[i], s);
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (mine[i].status == -2) {
      if (allowed_refusal) {
        ++t.left_out[allowed_refusal];
        continue;
      }
      if (elf32[i]) {
        ++t.left_out["32-bit with PT_DYNAMIC: ldd traces it with /lib/ld-linux.so.2 (not modelled, refused)"];
        continue;
      }
      t.differences.push_back(files[i] + "\n    procforge refused it: " + mine[i].err);
      ++t.compared;
      continue;
    }
    ++t.compared;
    if (mine[i] == real[i]) ++t.identical;
    else t.differences.push_back(files[i] + "\n    ldd:       " + show(real[i]) + "\n    procforge: " + show(mine[i]));
  }
}

void report(const char* what, const Tally& t) {
  std::printf("ldd %s: %zu files compared, %zu identical (%.1f%%)\n", what, t.compared, t.identical,
              t.compared ? 100.0 * static_cast<double>(t.identical) / static_cast<double>(t.compared) : 0.0);
  for (const auto& [why, n] : t.left_out) std::printf("  left out: %zu  %s\n", n, why.c_str());
  for (std::size_t i = 0; i < t.differences.size() && i < 30; ++i)
    std::printf("  DIFFERENT %s\n", t.differences[i].c_str());
  std::fflush(stdout);
}

TEST(LddDiff, every_elf_file_of_the_system_gets_ldds_lines) {
  SKIP_UNLESS_INSTALLED("/usr/bin/ldd", "/usr/bin/bash");
  SKIP_IF_TOO_FEW_FILES(100u, true, "/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec");
  std::vector<std::string> files;
  std::vector<bool> elf32;
  Tally plain, verbose, unused, relocs, data;
  const std::string audit_reason = "DT_AUDIT/DT_DEPAUDIT (ldd would run the audit module)";
  plain.left_out[audit_reason] = 0;  // counted even when there is none
  for (const auto& c : system_elf_files(/*elf32_too=*/true)) {
    const auto bytes = read_whole(c.path);
    const auto audit = bytes ? read_audit(*bytes) : Result<bool>(false);
    if (audit && *audit) {
      ++plain.left_out[audit_reason];
      continue;
    }
    files.push_back(c.path);
    elf32.push_back(c.elf32);
  }
  ASSERT_GT(files.size(), 100u);
  compare({}, files, elf32, {}, plain);
  const char* all = std::getenv("PROCFORGE_LDD_SWEEP");
  const std::size_t stride = all && std::string(all) == "all" ? 1 : 4;
  auto every = [&](std::size_t n, const char* flag, Tally& t, const char* allowed_refusal = nullptr) {
    std::vector<std::string> some;
    std::vector<bool> some32;
    for (std::size_t i = 0; i < files.size(); i += n) {
      some.push_back(files[i]);
      some32.push_back(elf32[i]);
    }
    compare({flag}, some, some32, {}, t, allowed_refusal);
  };
  every(stride, "-v", verbose);
  every(stride * 2, "-u", unused,
        "-u: 32-bit, or a dependency not found (ld.so crashes on some: refused, not modelled)");
  // Any refusal but a 32-bit file's is a failure here (ld.so stopping on
  // check_match()'s assertion while relocating is refused, not modelled).
  every(stride * 3, "-r", relocs);
  every(stride * 6, "-d", data);
  report("sweep", plain);
  report(stride == 1 ? "-v sweep" : "-v sweep (every 4th file; PROCFORGE_LDD_SWEEP=all for all)", verbose);
  report(stride == 1 ? "-u sweep" : "-u sweep (every 8th file; PROCFORGE_LDD_SWEEP=all for all)", unused);
  EXPECT_EQ(plain.identical, plain.compared);
  EXPECT_EQ(verbose.identical, verbose.compared);
  report(stride == 1 ? "-r sweep" : "-r sweep (every 12th file; PROCFORGE_LDD_SWEEP=all for all)", relocs);
  report(stride == 1 ? "-d sweep" : "-d sweep (every 24th file; PROCFORGE_LDD_SWEEP=all for all)", data);
  EXPECT_EQ(unused.identical, unused.compared);
  EXPECT_GE(unused.compared, 200u);
  EXPECT_EQ(relocs.identical, relocs.compared);
  EXPECT_GE(relocs.compared, 200u);
  EXPECT_EQ(data.identical, data.compared);
}

// The ld.so fixture cases through both tools, with -v and -u, in each case's
// environment and directory, by absolute path and by the name relative to
// the case's directory.
TEST(LddDiff, every_ldso_fixture_case_gets_ldds_lines) {
  SKIP_UNLESS_INSTALLED("/usr/bin/ldd", "/usr/bin/bash", "/usr/bin/gcc");
  FixtureDir dir;
  Tally t;
  for (const auto& name : ldso_case_names()) {
    if (name == "dt_audit") continue;  // ldd would run its module
    auto c = build_ldso_case(name, dir);
    if (!c && c.error().err == EPERM) {
      ++t.left_out["needs root to build"];
      continue;
    }
    ASSERT_TRUE(c) << name << ": " << c.error().message;
    Setting s;
    s.env.insert(s.env.end(), c->env.begin(), c->env.end());
    s.cwd = c->cwd;
    if (!c->cache.empty()) {
      if (geteuid() != 0) {
        ++t.left_out["own ld.so.cache: needs root for the mount namespace"];
        continue;
      }
      s.mounts.emplace_back(c->cache, "/etc/ld.so.cache");
    }
    std::vector<std::string> files{c->program};
    if (!s.cwd.empty() && c->program.rfind(s.cwd + "/", 0) == 0) files.push_back(c->program.substr(s.cwd.size() + 1));
    const std::vector<bool> elf32(files.size(), false);
    const std::size_t before = t.differences.size();
    compare({}, files, elf32, s, t);
    compare({"-v"}, files, elf32, s, t);
    compare({"-u"}, files, elf32, s, t,
            "-u with a dependency not found (ld.so crashes on some: refused, not modelled)");
    for (std::size_t i = before; i < t.differences.size(); ++i) t.differences[i] = name + ": " + t.differences[i];
  }
  report("fixture cases", t);
  EXPECT_GT(t.compared, 20u);
  EXPECT_EQ(t.identical, t.compared);
}

// The symbol-binding fixtures (support/binding_fixtures: undefined function,
// data and versioned references, a weak undefined one, copy relocations of
// another size both ways, a library with undefined symbols, interposition,
// DT_SYMBOLIC, weak definitions with and without LD_DYNAMIC_WEAK...) through
// both tools with -d, -r and -u, and the lookup-error programs (undefined
// references, protected symbols copied or taken the address of, with a
// library needing indirect extern access: ld.so stops) with -d and -r.
TEST(LddDiff, binding_fixtures_get_ldds_undefined_symbol_lines) {
  SKIP_UNLESS_INSTALLED("/usr/bin/ldd", "/usr/bin/bash", "/usr/bin/gcc");
  FixtureDir dir;
  auto cases = build_binding_cases(dir);
  ASSERT_TRUE(cases) << cases.error().message;
  auto lookup_errors = build_lookup_error_cases(dir);
  ASSERT_TRUE(lookup_errors) << lookup_errors.error().message;
  cases->insert(cases->end(), lookup_errors->begin(), lookup_errors->end());
  Tally t;
  for (const auto& c : *cases) {
    Setting s;
    s.env.insert(s.env.end(), c.env.begin(), c.env.end());
    const std::size_t before = t.differences.size();
    for (const char* flag : {"-d", "-r", "-u"}) compare({flag}, {c.program}, {false}, s, t);
    for (std::size_t i = before; i < t.differences.size(); ++i) t.differences[i] = c.name + ": " + t.differences[i];
  }
  report("binding fixtures", t);
  EXPECT_GE(t.compared, 40u);
  EXPECT_EQ(t.identical, t.compared);
}

// The script's own cases, and several files at once (headers, status 1 when
// one fails) through the real procforge binary's text output.
TEST(LddDiff, the_scripts_own_cases_and_several_files_match) {
  SKIP_UNLESS_INSTALLED("/usr/bin/ldd", "/usr/bin/bash", "/usr/bin/gcc");
  FixtureDir dir;
  dir.write("text.txt", "not an object\n");
  dir.write("notelf.so", "not an object either\n");
  dir.mkdirs("subdir");
  dir.write("main.c", "int main(void) { return 0; }\n");
  dir.write("lib.c", "int f(void) { return 1; }\n");
  ASSERT_TRUE(dir.gcc({"-o", "static", "-static", "main.c"}) || dir.gcc({"-o", "static", "main.c"})) << dir.error();
  ASSERT_TRUE(dir.gcc({"-shared", "-fPIC", "-o", "libgone.so", "lib.c"})) << dir.error();
  ASSERT_TRUE(dir.gcc({"-o", "needs_gone", "main.c", "-Wl,--no-as-needed", "-L.", "-lgone"})) << dir.error();
  ASSERT_TRUE(dir.gcc({"-shared", "-fPIC", "-o", "libneeds_gone.so", "lib.c", "-Wl,--no-as-needed", "-L.", "-lgone"}))
      << dir.error();
  ASSERT_TRUE(dir.gcc({"-o", "needs_notelf", "main.c", "-Wl,--no-as-needed", "./libgone.so"})) << dir.error();
  // libgone.so becomes a text file: not found by name (the directory is not
  // searched), refused by ld.so under its DT_NEEDED "./libgone.so".
  dir.write("libgone.so", "not an object\n");
  const std::vector<std::string> names{"text.txt",   "subdir",           "missing",      "static",
                                       "needs_gone", "libneeds_gone.so", "needs_notelf", dir.at("needs_gone")};
  Setting s;
  s.cwd = dir.path();
  s.env.push_back("LD_PRELOAD=libnothere.so");
  Tally t;
  compare({}, names, std::vector<bool>(names.size(), false), s, t);
  // The text output of several files at once, headers and all.
  std::vector<std::string> argv{PROCFORGE_BINARY, "ldd", "--clear-env"};
  for (const auto& e : s.env) argv.push_back("--env=" + e);
  argv.emplace_back("--");
  std::vector<std::string> real_argv{"/usr/bin/ldd", "--"};
  argv.insert(argv.end(), names.begin(), names.end());
  real_argv.insert(real_argv.end(), names.begin(), names.end());
  const auto mine = run_command(argv, s.options(true));
  const auto real = run_command(real_argv, s.options());
  ++t.compared;
  const Printed m{mine.out, mine.err, mine.exit_code}, r{strip_addresses(real.out), real.err, real.exit_code};
  if (m == r) ++t.identical;
  else t.differences.push_back("all at once\n    ldd:       " + show(r) + "\n    procforge: " + show(m));
  report("script cases", t);
  EXPECT_EQ(t.identical, t.compared);
}

}  // namespace
}  // namespace procforge::testsupport
