// The ld.so model against the real ld.so on every dynamic ELF file of the
// system: each executable and shared library with PT_DYNAMIC under /usr/bin,
// /usr/sbin, /usr/lib/x86_64-linux-gnu (recursive) and /usr/libexec
// (recursive) goes through `LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2
// FILE` (trace mode, exactly what ldd runs: ld.so loads the dependencies,
// fakes "not found" entries, relocates and runs nothing; plain `--list`
// instead stops at the first missing object) and through ldso::resolve() with the same environment and
// Request::explicit_loader, and the lists must be equal: the same paths in the
// same order, "not found" entries by name. When the real run stops with
// "error while loading shared libraries: OBJECT: MESSAGE", the predicted
// error must say the same. Trace mode runs the symbol-version check and
// goes on: a predicted version error must be among the lines ld.so printed,
// and a version error ld.so printed must have been predicted.
//
// Files the real ld.so refuses for a reason that is not about the search
// ("not a dynamic executable", a file it cannot even start on) are skipped
// and counted with the reason; files with DT_AUDIT/DT_DEPAUDIT are skipped
// because trace mode would run their audit module's code.
//
// Closing line: "ldso oracle: N files compared, M identical (P%)", then every
// difference.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

namespace {

namespace fs = std::filesystem;
using namespace procforge;
using Clock = std::chrono::steady_clock;

constexpr const char* kLdso = "/lib64/ld-linux-x86-64.so.2";
const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LANG=C"};

struct Candidate {
  std::string path;
  bool audit = false;
};

// Regular files (not symlinks) that are x86-64 ELF with PT_DYNAMIC.
std::vector<Candidate> collect() {
  std::vector<std::string> files;
  auto add_dir = [&](const char* root, bool recursive) {
    std::error_code ec;
    if (recursive) {
      for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
           !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path().string());
    } else {
      for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path().string());
    }
  };
  add_dir("/usr/bin", false);
  add_dir("/usr/sbin", false);
  add_dir("/usr/lib/x86_64-linux-gnu", true);
  add_dir("/usr/libexec", true);
  std::sort(files.begin(), files.end());
  std::vector<Candidate> out;
  for (const auto& p : files) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st {};
    std::vector<std::uint8_t> buf;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 64) {
      std::uint8_t magic[4] = {};
      if (pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0) {
        buf.resize(static_cast<std::size_t>(st.st_size));
        if (pread(fd, buf.data(), buf.size(), 0) != static_cast<ssize_t>(buf.size())) buf.clear();
      }
    }
    ::close(fd);
    if (buf.empty()) continue;
    auto f = elf::File::parse(buf);
    if (!f || !f->header().is64 || f->header().machine != 62) continue;
    auto ph = f->program_headers();
    if (!ph) continue;
    bool dyn = false;
    for (const auto& h : *ph) dyn |= h.type == 2 /* PT_DYNAMIC */;
    if (!dyn) continue;
    Candidate c{p, false};
    if (auto di = f->dynamic_info()) c.audit = !di->audit.empty();
    out.push_back(c);
  }
  return out;
}

struct RealRun {
  bool started = false;
  bool timed_out = false;
  int status = 0;
  std::string out, err;
};

RealRun run_list(const std::string& file, const std::vector<std::string>& extra_env = {}) {
  RealRun r;
  int o[2], e[2];
  if (pipe2(o, O_CLOEXEC) != 0) return r;
  if (pipe2(e, O_CLOEXEC) != 0) {
    ::close(o[0]), ::close(o[1]);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, o[1], 1);
  posix_spawn_file_actions_adddup2(&fa, e[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> args = {kLdso, file};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = kEnv;
  env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  for (auto& v : env) envp.push_back(v.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, kLdso, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(o[1]);
  ::close(e[1]);
  if (rc != 0) {
    ::close(o[0]), ::close(e[0]);
    return r;
  }
  r.started = true;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  pollfd pf[2] = {{o[0], POLLIN, 0}, {e[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(pf, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(pf[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(pf[i].fd);
        pf[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& p : pf)
    if (p.fd >= 0) ::close(p.fd);
  while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
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

// Compares one real trace run with the prediction. Sets REFUSED when ld.so
// refused the file for a reason that is not about the search.
void compare(const std::string& path, const RealRun& real, const Result<ldso::Prediction>& pred,
             const ldso::SystemInfo& sys, std::string& diff, std::string& refused) {
  const bool exited = WIFEXITED(real.status);
  const int code = exited ? WEXITSTATUS(real.status) : -1;
  const std::string marker = "error while loading shared libraries: ";
  const auto at = real.err.find(marker);
  if (exited && code == 0) {
    const Listed listed = parse_list(real.out, sys.vdso_name);
    if (!pred) {
      diff = "model error: " + pred.error().message;
    } else {
      std::vector<std::string> mine;
      for (const auto& o : pred->objects) mine.push_back(o.path ? *o.path : "not found: " + o.name);
      // Trace mode prints the version check's lines and goes on (exit 0).
      const bool version_error_printed = real.err.find("' not found (required by ") != std::string::npos &&
                                         real.err.find(": version `") != std::string::npos;
      const bool version_error_predicted = pred->error && pred->error->stage == ldso::LoaderError::Stage::versions;
      if (mine != listed.keys) diff = "ld.so:" + join_keys(listed.keys) + "\n    model:" + join_keys(mine);
      else if (version_error_predicted) {
        if (real.err.find(ldso::error_line(path, *pred->error)) == std::string::npos)
          diff = "model predicts a version error ld.so did not print: " + ldso::error_line(path, *pred->error) +
                 "\n    ld.so's stderr: " + real.err;
      } else if (version_error_printed && !pred->error)
        diff = "ld.so's version check failed: " + real.err + "    model: no error";
      else if (pred->error && pred->error->message.find("cannot open shared object file") == std::string::npos &&
       pred->error->message != "CPU ISA level is lower than required" &&
       pred->error->message.rfind("wrong ELF class", 0) != 0)
    diff = "model predicts a fatal error ld.so did not hit: " + pred->error->object + ": " +
       pred->error->message;
    }
  } else if (at != std::string::npos) {
    std::string what = real.err.substr(at + marker.size());
    while (!what.empty() && (what.back() == '\n' || what.back() == '\r')) what.pop_back();
    if (!pred) diff = "model error: " + pred.error().message + "\n    ld.so: " + what;
    else if (!pred->error) diff = "ld.so stops with: " + what + "\n    model: no error";
    else if (pred->error->object + ": " + pred->error->message != what)
      diff = "ld.so stops with: " + what + "\n    model:    " + pred->error->object + ": " +
         pred->error->message;
  } else {
    std::string why = real.err.substr(0, real.err.find('\n'));
    // Strip the file name so reasons group.
    if (auto p = why.find(path); p != std::string::npos) why.replace(p, path.size(), "FILE");
    refused = "refused: " + (why.empty() ? "exit " + std::to_string(code) : why);
  }
}

TEST(LdsoOracle, every_dynamic_elf_file_lists_like_the_real_ldso) {
  const auto t0 = Clock::now();
  const ldso::SystemInfo sys = ldso::SystemInfo::probe();
  ASSERT_TRUE(sys.from_ldso) << "ld.so --list-diagnostics did not answer";
  const auto files = collect();
  const auto t_collect = Clock::now();
  ASSERT_GT(files.size(), 100u) << "too few dynamic ELF files found to be a meaningful sweep";

  std::mutex mu;
  std::map<std::string, std::size_t> skipped;  // reason -> count
  std::vector<std::string> differences;
  std::atomic<std::size_t> next{0}, compared{0}, identical{0};

  auto worker = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++) {
      const auto& c = files[i];
      auto skip = [&](const std::string& why) {
        std::lock_guard<std::mutex> lock(mu);
        ++skipped[why];
      };
      if (c.audit) {
        skip("DT_AUDIT/DT_DEPAUDIT (trace mode would run the audit module)");
        continue;
      }
      const RealRun real = run_list(c.path);
      if (!real.started) {
        skip("could not start ld.so");
        continue;
      }
      if (real.timed_out) {
        skip("ld.so trace run timed out");
        continue;
      }
      ldso::Request req;
      req.program = c.path;
      req.envp = kEnv;
      req.explicit_loader = kLdso;
      auto pred = ldso::resolve(req, sys);

      std::string diff, refused;
      compare(c.path, real, pred, sys, diff, refused);
      if (!refused.empty()) {
        skip(refused);
        continue;
      }
      ++compared;
      if (diff.empty()) ++identical;
      else {
        std::lock_guard<std::mutex> lock(mu);
        differences.push_back(c.path + "\n    " + diff);
      }
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
  std::printf("  %zu dynamic ELF files found; %.1f s to collect, %.1f s to compare (%u threads)\n", files.size(),
              std::chrono::duration<double>(t_collect - t0).count(),
              std::chrono::duration<double>(t_end - t_collect).count(), n_threads);
  for (const auto& [why, n] : skipped) std::printf("  skipped %zu: %s\n", n, why.c_str());
  for (const auto& d : differences) std::printf("  DIFF %s\n", d.c_str());
  EXPECT_TRUE(differences.empty()) << differences.size() << " files differ (listed above)";
  EXPECT_GT(compared.load(), 100u);
}

// Hand-built cases for the rules a system sweep rarely meets: RPATH along the
// loader chain, RUNPATH not transitive, LD_LIBRARY_PATH (both separators, an
// empty element), glibc-hwcaps and legacy tls/ subdirectories, a PIE where a
// library is expected, an invalid ELF header, missing objects, LD_PRELOAD.
TEST(LdsoOracle, hand_built_cases_list_like_the_real_ldso) {
  if (std::system("cc --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no C compiler to build the cases";
  char tmpl[] = "/tmp/procforge-ldso-cases-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  const std::string d = tmpl;
  const std::string script =
      "set -e; cd " + d + "; mkdir -p a/tls b/glibc-hwcaps/x86-64-v2 w bad;"
      "echo 'int b(void){return 2;}' > b.c; echo 'int b(void); int a(void){return b();}' > a.c;"
      "echo 'int a(void); int main(void){return a();}' > m.c;"
      "cc -shared -fPIC b.c -o b/libb.so; cc -shared -fPIC b.c -o b/glibc-hwcaps/x86-64-v2/libb.so;"
      "cc -shared -fPIC a.c -o a/liba.so -Lb -lb; cp a/liba.so a/tls/liba.so; cp /bin/true w/libb.so;"
      "printf 'not an ELF file at all, just some bytes to fill the header..........' > bad/libb.so;"
      "cc m.c -o m_rpath -La -la -Wl,-rpath-link,b -Wl,--disable-new-dtags,-rpath,'$ORIGIN/a:$ORIGIN/b';"
      "cc m.c -o m_runpath -La -la -Wl,-rpath-link,b -Wl,--enable-new-dtags,-rpath,'$ORIGIN/a:$ORIGIN/b';"
      "cc m.c -o m_plain -La -la -Wl,-rpath-link,b";
  ASSERT_EQ(std::system(("sh -c \"" + std::string(script) + "\" >/dev/null 2>&1").c_str()) == 0 ? 0 : 1, 0)
      << "building the cases failed in " << d;
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
  };
  std::vector<std::string> differences;
  for (const auto& c : cases) {
    const std::string path = d + "/" + c.file;
    const RealRun real = run_list(path, c.env);
    ldso::Request req;
    req.program = path;
    req.envp = kEnv;
    req.envp.insert(req.envp.end(), c.env.begin(), c.env.end());
    req.explicit_loader = kLdso;
    const auto pred = ldso::resolve(req, sys);
    std::string diff, refused;
    compare(path, real, pred, sys, diff, refused);
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
