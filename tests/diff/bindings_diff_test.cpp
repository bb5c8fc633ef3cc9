// explain --bindings against the real ld.so: every line `LD_DEBUG=bindings
// LD_BIND_NOW=1 PROGRAM --version` prints during start-up ("binding file A
// [0] to B [0]: normal symbol `sym' [VER]", elf/dl-lookup.c
// _dl_lookup_symbol_x) must be a binding procforge predicts, with the same
// referencing object, symbol, version asked for, object bound to and kind
// (normal/protected), in the same place of the list (ld.so's relocation
// order), and procforge must predict no printed lookup ld.so did not make.
// What binds where is never written here: ld.so prints it.
//   programs   a sample of /usr/bin's dynamic executables (every Nth, about
//              60; PROCFORGE_BINDINGS_SWEEP=185 gives about 185 and 154
//              compared, =all every one), each run with
//              --version, stdin /dev/null, in a scratch directory, killed
//              after 1.5 s (a program that does not exit by then is left out
//              and counted, as are set-uid/set-gid ones: in secure mode ld.so
//              ignores LD_DEBUG);
//   fixtures   support/binding_fixtures: interposition by LD_PRELOAD, a
//              protected definition, several versions of one symbol, a weak
//              undefined reference, copy relocations, an IFUNC, DT_SYMBOLIC,
//              TLS, STB_GNU_UNIQUE, DF_1_GROUP objects (which glibc
//              ignores), weak definitions with and without LD_DYNAMIC_WEAK.
// LD_DYNAMIC_WEAK in secure mode, where LD_DEBUG is ignored, is judged by
// the exit status of a program whose call says where it bound.
// Start-up is what ld.so prints before its first "calling init:" line; the
// lines after it (constructors, dlopen, dlsym) come from code that runs and
// are counted apart, not compared.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "procforge/ldso.hpp"
#include "support/binding_fixtures.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"
#include "support/run_command.hpp"

namespace procforge::testsupport {
namespace {

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LC_ALL=C"};

// One binding as LD_DEBUG prints it.
using Line = std::string;  // "A -> B: kind `sym' [VER]"

Line key(const std::string& from, const std::string& to, const std::string& kind, const std::string& sym,
         const std::string& version) {
  return from + " -> " + to + ": " + kind + " `" + sym + "'" + (version.empty() ? "" : " [" + version + "]");
}

struct Printed {
  bool ran = false;
  std::vector<Line> startup;
  std::size_t later = 0;  // lines after the first "calling init:"
};

Printed real_bindings(const std::string& program, const std::vector<std::string>& env, const std::string& cwd) {
  CommandOptions o;
  o.env = kEnv;
  o.env.insert(o.env.end(), env.begin(), env.end());
  o.env.emplace_back("LD_DEBUG=bindings");
  o.env.emplace_back("LD_BIND_NOW=1");
  o.cwd = cwd;
  o.timeout_ms = 1500;
  const auto r = run_command({program, "--version"}, o);
  Printed p;
  if (!r.started || r.timed_out || r.signal) return p;
  p.ran = true;
  // "PID:\tbinding file A [0] to B [0]: KIND symbol `SYM'[ [VER]]" (split by
  // hand: a regex over a million lines costs more than the programs).
  std::istringstream in(r.err);
  std::string l;
  bool init = false;
  while (std::getline(in, l)) {
    if (l.find(":\tcalling init:") != std::string::npos) init = true;
    const auto head = l.find(":\tbinding file ");
    if (head == std::string::npos) continue;
    const std::size_t a = head + 15;
    const auto to = l.find(" [0] to ", a);
    const auto colon = to == std::string::npos ? to : l.find(" [0]: ", to + 8);
    const auto sym = colon == std::string::npos ? colon : l.find(" symbol `", colon + 6);
    const auto quote = sym == std::string::npos ? sym : l.find('\'', sym + 9);
    if (quote == std::string::npos) continue;
    std::string version;
    if (l.size() > quote + 3 && l.compare(quote + 1, 2, " [") == 0 && l.back() == ']')
      version = l.substr(quote + 3, l.size() - quote - 4);
    if (init) ++p.later;
    else
      p.startup.push_back(key(l.substr(a, to - a), l.substr(to + 8, colon - to - 8),
                              l.substr(colon + 6, sym - colon - 6), l.substr(sym + 9, quote - sym - 9), version));
  }
  return p;
}

// procforge explain --json --bindings PROGRAM ARGS with ENV; {"problem": ...}
// when it gave no JSON.
nlohmann::json explain_json(const std::string& program, const std::vector<std::string>& args,
                            const std::vector<std::string>& env, const std::string& cwd) {
  std::vector<std::string> argv{PROCFORGE_BINARY, "explain", "--json", "--bindings", "--clear-env"};
  for (const auto& e : kEnv) argv.push_back("--env=" + e);
  for (const auto& e : env) argv.push_back("--env=" + e);
  argv.insert(argv.end(), {"--", program});
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions o;
  o.env = kEnv;
  o.cwd = cwd;
  o.timeout_ms = 60000;
  const auto r = run_command(argv, o);
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    return {{"problem", std::string(e.what()) + ": " + r.err}};
  }
}

// procforge's lookups that ld.so prints: made at start-up (not from the
// cache, not a lazy slot) and found.
std::optional<std::vector<Line>> predicted(const std::string& program, const std::vector<std::string>& env,
                                           std::string& problem) {
  std::vector<std::string> with_now = env;
  with_now.emplace_back("LD_BIND_NOW=1");
  const auto j = explain_json(program, {"--version"}, with_now, "");
  try {
    if (j.contains("problem")) throw std::runtime_error(j["problem"].get<std::string>());
    const auto& loader = j.at("loader");
    if (loader.is_null() || !loader.contains("bindings")) {
      problem = "no bindings: " + (loader.is_null() ? std::string("ld.so does not run") : loader["warnings"].dump());
      return std::nullopt;
    }
    std::vector<Line> out;
    for (const auto& b : loader["bindings"]) {
      if (b["target"].is_null() || b["from_cache"] || b["at_first_call"]) continue;
      out.push_back(key(b["object"], b["target"], b["kind"], b["symbol"],
                        b["version"].is_null() ? "" : b["version"].get<std::string>()));
    }
    return out;
  } catch (const std::exception& e) {
    problem = std::string("procforge explain --json --bindings: ") + e.what();
    return std::nullopt;
  }
}

struct Tally {
  std::size_t programs = 0, bindings = 0, agreed = 0, in_order = 0, later = 0;
  std::size_t protected_lines = 0;  // printed by ld.so as "protected symbol"

  std::map<std::string, std::size_t> left_out;
  std::vector<std::string> mismatches;
};

// Both sides of one program; the lists of lines must be equal, order and all.
void compare(const std::string& name, const std::string& program, const std::vector<std::string>& env,
             const std::string& cwd, Tally& t, std::mutex& mu) {
  const Printed real = real_bindings(program, env, cwd);
  if (!real.ran) {
    const std::lock_guard lock(mu);
    ++t.left_out["did not exit within 1.5 s of --version (or was killed by a signal)"];
    return;
  }
  struct stat st {};
  if (::stat(program.c_str(), &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) && real.startup.empty()) {
    const std::lock_guard lock(mu);
    ++t.left_out["set-uid/set-gid: secure mode, ld.so ignores LD_DEBUG"];
    return;
  }
  std::string problem;
  const auto mine = predicted(program, env, problem);
  const std::lock_guard lock(mu);
  ++t.programs;
  for (const auto& l : real.startup) t.protected_lines += l.find(": protected `") != std::string::npos;
  t.later += real.later;
  t.bindings += real.startup.size();
  if (!mine && problem == "no bindings: ld.so does not run") {
    --t.programs;
    t.bindings -= real.startup.size();
    ++t.left_out["ld.so does not run it (no PT_INTERP as explain sees it)"];
    return;
  }
  if (!mine) {
    t.mismatches.push_back(name + ": " + problem);
    return;
  }
  if (*mine == real.startup) ++t.in_order;
  std::map<Line, long> count;
  for (const auto& l : *mine) ++count[l];
  std::vector<std::string> missing;
  for (const auto& l : real.startup) {
    if (count[l]-- > 0) ++t.agreed;
    else missing.push_back(l);
  }
  std::vector<std::string> extra;
  for (const auto& [l, n] : count)
    for (long i = 0; i < n; ++i) extra.push_back(l);
  if (missing.empty() && extra.empty()) {
    // The same lines, so the same count: ld.so's order (each object in
    // relocation order, its relocations in table order) is the oracle too.
    if (*mine == real.startup) return;
    const auto at = std::mismatch(real.startup.begin(), real.startup.end(), mine->begin()).first - real.startup.begin();
    t.mismatches.push_back(name + ": the same bindings in another order, from line " + std::to_string(at + 1) +
                           "\n      ld.so:     " + real.startup[static_cast<std::size_t>(at)] +
                           "\n      procforge: " + (*mine)[static_cast<std::size_t>(at)]);
    return;
  }
  std::string m = name + ": " + std::to_string(missing.size()) + " printed by ld.so, not predicted; " +
                  std::to_string(extra.size()) + " predicted, not printed";
  for (std::size_t i = 0; i < missing.size() && i < 3; ++i) m += "\n      ld.so:     " + missing[i];
  for (std::size_t i = 0; i < extra.size() && i < 3; ++i) m += "\n      procforge: " + extra[i];
  t.mismatches.push_back(m);
}

void report(const char* what, const Tally& t) {
  std::printf(
      "bindings %s: %zu programs compared, %zu bindings printed by ld.so at start-up, %zu predicted (%.2f%%), "
      "%zu programs in ld.so's order too; %zu lines after start-up not compared; %zu protected\n",
      what, t.programs, t.bindings, t.agreed,
      t.bindings ? 100.0 * static_cast<double>(t.agreed) / static_cast<double>(t.bindings) : 0.0, t.in_order, t.later,
      t.protected_lines);
  for (const auto& [why, n] : t.left_out) std::printf("  left out: %zu  %s\n", n, why.c_str());
  for (std::size_t i = 0; i < t.mismatches.size() && i < 20; ++i)
    std::printf("  MISMATCH %s\n", t.mismatches[i].c_str());
  std::fflush(stdout);
}

bool dynamic_elf_executable(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec) || ::access(p.c_str(), X_OK) != 0) return false;
  std::ifstream f(p, std::ios::binary);
  char head[64] = {};
  f.read(head, sizeof head);
  return f && std::string(head, 4) == "\177ELF" && head[4] == 2 && (head[16] == 2 || head[16] == 3);
}

TEST(BindingsDiff, system_programs_bind_as_ld_so_says) {
  SKIP_IF_TOO_FEW_FILES(100u, false, "/usr/bin");
  // Programs whose --version would act (or wait) rather than print.
  static const std::regex unsafe("(kill|reboot|shutdown|halt|poweroff|sudo|^su$|passwd|login|systemd|init|telinit)");
  std::vector<std::string> all;
  for (const auto& e : std::filesystem::directory_iterator("/usr/bin"))
    if (!std::regex_search(e.path().filename().string(), unsafe) && dynamic_elf_executable(e.path()))
      all.push_back(e.path().string());
  std::sort(all.begin(), all.end());
  // About 60 programs by default (the ctest budget); PROCFORGE_BINDINGS_SWEEP=N
  // about N, =all every one (several minutes).
  const char* every = std::getenv("PROCFORGE_BINDINGS_SWEEP");
  std::size_t want = 60;
  if (every && std::string(every) == "all") want = all.size();
  else if (every && std::atoi(every) > 0) want = static_cast<std::size_t>(std::atoi(every));
  const std::size_t stride = std::max<std::size_t>(1, (all.size() + want - 1) / want);
  std::vector<std::string> programs;
  for (std::size_t i = 0; i < all.size(); i += stride) programs.push_back(all[i]);
  FixtureDir scratch;
  Tally t;
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < programs.size(); i = next++)
      compare(programs[i], programs[i], {}, scratch.path(), t, mu);
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  report("/usr/bin sample", t);
  EXPECT_GE(t.programs, std::min(programs.size(), want) * 3 / 4);
  EXPECT_GT(t.bindings, 1000u);
  EXPECT_EQ(t.agreed, t.bindings);
  EXPECT_EQ(t.in_order, t.programs);
  EXPECT_TRUE(t.mismatches.empty());
}

TEST(BindingsDiff, fixture_rules_bind_as_ld_so_says) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  FixtureDir dir;
  auto cases = build_binding_cases(dir);
  ASSERT_TRUE(cases) << cases.error().message;
  Tally t;
  std::mutex mu;
  for (const auto& c : *cases)
    if (c.starts) compare(c.name, c.program, c.env, dir.path(), t, mu);
  report("fixtures", t);
  EXPECT_GE(t.programs, 4u);
  // References through protected symbols: every_rule's own, and protref's
  // pointers to its data the executable copied and to its function.
  EXPECT_GE(t.protected_lines, 4u);
  EXPECT_EQ(t.agreed, t.bindings);
  EXPECT_EQ(t.in_order, t.programs);
  EXPECT_TRUE(t.mismatches.empty());
}

// LD_DYNAMIC_WEAK in secure mode (AT_SECURE: a set-uid root program run by
// nobody), where rtld.c process_envvars() does not set dl_dynamic_weak.
// ld.so ignores LD_DEBUG there, so the program's exit status says where its
// call went: wk_fn() of the fixture's libweak.so (weak, first in the scope)
// returns 1, libstrong.so's (global, later) 2. The same program without the
// set-uid bit, run by nobody too, shows the variable at work.
TEST(BindingsDiff, ld_dynamic_weak_is_ignored_in_secure_mode) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: a set-uid root program run by nobody (AT_SECURE)";
  FixtureDir dir;
  ASSERT_TRUE(build_binding_cases(dir)) << "building the binding fixtures failed";
  dir.write("weak/status.c", "extern int wk_fn(void);\nint main(void) { return wk_fn(); }\n");
  for (const char* out : {"weak/status", "weak/status_suid"})
    ASSERT_TRUE(dir.gcc({"-o", out, "weak/status.c", "-Wl,--no-as-needed", "-Lweak", "-lweak", "-lstrong",
                         "-Wl,-rpath," + dir.at("weak")}))
        << dir.error();
  ASSERT_EQ(::chmod(dir.at("weak/status_suid").c_str(), 04755), 0);
  const ldso::SystemInfo sys = ldso::SystemInfo::probe();
  for (const bool secure : {false, true}) {
    const std::string program = dir.at(secure ? "weak/status_suid" : "weak/status");
    std::vector<std::string> env = kEnv;
    env.emplace_back("LD_DYNAMIC_WEAK=1");
    CommandOptions o;
    o.env = env;
    o.cwd = dir.path();
    o.uid = 65534;
    const auto real = run_command({program}, o);
    ASSERT_TRUE(real.started) << real.err;
    ldso::Request req;
    req.program = program;
    req.envp = env;
    req.cwd = dir.path();
    req.secure = secure;
    req.bindings = true;
    auto p = ldso::resolve(req, sys);
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_TRUE(p->bindings);
    int predicted = -1;
    for (const auto& b : *p->bindings)
      if (b.object == program && b.symbol == "wk_fn" && b.target)
        predicted = *b.target == dir.at("weak/libweak.so") ? 1 : *b.target == dir.at("weak/libstrong.so") ? 2 : -1;
    std::printf("LD_DYNAMIC_WEAK=1, %s: the program's wk_fn() returned %d, procforge predicts %d\n",
                secure ? "secure mode" : "not secure", real.exit_code, predicted);
    EXPECT_EQ(real.exit_code, predicted) << (secure ? "secure mode" : "not secure") << "; stderr: " << real.err;
  }
}

// A reference nothing defines, run for real: whether main() ran ("before"
// on stdout), the status and ld.so's stderr; against explain's verdict
// (runs or not), its error (loader.error) and the lazy slots it says fail
// at their first call (loader.first_call_errors).
struct RealRun {
  bool main_ran = false;
  int status = -1;
  std::string err;
};

RealRun run_real(const std::string& program, const std::vector<std::string>& args, const std::vector<std::string>& env,
                 const std::string& cwd) {
  CommandOptions o;
  o.env = kEnv;
  o.env.insert(o.env.end(), env.begin(), env.end());
  o.cwd = cwd;
  o.timeout_ms = 10000;
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run_command(argv, o);
  return {r.out.rfind("before\n", 0) == 0, r.exit_code, r.err};
}

// Empty when procforge says what the real run did.
std::string lookup_error_mismatch(const RealRun& real, const nlohmann::json& j, bool called) {
  if (j.contains("problem")) return "procforge explain --json --bindings: " + j["problem"].get<std::string>();
  const auto& loader = j.at("loader");
  const bool starts = j.at("result").at("outcome") == "runs";
  std::string m;
  // The warnings ld.so prints as it relocates come first.
  std::string warned;
  for (const auto& w : loader.at("warnings"))
    if (w.get<std::string>().rfind("warning: ", 0) == 0) warned += w.get<std::string>() + "\n";
  if (real.err.rfind(warned, 0) != 0) m += " predicted the warnings " + warned + ";";
  const std::string err = real.err.substr(std::min(warned.size(), real.err.size()));
  if (starts != real.main_ran)
    m += std::string("procforge says the start ") + (starts ? "succeeds" : "fails") + ", main() " +
         (real.main_ran ? "ran" : "did not run") + ";";
  if (!starts) {
    const auto& e = loader.at("error");
    if (e.is_null() || e.at("stage") != "relocating") return m + " no relocating error predicted";
    if (e.at("stderr").get<std::string>() + "\n" != err || e.at("exit_status") != real.status)
      m += " predicted " + e.at("stderr").get<std::string>() + " (exit " + e.at("exit_status").dump() + ");";
    if (loader.at("binding_error") != e.at("stderr")) m += " binding_error is not error.stderr;";
  } else if (real.status != 0) {
    // A first call failed: that call's slot is one procforge names.
    bool named = false;
    for (const auto& f : loader.at("first_call_errors"))
      named |= f.at("stderr").get<std::string>() + "\n" == err && f.at("exit_status") == real.status;
    if (!named) m += " no first-call error predicted is this one;";
    if (j.at("result").at("text").get<std::string>().find("the first call to ") == std::string::npos)
      m += " the verdict does not name the first call;";
  } else if (called && !loader.at("first_call_errors").empty()) {
    m += " every call was made and none failed, but procforge predicts " + loader.at("first_call_errors").dump() + ";";
  } else if (!err.empty()) {
    m += " ld.so printed something unexpected;";
  }
  if (!m.empty())
    m += "\n      real: main " + std::string(real.main_ran ? "ran" : "did not run") + ", exit " +
         std::to_string(real.status) + ", stderr " + real.err;
  return m;
}

TEST(BindingsDiff, undefined_symbols_fail_where_ld_so_says) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  FixtureDir dir;
  auto cases = build_lookup_error_cases(dir);
  ASSERT_TRUE(cases) << cases.error().message;
  std::size_t runs = 0, agreed = 0, at_start = 0, at_first_call = 0;
  std::vector<std::string> mismatches;
  for (const auto& c : *cases)
    for (const std::vector<std::string>& env : {std::vector<std::string>{}, std::vector<std::string>{"LD_BIND_NOW=1"}})
      for (const bool call : {false, true}) {
        const std::vector<std::string> args = call ? std::vector<std::string>{"call"} : std::vector<std::string>{};
        const RealRun real = run_real(c.program, args, env, dir.path());
        const std::string m = lookup_error_mismatch(real, explain_json(c.program, args, env, dir.path()), call);
        ++runs;
        at_start += !real.main_ran;
        at_first_call += real.main_ran && real.status == 127;
        if (m.empty()) ++agreed;
        else mismatches.push_back(c.name + (env.empty() ? "" : " LD_BIND_NOW=1") + (call ? " call" : "") + ": " + m);
      }
  std::printf("undefined symbols: %zu runs compared (%zu stopped at start-up, %zu at a first call), %zu agreed\n", runs,
              at_start, at_first_call, agreed);
  for (const auto& m : mismatches) std::printf("  MISMATCH %s\n", m.c_str());
  EXPECT_EQ(runs, cases->size() * 4);
  EXPECT_GT(at_start, 0u);
  EXPECT_GT(at_first_call, 0u);
  EXPECT_EQ(agreed, runs);
}

// The same verdict in explain's text: the line ld.so prints, and when.
TEST(BindingsDiff, undefined_symbol_text_names_the_first_call) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  FixtureDir dir;
  auto cases = build_lookup_error_cases(dir);
  ASSERT_TRUE(cases) << cases.error().message;
  const std::string program = dir.at("lookup/call_lazy");
  const RealRun real = run_real(program, {"call"}, {}, dir.path());
  ASSERT_TRUE(real.main_ran && real.status == 127) << real.err;
  CommandOptions o;
  o.env = kEnv;
  const auto r = run_command({PROCFORGE_BINARY, "explain", "--bindings", "--clear-env", "--", program, "call"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("result  runs: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the first call to gone_fn stops it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(real.err.substr(0, real.err.size() - 1)), std::string::npos) << r.out;
  const auto now = run_command(
      {PROCFORGE_BINARY, "explain", "--bindings", "--clear-env", "--env=LD_BIND_NOW=1", "--", program, "call"}, o);
  EXPECT_EQ(now.exit_code, 1) << now.out;
  EXPECT_NE(now.out.find("result  fails in ld.so: "), std::string::npos) << now.out;
  EXPECT_NE(now.out.find(real.err.substr(0, real.err.size() - 1)), std::string::npos) << now.out;
}

}  // namespace
}  // namespace procforge::testsupport
