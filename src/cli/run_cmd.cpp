// `procforge run [controls] -- PROGRAM [ARG...]`: spawn PROGRAM with the
// controls, wait for it, and exit as a shell would: the program's status,
// 128+N when it was killed by signal N, 127 when it was not found, 126 when
// it could not be executed. A control that cannot be applied exits 125 (as
// env(1), nice(1) and chroot(1) do for their own failures); bad usage 2.
// --report/--json describe the run on stderr (or --report-file), so the
// program's own stdout stays clean.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/output.hpp"
#include "cli/run_report.hpp"
#include "common/unique_fd.hpp"
#include "procforge/client.hpp"
#include "procforge/server.hpp"
#include "procforge/user_exec.hpp"

namespace procforge::cli {

namespace {

constexpr int kExitTimedOut = 124;  // timeout(1)
constexpr int kExitSetupFailed = 125;
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;

struct RunOptions {
  std::vector<std::string> set_env, unset_env;
  bool clear_env = false;
  std::string cwd;
  std::string uid, gid;
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
  bool append = false;
  bool inherit_signals = false;
  std::string timeout, kill_signal = "TERM", kill_after;
  bool foreground = false;
  bool report = false, json = false;
  std::string report_file;
  bool warm = false;
  std::optional<std::string> server;  // through a procforge server: its socket, or "" for the default
  std::string exec, loader;
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
      case 'k':
      case 'K': mult = 1ULL << 10; break;
      case 'm':
      case 'M': mult = 1ULL << 20; break;
      case 'g':
      case 'G': mult = 1ULL << 30; break;
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

// NUMBER UNIT, as "500ms", "1.5s", "2m" or "1h"; nullopt for anything else,
// zero and negative values included.
std::optional<std::chrono::nanoseconds> parse_duration(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = strtod(s.c_str(), &end);
  if (errno || end == s.c_str() || !(v > 0) || s[0] == '-' || s[0] == '+') return std::nullopt;
  const std::string unit = end;
  double ns_per = unit == "ms" ? 1e6 : unit == "s" ? 1e9 : unit == "m" ? 60e9 : unit == "h" ? 3600e9 : 0;
  if (ns_per == 0 || v * ns_per > 1e18) return std::nullopt;  // about 31 years: past it, a typo
  return std::chrono::nanoseconds(static_cast<long long>(v * ns_per));
}

// A user or group as a number or a name (the passwd and group databases).
template <class Lookup>
std::optional<std::uint32_t> id_of(const std::string& s, Lookup by_name) {
  std::uint64_t v;
  if (parse_u64(s, v))
    return v < UINT32_MAX ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(v)) : std::nullopt;
  return by_name(s.c_str());
}

std::optional<std::uint32_t> user_id(const std::string& s) {
  return id_of(s, [](const char* n) -> std::optional<std::uint32_t> {
    if (const passwd* pw = getpwnam(n)) return pw->pw_uid;
    return std::nullopt;
  });
}

std::optional<std::uint32_t> group_id(const std::string& s) {
  return id_of(s, [](const char* n) -> std::optional<std::uint32_t> {
    if (const group* gr = getgrnam(n)) return gr->gr_gid;
    return std::nullopt;
  });
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

spawn::Stdio stdio_of(const std::string& v, int fd, bool append) {
  spawn::Stdio s;
  if (v.empty()) return s;
  if (v == "null") {
    s.kind = spawn::Stdio::Kind::null;
    return s;
  }
  s.kind = spawn::Stdio::Kind::file;
  s.path = v;
  if (fd != 0) s.flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  return s;
}

// The output redirections as a shell makes them: `--stderr stdout` is 2>&1,
// and one file named for both streams is opened once, so that the two share
// one open file description (one offset) and neither overwrites the other.
// The shared file is opened here, by the parent, before the spawn; OWNED
// keeps it open until the child has it. Returns what failed, if anything.
std::optional<std::string> plan_outputs(const RunOptions& o, spawn::Options& opts, UniqueFd& owned) {
  if (o.stderr_ != "stdout") {
    namespace fs = std::filesystem;
    std::error_code e1, e2;
    const bool same_file = !o.stdout_.empty() && !o.stderr_.empty() && o.stdout_ != "null" &&
                           fs::weakly_canonical(o.stdout_, e1) == fs::weakly_canonical(o.stderr_, e2) && !e1 && !e2;
    if (!same_file) return std::nullopt;
  }
  if (o.stdout_.empty()) {  // 2>&1 onto the stdout procforge was given
    opts.stderr_.kind = spawn::Stdio::Kind::fd;
    opts.stderr_.fd = 1;
    return std::nullopt;
  }
  const std::string& path = o.stdout_ == "null" ? "/dev/null" : o.stdout_;
  owned.reset(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (o.append ? O_APPEND : O_TRUNC), 0666));
  if (!owned) return "opening " + path + " for stdout and stderr: " + errno_name(errno) + " (" + strerror(errno) + ")";
  opts.stdout_.kind = opts.stderr_.kind = spawn::Stdio::Kind::fd;
  opts.stdout_.fd = opts.stderr_.fd = owned.get();
  return std::nullopt;
}

// The flags, as spawn::Options; a Usage on a value that does not parse.
std::variant<spawn::Options, Usage> make_options(const RunOptions& o, const std::vector<std::string>& command) {
  spawn::Options opts;
  opts.path = command.front();
  opts.argv = command;
  opts.inherit_env = !o.clear_env;
  opts.set_env = o.set_env;
  opts.unset_env = o.unset_env;
  if (auto bad = bad_env_assignment(o.set_env)) return Usage{*bad};
  opts.cwd = o.cwd;
  if (!o.uid.empty() && !(opts.uid = user_id(o.uid)))
    return Usage{"--uid takes a user name or id, got '" + o.uid + "'"};
  if (!o.gid.empty() && !(opts.gid = group_id(o.gid)))
    return Usage{"--gid takes a group name or id, got '" + o.gid + "'"};
  if (o.groups) {
    std::vector<gid_t> groups;
    for (const auto& g : split_list(*o.groups)) {
      auto id = group_id(g);
      if (!id) return Usage{"--groups takes group names or ids separated by commas, got '" + g + "'"};
      groups.push_back(*id);
    }
    opts.groups = groups;
  }
  for (const auto& r : o.rlimits) {
    auto eq = r.find('=');
    auto res = eq == std::string::npos ? std::nullopt : spawn::rlimit_from_name(r.substr(0, eq));
    if (!res)
      return Usage{
          "--rlimit takes NAME=SOFT[:HARD] (nofile, stack, as, core, nproc, cpu, fsize, data, memlock...), got '" + r +
          "'"};
    std::string v = r.substr(eq + 1);
    auto colon = v.find(':');
    spawn::Rlimit rl;
    rl.resource = *res;
    std::uint64_t soft, hard;
    if (!parse_limit(v.substr(0, colon), soft, true) ||
        !parse_limit(colon == std::string::npos ? v : v.substr(colon + 1), hard, true))
      return Usage{"--rlimit values are numbers (K, M, G suffixes) or 'unlimited', got '" + r + "'"};
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
  opts.stdin_ = stdio_of(o.stdin_, 0, false);
  opts.stdout_ = stdio_of(o.stdout_, 1, o.append);
  opts.stderr_ = stdio_of(o.stderr_ == "stdout" ? "" : o.stderr_, 2, o.append);
  if (o.stdout_ == "stdout" || o.stdin_ == "stdout") return Usage{"only --stderr can name stdout (2>&1)"};
  if (!o.timeout.empty() && !parse_duration(o.timeout))
    return Usage{"--timeout takes a duration above zero with its unit: 500ms, 10s, 2m or 1h (got '" + o.timeout + "')"};
  if (!o.kill_after.empty() && !parse_duration(o.kill_after))
    return Usage{"--kill-after takes a duration above zero with its unit: 500ms, 10s, 2m or 1h (got '" + o.kill_after +
                 "')"};
  if (!parse_signal(o.kill_signal))
    return Usage{"--kill-signal takes a signal name or number, got '" + o.kill_signal + "'"};
  if (o.timeout.empty() && (!o.kill_after.empty() || o.kill_signal != "TERM"))
    return Usage{"--kill-signal and --kill-after go with --timeout"};
  if (!o.cgroup && (!o.memory_max.empty() || !o.pids_max.empty() || o.cpu_max))
    return Usage{std::string(!o.memory_max.empty() ? "--memory-max"
                             : !o.pids_max.empty() ? "--pids-max"
                                                   : "--cpu-max") +
                 " needs --cgroup PATH (the cgroup the limit is set on)"};
  // timeout(1)'s rule: the program and what it starts form a process group
  // of their own, which the timeout ends as a whole; --foreground keeps the
  // program in ours (so it can read the terminal) and ends the program only.
  if (!o.timeout.empty() && !o.foreground && !o.setsid && !o.pgid) opts.process_group = 0;
  if (o.inherit_signals) opts.reset_signal_mask = opts.reset_signal_dispositions = false;
  return opts;
}

void emit_report(const RunOptions& o, const RunReport& rep) {
  if (!o.report && !o.json && o.report_file.empty()) return;
  std::string text = o.json || !o.report_file.empty() ? stamped(render_run_json(rep), schema::run).dump(2) + "\n"
                                                      : render_run_text(rep);
  if (!o.report_file.empty()) {
    std::ofstream out(o.report_file);
    out << text;
    if (!out) print_error("run", "cannot write the report to " + o.report_file);
    return;
  }
  std::cerr << text;
}

// After the spawn child's execve failed: explain's why and fix.
std::string kernel_exec_failure_words(const spawn::Options& opts, int err) {
  auto req = user_exec::spawn_request(opts);
  return req ? exec_failure_words(*req, err) : "";
}

// --exec=user: everything up to the point of no return happens here; the
// child applies the controls, then enters the prepared image. nullopt when
// ready, else the exit status after saying why not.
std::optional<int> attach_user_exec(spawn::Options& opts, std::optional<user_exec::Attached>& attached) {
  user_exec::Options uo;
  uo.keep_prediction = false;  // only the program is run
  attached = user_exec::attach(opts, uo);
  if (attached->prepared) return std::nullopt;
  const Error& e = attached->prepared.error();
  if (attached->search_failed) return search_failure("run", attached->request.path, e);
  print_error("run", user_exec_failure(attached->request, e));
  return e.err == ENOENT ? kExitNotFound : kExitNotExecutable;
}

int run(const RunOptions& o, const std::vector<std::string>& command) {
  // --exec, or --loader, its former name.
  const std::string& mode = o.exec.empty() ? o.loader : o.exec;
  if (!mode.empty() && mode != "kernel" && mode != "user") {
    print_error("run", std::string(o.exec.empty() ? "--loader" : "--exec") + " takes kernel or user, not " + mode);
    return kExitCannot;
  }
  if (command.empty()) {
    print_error("run", "name a PROGRAM: procforge run [controls] -- PROGRAM [ARG...]");
    return kExitCannot;
  }
  auto made = make_options(o, command);
  if (auto* u = std::get_if<Usage>(&made)) {
    print_error("run", u->message);
    return kExitCannot;
  }
  spawn::Options& opts = std::get<spawn::Options>(made);
  if (opts.uid && !opts.gid)
    print_error("run", "warning: --uid without --gid keeps the group id " + std::to_string(getgid()) +
                           " (add --gid to change it)");

  std::optional<user_exec::Attached> attached;  // kept until spawn() returns
  if (mode == "user" && o.server) {
    print_error("run", "--exec=user and --server do not go together: the server runs the kernel's execve");
    return kExitCannot;
  }
  if (mode == "user")
    if (auto failed = attach_user_exec(opts, attached)) return *failed;

  UniqueFd shared_output;
  if (auto failed = plan_outputs(o, opts, shared_output)) {
    print_error("run", *failed);
    return kExitSetupFailed;
  }

  // The signals a supervisor passes on stay blocked from before the spawn to
  // the child's end, so that none can end procforge and leave the child
  // running; the child gets the mask procforge had (or an empty one).
  sigset_t forwarded, old_mask;
  sigemptyset(&forwarded);
  for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&forwarded, sig);
  sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
  if (!opts.reset_signal_mask) {  // --inherit-signals: our mask as it was, not with the forwarded ones blocked
    opts.reset_signal_mask = true;
    opts.signal_mask = old_mask;
  }

  RunReport rep;
  rep.program = command.front();
  // --warm: from a template held at main (one is started for this run, so a
  // single run is not faster; the report says whether the instance was warm,
  // and what differs from a cold start).
  std::optional<warm::Pool> pool;
  std::optional<client::Connection> server;
  if (o.server) {
    auto c = client::Connection::connect(*o.server);
    if (!c) {
      print_error("run", c.error().message);
      return kExitSetupFailed;
    }
    server = std::move(*c);
    auto where = o.server->empty() ? server::default_socket_path() : Result<std::string>(*o.server);
    rep.server = RunReport::Server{where ? *where : "", server->backend(), server->server_pid()};
  } else if (o.warm) {
    pool.emplace();
  }
  warm::Report warm_report;
  client::Spawned spawned;
  auto child = server ? server->spawn(opts, o.warm, false, &spawned)
               : pool ? pool->spawn(opts, &warm_report)
                      : spawn::spawn(opts);
  if (server && o.warm) {
    warm_report.warm = spawned.warm;
    warm_report.fallback_reason = spawned.fallback_reason;
  }
  if (o.warm) rep.warm = warm_report;
  shared_output.reset();
  // The mask is not restored: procforge only reports and exits from here, and
  // a signal still pending would end it before the report.
  if (!child) {
    const Error& e = child.error();
    rep.error = e;
    rep.status = spawn::failure_status(e);
    print_error("run", e.message + " (" + strerror(e.err) + ")\n" +
                           (spawn::exec_failed(e) ? kernel_exec_failure_words(opts, e.err) : ""));
    emit_report(o, rep);
    return rep.status;
  }
  rep.strategy = child->strategy();
  rep.pid = child->pid();
  rep.timings = child->timings();

  spawn::Supervision how;
  how.forward = forwarded;
  if (!o.timeout.empty()) {
    how.timeout = parse_duration(o.timeout);
    how.timeout_signal = *parse_signal(o.kill_signal);
    if (!o.kill_after.empty()) how.kill_after = parse_duration(o.kill_after);
  }
  auto exit = spawn::supervise(*child, how);
  auto created = child->cgroups_created;
  if (auto st = spawn::remove_cgroups(created); !st) print_error("run", st.error().message);
  if (!exit) {
    print_error("run", exit.error().message);
    rep.error = exit.error();
    rep.status = kExitSetupFailed;
    emit_report(o, rep);
    return rep.status;
  }
  rep.exit = *exit;
  rep.status = exit->shell_status();
  if (exit->timed_out) {
    // timeout(1)'s statuses, whatever the signal did to the program: 124, or
    // 128+9 when SIGKILL was needed after --kill-after.
    rep.status = exit->killed_after_timeout ? 128 + SIGKILL : kExitTimedOut;
    const char* abbrev = sigabbrev_np(how.timeout_signal);  // null for real-time signals
    print_error("run", "timed out after " + o.timeout + "; sent " +
                           (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(how.timeout_signal)) +
                           (child->leads_group() ? " to its process group" : "") +
                           (exit->killed_after_timeout ? ", then SIGKILL after " + o.kill_after : ""));
  }
  emit_report(o, rep);
  return rep.status;
}

}  // namespace

void add_run(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<RunOptions>();
  auto* r = app.add_subcommand("run", "Spawn PROGRAM with the given controls and wait for it");
  add_environment_flags(*r, o->set_env, o->unset_env, o->clear_env);
  r->add_option("-C,--cwd", o->cwd, "Working directory of the program");
  r->add_option("--uid", o->uid, "Run as this user (name or id)");
  r->add_option("--gid", o->gid, "Run with this group (name or id)");
  r->add_option("--groups", o->groups,
                "Supplementary groups, names or ids, comma separated (default with --uid/--gid: none)");
  r->add_option("--rlimit", o->rlimits,
                "NAME=SOFT[:HARD] (nofile, stack, as, core, nproc, cpu, fsize, ...; K, M, G "
                "suffixes; 'unlimited')")
      ->allow_extra_args(false);
  r->add_option("--keep-fd", o->keep_fds, "Keep this fd open in the program (others above 2 are closed)")
      ->allow_extra_args(false);
  r->add_flag("--inherit-fds", o->inherit_fds, "Do not close the other fds (they still close if close-on-exec)");
  r->add_flag("--no-new-privs", o->no_new_privs, "Set PR_SET_NO_NEW_PRIVS");
  r->add_option("--ns", o->ns, "New namespaces: user,pid,mount,net,uts,ipc,cgroup,time");
  r->add_option("--hostname", o->hostname, "Hostname in the new uts namespace");
  r->add_option("--cgroup", o->cgroup,
                "cgroup to run in: absolute, or relative to our own cgroup (created if missing, "
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
  r->add_option("--stdout", o->stdout_, "FILE or null (FILE is truncated unless --append)");
  r->add_option("--stderr", o->stderr_,
                "FILE, null, or stdout (2>&1); the same FILE as --stdout is opened once and shared");
  r->add_flag("--append", o->append, "Open the --stdout and --stderr files with O_APPEND instead of truncating them");
  r->add_flag("--inherit-signals", o->inherit_signals, "Keep our signal mask and ignored signals");
  r->add_option("--timeout", o->timeout,
                "After DURATION (500ms, 10s, 2m, 1h) send --kill-signal to the program's process "
                "group and exit 124, as timeout(1)");
  r->add_option("--kill-signal", o->kill_signal, "Signal --timeout sends (default TERM)");
  r->add_option("--kill-after", o->kill_after,
                "After --timeout's signal, SIGKILL the group once DURATION more has passed");
  r->add_flag("--foreground", o->foreground,
              "With --timeout: keep the program in procforge's process group (it can "
              "read the terminal), and signal the program only");
  r->add_flag("--report", o->report, "Print the strategy, timings and rusage on stderr after the run");
  r->add_flag("--json", o->json, "The report as JSON (on stderr, or in --report-file)");
  r->add_option("--report-file", o->report_file, "Write the JSON report to FILE");
  r->add_flag("--warm", o->warm,
              "Start the program as a warm instance (a fork of a template held at main; see procforge batch --warm); "
              "--report says whether it was, or why it went cold, and what differs from a cold start");
  r->add_option("--server", o->server,
                "Have a procforge server (procforge serve) start the program; its socket, or the default one")
      ->expected(0, 1);
  r->add_option("--exec", o->exec,
                "Who replaces the image: kernel (execve, default) or user (procforge's user-space exec)");
  r->add_option("--loader", o->loader, "The former name of --exec (kernel or user); --exec wins when both are given");
  r->footer(
      "PROGRAM [ARG...] follows the options (or \"--\"). SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2 and "
      "SIGWINCH sent to procforge are passed on to the program (its process group when it has one of its own).\n"
      "Exit status: the program's, 128+N when killed by signal N, 124 timed out, 127 not found, 126 not "
      "executable, 125 a control could not be applied, 2 bad usage.");
  commands.push_back({r, [o](std::vector<std::string> command) { return run(*o, command); }});
}

}  // namespace procforge::cli
