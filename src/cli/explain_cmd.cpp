// `procforge explain`: what execve() would do with a program, without
// running it. Builds an exec::Request from the flags, calls exec::predict(),
// then ldso::predict_after_exec() for the ld.so half, renders text (a
// screen by default, more with each -v) or JSON; --batch explains a list of
// files, one line each (ld.so part included, without relocation counts).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/env.hpp"
#include "cli/output.hpp"

namespace procforge::cli {

namespace {

struct ExplainOptions {
  bool json = false;
  bool no_aslr = false;
  bool clear_env = false;
  std::string cwd;
  std::vector<std::string> set_env;
  std::vector<std::string> unset_env;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::string batch;
  bool no_path_search = false;
  bool show_env = false;
  int verbose = 0;        // each -v shows one more level of the text (Detail)
  bool bindings = false;  // --bindings
  // execveat(DIRFD, PROGRAM, ...) / fexecve(FD, ...): a descriptor procforge
  // inherited (3<DIR, 3<FILE), made close-on-exec first with --cloexec.
  std::optional<int> execveat_fd, fexecve_fd;
  bool nofollow = false, cloexec = false;
  std::vector<std::string> command;
};

// The prediction for the exec of REQ as a shell runs it: a name without '/'
// through execvp's PATH search (REQ's path becomes the file it settles on),
// unless --no-path-search asks the literal execve question.
Result<exec::Prediction> predict_as_asked(const ExplainOptions& o, exec::Request& req, const exec::SystemFacts& facts,
                                          exec::PathSearch& search) {
  if (o.no_path_search || req.dirfd != AT_FDCWD || req.at_flags) return exec::predict(req, facts);
  auto r = exec::predict_command(req, facts, &search);
  if (r) req = exec::searched_request(req, search);
  return r;
}

std::vector<std::string> build_env(const ExplainOptions& o, std::string* bad) {
  return edited_environment(o.clear_env, o.set_env, o.unset_env, bad);
}

exec::Request make_request(const ExplainOptions& o, const std::vector<std::string>& command,
                           const std::vector<std::string>& env) {
  exec::Request req;
  req.path = command.empty() ? "" : command.front();
  req.argv = command;
  req.envp = env;
  req.cwd = o.cwd;
  if (o.uid || o.gid) req.creds = exec::Credentials::unprivileged(o.uid.value_or(getuid()), o.gid.value_or(getgid()));
  struct rlimit rl {};
  if (getrlimit(RLIMIT_STACK, &rl) == 0) req.rlimit_stack = rl.rlim_cur;
  req.addr_no_randomize = o.no_aslr;
  // fexecve(FD, argv, envp) is execveat(FD, "", argv, envp, AT_EMPTY_PATH).
  if (o.fexecve_fd) {
    req.path.clear();
    req.dirfd = *o.fexecve_fd;
    req.at_flags = AT_EMPTY_PATH;
  } else if (o.execveat_fd) {
    req.dirfd = *o.execveat_fd;
  }
  if (o.nofollow) req.at_flags |= AT_SYMLINK_NOFOLLOW;
  return req;
}

int explain_one(const ExplainOptions& o, const exec::SystemFacts& facts) {
  std::string bad;
  auto env = build_env(o, &bad);
  if (!bad.empty()) {
    print_error("explain", bad);
    return kExitCannot;
  }
  exec::Request req = make_request(o, o.command, env);
  if (o.cloexec && req.dirfd != AT_FDCWD && ::fcntl(req.dirfd, F_SETFD, FD_CLOEXEC) != 0) {
    print_error("explain", "descriptor " + std::to_string(req.dirfd) + " is not open in procforge (" +
                               errno_name(errno) + "): open it for procforge, e.g. 3<DIR");
    return kExitCannot;
  }
  exec::PathSearch search;
  auto r = predict_as_asked(o, req, facts, search);
  if (!r) {
    print_error("explain", r.error().message);
    return kExitCannot;
  }
  // The dynamic linker's half, when the kernel half says ld.so gets to run.
  const auto loader = ldso::predict_after_exec(req, *r, loader_system(), /*relocations=*/true, o.bindings);
  const Verdict v = start_verdict(*r, loader ? &*loader : nullptr);
  // The runtime the ELF program at the end of the chain starts through.
  const auto rt = r->plan ? runtime::identify_file(r->plan->exe) : Result<runtime::Info>(Error(ENOEXEC, "no plan"));
  if (o.json) {
    auto j = render_json(req, *r, o.show_env);
    j["result"] = verdict_json(v);
    j["execve"]["path_search"] = path_search_json(search);
    j["loader"] = loader ? render_loader_json(loader->argv0.value_or(r->plan->exe), *loader) : nlohmann::json(nullptr);
    j["runtime"] = render_runtime_json(rt);
    std::cout << stamped(std::move(j), schema::explain).dump(2) << "\n";
  } else {
    const bool color = color_on(STDOUT_FILENO);
    const Detail detail = detail_from_count(o.verbose);
    std::cout << render_text(req, *r, v, search, color, detail);
    if (loader) std::cout << render_loader_text(loader->argv0.value_or(r->plan->exe), *loader, color, detail);
    if (loader) std::cout << render_bindings_text(loader->argv0.value_or(r->plan->exe), *loader, color);
    std::cout << render_runtime_text(rt, color);
    std::cout << render_detail_hint(*r, loader ? &*loader : nullptr, detail, color);
  }
  return v.fails() ? kExitFails : kExitRuns;
}

// The loader part of one batch line: "<N> objects<TAB>loader: ok" or the
// error a real run stops with; "-<TAB>-" when ld.so does not run. JSON: the
// same "loader" object as explain --json gives for one file. Relocations are
// not counted here: a batch must stay as cheap as the search.
struct BatchLoader {
  bool ran = false;  // the program starts through ld.so
  std::string columns = "-\t-";
  nlohmann::json json = nullptr;  // only when asked for
  std::optional<ldso::Prediction> prediction;
};

BatchLoader batch_loader(const exec::Request& req, const exec::Prediction& p, bool json) {
  BatchLoader b;
  auto lreq = ldso::request_after_exec(req, p, /*relocations=*/false);
  if (!lreq) return b;
  b.ran = true;
  auto lp = ldso::resolve(*lreq, loader_system());
  if (!lp) {
    b.columns = "-\tloader: not predicted: " + lp.error().message;
    b.json = {{"objects", nullptr}, {"error", nullptr}, {"not_predicted", lp.error().message}};
    return b;
  }
  const std::string count = std::to_string(lp->objects.size()) + " objects";
  b.columns = count + (lp->error          ? "\tloader: " + lp->error->object + ": " + lp->error->message
                       : lp->command_exit ? "\tloader: exits with status " + std::to_string(*lp->command_exit)
                                          : "\tloader: ok");
  if (json) b.json = render_loader_json(lp->argv0.value_or(lreq->program), *lp);
  b.prediction = std::move(*lp);
  return b;
}

// One path per line; one result line each. Shares one scan of open writers,
// the ld.so facts, the parsed ld.so.cache and every library's parsed facts
// (ldso keeps them per process, keyed by file identity).
int explain_batch(const ExplainOptions& o, const exec::SystemFacts& facts) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (o.batch != "-") {
    file.open(o.batch);
    if (!file) {
      print_error("explain", "cannot read the batch list " + o.batch);
      return kExitCannot;
    }
    in = &file;
  }
  std::string bad;
  auto env = build_env(o, &bad);
  if (!bad.empty()) {
    print_error("explain", bad);
    return kExitCannot;
  }
  const exec::OpenWriters writers = exec::OpenWriters::scan();
  std::string line, out;
  std::size_t n = 0, errors = 0, loaded = 0, loader_fails = 0, fails = 0;
  if (!o.json) std::cout << kBatchHeader << "\n" << std::flush;
  while (std::getline(*in, line)) {
    if (line.empty()) continue;
    exec::Request req = make_request(o, {line}, env);
    req.writers = &writers;
    exec::PathSearch search;
    auto r = predict_as_asked(o, req, facts, search);
    ++n;
    if (!r) {
      ++errors;
      out = line + "\terror\t" + r.error().message;
      if (o.json)
        out = stamped(nlohmann::json{{"path", line}, {"error", r.error().message}}, schema::explain_batch).dump();
    } else {
      const BatchLoader loader = batch_loader(req, *r, o.json);
      const Verdict v = start_verdict(*r, loader.prediction ? &*loader.prediction : nullptr);
      loaded += loader.ran;
      loader_fails += v.outcome == "ldso_fails";
      fails += v.fails();
      if (o.json) {
        auto j = render_json(req, *r);
        out = stamped(nlohmann::json{{"path", line},
                                     {"result", verdict_json(v)},
                                     {"execve",
                                      {{"result", j["execve"]["result"]},
                                       {"errno", j["execve"]["errno"]},
                                       {"signal", j["execve"]["signal"]},
                                       {"chain", j["execve"]["chain"]}}},
                                     {"loader", loader.json}},
                      schema::explain_batch)
                  .dump();
      } else {
        out = render_line(line, *r, v) + "\t" + loader.columns;
      }
    }
    out += '\n';
    fwrite(out.data(), 1, out.size(), stdout);
  }
  fflush(stdout);
  print_error("explain", std::to_string(n) + " files, " + std::to_string(errors) + " could not be examined, " +
                             std::to_string(fails) + " would not start; ld.so part for " + std::to_string(loaded) +
                             ", " + std::to_string(loader_fails) + " of them would stop in ld.so");
  return errors || fails ? kExitFails : kExitRuns;
}

// The built-in default: a real program and a two-level #! chain made for it.
int demo(const exec::SystemFacts& facts) {
  char dir[] = "/tmp/procforge-demo-XXXXXX";
  if (!mkdtemp(dir)) {
    print_error("demo", std::string("mkdtemp /tmp/procforge-demo-XXXXXX: ") + errno_name(errno) + " (" +
                            std::strerror(errno) + ")");
    return kExitCannot;
  }
  const std::string d = dir;
  const std::string inner = d + "/greet", outer = d + "/hello";
  {
    std::ofstream(inner) << "#!/bin/sh -e\necho \"hello from $0, called with: $*\"\n";
    std::ofstream(outer) << "#!" << inner
                         << " --from-outer\nthis line is read by the inner script as an argument file\n";
  }
  chmod(inner.c_str(), 0755);
  chmod(outer.c_str(), 0755);
  ExplainOptions o;
  int status = 0;
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"/usr/bin/ls", "-l"}, {outer, "world"}}) {
    o.command = cmd;
    std::cout << "$ procforge explain";
    for (auto& a : cmd) std::cout << " " << a;
    std::cout << "\n";
    status |= explain_one(o, facts);
    std::cout << "\n";
  }
  unlink(outer.c_str());
  unlink(inner.c_str());
  rmdir(dir);
  return status ? kExitFails : kExitRuns;
}

}  // namespace

// Kept between runs in $XDG_CACHE_HOME/procforge (~/.cache/procforge): a
// one-question process (explain FILE, ldd FILE) then does not run ld.so.
const ldso::SystemInfo& loader_system() {
  static const ldso::SystemInfo sys = [] {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string dir = xdg && *xdg == '/' ? std::string(xdg) : home && *home == '/' ? std::string(home) + "/.cache" : "";
    if (dir.empty()) return ldso::SystemInfo::probe();
    ::mkdir(dir.c_str(), 0700);
    return ldso::SystemInfo::probe_cached(dir + "/procforge");
  }();
  return sys;
}

void add_explain(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<ExplainOptions>();
  auto* ex = app.add_subcommand("explain", "What execve() would do with PROGRAM, without running it");
  ex->add_flag("--json", o->json, "Machine-readable output");
  ex->add_flag("--bindings", o->bindings,
               "Every symbol lookup of ld.so's start-up: each relocation and PLT slot of every object, the object "
               "and version it binds to, in ld.so's order (as LD_DEBUG=bindings)");
  ex->add_flag("-v,--verbose", o->verbose,
               "More of the text: -v adds the kernel's checks in order, the ELF headers, the exec plan, ld.so's "
               "relocation work and every place it tried for a missing library; -vv also the initial stack and auxv");
  ex->add_option("-C,--cwd", o->cwd, "Working directory the exec happens in");
  add_environment_flags(*ex, o->set_env, o->unset_env, o->clear_env);
  ex->add_option("--uid", o->uid, "Predict for this user id (no capabilities)");
  ex->add_option("--gid", o->gid, "Predict for this group id (no capabilities)");
  ex->add_flag("--no-aslr", o->no_aslr, "As under setarch -R (personality ADDR_NO_RANDOMIZE): exact addresses");
  auto* at = ex->add_option("--execveat", o->execveat_fd,
                            "As execveat(DIRFD, PROGRAM, ...): PROGRAM relative to descriptor DIRFD, which procforge "
                            "inherited (e.g. 3<DIR); a #! interpreter gets /dev/fd/DIRFD/PROGRAM");
  auto* fx = ex->add_option("--fexecve", o->fexecve_fd,
                            "As fexecve(FD, ARGV, ...): the program is descriptor FD's file (e.g. 3<FILE) and the "
                            "command is its argv; a #! interpreter gets /dev/fd/FD")
                 ->excludes(at);
  ex->add_flag("--cloexec", o->cloexec,
               "With --execveat/--fexecve: the descriptor is close-on-exec (O_CLOEXEC), so a #! script fails with "
               "ENOENT");
  ex->add_flag("--nofollow", o->nofollow, "AT_SYMLINK_NOFOLLOW: a symlink as the last component gives ELOOP");
  (void)fx;
  ex->add_option("--batch", o->batch, "Explain every path listed in FILE ('-' for stdin), one line each");
  ex->add_flag("--show-env", o->show_env, "--json: the environment's values too (by default its keys only)");
  ex->add_flag("--no-path-search", o->no_path_search,
               "Take a PROGRAM without '/' as a file in the working directory, as execve() does, instead of "
               "searching PATH as execvp() and shells do");
  ex->footer(
      "PROGRAM [ARG...] follows the options (or \"--\"); a PROGRAM without '/' is searched in PATH (of the "
      "environment given) as execvp() does.\nExit status: 0 the program would start, 1 execve or ld.so would "
      "fail or the process would be killed, 2 bad usage or the question cannot be answered.");
  commands.push_back({ex, [o, ex](std::vector<std::string> command) {
                        const exec::SystemFacts facts = exec::SystemFacts::probe();
                        o->command = std::move(command);
                        if (!o->batch.empty()) return explain_batch(*o, facts);
                        if (o->command.empty()) {
                          print_error("explain", "name a PROGRAM (or --batch FILE)");
                          std::cerr << ex->help();
                          return kExitCannot;
                        }
                        return explain_one(*o, facts);
                      }});
}

void add_demo(CLI::App& app, std::vector<Command>& commands) {
  auto* d = app.add_subcommand("demo", "Explain /usr/bin/ls and a two-level #! chain made for the demo");
  commands.push_back({d, [](std::vector<std::string>) { return demo(exec::SystemFacts::probe()); }});
}

}  // namespace procforge::cli
