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
// a helper process that measures every method interleaved (parent.cpp).
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
  ParentMemory memory;
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
  if ((m != Method::fork_exec && m != Method::fork_alone) || g.memory.touched_mib < 1024) return 0;
  return static_cast<int>(std::clamp<std::uint64_t>(static_cast<std::uint64_t>(runs) * 1024 / g.memory.touched_mib, 5,
                                                    static_cast<std::uint64_t>(std::max(runs, 5))));
}

// The cases of one parent, made inside it. The pool and the connection live
// as long as the cases that use them.
std::vector<Case> create_cases(const Group& g, int runs, const std::string& server_socket,
                               const std::function<void(const std::string&)>& note) {
  {
    auto pool = std::make_shared<warm::Pool>();
    // A request to the server and the exit back: the client's size should not matter.
    std::shared_ptr<client::Connection> server;
    if (!server_socket.empty())
      if (auto conn = client::Connection::connect(server_socket))
        server = std::make_shared<client::Connection>(std::move(*conn));
    const SpawnTarget target{"true", "/bin/true"};
    const spawn::Options warm_opts = quiet_options("/bin/true", {"PATH=/usr/bin:/bin"});
    std::vector<Case> cases;
    for (Method m : g.methods) {
      if (m == Method::warm) {  // a series only where an instance can be had
        warm::Report how;
        auto probe = pool->spawn(warm_opts, &how);
        if (probe) (void)probe->wait();
        if (!probe || !how.warm) {
          if (g.memory.touched_mib == 0)
            note("no warm instance series: " + (probe ? how.fallback_reason : probe.error().message));
          continue;
        }
      }
      if (m == Method::server && !server) continue;
      Case k;
      k.series = std::string(series_name(m)) + g.suffix;
      k.variable = g.variable;
      k.value = static_cast<double>(g.variable == "touched_mib" ? g.memory.touched_mib : g.memory.reserved_mib);
      k.runs = runs_at(m, g, runs);
      switch (m) {
        case Method::fork_alone:
        case Method::vfork_alone: k.run = [m] { return creation_alone(m); }; break;
        case Method::warm:
          k.run = [pool, warm_opts]() -> Result<Sample> {
            warm::Report how;
            const auto t0 = Clock::now();
            auto child = pool->spawn(warm_opts, &how);
            if (!child) return child.error();
            auto exit = child->wait();
            if (!exit || exit->shell_status() != 0) return Error{ECHILD, "the warm instance of /bin/true failed"};
            if (!how.warm) return Error{ECHILD, "no warm instance: " + how.fallback_reason};
            return Sample{elapsed_us(t0)};
          };
          break;
        case Method::server:
          k.run = [server, warm_opts]() -> Result<Sample> {
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
          k.run = [sm, target]() -> Result<Sample> {
            auto us = time_spawn_method(sm, target);
            if (!us) return us.error();
            return Sample{*us};
          };
        }
      }
      cases.push_back(std::move(k));
    }
    return cases;
  }
}

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
        {{mib, 0, false},
         {M::fork_exec, M::vfork_exec, M::posix_spawn, M::clone3, M::warm, M::server, M::fork_alone, M::vfork_alone},
         "touched_mib",
         ""});
  for (auto mib : reserved)
    groups.push_back({{0, mib, false}, {M::fork_exec, M::posix_spawn, M::clone3, M::fork_alone}, "reserved_mib", ""});

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
      groups.push_back({{mib, 0, true}, {M::fork_exec, M::posix_spawn, M::fork_alone}, "touched_mib", ", THP"});

  // The spawn server, started once for the whole suite (before the helpers
  // grow: it is not their fork), on a socket of its own.
  ServerProcess server;
  if (auto st = server.start(); !st) report.notes.push_back("create: no server row: " + st.error().message);
  const std::string server_socket = server.socket();
  progress.add_total(static_cast<int>(groups.size()) * runs);
  for (const auto& g : groups) {
    const std::uint64_t available = meminfo_mib("MemAvailable:");
    if (g.memory.touched_mib + 1024 > available) {
      report.notes.push_back("create: touched " + std::to_string(g.memory.touched_mib) + " MiB skipped, only " +
                             std::to_string(available) + " MiB available (1024 MiB kept free)");
      progress.step("create: skipped " + std::to_string(g.memory.touched_mib) + " MiB", runs);
      continue;
    }
    progress.say("create: a parent with " + std::to_string(g.memory.touched_mib) + " MiB touched, " +
                 std::to_string(g.memory.reserved_mib) + " MiB reserved" + g.suffix);
    auto make = [&g, runs, &server_socket](const std::function<void(const std::string&)>& note) {
      return create_cases(g, runs, server_socket, note);
    };
    if (auto st = measure_in_parent(c, "create", g.memory, make, runs, progress, report); !st) return st;
  }
  return ok_status();
}

}  // namespace procforge::bench::detail
