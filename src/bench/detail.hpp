// What the suites of `procforge bench` share: a case (one point of one
// curve and the function that measures it once), the interleaved runner that
// measures a set of cases side by side, and the progress of the whole run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "procforge/bench.hpp"
#include "procforge/spawn.hpp"

namespace procforge::bench::detail {

// One timed run: wall microseconds and, when the child's rusage was had, its faults.
struct Sample {
  double us = 0;
  double minflt = -1, majflt = -1;
};

struct Case {
  std::string series, variable;
  double value = 0;
  std::string label;
  int runs = 0;                         // timed runs; 0: the suite's runs
  std::function<Status()> before;       // untimed, before each run (evicting the page cache); may be empty
  std::function<Result<Sample>()> run;  // one timed run
};

// The progress of a whole run over its suites, reported through the config's callback.
class Progress {
 public:
  Progress(const SuiteConfig& c) : config_(c) {}
  void add_total(int n) { total_ += n; }
  void step(const std::string& what, int n = 1) {
    done_ += n;
    if (config_.progress) config_.progress(what, done_, total_);
  }
  void say(const std::string& what) const {
    if (config_.progress) config_.progress(what, done_, total_);
  }
  [[nodiscard]] bool cancelled() const { return config_.cancelled && config_.cancelled(); }

 private:
  const SuiteConfig& config_;
  int done_ = 0, total_ = 0;
};

Error cancelled_error();

// Measures the cases side by side: `warmup` untimed rounds, then rounds in
// which every case whose runs are not done yet runs once, starting each round
// from the next case so that none always follows the same one. Appends one
// Measurement per case to out. One progress step per round.
Status run_interleaved(const std::string& suite, std::vector<Case>& cases, int runs, int warmup, Progress& progress,
                       std::vector<Measurement>& out);

// The rounds run_interleaved() will report for these cases.
int rounds_of(const std::vector<Case>& cases, int runs);

// spawn::spawn(o) and its wait, timed from the call to the reap, with the
// child's faults; fails unless the child exits 0.
Result<Sample> timed_spawn(const spawn::Options& o);

// A spawned program's options: argv {path}, the environment given, stdio to /dev/null.
spawn::Options quiet_options(const std::string& path, std::vector<std::string> envp);

// The memory of a parent that spawns: touched (in 4 KiB pages, or huge pages
// by MADV_HUGEPAGE) and reserved but never touched.
struct ParentMemory {
  std::uint64_t touched_mib = 0, reserved_mib = 0;
  bool huge = false;
};

// Makes a parent's cases inside it (after it has grown); `note` adds a note
// to the report.
using MakeCases = std::function<std::vector<Case>(const std::function<void(const std::string&)>& note)>;

// Forks a helper that grows as `memory` says, makes its cases and measures
// them interleaved (2 warm-up rounds); appends its measurements (suite
// `suite`) and notes to report. Memory the machine cannot give is a note, not
// a failure.
Status measure_in_parent(const SuiteConfig& c, const std::string& suite, const ParentMemory& memory,
                         const MakeCases& make_cases, int runs, Progress& progress, SuiteReport& report);

// /proc/meminfo's field in MiB ("MemAvailable:").
std::uint64_t meminfo_mib(const char* field);

// procforge serve in a child of this process, on a socket of its own in a
// temporary directory; stopped (SIGTERM, a drain) and reaped when this goes.
// Start it before any helper grows: it is nobody's fork.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();
  Status start(const std::string& backend = "auto");
  [[nodiscard]] const std::string& socket() const { return socket_; }

 private:
  pid_t pid_ = -1;
  std::string dir_, socket_;
};

// The suites; each appends to report.measurements and report.notes.
Status run_create(const SuiteConfig& c, int runs, Progress& progress, SuiteReport& report);
Status run_server(const SuiteConfig& c, int runs, Progress& progress, SuiteReport& report);

// The link and faults suites share the programs they generate (a temporary
// directory, removed when they end, also on failure or cancel).
Status run_link_and_faults(const SuiteConfig& c, bool link, bool faults, int runs, Progress& progress,
                           SuiteReport& report);

}  // namespace procforge::bench::detail
