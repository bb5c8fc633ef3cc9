// Spawn + user-space exec + wait against fork + execve + wait, side by side,
// for three targets: the static no-libc exit(0) program (procforge-exit0,
// built next to this benchmark), /bin/true (PIE, ld.so, libc) and a program
// loading 40+ shared libraries (appstreamcli --version, 56 libraries on
// Debian 12; skipped with a message when absent). The user side includes
// loader::prepare() (the exec model, opening files, building the stack) as a
// real caller pays it: prepare(for_child) in the parent, fork, enter() in the
// child. Prints the ratio user/kernel per target after the table (goal <= 1.5).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "procforge/loader.hpp"

namespace {

struct Target {
  std::string name, path;
  std::vector<std::string> argv;
};

std::string self_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string p(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  return p.substr(0, p.rfind('/'));
}

std::vector<char*> c_argv(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int devnull() {
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

bool wait_ok(pid_t pid) {
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// One round trip: fork; the child sends stdout and stderr to /dev/null
// (opened by the parent, before any timing) and becomes the target; the
// parent reaps it. False unless it exited 0.
template <class Become>
bool fork_and_reap(Become become) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(devnull(), 1);
    ::dup2(devnull(), 2);
    become();
    ::_exit(127);
  }
  return wait_ok(pid);
}

void kernel_exec(benchmark::State& state, const Target& t) {
  auto argv = c_argv(t.argv);
  char* envp[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
  for (auto _ : state) {
    if (!fork_and_reap([&] { ::execve(t.path.c_str(), argv.data(), envp); })) {
      state.SkipWithError(("fork+execve of " + t.path + " failed").c_str());
      break;
    }
  }
}

procforge::loader::Options loader_options(const Target& t) {
  procforge::loader::Options opts;
  opts.request.path = t.path;
  opts.request.argv = t.argv;
  opts.request.envp = {"PATH=/usr/bin:/bin"};
  opts.for_child = true;
  return opts;
}

// prepare() per iteration, then `use` on the result; false ends the loop.
template <class Use>
void prepared_loop(benchmark::State& state, const Target& t, Use use) {
  const auto opts = loader_options(t);
  for (auto _ : state) {
    auto prepared = procforge::loader::prepare(opts);
    if (!prepared) {
      state.SkipWithError(("prepare: " + prepared.error().message).c_str());
      break;
    }
    if (!use(*prepared)) break;
  }
}

void user_exec(benchmark::State& state, const Target& t) {
  prepared_loop(state, t, [&](const procforge::loader::Prepared& p) {
    if (fork_and_reap([&] { p.enter(); })) return true;
    state.SkipWithError(("user exec of " + t.path + " failed").c_str());
    return false;
  });
}

// prepare() alone: the part of user_exec that runs in the parent.
void prepare_only(benchmark::State& state, const Target& t) {
  prepared_loop(state, t, [](const procforge::loader::Prepared& p) {
    benchmark::DoNotOptimize(&p);
    return true;
  });
}

// Collects real time per benchmark to print user/kernel ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      // With --benchmark_repetitions the median (reported after the runs) wins.
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if ((r.run_type == Run::RT_Iteration || median) && !r.error_occurred)
        times_[r.run_name.str()] = r.GetAdjustedRealTime();
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const auto& [name, t] : times_) {
      if (name.rfind("kernel_exec/", 0) != 0) continue;
      const std::string target = name.substr(12);
      for (const char* side : {"user_exec/"}) {
        auto u = times_.find(side + target);
        if (u == times_.end() || t <= 0) continue;
        std::printf("ratio %skernel %s %.2fx  (kernel %.0f us, user %.0f us)\n", side, target.c_str(), u->second / t, t,
                    u->second);
      }
    }
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets{{"static", self_dir() + "/procforge-exit0", {"exit0"}},
                              {"bin_true", "/bin/true", {"true"}}};
  if (::access("/usr/bin/appstreamcli", X_OK) == 0)
    targets.push_back({"libs56_appstreamcli", "/usr/bin/appstreamcli", {"appstreamcli", "--version"}});
  else
    std::fprintf(stderr, "skipping the 40+ library target: /usr/bin/appstreamcli not installed\n");
  if (devnull() < 0) {
    std::fprintf(stderr, "opening /dev/null failed\n");
    return 1;
  }
  for (const auto& t : targets) {
    benchmark::RegisterBenchmark(("kernel_exec/" + t.name).c_str(), kernel_exec, t)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("user_exec/" + t.name).c_str(), user_exec, t)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("prepare_only/" + t.name).c_str(), prepare_only, t)->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
