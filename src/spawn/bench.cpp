// The spawn benchmark (include/procforge/bench.hpp): one spawn+wait round
// trip per sample, timed with CLOCK_MONOTONIC around the whole trip (create,
// exec, the target's exit, the reap, and releasing the handle).
//
// The baselines bypass procforge on purpose and are as small as each
// mechanism allows, so that a ratio against them measures procforge's own
// overhead: glibc posix_spawn() with no attributes or file actions; fork()
// and vfork() followed by execve(); and clone(CLONE_VM|CLONE_VFORK|SIGCHLD)
// on a static stack whose child only calls execve() and _exit(127) - the
// floor every vfork-style spawn builds on (glibc spawni.c adds the signal
// loop and an mmap'd stack on top of it); and the same clone with
// CLONE_PIDFD, reaped with waitid(P_PIDFD) and the pidfd closed: the floor
// of a spawn whose handle is a pidfd, as procforge's is.
//
// The parent's size is "ballast": anonymous private memory, MADV_NOHUGEPAGE
// so that it is mapped with 4 KiB pages whatever the THP setting, one byte
// written per page so that every page is present and has a PTE to copy.
#include "procforge/bench.hpp"
#include "common/spread.hpp"

#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <utility>

#include "common/kernel_release.hpp"
#include "common/unique_fd.hpp"
#include "procforge/spawn.hpp"

extern char** environ;

namespace procforge::bench {

namespace {

using Clock = std::chrono::steady_clock;

// A target ready for the baselines: C strings built once, outside the timing.
struct Prepared {
  const SpawnTarget* target = nullptr;
  std::array<char*, 2> argv{};
  spawn::Options opts;
  spawn::Options keep_ignored;  // opts, but SIG_IGN dispositions inherited
};

Status check_status(SpawnMethod m, const Prepared& t, int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  std::string what = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                       : "killed by signal " + std::to_string(WTERMSIG(status));
  return Error{0, std::string(method_name(m)) + " " + t.target->path + ": " + what};
}

Status reap(SpawnMethod m, const Prepared& t, pid_t pid) {
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return Error{errno, std::string("waitpid after ") + method_name(m) + ": " + errno_name(errno)};
  return check_status(m, t, status);
}

Status failed(SpawnMethod m, const Prepared& t, int err) {
  return Error{err, std::string(method_name(m)) + " " + t.target->path + ": " + errno_name(err)};
}

Status via_posix_spawn(const Prepared& t) {
  pid_t pid = -1;
  int e = posix_spawn(&pid, t.argv[0], nullptr, nullptr, t.argv.data(), environ);
  if (e != 0) return failed(SpawnMethod::posix_spawn, t, e);
  return reap(SpawnMethod::posix_spawn, t, pid);
}

Status via_fork(const Prepared& t) {
  pid_t pid = fork();
  if (pid == 0) {
    execve(t.argv[0], t.argv.data(), environ);
    _exit(127);
  }
  if (pid < 0) return failed(SpawnMethod::fork_exec, t, errno);
  return reap(SpawnMethod::fork_exec, t, pid);
}

// Its own frame, so nothing of the caller lives in registers vfork could clobber.
[[gnu::noinline]] pid_t vfork_exec(char* path, char** argv) {
  pid_t pid = vfork();
  if (pid == 0) {
    execve(path, argv, environ);
    _exit(127);
  }
  return pid;
}

Status via_vfork(const Prepared& t) {
  pid_t pid = vfork_exec(t.argv[0], const_cast<char**>(t.argv.data()));
  if (pid < 0) return failed(SpawnMethod::vfork_exec, t, errno);
  return reap(SpawnMethod::vfork_exec, t, pid);
}

// The clone baseline's child: execve or die. The parent is suspended
// (CLONE_VFORK) until this execs or exits, so one static stack serves all.
alignas(64) char clone_stack[64 * 1024];

int clone_child(void* arg) {
  auto* argv = static_cast<char**>(arg);
  execve(argv[0], argv, environ);
  _exit(127);
}

Status via_clone(const Prepared& t) {
  pid_t pid = clone(clone_child, clone_stack + sizeof clone_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    const_cast<char**>(t.argv.data()));
  if (pid < 0) return failed(SpawnMethod::clone_baseline, t, errno);
  return reap(SpawnMethod::clone_baseline, t, pid);
}

Status via_clone_pidfd(const Prepared& t) {
  constexpr SpawnMethod m = SpawnMethod::clone_pidfd_baseline;
  int pidfd = -1;
  // CLONE_PIDFD with the legacy call stores the pidfd through parent_tid.
  pid_t pid = clone(clone_child, clone_stack + sizeof clone_stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                    const_cast<char**>(t.argv.data()), &pidfd);
  if (pid < 0) return failed(m, t, errno);
  const UniqueFd owned(pidfd);
  siginfo_t info{};
  long r;
  do r = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, nullptr);
  while (r != 0 && errno == EINTR);
  if (const int err = r != 0 ? errno : 0)
    return Error{err, std::string("waitid after ") + method_name(m) + ": " + errno_name(err)};
  return check_status(m, t, info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8 : info.si_status);
}

Status via_procforge(const Prepared& t, const spawn::Options& opts, std::string* took) {
  auto child = spawn::spawn(opts);
  if (!child) return child.error().with_context("procforge spawn of " + t.target->path);
  auto exit = child->wait();
  if (!exit) return exit.error().with_context("procforge wait for " + t.target->path);
  if (!exit->exited || exit->status != 0)
    return check_status(SpawnMethod::procforge, t, exit->exited ? (exit->status & 0xff) << 8 : exit->status);
  *took = spawn::strategy_name(child->strategy());
  return ok_status();
}

// One timed round trip, in microseconds. The procforge handle is released
// inside the timed region, as a caller's would be.
Result<double> time_one(SpawnMethod m, const Prepared& t, std::string* took) {
  const auto t0 = Clock::now();
  Status st = ok_status();
  switch (m) {
    case SpawnMethod::procforge: st = via_procforge(t, t.opts, took); break;
    case SpawnMethod::procforge_keep_ignored: st = via_procforge(t, t.keep_ignored, took); break;
    case SpawnMethod::posix_spawn: st = via_posix_spawn(t); break;
    case SpawnMethod::fork_exec: st = via_fork(t); break;
    case SpawnMethod::vfork_exec: st = via_vfork(t); break;
    case SpawnMethod::clone_baseline: st = via_clone(t); break;
    case SpawnMethod::clone_pidfd_baseline: st = via_clone_pidfd(t); break;
  }
  const auto t1 = Clock::now();
  if (!st) return st.error();
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

Prepared prepare(const SpawnTarget& target) {
  Prepared p;
  p.target = &target;
  p.argv = {const_cast<char*>(target.path.c_str()), nullptr};
  p.opts.path = target.path;
  p.opts.search_path = false;
  p.opts.argv = {target.path};
  p.keep_ignored = p.opts;
  p.keep_ignored.reset_signal_dispositions = false;
  return p;
}

// Touched anonymous memory the parent holds while spawning.
class Ballast {
 public:
  Ballast() = default;
  Ballast(const Ballast&) = delete;
  Ballast& operator=(const Ballast&) = delete;
  ~Ballast() { release(); }

  Status resize(std::uint64_t mib) {
    if (mib < mib_) release();
    if (mib == mib_) return ok_status();
    const std::size_t bytes = static_cast<std::size_t>(mib - mib_) << 20;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      return Error{errno, "mapping " + std::to_string(mib - mib_) + " MiB of parent memory: " + errno_name(errno)};
    chunks_.emplace_back(p, bytes);
    madvise(p, bytes, MADV_NOHUGEPAGE);  // best effort: 4 KiB pages, the worst case for fork
    const long page = sysconf(_SC_PAGESIZE);
    auto* c = static_cast<volatile unsigned char*>(p);
    for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page)) c[off] = 1;
    mib_ = mib;
    return ok_status();
  }

 private:
  void release() {
    for (auto& [p, n] : chunks_) munmap(p, n);
    chunks_.clear();
    mib_ = 0;
  }
  std::vector<std::pair<void*, std::size_t>> chunks_;
  std::uint64_t mib_ = 0;
};

SpawnSample summarize(SpawnMethod m, const std::string& target, std::uint64_t rss, std::vector<double> us, int asked) {
  SpawnSample s;
  s.method = m;
  s.target = target;
  s.parent_rss_mib = rss;
  s.runs = static_cast<int>(us.size());
  s.reduced = s.runs < asked;
  const Spread sp = spread(std::move(us));
  s.median_us = sp.median;
  s.min_us = sp.min;
  s.max_us = sp.max;
  return s;
}

std::string first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

}  // namespace

const char* method_name(SpawnMethod m) {
  switch (m) {
    case SpawnMethod::procforge: return "procforge";
    case SpawnMethod::procforge_keep_ignored: return "procforge-keep-ign";
    case SpawnMethod::posix_spawn: return "posix_spawn";
    case SpawnMethod::fork_exec: return "fork+exec";
    case SpawnMethod::vfork_exec: return "vfork+exec";
    case SpawnMethod::clone_baseline: return "clone-baseline";
    case SpawnMethod::clone_pidfd_baseline: return "clone+pidfd";
  }
  return "?";
}

int fork_runs(const SpawnBenchConfig& c, std::uint64_t parent_rss_mib) {
  if (parent_rss_mib < c.fork_reduce_from_mib || parent_rss_mib == 0) return c.runs;
  const auto scaled = static_cast<std::uint64_t>(c.runs) * c.fork_reduce_from_mib / parent_rss_mib;
  return static_cast<int>(std::clamp<std::uint64_t>(scaled, 7, static_cast<std::uint64_t>(c.runs)));
}

Result<double> time_spawn_method(SpawnMethod m, const SpawnTarget& target) {
  const Prepared p = prepare(target);
  std::string took;
  return time_one(m, p, &took);
}

Result<SpawnBenchReport> run_spawn_bench(const SpawnBenchConfig& config) {
  if (config.runs < 1) return Error{EINVAL, "runs must be at least 1"};
  if (config.targets.empty() || config.methods.empty()) return Error{EINVAL, "nothing to measure"};

  SpawnBenchReport report;
  report.targets = config.targets;
  report.kernel = kernel_release().text;
  report.thp = first_line("/sys/kernel/mm/transparent_hugepage/enabled");

  // Targets as every method needs them, built before any timing.
  std::vector<Prepared> prepared(config.targets.size());
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    Prepared& p = prepared[i];
    p = prepare(config.targets[i]);
    if (access(p.target->path.c_str(), X_OK) != 0)
      return Error{errno, "target " + p.target->name + " " + p.target->path + ": " + errno_name(errno)};
  }

  const auto& methods = config.methods;
  const int rounds_total = config.runs * static_cast<int>(config.parent_rss_mib.size());
  int rounds_done = 0;
  Ballast ballast;
  for (std::uint64_t rss : config.parent_rss_mib) {
    if (config.progress)
      config.progress("touching " + std::to_string(rss) + " MiB of parent memory", rounds_done, rounds_total);
    if (auto st = ballast.resize(rss); !st) return st.error();

    auto planned = [&](SpawnMethod m) { return m == SpawnMethod::fork_exec ? fork_runs(config, rss) : config.runs; };
    // samples[target][method]
    std::vector<std::vector<std::vector<double>>> samples(prepared.size(),
                                                          std::vector<std::vector<double>>(methods.size()));
    // Warm-up: page cache, ld.so cache, the first-touch of procforge's own paths.
    for (auto& t : prepared)
      for (SpawnMethod m : methods)
        for (int w = 0; w < (planned(m) < config.runs ? 1 : config.warmup); ++w)
          if (auto r = time_one(m, t, &report.procforge_strategy); !r) return r.error();

    // Round-robin: each round gives every (target, method) one run, starting
    // from a different method each time so none always follows the same one.
    // Targets are the outer loop so that a sample mostly follows another
    // method's spawn of the same target: the first of a round follows a
    // different target (a dynamic one evicts caches), and that turn rotates.
    for (int round = 0; round < config.runs; ++round, ++rounds_done) {
      if (config.progress)
        config.progress("parent " + std::to_string(rss) + " MiB, round " + std::to_string(round + 1) + "/" +
                            std::to_string(config.runs),
                        rounds_done, rounds_total);
      for (std::size_t ti = 0; ti < prepared.size(); ++ti) {
        for (std::size_t k = 0; k < methods.size(); ++k) {
          const std::size_t mi = (k + static_cast<std::size_t>(round)) % methods.size();
          if (round >= planned(methods[mi])) continue;
          auto r = time_one(methods[mi], prepared[ti], &report.procforge_strategy);
          if (!r) return r.error();
          samples[ti][mi].push_back(*r);
        }
      }
    }
    for (std::size_t ti = 0; ti < prepared.size(); ++ti)
      for (std::size_t mi = 0; mi < methods.size(); ++mi)
        report.results.push_back(
            summarize(methods[mi], prepared[ti].target->name, rss, std::move(samples[ti][mi]), config.runs));
  }
  if (config.progress) config.progress("done", rounds_total, rounds_total);
  report.ratios = spawn_bench_ratios(report.results);
  return report;
}

std::vector<SpawnRatio> spawn_bench_ratios(const std::vector<SpawnSample>& results) {
  std::vector<SpawnRatio> out;
  if (results.empty()) return out;
  std::uint64_t small = results.front().parent_rss_mib, large = small;
  for (const auto& s : results) {
    small = std::min(small, s.parent_rss_mib);
    large = std::max(large, s.parent_rss_mib);
  }
  auto find = [&](SpawnMethod m, const std::string& target, std::uint64_t rss) -> const SpawnSample* {
    for (const auto& s : results)
      if (s.method == m && s.target == target && s.parent_rss_mib == rss && s.runs > 0) return &s;
    return nullptr;
  };
  auto add = [&](std::string name, const SpawnSample* a, const SpawnSample* b, double goal) {
    if (!a || !b || b->median_us <= 0) return;
    SpawnRatio r;
    r.name = std::move(name);
    r.value = a->median_us / b->median_us;
    r.goal = goal;
    r.met = goal > 0 && r.value <= goal;
    out.push_back(std::move(r));
  };
  using M = SpawnMethod;
  const std::string at_small = std::to_string(small) + " MiB";
  for (const char* target : {"static", "dynamic"}) {
    const bool goals = std::string(target) == "static";
    add(std::string("procforge / posix_spawn (") + target + ", " + at_small + ")", find(M::procforge, target, small),
        find(M::posix_spawn, target, small), goals ? 0.9 : 0);
    add(std::string("procforge / clone-baseline (") + target + ", " + at_small + ")", find(M::procforge, target, small),
        find(M::clone_baseline, target, small), goals ? 1.05 : 0);
    add(std::string("procforge-keep-ign / clone-baseline (") + target + ", " + at_small + ")",
        find(M::procforge_keep_ignored, target, small), find(M::clone_baseline, target, small), 0);
    add(std::string("clone+pidfd / clone-baseline (") + target + ", " + at_small + ")",
        find(M::clone_pidfd_baseline, target, small), find(M::clone_baseline, target, small), 0);
    add(std::string("procforge-keep-ign / clone+pidfd (") + target + ", " + at_small + ")",
        find(M::procforge_keep_ignored, target, small), find(M::clone_pidfd_baseline, target, small), 0);
  }
  if (large != small) {
    const std::string sizes = std::to_string(large) + " MiB / " + at_small;
    for (const char* target : {"static", "dynamic"}) {
      add(std::string("procforge ") + sizes + " (" + target + ")", find(M::procforge, target, large),
          find(M::procforge, target, small), 1.2);
      for (M m : {M::posix_spawn, M::clone_baseline, M::fork_exec})
        add(std::string(method_name(m)) + " " + sizes + " (" + target + ")", find(m, target, large),
            find(m, target, small), 0);
    }
  }
  return out;
}

}  // namespace procforge::bench
