// Spawn benchmark: spawn+wait latency of procforge's default strategy against
// the ways a program can start a child without procforge (glibc posix_spawn,
// fork+exec, vfork+exec, a minimal clone(CLONE_VM|CLONE_VFORK)+execve), for a
// set of target programs and parent sizes (touched anonymous memory the
// parent holds while spawning: fork copies its page tables, CLONE_VM does
// not). Runs are interleaved round-robin over strategies and targets so that
// drift (frequency, noisy neighbours) hits every strategy alike.
//
// The library measures and computes ratios; it never prints. Progress is
// reported through a callback so that a front end can show it.
//
//   procforge::bench::SpawnBenchConfig c;
//   c.targets = {{"static", "/path/to/procforge-exit0"}};
//   c.parent_rss_mib = {0};
//   auto report = procforge::bench::run_spawn_bench(c);
//   for (const auto& r : report->ratios) printf("%s %.2f\n", r.name.c_str(), r.value);
//
// Threads: run one benchmark at a time per process. It is process-wide by
// nature: it grows the process's own memory (parent_rss_mib), runs children
// on a static stack (clone_baseline) and reaps with waitpid, so other
// threads spawning or waiting meanwhile disturb both them and the numbers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::bench {

enum class SpawnMethod {
  procforge,               // spawn::spawn() with default Options (automatic strategy)
  procforge_keep_ignored,  // the same with reset_signal_dispositions = false: what the exact reset costs
  posix_spawn,             // glibc posix_spawn(), called directly
  fork_exec,               // fork(); execve() in the child
  vfork_exec,              // vfork(); execve() in the child
  clone_baseline,          // clone(CLONE_VM|CLONE_VFORK) on a static stack; execve + _exit(127)
  clone_pidfd_baseline,    // the same with CLONE_PIDFD, waitid(P_PIDFD) and close: the floor with a pidfd handle
};
const char* method_name(SpawnMethod m);  // "procforge", "posix_spawn", "fork+exec", ...

struct SpawnTarget {
  std::string name;  // "static", "dynamic"
  std::string path;  // absolute; run with argv {path} and the parent's environment
};

struct SpawnBenchConfig {
  std::vector<SpawnMethod> methods{SpawnMethod::procforge,           SpawnMethod::procforge_keep_ignored,
                                   SpawnMethod::posix_spawn,         SpawnMethod::fork_exec,
                                   SpawnMethod::vfork_exec,          SpawnMethod::clone_baseline,
                                   SpawnMethod::clone_pidfd_baseline};
  std::vector<SpawnTarget> targets;
  std::vector<std::uint64_t> parent_rss_mib{0, 1024, 8192};  // measured in this order
  int runs = 101;                                            // timed runs per (method, target, parent size)
  int warmup = 3;  // untimed runs per (method, target) before each parent size
  // fork+exec copies the parent's page tables: at parent_rss_mib >= this it
  // gets fork_runs(runs, rss) runs instead of `runs`.
  std::uint64_t fork_reduce_from_mib = 128;
  // Called before each timed round and when the parent grows; never from a child.
  std::function<void(const std::string& what, int done, int total)> progress;
};

// Runs fork+exec gets at a parent size: runs*128/rss, at least 7, at most runs.
int fork_runs(const SpawnBenchConfig& c, std::uint64_t parent_rss_mib);

struct SpawnSample {
  SpawnMethod method{};
  std::string target;  // SpawnTarget::name
  std::uint64_t parent_rss_mib = 0;
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
  bool reduced = false;  // fewer runs than asked (fork+exec at a big parent)
};

// A ratio of two medians, with the goal it is held to (goal <= 0: shown for contrast).
struct SpawnRatio {
  std::string name;  // "procforge / posix_spawn (static, 0 MiB)"
  double value = 0;
  double goal = 0;
  bool met = false;
};

struct SpawnBenchReport {
  std::vector<SpawnSample> results;
  std::vector<SpawnRatio> ratios;
  std::vector<SpawnTarget> targets;
  std::string procforge_strategy;  // the strategy spawn() actually took ("clone3", ...)
  std::string kernel;              // uname release
  std::string thp;                 // /sys/kernel/mm/transparent_hugepage/enabled (ballast is MADV_NOHUGEPAGE)
};

// Runs the benchmark. Fails when the parent memory cannot be had or a child
// does not exit 0 (the message names the method, the target and the status).
Result<SpawnBenchReport> run_spawn_bench(const SpawnBenchConfig& config);

// One spawn+wait of target by m, timed in microseconds (what each run of
// run_spawn_bench() measures); fails unless the target exits 0.
Result<double> time_spawn_method(SpawnMethod m, const SpawnTarget& target);

// The goals of the spawn path, from the medians of a report: procforge <= 0.9x
// posix_spawn and <= 1.05x the clone baseline (static target, smallest
// parent); largest/smallest parent <= 1.2 for procforge; fork+exec and
// posix_spawn at both sizes for contrast. Ratios whose samples are missing
// are left out.
std::vector<SpawnRatio> spawn_bench_ratios(const std::vector<SpawnSample>& results);

// ---- warm starts: a cold spawn+exec+wait against a warm instance+wait ------

struct WarmBenchProgram {
  std::string name;               // "cmake --version"
  std::vector<std::string> argv;  // argv[0] searched in PATH=/usr/bin:/bin
};

struct WarmBenchConfig {
  // Empty: /bin/true, ls /, python3 -c pass, cmake --version, and a program
  // linked against 100 generated libraries (built with cc into a temporary
  // directory, removed afterwards).
  std::vector<WarmBenchProgram> programs;
  int runs = 101;  // timed pairs per program, cold and warm interleaved
  int warmup = 3;
  std::function<void(const std::string& what, int done, int total)> progress;
};

struct WarmBenchResult {
  std::string program;
  std::vector<std::string> argv;
  double cold_median_us = 0, cold_min_us = 0, cold_max_us = 0;
  double warm_median_us = 0, warm_min_us = 0, warm_max_us = 0;
  double speedup = 0;            // cold median / warm median
  int objects = 0;               // files the template had mapped (program, ld.so, libraries)
  double template_start_us = 0;  // the first spawn: starting the template, then the instance
  double fork_floor_us = 0;      // median: the template forked into a copy that exits at once, reaped
  std::string fallback_reason;   // non-empty: every warm spawn went cold, and why
};

// What a warm instance cannot go below, measured in the same run: the
// request's round trip between two processes (a SOCK_SEQPACKET ping-pong: the
// caller wakes the template, the instance wakes the caller), and a fork of a
// small process, its _exit and the wait for it.
struct WarmFloor {
  double round_trip_us = 0;
  double fork_exit_wait_us = 0;
};

struct WarmBenchReport {
  std::vector<WarmBenchResult> results;
  WarmFloor floor;
};

// Runs the programs cold (spawn::spawn) and warm (warm::Pool) in turn, with
// stdout and stderr to /dev/null, then the floor. Fails when a program cannot
// be run or the generated program cannot be built.
Result<WarmBenchReport> run_warm_bench(const WarmBenchConfig& config);

// ---- the cost-model suites: `procforge bench [SUITE...]` ----------------------
//
// Each suite measures one cost of starting a program as a set of curves: a
// series ("fork+exec", "lazy") over a variable ("touched_mib", "libraries").
// The cases of a suite are measured side by side in one run, interleaved
// round-robin with a rotating start, each as a median with min and max.
//   create  spawn+wait of /bin/true by fork+exec, vfork+exec, posix_spawn,
//           clone3 (procforge's default) and a warm instance, and fork or
//           vfork alone, as the spawning process's touched memory, its
//           reserved (untouched) address space and its huge pages vary
//   link    exec+ld.so+exit of programs generated and built with the system's
//           cc and ld into a temporary directory (removed at the end)
//   faults  the same starts with the generated files evicted from the page
//           cache and with them cached; page faults per start
//   claims  the cost claims of the pipeline, each with its figures and a
//           verdict, from the measurements of the other suites
//   server  (only when named) round trips through `procforge serve` on each
//           backend against posix_spawn in the client, as the client grows
//           and as clients submit at once; commands run as a shell runs them,
//           with and without procforge-spawn; its own claims

struct SuiteConfig {
  std::vector<std::string> suites;  // "create", "link", "faults", "claims", "server"; empty: all but server
  bool quick = false;               // fewer sizes and runs: every suite in about a minute
  int runs = 0;                     // timed runs per case; 0: 11 quick, 31 full (fewer for fork at big parents)
  std::function<void(const std::string& what, int done, int total)> progress;
  // Polled between runs: true stops the run (children reaped, files removed)
  // and run_bench_suites() returns an Error with ECANCELED.
  std::function<bool()> cancelled;
  // The server suite's programs: the static target (procforge-exit0), the
  // client procforge-spawn and procforge itself (empty: not found, left out).
  std::string static_target, spawn_client, procforge;
};

struct Measurement {
  std::string suite;     // "create"
  std::string series;    // "fork+exec"
  std::string variable;  // "touched_mib"
  double value = 0;      // the variable's value; for a named value, its index
  std::string label;     // a named value ("static-pie", "sysv"); empty for numbers
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
  double minflt = -1, majflt = -1;  // medians of the child's page faults; -1 when not counted
};

enum class Verdict { holds, does_not_hold, not_measurable };
const char* verdict_name(Verdict v);  // "holds", "does not hold here", "not measurable here"

struct Claim {
  std::string id;        // "fork-grows-with-touched"
  std::string sentence;  // the claim, one sentence
  std::string figures;   // the ratios, each saying against what: of the fastest runs (deciding) and of the medians
  Verdict verdict = Verdict::not_measurable;
  std::string why;  // how the verdict follows from the figures, or why it cannot be had
};

struct MachineFacts {
  std::string kernel, cpu, glibc, thp_enabled, thp_defrag;
  int cores = 0;
  std::uint64_t memory_mib = 0;
  bool root = false;
  std::string load_start, load_end;  // /proc/loadavg's 1, 5 and 15 minute figures when the run began and ended
};

struct SuiteReport {
  std::vector<std::string> suites;  // those that ran, in order
  bool quick = false;
  int runs = 0;
  std::vector<Measurement> measurements;
  std::vector<Claim> claims;       // filled when "claims" ran
  std::vector<std::string> notes;  // skipped sizes and settings, each saying why
  MachineFacts machine;
  double seconds = 0;         // wall time of the whole run
  double minor_fault_us = 0;  // measured cost of one minor fault on a cached file page
};

// Runs the suites. Fails on a bad suite name, when the generated programs
// cannot be built, a child does not exit 0, or the run is cancelled;
// sizes the machine cannot hold are skipped with a note instead.
Result<SuiteReport> run_bench_suites(const SuiteConfig& config);

// The claims with verdicts, from whatever measurements a report holds.
std::vector<Claim> evaluate_claims(const std::vector<Measurement>& m);

MachineFacts machine_facts();

}  // namespace procforge::bench

#pragma GCC visibility pop
