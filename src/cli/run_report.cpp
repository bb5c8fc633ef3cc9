// Renders a RunReport. Durations in microseconds (text) or nanoseconds
// (JSON); rusage as getrusage(2) names its fields.
#include "cli/run_report.hpp"

#include <signal.h>
#include <string.h>

#include <fmt/format.h>

namespace procforge::cli {

namespace {

double us(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1000.0; }
long long tv_us(const timeval& tv) { return static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec; }

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

}  // namespace

std::string render_run_text(const RunReport& r) {
  std::string s = "procforge run: " + r.program + "\n";
  if (r.error) {
    s += fmt::format("  failed:   {} (status {})\n", r.error->message, r.status);
    return s;
  }
  if (r.server)
    s +=
        fmt::format("  server:   {} ({}, pid {}), pid {}\n", r.server->socket, r.server->backend, r.server->pid, r.pid);
  else s += fmt::format("  strategy: {}, pid {}\n", r.strategy ? spawn::strategy_name(*r.strategy) : "?", r.pid);
  if (r.server && r.warm && r.warm->warm) {
    s += "  warm:     an instance of one of the server's templates\n";
  } else if (r.warm && r.warm->warm) {
    s += fmt::format("  warm:     instance {} of template {}\n", r.warm->template_uses, r.warm->template_pid);
    for (const auto& d : r.warm->differences) s += "  differs:  " + d + "\n";
  } else if (r.warm) {
    s += "  warm:     no, started cold: " + r.warm->fallback_reason + "\n";
  }
  if (!r.server)
    s += fmt::format("  timings:  prepare {:.1f} us, clone to exec {:.1f} us, spawn total {:.1f} us\n",
                     us(r.timings.prepare), us(r.timings.clone_to_exec), us(r.timings.total));
  if (!r.exit) return s;
  const auto& e = *r.exit;
  if (e.exited) s += fmt::format("  exit:     status {}", e.status);
  else s += fmt::format("  exit:     killed by {}{}", signal_name(e.status), e.core_dumped ? " (core dumped)" : "");
  s += fmt::format("{}, wall {:.1f} us\n", e.timed_out ? " after the timeout" : "", us(e.wall));
  const auto& u = e.usage;
  s += fmt::format(
      "  rusage:   user {} us, sys {} us, max RSS {} KiB, page faults {} minor / {} major, "
      "context switches {} voluntary / {} involuntary\n",
      tv_us(u.ru_utime), tv_us(u.ru_stime), u.ru_maxrss, u.ru_minflt, u.ru_majflt, u.ru_nvcsw, u.ru_nivcsw);
  return s;
}

nlohmann::json render_run_json(const RunReport& r) {
  nlohmann::json j;
  j["program"] = r.program;
  j["status"] = r.status;
  if (r.error) {
    j["error"] = {{"message", r.error->message},
                  {"errno", errno_name(r.error->err)},
                  {"exec_failed", spawn::exec_failed(*r.error)}};
    return j;
  }
  j["strategy"] = r.strategy ? spawn::strategy_name(*r.strategy) : nullptr;
  if (r.server) j["server"] = {{"socket", r.server->socket}, {"backend", r.server->backend}, {"pid", r.server->pid}};
  if (r.warm)
    j["warm"] = {{"warm", r.warm->warm},
                 {"fallback_reason", r.warm->warm ? nlohmann::json(nullptr) : nlohmann::json(r.warm->fallback_reason)},
                 {"template_pid", r.warm->template_pid},
                 {"template_uses", r.warm->template_uses},
                 {"differences", r.warm->differences}};
  j["pid"] = r.pid;
  j["timings_ns"] = {{"prepare", r.timings.prepare.count()},
                     {"clone_to_exec", r.timings.clone_to_exec.count()},
                     {"spawn_total", r.timings.total.count()}};
  if (r.exit) {
    const auto& e = *r.exit;
    j["exit"] = {{"exited", e.exited},
                 {"status", e.exited ? nlohmann::json(e.status) : nlohmann::json(nullptr)},
                 {"signal", e.exited ? nlohmann::json(nullptr) : nlohmann::json(signal_name(e.status))},
                 {"core_dumped", e.core_dumped},
                 {"timed_out", e.timed_out},
                 {"wall_ns", e.wall.count()}};
    const auto& u = e.usage;
    j["rusage"] = {{"user_us", tv_us(u.ru_utime)}, {"sys_us", tv_us(u.ru_stime)}, {"maxrss_kib", u.ru_maxrss},
                   {"minflt", u.ru_minflt},        {"majflt", u.ru_majflt},       {"nvcsw", u.ru_nvcsw},
                   {"nivcsw", u.ru_nivcsw}};
  }
  return j;
}

}  // namespace procforge::cli
