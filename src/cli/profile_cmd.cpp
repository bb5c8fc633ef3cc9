// `procforge profile [-n N] [--warmup N] [--json] [--html FILE] PROGRAM [ARG...]`
// `procforge profile --compare 'CMD A' 'CMD B' ...`
// Profiles a command's start-up phase by phase under ptrace (no root): one
// library call, profile::profile() or profile::compare(), then a table, JSON
// or an HTML report. A progress bar goes to stderr when it is a terminal and
// the profile takes more than a second.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/render_profile.hpp"
#include "common/ansi.hpp"
#include "procforge/profile.hpp"

namespace procforge::cli {

namespace {

struct ProfileCliOptions {
  int runs = 10;
  int warmup = 1;
  bool cold = false;
  bool tracepoints = false;
  bool json = false;
  std::string html;
  bool compare = false;
  bool no_audit = false;
  bool no_untraced = false;
  bool show_output = false;
  double timeout_s = 30;
};

// Splits "CMD ARG 'two words'" into words: blanks separate, single and double
// quotes group, backslash escapes. No expansion of any kind (no shell runs).
std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool have = false;
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < s.size()) cur += s[++i];
      else cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      have = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      have = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (have) out.push_back(cur), cur.clear(), have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(cur);
  return out;
}

std::string exe_dir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.parent_path().string();
}

int run_profile(const ProfileCliOptions& o, std::vector<std::string> command) {
  if (command.empty()) {
    print_error("profile", "name a program to profile (procforge profile [-n N] PROGRAM [ARG...])");
    return kExitCannot;
  }
  profile::Options base;
  base.runs = o.runs;
  base.warmup = o.warmup;
  base.cold_cache = o.cold;
  base.tracepoints = o.tracepoints;
  base.untraced = !o.no_untraced;
  base.audit = !o.no_audit;
  base.keep_output = o.show_output;
  base.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000));
  if (base.audit) base.audit_module = profile::find_audit_module(exe_dir());
  std::vector<profile::Options> cmds;
  if (o.compare) {
    if (command.size() < 2) {
      print_error("profile", "--compare takes two or more quoted commands, e.g. --compare 'ls' 'ls -l'");
      return kExitCannot;
    }
    for (const auto& c : command) {
      profile::Options x = base;
      x.argv = split_words(c);
      x.label = c;
      if (x.argv.empty()) {
        print_error("profile", "--compare: an empty command");
        return kExitCannot;
      }
      cmds.push_back(x);
    }
  } else {
    base.argv = command;
    cmds.push_back(base);
  }

  profile::Progress progress;
  const auto started = std::chrono::steady_clock::now();
  bool drew = false;
  if (isatty(STDERR_FILENO))
    progress = [&](const std::string& what, int done, int total) {
      if (std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) return;
      const std::string bar = progress_bar(static_cast<std::size_t>(done), static_cast<std::size_t>(total));
      std::fprintf(stderr, "%s%s %s", ansi::clear_line, bar.c_str(), what.substr(0, 40).c_str());
      std::fflush(stderr);
      drew = true;
    };
  auto r = profile::compare(cmds, progress);
  if (drew) std::fputs(ansi::clear_line, stderr);
  if (!r) {
    std::string words;
    if (r.error().err && cmds.size() == 1 && !cmds.front().argv.empty()) {
      exec::Request req;
      req.path = cmds.front().argv.front();
      req.argv = cmds.front().argv;
      req.envp = edited_environment(false, {}, {}, nullptr);
      words = exec_failure_words(req, r.error().err);
    }
    print_error("profile", r.error().message + "\n" + words);
    return kExitFails;
  }
  if (base.audit && base.audit_module.empty())
    print_error("profile",
                "the LD_AUDIT module procforge_audit.so was not found (set PROCFORGE_AUDIT_MODULE); per-library "
                "times are not available");
  if (!o.html.empty()) {
    std::ofstream f(o.html);
    f << render_profile_html(*r);
    if (!f) {
      print_error("profile", "cannot write " + o.html);
      return kExitCannot;
    }
  }
  const bool color = color_on(STDOUT_FILENO);
  if (o.json) {
    if (o.compare) {
      nlohmann::json j;
      j["commands"] = nlohmann::json::array();
      for (const auto& p : *r) j["commands"].push_back(render_profile_json(p));
      std::cout << stamped(std::move(j), schema::profile_compare).dump(2) << "\n";
    } else {
      std::cout << stamped(render_profile_json(r->front()), schema::profile).dump(2) << "\n";
    }
  } else if (o.compare) {
    std::cout << render_compare_text(*r, color);
  } else {
    std::cout << render_profile_text(r->front(), color);
  }
  return 0;
}

// A check that names the flag and the range in words, instead of the
// floating-point bounds CLI11's number checks print.
CLI::Validator whole_number(long lo, long hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) {
        char* end = nullptr;
        errno = 0;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (errno || end == v.c_str() || *end || n < lo || n > hi)
          return "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + " (got '" + v + "')";
        return std::string();
      },
      "N");
}

}  // namespace

void add_profile(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<ProfileCliOptions>();
  auto* p = app.add_subcommand("profile", "Profile a command's start-up phase by phase (ptrace, no root)");
  p->add_option("-n,--runs", o->runs, "Measured runs (default 10)")->check(whole_number(1, 100000));
  p->add_option("--warmup", o->warmup, "Discarded warm-up runs (default 1)")->check(whole_number(0, 100000));
  p->add_flag("--cold", o->cold, "Drop the page cache before every measured run (root; affects the whole machine)");
  p->add_flag("--tracepoints", o->tracepoints,
              "Root: cross-check with the kernel's tracepoints sched_process_exec and page_fault_user");
  p->add_flag("--json", o->json, "Machine-readable output");
  p->add_option("--html", o->html, "Also write a self-contained HTML report with SVG waterfalls to FILE");
  p->add_flag("--compare", o->compare, "Profile two or more quoted commands, runs interleaved");
  p->add_flag("--no-audit", o->no_audit, "Do not load the LD_AUDIT module (no per-library times)");
  p->add_flag("--no-untraced", o->no_untraced, "Skip the untraced runs that measure the tracer's overhead");
  p->add_flag("--show-output", o->show_output, "Let the program use this terminal (default: /dev/null)");
  p->add_option("--timeout", o->timeout_s, "Seconds per run before the program is killed (default 30)")
      ->check(CLI::Validator(
          [](std::string& v) {
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            return end != v.c_str() && !*end && d > 0 && d <= 86400
                       ? std::string()
                       : "seconds above 0, at most 86400 (got '" + v + "')";
          },
          "SECONDS"));
  p->footer(
      "Children the program starts are not traced: their time counts in the phase that waits for them.\n"
      "For a #! script the script step is shown and its interpreter profiled. When the process execs again\n"
      "(#!/usr/bin/env, shims) each program gets its own phases and objects; the last one is profiled in full.");
  commands.push_back({p, [o](std::vector<std::string> command) { return run_profile(*o, std::move(command)); }});
}

}  // namespace procforge::cli
