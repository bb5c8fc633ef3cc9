// Suite "create": what creating a process costs as the creator grows.
//
// fork() copies the parent's page tables and takes a reference on every
// present page (kernel/fork.c dup_mm -> dup_mmap -> copy_page_range), so its
// cost follows the memory the parent has touched; a VMA that was reserved
// but never touched has no page tables to copy. vfork() and clone(CLONE_VM)
// share the parent's mm (kernel/fork.c copy_mm), so their cost does not
// depend on it; posix_spawn (glibc spawni.c: clone(CLONE_VM|CLONE_VFORK)) and
// procforge's clone3 are of that kind. Huge pages (THP) map 2 MiB with one
// PMD entry, which fork copies as one (mm/huge_memory.c copy_huge_pmd).
//
// The memory must belong to the process that spawns, so each parent size is
// a helper process (a fork of this one, made before any memory is touched)
// that maps and touches its memory, measures every method interleaved, and
// sends the measurements back over a pipe.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "bench/detail.hpp"
#include "procforge/client.hpp"
#include "procforge/server.hpp"
#include "procforge/warm.hpp"

namespace procforge::bench::detail {

namespace {

using Clock = std::chrono::steady_clock;

// The socket of the server this suite started (empty: none); the helpers,
// forked after, connect to it.
std::string g_server_socket;

enum class Method { fork_exec, vfork_exec, posix_spawn, clone3, warm, server, fork_alone, vfork_alone };

const char* series_name(Method m) {
  switch (m) {
    case Method::fork_exec: return "fork+exec";
    case Method::vfork_exec: return "vfork+exec";
    case Method::posix_spawn: return "posix_spawn";
    case Method::clone3: return "clone3 (procforge)";
    case Method::warm: return "warm instance";
    case Method::server: return "server (procforge serve)";
    case Method::fork_alone: return "fork alone";
    case Method::vfork_alone: return "vfork alone";
  }
  return "?";
}

// One parent: its memory and the methods measured in it.
struct Group {
  std::uint64_t touched_mib = 0, reserved_mib = 0;
  bool huge = false;  // MADV_HUGEPAGE instead of MADV_NOHUGEPAGE on the touched memory
  std::vector<Method> methods;
  std::string variable;  // "touched_mib" or "reserved_mib"
  std::string suffix;    // ", THP"
};

double elapsed_us(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

Status reap_ok(pid_t pid, const char* what) {
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return Error::call(ErrorStep::wait, errno, std::string("waiting for ") + what);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Error{ECHILD, std::string(what) + " did not exit 0"};
  return ok_status();
}

// Its own frame, so nothing of the caller lives in registers vfork could clobber.
[[gnu::noinline]] pid_t vfork_exit() {
  const pid_t pid = vfork();
  if (pid == 0) _exit(0);
  return pid;
}

Result<Sample> creation_alone(Method m) {
  const auto t0 = Clock::now();
  const pid_t pid = m == Method::fork_alone ? fork() : vfork_exit();
  if (pid == 0) _exit(0);
  if (pid < 0) return Error::call(ErrorStep::clone, errno, series_name(m));
  if (auto st = reap_ok(pid, series_name(m)); !st) return st.error();
  return Sample{elapsed_us(t0)};
}

// Runs of a method at a parent size: fork copies page tables, so from 1 GiB
// touched it gets runs*1024/MiB runs, at least 5.
int runs_at(Method m, const Group& g, int runs) {
  if ((m != Method::fork_exec && m != Method::fork_alone) || g.touched_mib < 1024) return 0;
  return static_cast<int>(std::clamp<std::uint64_t>(static_cast<std::uint64_t>(runs) * 1024 / g.touched_mib, 5,
                                                    static_cast<std::uint64_t>(std::max(runs, 5))));
}

std::uint64_t meminfo_mib(const char* field) {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(line.find(':') + 1)) >> 10;
  return 0;
}

std::uint64_t anon_huge_mib() {
  std::ifstream f("/proc/self/smaps_rollup");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("AnonHugePages:", 0) == 0) return std::stoull(line.substr(14)) >> 10;
  return 0;
}

void send(int fd, const std::string& line) {
  const std::string l = line + "\n";
  std::size_t at = 0;
  while (at < l.size()) {
    const ssize_t n = write(fd, l.data() + at, l.size() - at);
    if (n <= 0 && errno != EINTR) return;
    if (n > 0) at += static_cast<std::size_t>(n);
  }
}

std::string fields(const Measurement& m) {
  std::ostringstream o;
  o.precision(17);
  o << "M\t" << m.series << "\t" << m.variable << "\t" << m.value << "\t" << m.median_us << "\t" << m.min_us << "\t"
    << m.max_us << "\t" << m.runs;
  return o.str();
}

Measurement parse_fields(const std::string& line) {
  std::istringstream in(line.substr(2));
  Measurement m;
  m.suite = "create";
  std::string value, median, min, max, runs;
  std::getline(in, m.series, '\t');
  std::getline(in, m.variable, '\t');
  std::getline(in, value, '\t');
  std::getline(in, median, '\t');
  std::getline(in, min, '\t');
  std::getline(in, max, '\t');
  std::getline(in, runs, '\t');
  m.value = std::stod(value), m.median_us = std::stod(median), m.min_us = std::stod(min), m.max_us = std::stod(max);
  m.runs = std::stoi(runs);
  return m;
}

// The helper: grows itself as g says, measures, reports on fd. Never returns.
[[noreturn]] void helper(const SuiteConfig& c, const Group& g, int runs, int fd) {
  auto fail = [&](const std::string& why, int status) {
    send(fd, "E\t" + why);
    _exit(status);
  };
  const long page = sysconf(_SC_PAGESIZE);
  if (g.touched_mib) {
    const std::size_t bytes = static_cast<std::size_t>(g.touched_mib) << 20;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("touched " + std::to_string(g.touched_mib) + " MiB: mmap " + errno_name(errno), 3);
    madvise(p, bytes, g.huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    auto* b = static_cast<volatile unsigned char*>(p);
    for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page)) b[off] = 1;
    if (g.huge && anon_huge_mib() < g.touched_mib / 2)
      send(fd, "N\ttouched " + std::to_string(g.touched_mib) + " MiB with MADV_HUGEPAGE: the kernel gave only " +
                   std::to_string(anon_huge_mib()) + " MiB as huge pages");
  }
  if (g.reserved_mib) {
    void* p = mmap(nullptr, static_cast<std::size_t>(g.reserved_mib) << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      fail(
          "reserved " + std::to_string(g.reserved_mib) + " MiB: mmap " + errno_name(errno) + " (overcommit refused it)",
          3);
  }
  {
    warm::Pool pool;
    // A request to the server and the exit back: the client's size should not matter.
    std::optional<client::Connection> server;
    if (!g_server_socket.empty())
      if (auto conn = client::Connection::connect(g_server_socket)) server = std::move(*conn);
    const SpawnTarget target{"true", "/bin/true"};
    const spawn::Options warm_opts = quiet_options("/bin/true", {"PATH=/usr/bin:/bin"});
    std::vector<Case> cases;
    for (Method m : g.methods) {
      if (m == Method::warm) {  // a series only where an instance can be had
        warm::Report how;
        auto probe = pool.spawn(warm_opts, &how);
        if (probe) (void)probe->wait();
        if (!probe || !how.warm) {
          if (g.touched_mib == 0)
            send(fd, "N\tno warm instance series: " + (probe ? how.fallback_reason : probe.error().message));
          continue;
        }
      }
      if (m == Method::server && !server) continue;
      Case k;
      k.series = std::string(series_name(m)) + g.suffix;
      k.variable = g.variable;
      k.value = static_cast<double>(g.variable == "touched_mib" ? g.touched_mib : g.reserved_mib);
      k.runs = runs_at(m, g, runs);
      switch (m) {
        case Method::fork_alone:
        case Method::vfork_alone: k.run = [m] { return creation_alone(m); }; break;
        case Method::warm:
          k.run = [&pool, &warm_opts]() -> Result<Sample> {
            warm::Report how;
            const auto t0 = Clock::now();
            auto child = pool.spawn(warm_opts, &how);
            if (!child) return child.error();
            auto exit = child->wait();
            if (!exit || exit->shell_status() != 0) return Error{ECHILD, "the warm instance of /bin/true failed"};
            if (!how.warm) return Error{ECHILD, "no warm instance: " + how.fallback_reason};
            return Sample{elapsed_us(t0)};
          };
          break;
        case Method::server:
          k.run = [&server, &warm_opts]() -> Result<Sample> {
            const auto t0 = Clock::now();
            auto child = server->spawn(warm_opts);
            if (!child) return child.error();
            auto exit = child->wait();
            if (!exit || exit->shell_status() != 0) return Error{ECHILD, "/bin/true through the server failed"};
            return Sample{elapsed_us(t0)};
          };
          break;
        default: {
          const SpawnMethod sm = m == Method::fork_exec     ? SpawnMethod::fork_exec
                                 : m == Method::vfork_exec  ? SpawnMethod::vfork_exec
                                 : m == Method::posix_spawn ? SpawnMethod::posix_spawn
                                                            : SpawnMethod::procforge;
          k.run = [sm, &target]() -> Result<Sample> {
            auto us = time_spawn_method(sm, target);
            if (!us) return us.error();
            return Sample{*us};
          };
        }
      }
      cases.push_back(std::move(k));
    }
    SuiteConfig relay;
    relay.progress = [fd](const std::string& what, int, int) { send(fd, "P\t" + what); };
    relay.cancelled = c.cancelled;
    Progress progress(relay);
    std::vector<Measurement> out;
    if (auto st = run_interleaved("create", cases, runs, 2, progress, out); !st)
      fail(st.error().message, st.error().err == ECANCELED ? 4 : 1);
    for (const auto& m : out) send(fd, fields(m));
  }
  _exit(0);
}

// Starts the helper for g and collects its measurements and notes. A helper
// that could not get its memory (status 3) is a skip, not a failure.
Status measure_group(const SuiteConfig& c, const Group& g, int runs, Progress& progress, SuiteReport& report) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::call(ErrorStep::clone, errno, "making the helper's pipe");
  const pid_t pid = fork();
  if (pid < 0) return Error::call(ErrorStep::clone, errno, "forking a helper parent");
  if (pid == 0) {
    close(p[0]);
    helper(c, g, runs, p[1]);
  }
  close(p[1]);
  std::string buf, error;
  std::vector<Measurement> got;
  char chunk[4096];
  for (;;) {
    const ssize_t n = read(p[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) {
      if (progress.cancelled()) kill(pid, SIGKILL);  // touching 8 GiB takes seconds: do not wait for it
      continue;
    }
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
      const std::string line = buf.substr(0, nl);
      if (line.rfind("P\t", 0) == 0) progress.step(line.substr(2));
      else if (line.rfind("M\t", 0) == 0) {
        try {
          got.push_back(parse_fields(line));
        } catch (const std::exception&) {  // std::stod on a line cut short: the helper died mid-write
          error = "a garbled measurement from the helper: " + line;
        }
      } else if (line.rfind("N\t", 0) == 0) report.notes.push_back("create: " + line.substr(2));
      else if (line.rfind("E\t", 0) == 0) error = line.substr(2);
    }
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 3) {
    report.notes.push_back("create: skipped, " + error);
    return ok_status();
  }
  if (code == 4 || progress.cancelled()) return cancelled_error();
  if (code == 128 + SIGKILL) {  // the OOM killer, most likely, while it touched its memory
    report.notes.push_back("create: skipped " + std::to_string(g.touched_mib) +
                           " MiB touched, the helper holding it was killed (SIGKILL: out of memory?)");
    return ok_status();
  }
  if (code != 0 || !error.empty())
    return Error{ECHILD,
                 "create: the helper parent failed: " + (error.empty() ? "status " + std::to_string(code) : error)};
  report.measurements.insert(report.measurements.end(), got.begin(), got.end());
  return ok_status();
}

// procforge serve in a child of this process, for the server row; stopped
// (SIGTERM, a drain) and reaped when this goes.
class ServerProcess {
 public:
  Status start() {
    char dir[] = "/tmp/procforge-bench-server.XXXXXX";
    if (!mkdtemp(dir)) return Error::call(ErrorStep::clone, errno, "making the server's directory");
    dir_ = dir;
    const std::string path = dir_ + "/s.sock";
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return Error::call(ErrorStep::clone, errno, "making the server's pipe");
    pid_ = fork();
    if (pid_ < 0) return Error::call(ErrorStep::clone, errno, "forking the server");
    if (pid_ == 0) {
      close(p[0]);
      server::Config cfg;
      cfg.socket_path = path;
      cfg.on_ready = [](const char*, const char*, void* arg) {
        close(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
      };
      cfg.on_ready_arg = reinterpret_cast<void*>(static_cast<intptr_t>(p[1]));
      _exit(server::serve(cfg) ? 0 : 1);
    }
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(p[0]);  // EOF: ready, or gone
    if (access(path.c_str(), F_OK) != 0) return Error{ECHILD, "the server did not start"};
    g_server_socket = path;
    return ok_status();
  }
  ~ServerProcess() {
    g_server_socket.clear();
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

 private:
  pid_t pid_ = -1;
  std::string dir_;
};

// "always [madvise] never" -> "madvise".
std::string bracketed(const std::string& line) {
  const auto a = line.find('['), b = line.find(']');
  return a == std::string::npos || b == std::string::npos ? line : line.substr(a + 1, b - a - 1);
}

constexpr const char* kThpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled";

// Puts THP's "enabled" back as it was when this was made.
class ThpSetting {
 public:
  explicit ThpSetting(std::string was) : was_(std::move(was)) {}
  ~ThpSetting() {
    if (changed_) std::ofstream(kThpEnabled) << was_;
  }
  bool set(const std::string& mode) {
    std::ofstream f(kThpEnabled);
    f << mode;
    f.close();
    changed_ = changed_ || f.good();
    return f.good();
  }

 private:
  std::string was_;
  bool changed_ = false;
};

}  // namespace

Status run_create(const SuiteConfig& c, int runs, Progress& progress, SuiteReport& report) {
  using M = Method;
  const std::vector<std::uint64_t> touched =
      c.quick ? std::vector<std::uint64_t>{0, 64, 1024} : std::vector<std::uint64_t>{0, 64, 1024, 4096, 8192};
  const std::vector<std::uint64_t> reserved =
      c.quick ? std::vector<std::uint64_t>{0, 65536} : std::vector<std::uint64_t>{0, 1024, 8192, 65536};
  const std::vector<std::uint64_t> huge =
      c.quick ? std::vector<std::uint64_t>{64, 1024} : std::vector<std::uint64_t>{64, 1024, 8192};

  std::vector<Group> groups;
  for (auto mib : touched)
    groups.push_back(
        {mib,
         0,
         false,
         {M::fork_exec, M::vfork_exec, M::posix_spawn, M::clone3, M::warm, M::server, M::fork_alone, M::vfork_alone},
         "touched_mib",
         ""});
  for (auto mib : reserved)
    groups.push_back({0, mib, false, {M::fork_exec, M::posix_spawn, M::clone3, M::fork_alone}, "reserved_mib", ""});

  // THP: MADV_HUGEPAGE gets huge pages when "enabled" is always or madvise;
  // at never, only root can open it (and it is put back afterwards).
  const std::string thp = bracketed(report.machine.thp_enabled);
  ThpSetting restore(thp);
  bool thp_ok = thp == "always" || thp == "madvise";
  if (thp.empty()) report.notes.push_back("create: THP curves skipped, this kernel has no transparent huge pages");
  else if (!thp_ok && !report.machine.root)
    report.notes.push_back(
        "create: THP curves skipped, transparent_hugepage/enabled is never and only root may "
        "change it");
  else if (!thp_ok && (thp_ok = restore.set("madvise")))
    report.notes.push_back(
        "create: transparent_hugepage/enabled set to madvise for the THP curves, then back to never");
  if (thp_ok)
    for (auto mib : huge)
      groups.push_back({mib, 0, true, {M::fork_exec, M::posix_spawn, M::fork_alone}, "touched_mib", ", THP"});

  // The spawn server, started once for the whole suite (before the helpers
  // grow: it is not their fork), on a socket of its own.
  ServerProcess server;
  if (auto st = server.start(); !st) report.notes.push_back("create: no server row: " + st.error().message);
  progress.add_total(static_cast<int>(groups.size()) * runs);
  for (const auto& g : groups) {
    const std::uint64_t available = meminfo_mib("MemAvailable:");
    if (g.touched_mib + 1024 > available) {
      report.notes.push_back("create: touched " + std::to_string(g.touched_mib) + " MiB skipped, only " +
                             std::to_string(available) + " MiB available (1024 MiB kept free)");
      progress.step("create: skipped " + std::to_string(g.touched_mib) + " MiB", runs);
      continue;
    }
    progress.say("create: a parent with " + std::to_string(g.touched_mib) + " MiB touched, " +
                 std::to_string(g.reserved_mib) + " MiB reserved" + g.suffix);
    if (auto st = measure_group(c, g, runs, progress, report); !st) return st;
  }
  return ok_status();
}

}  // namespace procforge::bench::detail
