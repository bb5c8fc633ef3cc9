// Shared by the spawn tests: run tests/support/probe_state through
// procforge::spawn::spawn with stdout to a pipe and parse the facts it prints
// (key=value, one per line; see the probe's header comment for the keys).
#pragma once

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "procforge/spawn.hpp"

#ifndef PROCFORGE_PROBE_DIR
#error "PROCFORGE_PROBE_DIR must name the directory holding probe_state"
#endif

namespace spawn_test {

namespace ps = procforge::spawn;

inline std::string probe_path() { return PROCFORGE_PROBE_DIR "/probe_state"; }

// What the probe printed.
struct Facts {
  std::map<std::string, std::string> kv;
  std::string raw;

  [[nodiscard]] bool has(const std::string& key) const { return kv.count(key) != 0; }
  // "<absent>" when missing, so a comparison with an expected value fails visibly.
  [[nodiscard]] std::string get(const std::string& key) const {
    auto it = kv.find(key);
    return it == kv.end() ? std::string("<absent>") : it->second;
  }
  [[nodiscard]] long long num(const std::string& key) const {
    auto it = kv.find(key);
    if (it == kv.end() || it->second.empty() || it->second[0] == '!') return -999999;
    return std::strtoll(it->second.c_str(), nullptr, 10);
  }
  // fds=0,1,2 as a set.
  [[nodiscard]] std::set<int> fds() const {
    std::set<int> out;
    std::stringstream ss(get("fds"));
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty() && item != "...") out.insert(std::atoi(item.c_str()));
    return out;
  }
  // All values of key[0], key[1], ... in order.
  [[nodiscard]] std::vector<std::string> list(const std::string& key) const {
    std::vector<std::string> out;
    for (std::size_t i = 0;; ++i) {
      auto it = kv.find(key + "[" + std::to_string(i) + "]");
      if (it == kv.end()) break;
      out.push_back(it->second);
    }
    return out;
  }
  [[nodiscard]] bool complete() const { return get("end") == "1"; }
};

inline Facts parse_facts(const std::string& text) {
  Facts f;
  f.raw = text;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    f.kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return f;
}

// Reads fd to EOF (poll with a deadline so a hung child fails the test instead of hanging it).
inline bool read_all(int fd, std::string* out, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return false;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<std::size_t>(n));
  }
}

struct ProbeRun {
  bool spawned = false;
  std::string error;  // spawn error message, or the harness problem
  int err = 0;        // spawn error errno
  ps::Strategy strategy = ps::Strategy::automatic;
  std::vector<std::string> cgroups_created;
  ps::Child::Exit exit;
  Facts facts;
  [[nodiscard]] bool ok() const { return spawned && error.empty(); }
  [[nodiscard]] std::string describe() const { return error + "\n--- probe output ---\n" + facts.raw; }
};

// Options that run the probe with stdout to a pipe; the test adds its control.
inline ps::Options probe_options(std::vector<std::string> extra_args = {}) {
  ps::Options o;
  o.path = probe_path();
  o.argv = {"probe_state"};
  for (auto& a : extra_args) o.argv.push_back(a);
  o.stdout_.kind = ps::Stdio::Kind::pipe;
  return o;
}

// Spawns, reads stdout (when piped) and waits; never throws.
inline ProbeRun run(const ps::Options& o) {
  ProbeRun r;
  auto child = ps::spawn(o);
  if (!child.ok()) {
    r.err = child.error().err;
    r.error = "spawn failed: " + child.error().message + " (err " + std::to_string(child.error().err) + ")";
    return r;
  }
  r.spawned = true;
  r.strategy = child->strategy();
  r.cgroups_created = child->cgroups_created;
  std::string text;
  if (child->stdout_fd >= 0 && !read_all(child->stdout_fd, &text))
    r.error = "reading the probe's stdout timed out or failed";
  auto ex = child->wait(std::chrono::milliseconds(20000));
  if (!ex.ok()) {
    r.error += "wait failed: " + ex.error().message;
  } else {
    r.exit = *ex;
    if (r.exit.timed_out) r.error += "probe timed out";
    else if (!r.exit.exited || r.exit.status != 0)
      r.error += "probe ended with shell status " + std::to_string(r.exit.shell_status());
  }
  r.facts = parse_facts(text);
  if (r.error.empty() && o.stdout_.kind == ps::Stdio::Kind::pipe && !r.facts.complete())
    r.error = "probe output incomplete";
  return r;
}

// The parent's own value of a /proc/self/ns link.
inline std::string own_ns(const std::string& name) {
  char buf[256];
  ssize_t n = ::readlink(("/proc/self/ns/" + name).c_str(), buf, sizeof buf - 1);
  return n < 0 ? std::string("!") + std::to_string(errno) : std::string(buf, static_cast<std::size_t>(n));
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A private temporary directory, removed (with its files) at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pf-spawn-XXXXXX";
    if (::mkdtemp(tmpl)) path_ = tmpl;
    ::chmod(path_.c_str(), 0755);  // reachable after a test drops to uid 65534
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Counts entries of /proc/self/fd (the directory fd itself included, consistently).
inline int count_open_fds() {
  int n = 0;
  if (auto* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

inline bool is_root() { return ::geteuid() == 0; }

// Whether this process has capability `cap` in its effective set (root in a
// container may lack some, e.g. CAP_SYS_RESOURCE).
inline bool has_cap(int cap) {
  std::stringstream ss(read_text("/proc/self/status"));
  std::string line;
  while (std::getline(ss, line))
    if (line.rfind("CapEff:", 0) == 0) return (std::strtoull(line.c_str() + 7, nullptr, 16) >> cap) & 1;
  return false;
}

// A cgroup directory a test owns: the name is new (checked), and it is
// removed at the end, after the child has been reaped. Only directories the
// test created (or asked the library to create) are ever removed.
class OwnCgroup {
 public:
  OwnCgroup(const std::string& mount, bool create) {
    static int seq = 0;
    path_ = mount + "/procforge-test-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
      path_.clear();  // exists already: not ours
      return;
    }
    if (create && ::mkdir(path_.c_str(), 0755) != 0) {
      why_ = "mkdir " + path_ + ": " + std::strerror(errno);
      path_.clear();
    }
  }
  ~OwnCgroup() {
    if (path_.empty()) return;
    for (int i = 0; i < 200; ++i) {  // the last task may take a moment to leave
      if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
      ::usleep(10000);
    }
    ADD_FAILURE() << "could not remove test cgroup " << path_ << ": " << std::strerror(errno);
  }
  OwnCgroup(const OwnCgroup&) = delete;
  OwnCgroup& operator=(const OwnCgroup&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& why() const { return why_; }
  [[nodiscard]] std::string name() const { return path_.substr(path_.rfind('/')); }

 private:
  std::string path_, why_;
};

inline bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The path of the child's cgroup in the hierarchy whose controller list is `controllers` ("" = cgroup2).
inline std::string cgroup_of(const Facts& f, const std::string& controllers) {
  for (const auto& l : f.list("cgroup")) {
    auto a = l.find(':');
    auto b = l.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    if (l.substr(a + 1, b - a - 1) == controllers) return l.substr(b + 1);
  }
  return "<no " + controllers + " line>";
}

inline const char* const kUnified = "/sys/fs/cgroup/unified";

inline std::string cgroup2_mount() {
  if (is_dir(kUnified) && ::access((std::string(kUnified) + "/cgroup.procs").c_str(), F_OK) == 0) return kUnified;
  if (::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) return "/sys/fs/cgroup";
  return "";
}

}  // namespace spawn_test
