// Suite "server": what a spawn through `procforge serve` costs its client,
// against the client spawning the program itself.
//
// Each run is one round trip, submit to exit: for the client, a request on
// its connection and the exit event back (client::Connection); for the
// baseline, glibc's posix_spawn and waitpid in the client. Measured:
//   client_mib     the static target (procforge-exit0) and `cmake --version`,
//                  cold and warm through each backend's server, and by
//                  posix_spawn, from a client holding that much touched
//                  memory: the server's side does not see the client's size;
//   clients        1..64 clients submitting at once (threads, each with its
//                  own connection), mean latency of a request;
//   shell_command  fork+exec+wait from a small process, as a shell runs a
//                  command: the static floor, procforge-spawn alone, the
//                  C++ procforge alone, `cmake --version`, and
//                  `procforge-spawn --warm cmake --version`.
// Both backends' servers are started before any client grows, so neither is
// a fork of a big process.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <latch>
#include <memory>
#include <thread>

#include "bench/detail.hpp"
#include "procforge/client.hpp"

extern char** environ;

namespace procforge::bench::detail {

namespace {

using Clock = std::chrono::steady_clock;
using Note = std::function<void(const std::string&)>;

double since_us(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

// A program run with its argv, the given environment and stdio on /dev/null.
struct Program {
  std::string name;  // "static target", "cmake --version"
  std::string path;
  std::vector<std::string> argv;
};

const std::vector<std::string> kEnv{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"};

Status exited_zero(int status, const std::string& what) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  return Error{ECHILD, what + " did not exit 0 (wait status " + std::to_string(status) + ")"};
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn + waitpid in this process: the baseline a client has without a server.
Result<Sample> posix_spawn_wait(const Program& p) {
  std::vector<std::string> argv = p.argv, envp = kEnv;
  auto a = c_strings(argv), e = c_strings(envp);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
  const auto t0 = Clock::now();
  pid_t pid = -1;
  const int err = posix_spawn(&pid, p.path.c_str(), &fa, nullptr, a.data(), e.data());
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) return Error::call(ErrorStep::spawn_setup, err, "posix_spawn", p.path);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const double us = since_us(t0);
  if (auto st = exited_zero(status, p.name + " by posix_spawn"); !st) return st.error();
  return Sample{us};
}

// fork + execve + waitpid from a small process: what a shell does for a command.
Result<Sample> shell_run(const Program& p) {
  std::vector<std::string> argv = p.argv, envp = kEnv;
  auto a = c_strings(argv), e = c_strings(envp);
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return Error::call(ErrorStep::open, errno, "opening", "/dev/null");
  const auto t0 = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    execve(p.path.c_str(), a.data(), e.data());
    _exit(127);
  }
  close(null);
  if (pid < 0) return Error::call(ErrorStep::clone, errno, "fork");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const double us = since_us(t0);
  if (auto st = exited_zero(status, p.name); !st) return st.error();
  return Sample{us};
}

spawn::Options options_of(const Program& p) {
  spawn::Options o = quiet_options(p.path, kEnv);
  o.argv = p.argv;
  return o;
}

// One request through the server, submit to exit.
Result<Sample> server_round_trip(client::Connection& c, const Program& p, bool warm) {
  const spawn::Options o = options_of(p);
  client::Spawned info;
  const auto t0 = Clock::now();
  auto child = c.spawn(o, warm, false, &info);
  if (!child) return child.error();
  auto exit = child->wait();
  const double us = since_us(t0);
  if (!exit) return exit.error();
  if (exit->shell_status() != 0)
    return Error{ECHILD, p.name + " through the server ended with status " + std::to_string(exit->shell_status())};
  if (warm && !info.warm) return Error{ECHILD, p.name + " through the server went cold: " + info.fallback_reason};
  return Sample{us};
}

struct Backend {
  std::string name;    // "io_uring", "epoll"
  std::string socket;  // of its server
};

struct Setup {
  std::vector<Backend> backends;
  Program exit0, cmake;  // cmake.path empty: not installed
  std::string spawn_client, procforge;
};

Case make_case(std::string series, std::string variable, double value, std::function<Result<Sample>()> run,
               std::string label = {}) {
  Case k;
  k.series = std::move(series);
  k.variable = std::move(variable);
  k.value = value;
  k.label = std::move(label);
  k.run = std::move(run);
  return k;
}

// The client-size curves of `program`, in a client of `mib` touched MiB.
// One program a client: a warm request leaves the template forking its next
// spare, and a cold cmake keeps a core busy, either of which would fall on
// the static target's next run if they were interleaved.
std::vector<Case> size_cases(const Setup& s, const Program& p, std::uint64_t mib, const Note& note) {
  std::vector<Case> cases;
  const auto v = static_cast<double>(mib);
  cases.push_back(make_case("posix_spawn, " + p.name, "client_mib", v, [p] { return posix_spawn_wait(p); }));
  for (const auto& b : s.backends) {
    auto conn = client::Connection::connect(b.socket);
    if (!conn) {
      note("no " + b.name + " series at " + std::to_string(mib) + " MiB: " + conn.error().message);
      continue;
    }
    auto c = std::make_shared<client::Connection>(std::move(*conn));
    cases.push_back(make_case("server " + b.name + ", " + p.name + " cold", "client_mib", v,
                              [c, p] { return server_round_trip(*c, p, false); }));
    if (p.name != s.exit0.name)  // the static target cannot be warm (no PT_INTERP, no main to hold)
      cases.push_back(make_case("server " + b.name + ", " + p.name + " warm", "client_mib", v,
                                [c, p] { return server_round_trip(*c, p, true); }));
  }
  return cases;
}

// K clients at once: each a thread with its own connection (or, for the
// baseline, its own posix_spawn); a run is one request from each, all
// released together; the sample is the mean of their latencies.
Result<Sample> at_once(int k, const std::function<Result<Sample>(int)>& one) {
  std::vector<Result<Sample>> got(static_cast<std::size_t>(k), Error{EINVAL, "not run"});
  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(k));
  for (int i = 0; i < k; ++i)
    threads.emplace_back([&, i] {
      go.wait();
      got[static_cast<std::size_t>(i)] = one(i);
    });
  go.count_down();
  for (auto& t : threads) t.join();
  double sum = 0;
  for (const auto& g : got) {
    if (!g) return g.error();
    sum += g->us;
  }
  return Sample{sum / k};
}

std::vector<Case> concurrency_cases(const Setup& s, const std::vector<int>& clients, const Note& note) {
  std::vector<Case> cases;
  for (int k : clients) {
    const Program p = s.exit0;
    cases.push_back(make_case("posix_spawn, " + p.name, "clients", k,
                              [k, p] { return at_once(k, [&p](int) { return posix_spawn_wait(p); }); }));
    for (const auto& b : s.backends) {
      auto conns = std::make_shared<std::vector<client::Connection>>();
      for (int i = 0; i < k; ++i) {
        auto c = client::Connection::connect(b.socket);
        if (!c) {
          note("no " + b.name + " series at " + std::to_string(k) + " clients: " + c.error().message);
          conns.reset();
          break;
        }
        conns->push_back(std::move(*c));
      }
      if (!conns) continue;
      cases.push_back(make_case("server " + b.name + ", " + p.name, "clients", k, [k, p, conns] {
        return at_once(k, [&](int i) { return server_round_trip((*conns)[static_cast<std::size_t>(i)], p, false); });
      }));
    }
  }
  return cases;
}

std::vector<Case> shell_cases(const Setup& s) {
  std::vector<Program> commands{s.exit0};
  if (!s.spawn_client.empty())
    commands.push_back({"procforge-spawn --version", s.spawn_client, {"procforge-spawn", "--version"}});
  if (!s.procforge.empty()) commands.push_back({"procforge --version", s.procforge, {"procforge", "--version"}});
  if (!s.cmake.path.empty()) {
    commands.push_back(s.cmake);
    if (!s.spawn_client.empty() && !s.backends.empty())
      commands.push_back(
          {"procforge-spawn --warm cmake --version",
           s.spawn_client,
           {"procforge-spawn", "--socket", s.backends.front().socket, "--warm", "--", s.cmake.path, "--version"}});
  }
  std::vector<Case> cases;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const Program p = commands[i];
    cases.push_back(make_case(
        "fork+exec from a small process", "shell_command", static_cast<double>(i), [p] { return shell_run(p); },
        p.name));
  }
  return cases;
}

std::string in_path(const std::string& name) {
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    const std::string p = std::string(dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

}  // namespace

Status run_server(const SuiteConfig& c, int runs, Progress& progress, SuiteReport& report) {
  if (c.static_target.empty() || access(c.static_target.c_str(), X_OK) != 0)
    return Error{ENOENT, "server: the static target procforge-exit0 was not found (" + c.static_target + ")"};
  Setup s;
  s.exit0 = {"static target", c.static_target, {c.static_target}};
  if (const std::string cmake = in_path("cmake"); !cmake.empty())
    s.cmake = {"cmake --version", cmake, {cmake, "--version"}};
  else report.notes.push_back("server: cmake is not installed, its series are left out");
  s.spawn_client = c.spawn_client;
  if (s.spawn_client.empty())
    report.notes.push_back("server: procforge-spawn was not found, its commands are left out");
  s.procforge = c.procforge;

  // One server per backend, started before any client grows.
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (const char* b : {"io_uring", "epoll"}) {
    auto p = std::make_unique<ServerProcess>();
    if (auto st = p->start(b); !st) {
      report.notes.push_back(std::string("server: no ") + b + " series: " + st.error().message);
      continue;
    }
    s.backends.push_back({b, p->socket()});
    servers.push_back(std::move(p));
  }
  if (s.backends.empty()) return Error{ECHILD, "server: no server could be started"};

  const std::vector<std::uint64_t> sizes =
      c.quick ? std::vector<std::uint64_t>{0, 1024} : std::vector<std::uint64_t>{0, 8192};
  const std::vector<int> clients = c.quick ? std::vector<int>{1, 8} : std::vector<int>{1, 8, 64};
  std::vector<Program> programs{s.exit0};
  if (!s.cmake.path.empty()) programs.push_back(s.cmake);
  progress.add_total(static_cast<int>(sizes.size() * programs.size() + 2) * runs);
  for (const auto& program : programs)
    for (auto mib : sizes) {
      const std::uint64_t available = meminfo_mib("MemAvailable:");
      if (mib + 1024 > available) {
        report.notes.push_back("server: a client of " + std::to_string(mib) + " MiB skipped, only " +
                               std::to_string(available) + " MiB available (1024 MiB kept free)");
        progress.step("server: skipped " + std::to_string(mib) + " MiB", runs);
        continue;
      }
      progress.say("server: " + program.name + " from a client with " + std::to_string(mib) + " MiB touched");
      auto make = [&s, &program, mib](const Note& note) { return size_cases(s, program, mib, note); };
      if (auto st = measure_in_parent(c, "server", {mib, 0, false}, make, runs, progress, report); !st) return st;
    }
  progress.say("server: clients at once");
  auto many = [&s, &clients](const Note& note) { return concurrency_cases(s, clients, note); };
  if (auto st = measure_in_parent(c, "server", {}, many, runs, progress, report); !st) return st;
  progress.say("server: commands as a shell runs them");
  auto shell = [&s](const Note&) { return shell_cases(s); };
  return measure_in_parent(c, "server", {}, shell, runs, progress, report);
}

}  // namespace procforge::bench::detail
