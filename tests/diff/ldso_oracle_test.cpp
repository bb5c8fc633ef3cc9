// The ld.so model against the real ld.so on every ELF file of the system:
// each regular file under /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu
// (recursive) and /usr/libexec (recursive) whose e_ident says 64-bit little
// endian ELF goes through `LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2
// FILE` (trace mode, exactly what ldd runs: ld.so loads the dependencies,
// fakes "not found" entries, relocates and runs nothing; plain `--list`
// instead stops at the first missing object) and through ldso::resolve() with
// the same environment and Request::explicit_loader, and the lists must be
// equal: the same paths in the same order, "not found" entries by name. When
// the real run stops with "error while loading shared libraries: OBJECT:
// MESSAGE", the predicted error must say the same. Trace mode runs the
// symbol-version check and goes on: every line it prints must be predicted,
// and every predicted line printed.
//
// Candidates are chosen from their raw e_ident bytes, not with procforge's
// ELF reader, so a file the reader wrongly refuses is a failure instead of a
// file the sweep never sees. A file ld.so refuses to start on (an ET_REL
// object, "not a dynamic executable") must be refused by the model too; an
// oracle run killed by a signal or out of time is a failure, never a skip.
// Only files with DT_AUDIT/DT_DEPAUDIT are skipped: trace mode would run
// their audit module's code.
//
// Closing line: "ldso oracle: N files compared, M identical (P%)", then every
// difference.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "procforge/elf.hpp"
#include "procforge/ldso.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/ldso_stderr.hpp"
#include "support/requires.hpp"
#include "support/system_elf.hpp"

namespace {

namespace fs = std::filesystem;
using namespace procforge;
using testsupport::CommandOptions;
using testsupport::CommandResult;
using testsupport::expected_version_lines;
using testsupport::read_audit;
using testsupport::read_whole;
using testsupport::run_command;
using testsupport::split_lines;
using testsupport::stderr_matches;
using Clock = std::chrono::steady_clock;

constexpr const char* kLdso = "/lib64/ld-linux-x86-64.so.2";
const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LANG=C"};

CommandResult run_list(const std::string& file, const std::vector<std::string>& extra_env = {}) {
  CommandOptions o;
  o.env = kEnv;
  o.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
  o.env.insert(o.env.end(), extra_env.begin(), extra_env.end());
  o.timeout_ms = 60000;  // a loaded machine; ld.so itself needs milliseconds
  return run_command({kLdso, file}, o);
}

// One trace line as a comparable key: "PATH" or "not found: NAME".
struct Listed {
  std::vector<std::string> keys;
  bool statically_linked = false;
};

Listed parse_list(const std::string& out, const std::string& vdso) {
  Listed l;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '\t') continue;
    line.erase(0, 1);
    if (line == "statically linked") {
      l.statically_linked = true;
      continue;
    }
    const auto arrow = line.find(" => ");
    if (arrow == std::string::npos) {
      // "NAME (0x...)": the vDSO, or an object whose name is its path.
      const auto paren = line.rfind(" (0x");
      const std::string name = line.substr(0, paren);
      if (name == vdso) continue;
      l.keys.push_back(name);
      continue;
    }
    const std::string name = line.substr(0, arrow);
    std::string rest = line.substr(arrow + 4);
    if (rest == "not found") {
      l.keys.push_back("not found: " + name);
      continue;
    }
    const auto paren = rest.rfind(" (0x");
    l.keys.push_back(rest.substr(0, paren));
  }
  return l;
}

std::string join_keys(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& k : v) s += "\n      " + k;
  return s;
}

// The lines of ld.so's symbol-version check in STDERR: every message of
// elf/dl-version.c names the object that required the version.
std::string version_check_lines(const std::string& stderr_text) {
  std::string out;
  for (const auto& l : split_lines(stderr_text))
    if (l.find(" (required by ") != std::string::npos) out += l + "\n";
  return out;
}

// Compares one real trace run (that exited) with the prediction. Sets
// REFUSED, with ld.so's reason, when ld.so refused to start on the file and
// the model refused it too.
void compare(const ldso::Request& req, const CommandResult& real, const Result<ldso::Prediction>& pred,
             const ldso::SystemInfo& sys, std::string& diff, std::string& refused) {
  const std::string& path = req.program;
  const std::string marker = "error while loading shared libraries: ";
  const auto at = real.err.find(marker);
  if (real.exit_code == 0) {
    const Listed listed = parse_list(real.out, sys.vdso_name);
    if (!pred) {
      diff = "model error: " + pred.error().message;
      return;
    }
    std::vector<std::string> mine;
    for (const auto& o : pred->objects) mine.push_back(o.path ? *o.path : "not found: " + o.name);
    if (mine != listed.keys) {
      diff = "ld.so:" + join_keys(listed.keys) + "\n    model:" + join_keys(mine);
      return;
    }
    // Trace mode prints every line of the version check and goes on (exit 0).
    if (auto m = stderr_matches(version_check_lines(real.err), expected_version_lines(*pred, req)); !m) {
      diff = std::string("version check: ") + m.message();
      return;
    }
    if (pred->error && pred->error->stage == ldso::LoaderError::Stage::loading &&
        pred->error->message.find("cannot open shared object file") == std::string::npos &&
        pred->error->message != "CPU ISA level is lower than required" &&
        pred->error->message.rfind("wrong ELF class", 0) != 0)
      diff = "model predicts a fatal error ld.so did not hit: " + pred->error->object + ": " + pred->error->message;
  } else if (at != std::string::npos) {
    std::string what = real.err.substr(at + marker.size());
    while (!what.empty() && (what.back() == '\n' || what.back() == '\r')) what.pop_back();
    // ld.so refused the file itself (e.g. "only ET_DYN and ET_EXEC can be
    // loaded"): the model must refuse it for the same reason.
    const std::string own = path + ": ";
    if (!pred && what.rfind(own, 0) == 0 && pred.error().message.find(what.substr(own.size())) != std::string::npos)
      refused = what.substr(own.size());
    else if (!pred) diff = "model error: " + pred.error().message + "\n    ld.so: " + what;
    else if (!pred->error) diff = "ld.so stops with: " + what + "\n    model: no error";
    else if (pred->error->object + ": " + pred->error->message != what)
      diff = "ld.so stops with: " + what + "\n    model:    " + pred->error->object + ": " + pred->error->message;
  } else {
    std::string why = real.err.substr(0, real.err.find('\n'));
    // Strip the file name so reasons group.
    if (auto p = why.find(path); p != std::string::npos) why.replace(p, path.size(), "FILE");
    if (why.empty()) why = "exit " + std::to_string(real.exit_code);
    if (!pred || !pred->dynamic) refused = why;
    else diff = "ld.so refused it (" + why + "); the model did not";
  }
}

TEST(LdsoOracle, every_elf_file_lists_like_the_real_ldso) {
  const auto t0 = Clock::now();
  const ldso::SystemInfo sys = ldso::SystemInfo::probe();
  ASSERT_TRUE(sys.from_ldso) << "ld.so --list-diagnostics did not answer";
  SKIP_IF_TOO_FEW_FILES(100u, true, "/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec");
  const auto files = testsupport::system_elf_files();
  const auto t_collect = Clock::now();
  ASSERT_GT(files.size(), 100u) << "too few ELF files found to be a meaningful sweep";

  std::mutex mu;
  std::map<std::string, std::size_t> skipped, refused_by_both;  // reason -> count
  std::vector<std::string> differences;
  std::atomic<std::size_t> next{0}, compared{0}, identical{0}, static_execs{0};

  auto worker = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++) {
      const auto& path = files[i].path;
      auto count = [&](std::map<std::string, std::size_t>& m, const std::string& why) {
        std::lock_guard<std::mutex> lock(mu);
        ++m[why];
      };
      auto differ = [&](const std::string& what) {
        ++compared;
        std::lock_guard<std::mutex> lock(mu);
        differences.push_back(path + "\n    " + what);
      };
      const auto bytes = read_whole(path);
      if (!bytes) {
        differ(std::string("cannot read the file: ") + std::strerror(errno));
        continue;
      }
      const auto audit = read_audit(*bytes);
      if (!audit) {
        differ("procforge's ELF reader refused it: " + audit.error().message);
        continue;
      }
      if (*audit) {
        count(skipped, "DT_AUDIT/DT_DEPAUDIT (trace mode would run the audit module)");
        continue;
      }
      ldso::Request req;
      req.program = path;
      req.envp = kEnv;
      req.explicit_loader = kLdso;
      const auto pred = ldso::resolve(req, sys);
      if (files[i].static_exec) {
        if (!pred || pred->dynamic) {
          differ("a static ET_EXEC (no PT_DYNAMIC in the raw program headers) the model calls dynamic" +
                 (pred ? std::string() : ": " + pred.error().message));
          continue;
        }
        ++compared;
        ++identical;
        ++static_execs;
        continue;
      }
      const CommandResult real = run_list(path);
      if (!real.started) {
        differ("could not start ld.so: " + real.err);
        continue;
      }
      if (real.timed_out) {
        differ("ld.so's trace run did not end within its time limit");
        continue;
      }
      if (real.signal) {
        differ("ld.so's trace run was killed by signal " + std::to_string(real.signal) + " (" + strsignal(real.signal) +
               "), stderr: " + real.err);
        continue;
      }
      std::string diff, refused;
      compare(req, real, pred, sys, diff, refused);
      if (!diff.empty()) {
        differ(diff);
        continue;
      }
      ++compared;
      ++identical;
      if (!refused.empty()) count(refused_by_both, refused);
    }
  };
  const unsigned n_threads = std::max(2u, std::thread::hardware_concurrency() * 2);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n_threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const auto t_end = Clock::now();

  std::sort(differences.begin(), differences.end());
  const double pct = compared ? 100.0 * static_cast<double>(identical) / static_cast<double>(compared) : 0.0;
  char line[160];
  std::snprintf(line, sizeof line, "ldso oracle: %zu files compared, %zu identical (%.1f%%)", compared.load(),
                identical.load(), pct);
  std::printf("%s\n", line);
  std::printf("  %zu ELF files found; %.1f s to collect, %.1f s to compare (%u threads)\n", files.size(),
              std::chrono::duration<double>(t_collect - t0).count(),
              std::chrono::duration<double>(t_end - t_collect).count(), n_threads);
  std::printf("  %zu static ET_EXEC files: not run through ld.so, the model says not dynamic\n", static_execs.load());
  for (const auto& [why, n] : refused_by_both)
    std::printf("  refused by ld.so and the model %zu: %s\n", n, why.c_str());
  for (const auto& [why, n] : skipped) std::printf("  skipped %zu: %s\n", n, why.c_str());
  for (const auto& d : differences) std::printf("  DIFF %s\n", d.c_str());
  EXPECT_TRUE(differences.empty()) << differences.size() << " files differ (listed above)";
  EXPECT_GT(compared.load(), 100u);
}

// Hand-built cases for the rules a system sweep rarely meets: RPATH along the
// loader chain, RUNPATH not transitive, LD_LIBRARY_PATH (both separators, an
// empty element), glibc-hwcaps and legacy tls/ subdirectories, a PIE where a
// library is expected, an invalid ELF header, missing objects, LD_PRELOAD, and
// two versions missing at once (ld.so prints a line for each).
TEST(LdsoOracle, hand_built_cases_list_like_the_real_ldso) {
  SKIP_UNLESS_INSTALLED("/usr/bin/cc");
  CommandOptions shell;
  shell.inherit_env = true;
  shell.timeout_ms = 120000;
  ASSERT_EQ(run_command({"/usr/bin/cc", "--version"}, shell).exit_code, 0) << "no C compiler (cc) to build the cases";
  char tmpl[] = "/tmp/procforge-ldso-cases-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  const std::string d = tmpl;
  const std::string script =
      "set -e; cd " + d +
      "; mkdir -p a/tls b/glibc-hwcaps/x86-64-v2 w bad;"
      "echo 'int b(void){return 2;}' > b.c; echo 'int b(void); int a(void){return b();}' > a.c;"
      "echo 'int a(void); int main(void){return a();}' > m.c;"
      "cc -shared -fPIC b.c -o b/libb.so; cc -shared -fPIC b.c -o b/glibc-hwcaps/x86-64-v2/libb.so;"
      "cc -shared -fPIC a.c -o a/liba.so -Lb -lb; cp a/liba.so a/tls/liba.so; cp /bin/true w/libb.so;"
      "printf 'not an ELF file at all, just some bytes to fill the header..........' > bad/libb.so;"
      "cc m.c -o m_rpath -La -la -Wl,-rpath-link,b -Wl,--disable-new-dtags,-rpath,'\\$ORIGIN/a:\\$ORIGIN/b';"
      "cc m.c -o m_runpath -La -la -Wl,-rpath-link,b -Wl,--enable-new-dtags,-rpath,'\\$ORIGIN/a:\\$ORIGIN/b';"
      "cc m.c -o m_plain -La -la -Wl,-rpath-link,b;"
      // Linked against V1, V2 and V3; at run time libv defines only V1.
      "echo 'int v1(void){return 1;} int v2(void){return 2;} int v3(void){return 3;}' > v.c;"
      "echo 'V1 { global: v1; local: *; }; V2 { global: v2; } V1; V3 { global: v3; } V2;' > v123.map;"
      "echo 'V1 { global: v1; v2; v3; local: *; };' > v1.map; mkdir -p vlink vrun;"
      "cc -shared -fPIC v.c -o vlink/libv.so -Wl,-soname,libv.so -Wl,--version-script=v123.map;"
      "cc -shared -fPIC v.c -o vrun/libv.so -Wl,-soname,libv.so -Wl,--version-script=v1.map;"
      "echo 'int v1(void); int v2(void); int v3(void); int main(void){return v1()+v2()+v3();}' > mv.c;"
      "cc mv.c -o m_versions vlink/libv.so -Wl,--disable-new-dtags,-rpath,'\\$ORIGIN/vrun'";
  const CommandResult built = run_command({"/bin/sh", "-c", script}, shell);
  ASSERT_EQ(built.exit_code, 0) << "building the cases failed in " << d << ": " << built.err;
  const ldso::SystemInfo sys = ldso::SystemInfo::probe();
  struct Case {
    std::string file;
    std::vector<std::string> env;
  };
  const std::vector<Case> cases = {
      {"m_rpath", {}},
      {"m_runpath", {}},
      {"m_runpath", {"LD_LIBRARY_PATH=" + d + "/b"}},
      {"m_runpath", {"LD_LIBRARY_PATH=" + d + "/w:" + d + "/b"}},
      {"m_runpath", {"LD_LIBRARY_PATH=" + d + "/bad;" + d + "/b"}},
      {"m_plain", {}},
      {"m_plain", {"LD_LIBRARY_PATH=" + d + "/a::" + d + "/b"}},
      {"m_rpath", {"LD_PRELOAD=libz.so.1 /nonexistent/x.so"}},
      {"m_rpath", {"LD_PRELOAD=" + d + "/b/libb.so:libm.so.6"}},
      {"m_versions", {}},
  };
  std::vector<std::string> differences;
  for (const auto& c : cases) {
    const std::string path = d + "/" + c.file;
    const CommandResult real = run_list(path, c.env);
    ASSERT_TRUE(real.started) << real.err;
    ASSERT_FALSE(real.timed_out) << path;
    ASSERT_EQ(real.signal, 0) << path << ": " << real.err;
    ldso::Request req;
    req.program = path;
    req.envp = kEnv;
    req.envp.insert(req.envp.end(), c.env.begin(), c.env.end());
    req.explicit_loader = kLdso;
    const auto pred = ldso::resolve(req, sys);
    std::string diff, refused;
    compare(req, real, pred, sys, diff, refused);
    std::string env;
    for (const auto& e : c.env) env += e + " ";
    if (!refused.empty()) diff = "ld.so refused it: " + refused;
    if (!diff.empty()) differences.push_back(env + c.file + "\n    " + diff);
  }
  std::printf("ldso cases: %zu compared, %zu differ\n", cases.size(), differences.size());
  for (const auto& x : differences) std::printf("  DIFF %s\n", x.c_str());
  EXPECT_TRUE(differences.empty());
  std::filesystem::remove_all(d);
}

}  // namespace
