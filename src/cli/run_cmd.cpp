// `procforge run [controls] -- PROGRAM [ARG...]`: spawn PROGRAM with the
// controls, wait for it, and exit as a shell would: the program's status,
// 128+N when it was killed by signal N, 127 when it was not found, 126 when
// it could not be executed. A control that cannot be applied exits 125 (as
// env(1), nice(1) and chroot(1) do for their own failures); bad usage 2.
// --report/--json describe the run on stderr (or --report-file), so the
// program's own stdout stays clean.
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/run_report.hpp"
#include "procforge/loader.hpp"

namespace procforge::cli {

namespace {

constexpr int kExitSetupFailed = 125;
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;

struct RunOptions {
  std::vector<std::string> set_env, unset_env;
  bool clear_env = false;
  std::string cwd;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::string> groups;
  std::vector<std::string> rlimits;
  std::vector<int> keep_fds;
  bool inherit_fds = false;
  bool no_new_privs = false;
  std::string ns;
  std::string hostname;
  std::optional<std::string> cgroup;
  std::string memory_max, pids_max;
  std::optional<std::uint32_t> cpu_max;
  std::string strategy;
  bool never_fork = false;
  bool setsid = false;
  std::optional<pid_t> pgid;
  std::string pdeathsig;
  std::string umask;
  std::optional<int> nice;
  std::string stdin_, stdout_, stderr_;
  bool inherit_signals = false;
  std::optional<long> timeout_ms;
  bool report = false, json = false;
  std::string report_file;
  std::string loader;
};

struct Usage {
  std::string message;
};

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = strtoull(s.c_str(), &end, 10);
  if (errno || *end) return false;
  out = v;
  return true;
}

// "unlimited"/"infinity"/"max" or a number, for rlimits and cgroup limits.
bool parse_limit(const std::string& s, std::uint64_t& out, bool sizes) {
  if (s == "unlimited" || s == "infinity" || s == "max") {
    out = RLIM_INFINITY;
    return true;
  }
  std::uint64_t mult = 1;
  std::string digits = s;
  if (sizes && !s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mult = 1ULL << 10; break;
      case 'm': case 'M': mult = 1ULL << 20; break;
      case 'g': case 'G': mult = 1ULL << 30; break;
      default: break;
    }
    if (mult != 1) digits.pop_back();
  }
  if (!parse_u64(digits, out) || out > UINT64_MAX / mult) return false;
  out *= mult;
  return true;
}

std::optional<int> parse_signal(std::string s) {
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  std::uint64_t n;
  if (parse_u64(s, n)) return n >= 1 && n <= 64 ? std::optional<int>(static_cast<int>(n)) : std::nullopt;
  for (int sig = 1; sig < NSIG; ++sig)
    if (const char* a = sigabbrev_np(sig); a && s == a) return sig;
  return std::nullopt;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

spawn::Stdio stdio_of(const std::string& v) {
  spawn::Stdio s;
  if (v.empty()) return s;
  if (v == "null") s.kind = spawn::Stdio::Kind::null;
  else s.kind = spawn::Stdio::Kind::file, s.path = v;
  return s;
}

// The flags, as spawn::Options; a Usage on a value that does not parse.
std::variant<spawn::Options, Usage> make_options(const RunOptions& o, const std::vector<std::string>& command) {
  spawn::Options opts;
  opts.path = command.front();
  opts.argv = command;
  opts.inherit_env = !o.clear_env;
  opts.set_env = o.set_env;
  opts.unset_env = o.unset_env;
  for (const auto& kv : o.set_env)
    if (kv.find('=') == std::string::npos || kv[0] == '=') return Usage{"--env takes KEY=VALUE, got '" + kv + "'"};
  opts.cwd = o.cwd;
  opts.uid = o.uid;
  opts.gid = o.gid;
  if (o.groups) {
    std::vector<gid_t> groups;
    for (const auto& g : split_list(*o.groups)) {
      std::uint64_t v;
      if (!parse_u64(g, v) || v > UINT32_MAX) return Usage{"--groups takes gids separated by commas, got '" + *o.groups + "'"};
      groups.push_back(static_cast<gid_t>(v));
    }
    opts.groups = groups;
  }
  for (const auto& r : o.rlimits) {
    auto eq = r.find('=');
    auto res = eq == std::string::npos ? std::nullopt : spawn::rlimit_from_name(r.substr(0, eq));
    if (!res) return Usage{"--rlimit takes NAME=SOFT[:HARD] (nofile, stack, as, core, nproc, cpu, fsize, data, memlock...), got '" + r + "'"};
    std::string v = r.substr(eq + 1);
    auto colon = v.find(':');
    spawn::Rlimit rl;
    rl.resource = *res;
    std::uint64_t soft, hard;
    if (!parse_limit(v.substr(0, colon), soft, false) ||
        !parse_limit(colon == std::string::npos ? v : v.substr(colon + 1), hard, false))
      return Usage{"--rlimit values are numbers or 'unlimited', got '" + r + "'"};
    rl.soft = soft;
    rl.hard = hard;
    opts.rlimits.push_back(rl);
  }
  opts.keep_fds = o.keep_fds;
  opts.close_other_fds = !o.inherit_fds;
  opts.no_new_privs = o.no_new_privs;
  for (const auto& n : split_list(o.ns)) {
    auto flag = spawn::namespace_from_name(n);
    if (!flag) return Usage{"--ns takes a list of user,pid,mount,net,uts,ipc,cgroup,time; got '" + n + "'"};
    opts.namespaces |= *flag;
  }
  opts.hostname = o.hostname;
  opts.cgroup = o.cgroup;
  std::uint64_t v;
  if (!o.memory_max.empty()) {
    if (!parse_limit(o.memory_max, v, true)) return Usage{"--memory-max takes bytes (K, M, G suffixes) or max"};
    opts.cgroup_limits.memory_max = v;
  }
  if (!o.pids_max.empty()) {
    if (!parse_limit(o.pids_max, v, false)) return Usage{"--pids-max takes a number or max"};
    opts.cgroup_limits.pids_max = v;
  }
  opts.cgroup_limits.cpu_max_us = o.cpu_max;
  if (!o.strategy.empty()) {
    auto s = spawn::strategy_from_name(o.strategy);
    if (!s) return Usage{"--strategy takes auto, clone3, clone, posix_spawn, fork or vfork; got '" + o.strategy + "'"};
    opts.strategy = *s;
  }
  opts.never_fork = o.never_fork;
  opts.setsid = o.setsid;
  opts.process_group = o.pgid;
  if (!o.pdeathsig.empty()) {
    opts.pdeathsig = parse_signal(o.pdeathsig);
    if (!opts.pdeathsig) return Usage{"--pdeathsig takes a signal name or number, got '" + o.pdeathsig + "'"};
  }
  if (!o.umask.empty()) {
    char* end = nullptr;
    long m = strtol(o.umask.c_str(), &end, 8);
    if (*end || m < 0 || m > 0777) return Usage{"--umask takes an octal mode, got '" + o.umask + "'"};
    opts.umask = static_cast<mode_t>(m);
  }
  opts.nice = o.nice;
  opts.stdin_ = stdio_of(o.stdin_);
  opts.stdout_ = stdio_of(o.stdout_);
  opts.stderr_ = stdio_of(o.stderr_);
  if (o.inherit_signals) opts.reset_signal_mask = opts.reset_signal_dispositions = false;
  return opts;
}

void emit_report(const RunOptions& o, const RunReport& rep) {
  if (!o.report && !o.json && o.report_file.empty()) return;
  std::string text = o.json || !o.report_file.empty() ? render_run_json(rep).dump(2) + "\n" : render_run_text(rep);
  if (!o.report_file.empty()) {
    std::ofstream out(o.report_file);
    out << text;
    if (!out) std::cerr << "procforge run: cannot write the report to " << o.report_file << "\n";
    return;
  }
  std::cerr << text;
}

// execvp's search, done before the spawn for the user-space loader (which,
// like execve, takes a path).
std::string search_path(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/bin:/usr/bin";
  for (const auto& kv : env)
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string dir = path.substr(i, j - i);
    std::string cand = (dir.empty() ? "." : dir) + "/" + name;
    if (access(cand.c_str(), X_OK) == 0) return cand;
    i = j + 1;
  }
  return name;
}

int run(const RunOptions& o, const std::vector<std::string>& command) {
  if (!o.loader.empty() && o.loader != "kernel" && o.loader != "user") {
    std::cerr << "procforge run: --loader takes kernel or user, not " << o.loader << "\n";
    return kExitCannot;
  }
  if (command.empty()) {
    std::cerr << "procforge run: name a PROGRAM: procforge run [controls] -- PROGRAM [ARG...]\n";
    return kExitCannot;
  }
  auto made = make_options(o, command);
  if (auto* u = std::get_if<Usage>(&made)) {
    std::cerr << "procforge run: " << u->message << "\n";
    return kExitCannot;
  }
  spawn::Options& opts = std::get<spawn::Options>(made);

  // --loader=user: everything up to the point of no return happens here; the
  // child applies the controls, then enters the prepared image.
  std::optional<loader::Prepared> prepared;
  if (o.loader == "user") {
    std::string bad;
    loader::Options lo;
    lo.for_child = true;
    // The environment the spawn library would build: inherited or explicit, then edited.
    lo.request.envp = edited_environment(!opts.inherit_env, opts.set_env, opts.unset_env, &bad);
    if (!opts.inherit_env) {
      std::vector<std::string> base = opts.envp;
      for (auto& kv : lo.request.envp) {
        std::erase_if(base, [&](const std::string& b) { return b.substr(0, b.find('=')) == kv.substr(0, kv.find('=')); });
        base.push_back(kv);
      }
      lo.request.envp = std::move(base);
    }
    lo.request.path = search_path(command.front(), lo.request.envp);
    lo.request.argv = opts.argv.empty() ? command : opts.argv;
    lo.request.cwd = opts.cwd;
    if (opts.uid || opts.gid)
      lo.request.creds = exec::Credentials::unprivileged(opts.uid.value_or(getuid()), opts.gid.value_or(getgid()));
    for (const auto& rl : opts.rlimits)
      if (rl.resource == RLIMIT_STACK) lo.request.rlimit_stack = rl.soft;
    // Take the identity last, in the stub, after the exe link is set.
    lo.become_uid = opts.uid;
    lo.become_gid = opts.gid;
    if (opts.uid || opts.gid) lo.become_groups = opts.groups.value_or(std::vector<gid_t>{});
    lo.keep_prediction = false;  // only the program is run
    auto p = loader::prepare(lo);
    if (!p) {
      std::cerr << "procforge run: " << p.error().message << "\n";
      return p.error().err == ENOENT ? kExitNotFound : kExitNotExecutable;
    }
    prepared.emplace(std::move(*p));
    opts.uid.reset();
    opts.gid.reset();
    opts.groups.reset();
    prepared->attach_to(opts);
  }

  RunReport rep;
  rep.program = command.front();
  auto child = spawn::spawn(opts);
  if (!child) {
    const Error& e = child.error();
    rep.error = e;
    rep.status = !spawn::exec_failed(e) ? kExitSetupFailed : e.err == ENOENT ? kExitNotFound : kExitNotExecutable;
    std::cerr << "procforge run: " << e.message << " (" << strerror(e.err) << ")\n";
    emit_report(o, rep);
    return rep.status;
  }
  rep.strategy = child->strategy();
  rep.pid = child->pid();
  rep.timings = child->timings();

  // As system(3): while the child shares our process group, the terminal's
  // SIGINT/SIGQUIT are its to handle, not ours.
  const bool same_group = !opts.setsid && !opts.process_group;
  struct sigaction ign {}, old_int {}, old_quit {};
  ign.sa_handler = SIG_IGN;
  if (same_group) {
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (o.timeout_ms) timeout = std::chrono::milliseconds(*o.timeout_ms);
  auto exit = child->wait(timeout);
  if (same_group) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
  }
  auto created = child->cgroups_created;
  if (auto st = spawn::remove_cgroups(created); !st) std::cerr << "procforge run: " << st.error().message << "\n";
  if (!exit) {
    std::cerr << "procforge run: " << exit.error().message << "\n";
    rep.error = exit.error();
    rep.status = kExitSetupFailed;
    emit_report(o, rep);
    return rep.status;
  }
  rep.exit = *exit;
  rep.status = exit->shell_status();
  if (exit->timed_out) std::cerr << "procforge run: timed out after " << *o.timeout_ms << " ms; killed\n";
  emit_report(o, rep);
  return rep.status;
}

}  // namespace

void add_run(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<RunOptions>();
  auto* r = app.add_subcommand("run", "Spawn PROGRAM with the given controls and wait for it");
  r->add_option("--env", o->set_env, "Set KEY=VALUE in the environment")->allow_extra_args(false);
  r->add_option("--unset", o->unset_env, "Remove KEY from the environment")->allow_extra_args(false);
  r->add_flag("--clear-env", o->clear_env, "Start from an empty environment");
  r->add_option("-C,--cwd", o->cwd, "Working directory of the program");
  r->add_option("--uid", o->uid, "Run as this user id");
  r->add_option("--gid", o->gid, "Run with this group id");
  r->add_option("--groups", o->groups, "Supplementary group ids, comma separated (default with --uid/--gid: none)");
  r->add_option("--rlimit", o->rlimits, "NAME=SOFT[:HARD] (nofile, stack, as, core, nproc, cpu, fsize, ...; 'unlimited')")
      ->allow_extra_args(false);
  r->add_option("--keep-fd", o->keep_fds, "Keep this fd open in the program (others above 2 are closed)")
      ->allow_extra_args(false);
  r->add_flag("--inherit-fds", o->inherit_fds, "Do not close the other fds (they still close if close-on-exec)");
  r->add_flag("--no-new-privs", o->no_new_privs, "Set PR_SET_NO_NEW_PRIVS");
  r->add_option("--ns", o->ns, "New namespaces: user,pid,mount,net,uts,ipc,cgroup,time");
  r->add_option("--hostname", o->hostname, "Hostname in the new uts namespace");
  r->add_option("--cgroup", o->cgroup, "cgroup to run in: absolute, or relative to our own cgroup (created if missing, "
                                       "removed afterwards when created)");
  r->add_option("--memory-max", o->memory_max, "Memory limit in bytes (K, M, G), with --cgroup");
  r->add_option("--pids-max", o->pids_max, "Task limit, with --cgroup");
  r->add_option("--cpu-max", o->cpu_max, "CPU quota in microseconds per 100 ms, with --cgroup");
  r->add_option("--strategy", o->strategy, "auto, clone3, clone, posix_spawn, fork or vfork");
  r->add_flag("--never-fork", o->never_fork, "Fail rather than fall back to fork");
  r->add_flag("--setsid", o->setsid, "Run in a new session");
  r->add_option("--pgid", o->pgid, "Process group to join (0: its own)");
  r->add_option("--pdeathsig", o->pdeathsig, "Signal the program gets when procforge dies (TERM, KILL, 9...)");
  r->add_option("--umask", o->umask, "umask, octal");
  r->add_option("--nice", o->nice, "Nice value");
  r->add_option("--stdin", o->stdin_, "FILE or null");
  r->add_option("--stdout", o->stdout_, "FILE or null (FILE is truncated)");
  r->add_option("--stderr", o->stderr_, "FILE or null (FILE is truncated)");
  r->add_flag("--inherit-signals", o->inherit_signals, "Keep our signal mask and ignored signals");
  r->add_option("--timeout", o->timeout_ms, "Kill the program (SIGKILL) after MS milliseconds");
  r->add_flag("--report", o->report, "Print the strategy, timings and rusage on stderr after the run");
  r->add_flag("--json", o->json, "The report as JSON (on stderr, or in --report-file)");
  r->add_option("--report-file", o->report_file, "Write the JSON report to FILE");
  r->add_option("--loader", o->loader, "Who replaces the image: kernel (execve, default) or user (procforge's user-space exec)");
  r->footer("PROGRAM [ARG...] follows the options (or \"--\").\nExit status: the program's, 128+N when killed by "
            "signal N, 127 not found, 126 not executable, 125 a control could not be applied, 2 bad usage.");
  commands.push_back({r, [o](std::vector<std::string> command) { return run(*o, command); }});
}

}  // namespace procforge::cli
