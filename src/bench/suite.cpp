// The driver of `procforge bench [SUITE...]`: which suites run, with how many
// runs, in which order (create, then link and faults on one generated tree,
// then the server suite when named,
// then the claims from all the measurements), and the runner every suite
// measures with: cases interleaved round-robin so that drift (frequency, the
// neighbours' load) hits every case of a round alike.
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "bench/detail.hpp"
#include "common/kernel_release.hpp"
#include "common/spread.hpp"

namespace procforge::bench {

namespace detail {

namespace {
using Clock = std::chrono::steady_clock;

double median_of(std::vector<double> v) { return v.empty() ? -1 : spread(std::move(v)).median; }
}  // namespace

Error cancelled_error() { return Error{ECANCELED, "interrupted: the children were reaped and the files removed"}; }

int rounds_of(const std::vector<Case>& cases, int runs) {
  int rounds = 0;
  for (const auto& c : cases) rounds = std::max(rounds, c.runs ? c.runs : runs);
  return rounds;
}

Status run_interleaved(const std::string& suite, std::vector<Case>& cases, int runs, int warmup, Progress& progress,
                       std::vector<Measurement>& out) {
  const std::size_t n = cases.size();
  std::vector<std::vector<Sample>> samples(n);
  const int rounds = rounds_of(cases, runs);
  for (int round = -warmup; round < rounds; ++round) {
    for (std::size_t k = 0; k < n; ++k) {
      if (progress.cancelled()) return cancelled_error();
      Case& c = cases[(k + static_cast<std::size_t>(round + warmup)) % n];
      const int want = c.runs ? c.runs : runs;
      if (round >= want || (round < 0 && want < runs && round < -1)) continue;  // big cases: one warm-up
      if (c.before)
        if (auto st = c.before(); !st) return st.error();
      auto s = c.run();
      if (!s)
        return s.error().with_context(suite + ": " + c.series + " at " + c.variable + " " +
                                      (c.label.empty() ? fmt::format("{:g}", c.value) : c.label));
      if (round >= 0) samples[static_cast<std::size_t>(&c - cases.data())].push_back(*s);
    }
    if (round >= 0) progress.step(suite + ": round " + std::to_string(round + 1) + "/" + std::to_string(rounds));
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> us, minflt, majflt;
    for (const auto& s : samples[i]) {
      us.push_back(s.us);
      if (s.minflt >= 0) minflt.push_back(s.minflt), majflt.push_back(s.majflt);
    }
    Measurement m;
    m.suite = suite;
    m.series = cases[i].series;
    m.variable = cases[i].variable;
    m.value = cases[i].value;
    m.label = cases[i].label;
    m.runs = static_cast<int>(us.size());
    const Spread sp = spread(std::move(us));
    m.median_us = sp.median, m.min_us = sp.min, m.max_us = sp.max;
    m.minflt = median_of(std::move(minflt));
    m.majflt = median_of(std::move(majflt));
    out.push_back(std::move(m));
  }
  return ok_status();
}

spawn::Options quiet_options(const std::string& path, std::vector<std::string> envp) {
  spawn::Options o;
  o.path = path;
  o.search_path = false;
  o.argv = {path};
  o.inherit_env = false;
  o.envp = std::move(envp);
  o.stdin_.kind = o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::null;
  return o;
}

Result<Sample> timed_spawn(const spawn::Options& o) {
  const auto t0 = Clock::now();
  auto child = spawn::spawn(o);
  if (!child) return child.error().with_context("spawning " + o.path);
  auto exit = child->wait();
  if (!exit) return exit.error().with_context("waiting for " + o.path);
  const auto t1 = Clock::now();
  if (exit->shell_status() != 0)
    return Error{ECHILD, o.path + " ended with status " + std::to_string(exit->shell_status())};
  Sample s;
  s.us = std::chrono::duration<double, std::micro>(t1 - t0).count();
  s.minflt = static_cast<double>(exit->usage.ru_minflt);
  s.majflt = static_cast<double>(exit->usage.ru_majflt);
  return s;
}

}  // namespace detail

namespace {

std::string first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// "9.66 8.77 6.90": the 1, 5 and 15 minute load averages.
std::string load_average() {
  const std::string line = first_line("/proc/loadavg");
  std::size_t end = 0;
  for (int field = 0; field < 3 && end != std::string::npos; ++field) end = line.find(' ', end + (field ? 1 : 0));
  return line.substr(0, end);
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown";
}

// One minor fault on a page-cache page, in microseconds: a cached file mapped
// privately and read one byte per page, what ld.so's mappings cost at first
// touch (mm/memory.c do_read_fault). The median of a few passes.
double minor_fault_cost_us() {
  char path[] = "/tmp/procforge-bench-fault-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return 0;
  unlink(path);
  const long page = sysconf(_SC_PAGESIZE);
  const std::size_t pages = 4096, bytes = pages * static_cast<std::size_t>(page);
  std::vector<char> block(static_cast<std::size_t>(page), 1);
  bool written = true;
  for (std::size_t i = 0; i < pages && written; ++i) written = write(fd, block.data(), block.size()) == page;
  std::vector<double> per_fault;
  for (int pass = 0; written && pass < 5; ++pass) {
    void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) break;
    madvise(p, bytes, MADV_RANDOM);  // no fault-around: one fault per page, as counted
    const auto t0 = std::chrono::steady_clock::now();
    unsigned sum = 0;
    for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page))
      sum += static_cast<volatile const unsigned char*>(p)[off];
    const auto t1 = std::chrono::steady_clock::now();
    munmap(p, bytes);
    if (sum) per_fault.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / pages);
  }
  close(fd);
  return spread(per_fault).median;
}

const char* const kSuites[] = {"create", "link", "faults", "server", "claims"};

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::holds: return "holds";
    case Verdict::does_not_hold: return "does not hold here";
    case Verdict::not_measurable: return "not measurable here";
  }
  return "?";
}

MachineFacts machine_facts() {
  MachineFacts f;
  f.kernel = kernel_release().text;
  f.cpu = cpu_model();
  f.glibc = gnu_get_libc_version();
  f.thp_enabled = first_line("/sys/kernel/mm/transparent_hugepage/enabled");
  f.thp_defrag = first_line("/sys/kernel/mm/transparent_hugepage/defrag");
  f.cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  f.memory_mib =
      static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) >> 20;
  f.root = geteuid() == 0;
  return f;
}

Result<SuiteReport> run_bench_suites(const SuiteConfig& config) {
  const auto t0 = std::chrono::steady_clock::now();
  SuiteReport report;
  report.quick = config.quick;
  report.runs = config.runs > 0 ? config.runs : config.quick ? 11 : 31;
  for (const auto& s : config.suites)
    if (std::find(std::begin(kSuites), std::end(kSuites), s) == std::end(kSuites))
      return Error{ErrorStep::options, EINVAL, s, "unknown suite '" + s + "' (create, link, faults, server, claims)"};
  // The server suite runs only when named: it starts servers and an 8 GiB client.
  auto wanted = [&](const std::string& s) {
    if (config.suites.empty()) return s != "server";
    return std::find(config.suites.begin(), config.suites.end(), s) != config.suites.end();
  };
  for (const char* s : kSuites)
    if (wanted(s)) report.suites.push_back(s);
  report.machine = machine_facts();
  report.machine.load_start = load_average();

  detail::Progress progress(config);
  if (wanted("create"))
    if (auto st = detail::run_create(config, report.runs, progress, report); !st) return st.error();
  if (wanted("link") || wanted("faults")) {
    if (auto st = detail::run_link_and_faults(config, wanted("link"), wanted("faults"), report.runs, progress, report);
        !st)
      return st.error();
  }
  if (wanted("faults")) report.minor_fault_us = minor_fault_cost_us();
  if (wanted("server"))
    if (auto st = detail::run_server(config, report.runs, progress, report); !st) return st.error();
  // The server's claims come with its suite; the others with "claims".
  for (auto& claim : evaluate_claims(report.measurements))
    if (wanted("claims") || claim.id.rfind("server-", 0) == 0) report.claims.push_back(std::move(claim));
  report.machine.load_end = load_average();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace procforge::bench
