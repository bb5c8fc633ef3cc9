// Measuring in a parent of a given size: the process that spawns must be the
// one holding the memory, so each size is a helper process (a fork of this
// one, made before any memory is touched) that maps and touches its memory,
// makes its cases, measures them interleaved and sends the measurements back
// over a pipe. Also the spawn server the create and server suites talk to.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/detail.hpp"
#include "procforge/server.hpp"

namespace procforge::bench::detail {

namespace {

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
    << m.max_us << "\t" << m.runs << "\t" << m.label;
  return o.str();
}

Measurement parse_fields(const std::string& suite, const std::string& line) {
  std::istringstream in(line.substr(2));
  Measurement m;
  m.suite = suite;
  std::string value, median, min, max, runs;
  std::getline(in, m.series, '\t');
  std::getline(in, m.variable, '\t');
  std::getline(in, value, '\t');
  std::getline(in, median, '\t');
  std::getline(in, min, '\t');
  std::getline(in, max, '\t');
  std::getline(in, runs, '\t');
  std::getline(in, m.label, '\t');
  m.value = std::stod(value), m.median_us = std::stod(median), m.min_us = std::stod(min), m.max_us = std::stod(max);
  m.runs = std::stoi(runs);
  return m;
}

// The helper: grows itself as `memory` says, makes its cases, measures,
// reports on fd. Never returns.
[[noreturn]] void helper(const SuiteConfig& c, const std::string& suite, const ParentMemory& memory,
                         const MakeCases& make_cases, int runs, int fd) {
  auto fail = [&](const std::string& why, int status) {
    send(fd, "E\t" + why);
    _exit(status);
  };
  const long page = sysconf(_SC_PAGESIZE);
  if (memory.touched_mib) {
    const std::size_t bytes = static_cast<std::size_t>(memory.touched_mib) << 20;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("touched " + std::to_string(memory.touched_mib) + " MiB: mmap " + errno_name(errno), 3);
    madvise(p, bytes, memory.huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    auto* b = static_cast<volatile unsigned char*>(p);
    for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page)) b[off] = 1;
    if (memory.huge && anon_huge_mib() < memory.touched_mib / 2)
      send(fd, "N\ttouched " + std::to_string(memory.touched_mib) + " MiB with MADV_HUGEPAGE: the kernel gave only " +
                   std::to_string(anon_huge_mib()) + " MiB as huge pages");
  }
  if (memory.reserved_mib) {
    void* p = mmap(nullptr, static_cast<std::size_t>(memory.reserved_mib) << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      fail("reserved " + std::to_string(memory.reserved_mib) + " MiB: mmap " + errno_name(errno) +
               " (overcommit refused it)",
           3);
  }
  {
    std::vector<Measurement> out;
    {
      // The cases and what they hold (connections, pools) end before _exit.
      std::vector<Case> cases = make_cases([fd](const std::string& note) { send(fd, "N\t" + note); });
      SuiteConfig relay;
      relay.progress = [fd](const std::string& what, int, int) { send(fd, "P\t" + what); };
      relay.cancelled = c.cancelled;
      Progress progress(relay);
      if (auto st = run_interleaved(suite, cases, runs, 2, progress, out); !st)
        fail(st.error().message, st.error().err == ECANCELED ? 4 : 1);
    }
    for (const auto& m : out) send(fd, fields(m));
  }
  _exit(0);
}

}  // namespace

Status measure_in_parent(const SuiteConfig& c, const std::string& suite, const ParentMemory& memory,
                         const MakeCases& make_cases, int runs, Progress& progress, SuiteReport& report) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::call(ErrorStep::clone, errno, "making the helper's pipe");
  const pid_t pid = fork();
  if (pid < 0) return Error::call(ErrorStep::clone, errno, "forking a helper parent");
  if (pid == 0) {
    close(p[0]);
    helper(c, suite, memory, make_cases, runs, p[1]);
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
          got.push_back(parse_fields(suite, line));
        } catch (const std::exception&) {  // std::stod on a line cut short: the helper died mid-write
          error = "a garbled measurement from the helper: " + line;
        }
      } else if (line.rfind("N\t", 0) == 0) report.notes.push_back(suite + ": " + line.substr(2));
      else if (line.rfind("E\t", 0) == 0) error = line.substr(2);
    }
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 3) {
    report.notes.push_back(suite + ": skipped, " + error);
    return ok_status();
  }
  if (code == 4 || progress.cancelled()) return cancelled_error();
  if (code == 128 + SIGKILL) {  // the OOM killer, most likely, while it touched its memory
    report.notes.push_back(suite + ": skipped " + std::to_string(memory.touched_mib) +
                           " MiB touched, the helper holding it was killed (SIGKILL: out of memory?)");
    return ok_status();
  }
  if (code != 0 || !error.empty())
    return Error{ECHILD,
                 suite + ": the helper parent failed: " + (error.empty() ? "status " + std::to_string(code) : error)};
  report.measurements.insert(report.measurements.end(), got.begin(), got.end());
  return ok_status();
}

std::uint64_t meminfo_mib(const char* field) {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(line.find(':') + 1)) >> 10;
  return 0;
}

Status ServerProcess::start(const std::string& backend) {
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
    cfg.backend = backend;
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
  if (access(path.c_str(), F_OK) != 0) return Error{ECHILD, "the " + backend + " server did not start"};
  socket_ = path;
  return ok_status();
}

ServerProcess::~ServerProcess() {
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

}  // namespace procforge::bench::detail
