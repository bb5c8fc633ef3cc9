// `procforge bench warm`: what a warm instance saves against a cold start of
// the same command, cold and warm interleaved so that both see the same
// machine. The 100-library program is generated and built here with the
// system's cc, as the link benchmarks of the bench suite are.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/spread.hpp"
#include "procforge/bench.hpp"
#include "procforge/spawn.hpp"
#include "procforge/warm.hpp"

namespace procforge::bench {

namespace {

using clock = std::chrono::steady_clock;

spawn::Options options_for(const std::vector<std::string>& argv) {
  spawn::Options o;
  o.path = argv.front();
  o.argv = argv;
  o.inherit_env = false;
  o.envp = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C"};
  o.cwd = "/";
  o.stdin_.kind = o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::null;
  return o;
}

Result<double> timed(const std::function<Result<spawn::Child>()>& make, const std::string& name) {
  const auto t0 = clock::now();
  auto c = make();
  if (!c) return c.error().with_context(name);
  auto e = c->wait();
  if (!e) return e.error().with_context(name);
  if (e->shell_status() != 0) return Error{ECHILD, name + " exited with status " + std::to_string(e->shell_status())};
  return std::chrono::duration<double, std::micro>(clock::now() - t0).count();
}

Status run_cc(const std::vector<std::string>& argv, const std::string& dir) {
  spawn::Options o;
  o.path = "cc";
  o.argv = argv;
  o.cwd = dir;
  o.stdout_.kind = spawn::Stdio::Kind::null;
  auto c = spawn::spawn(o);
  if (!c) return c.error().with_context("building the 100-library program (cc from gcc)");
  auto e = c->wait();
  if (!e || e->shell_status() != 0) return Error{ECHILD, "cc failed building the 100-library program in " + dir};
  return ok_status();
}

// A main() that calls one function of each of n libraries, each library with
// a few exported symbols and a relocation or two, as small shared libraries have.
Result<std::string> build_many_libraries(const std::string& dir, int n) {
  for (int i = 0; i < n; ++i) {
    std::ofstream(dir + "/lib" + std::to_string(i) + ".c")
        << "int counter_" << i << ";\nconst char* name_" << i << "(void) { return \"lib" << i << "\"; }\n"
        << "int touch_" << i << "(void) { return ++counter_" << i << "; }\n";
  }
  std::ofstream m(dir + "/main.c");
  for (int i = 0; i < n; ++i) m << "int touch_" << i << "(void);\n";
  m << "int main(void) { int s = 0;\n";
  for (int i = 0; i < n; ++i) m << "  s += touch_" << i << "();\n";
  m << "  return s == " << n << " ? 0 : 1; }\n";
  m.close();
  // Two compilers at a time.
  std::vector<spawn::Child> running;
  for (int i = 0; i < n; ++i) {
    spawn::Options o;
    o.path = "cc";
    std::string id = std::to_string(i);
    o.argv = {"cc", "-shared", "-fPIC", "-O1", "-o", "libgen" + id + ".so", "lib" + id + ".c"};
    o.cwd = dir;
    auto c = spawn::spawn(o);
    if (!c) return c.error().with_context("building the 100-library program (cc from gcc)");
    running.push_back(std::move(*c));
    if (running.size() == 2 || i == n - 1) {
      for (auto& r : running) {
        auto e = r.wait();
        if (!e || e->shell_status() != 0) return Error{ECHILD, "cc failed building a library in " + dir};
      }
      running.clear();
    }
  }
  std::vector<std::string> link = {"cc", "-O1", "-o", "many", "main.c", "-L.", "-Wl,-rpath," + dir};
  for (int i = 0; i < n; ++i) link.push_back("-lgen" + std::to_string(i));
  if (auto st = run_cc(link, dir); !st) return st.error();
  return dir + "/many";
}

// The floor under a warm instance (see WarmFloor), median of `runs`.
Result<WarmFloor> measure_floor(int runs) {
  WarmFloor f;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::call(ErrorStep::clone, errno, "making the floor's socket pair");
  pid_t echo = fork();
  if (echo < 0) return Error::call(ErrorStep::clone, errno, "forking the floor's echo process");
  if (echo == 0) {
    close(sv[0]);  // or the peer's end never reads EOF here
    char b[64];
    for (ssize_t n; (n = recv(sv[1], b, sizeof b, 0)) > 0;) (void)!send(sv[1], b, static_cast<std::size_t>(n), 0);
    _exit(0);
  }
  close(sv[1]);
  std::vector<double> trip, forks;
  for (int i = 0; i < runs; ++i) {
    auto t0 = clock::now();
    char b[16] = "ping";
    if (send(sv[0], b, sizeof b, 0) < 0 || recv(sv[0], b, sizeof b, 0) <= 0) break;
    trip.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    t0 = clock::now();
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p > 0) {
      siginfo_t si{};
      waitid(P_PID, static_cast<id_t>(p), &si, WEXITED);
      forks.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }
  }
  close(sv[0]);
  waitpid(echo, nullptr, 0);
  f.round_trip_us = spread(trip).median;
  f.fork_exit_wait_us = spread(forks).median;
  return f;
}

}  // namespace

Result<WarmBenchReport> run_warm_bench(const WarmBenchConfig& config) {
  std::vector<WarmBenchProgram> programs = config.programs;
  std::string scratch;
  if (programs.empty()) {
    programs = {{"/bin/true", {"/bin/true"}},
                {"ls /", {"ls", "/"}},
                {"python3 -c pass", {"python3", "-c", "pass"}},
                {"cmake --version", {"cmake", "--version"}}};
    char tmpl[] = "/tmp/procforge-bench-warm-XXXXXX";
    if (!mkdtemp(tmpl)) return Error::call(ErrorStep::write, errno, "making a directory for the generated program");
    scratch = tmpl;
    if (config.progress) config.progress("building a program with 100 libraries", 0, 1);
    auto many = build_many_libraries(scratch, 100);
    if (!many) {
      std::filesystem::remove_all(scratch);
      return many.error();
    }
    programs.push_back({"100 libraries", {*many}});
  }
  WarmBenchReport report;
  std::vector<WarmBenchResult>& out = report.results;
  const int total = static_cast<int>(programs.size()) * (config.runs + config.warmup);
  int done = 0;
  Status failure = ok_status();
  for (const auto& p : programs) {
    WarmBenchResult r;
    r.program = p.name;
    r.argv = p.argv;
    warm::Pool pool;
    const spawn::Options o = options_for(p.argv);
    warm::Report how;
    auto warm_once = [&] { return pool.spawn(o, &how); };
    auto cold_once = [&] { return spawn::spawn(o); };
    std::vector<double> cold, warm;
    for (int i = 0; i < config.warmup + config.runs && failure.ok(); ++i) {
      if (config.progress && i % 10 == 0) config.progress(p.name, done, total);
      ++done;
      auto c = timed(cold_once, p.name + " (cold)");
      auto w = timed(warm_once, p.name + " (warm)");
      if (!c || !w) {
        failure = !c ? c.error() : w.error();
        break;
      }
      if (i == 0) r.template_start_us = *w;
      if (!how.warm) r.fallback_reason = how.fallback_reason;
      if (i < config.warmup) continue;
      cold.push_back(*c);
      warm.push_back(*w);
    }
    if (!failure) break;
    if (auto facts = pool.facts(o)) r.objects = static_cast<int>(facts->objects.size());
    if (r.fallback_reason.empty()) {
      std::vector<double> floor;
      for (int i = 0; i < config.runs; ++i)
        if (auto ns = pool.fork_only(o)) floor.push_back(std::chrono::duration<double, std::micro>(*ns).count());
      r.fork_floor_us = spread(floor).median;
    }
    Spread c = spread(cold), w = spread(warm);
    r.cold_median_us = c.median, r.cold_min_us = c.min, r.cold_max_us = c.max;
    r.warm_median_us = w.median, r.warm_min_us = w.min, r.warm_max_us = w.max;
    r.speedup = w.median > 0 ? c.median / w.median : 0;
    out.push_back(std::move(r));
  }
  if (!scratch.empty()) std::filesystem::remove_all(scratch);
  if (!failure) return failure.error();
  if (config.progress) config.progress("the floor: a round trip, a fork", total, total + 1);
  auto floor = measure_floor(std::max(config.runs, 51));
  if (!floor) return floor.error();
  report.floor = *floor;
  if (config.progress) config.progress("done", total, total);
  return report;
}

}  // namespace procforge::bench
