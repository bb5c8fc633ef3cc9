// A warm spawn, stage by stage: refuse what a template cannot do, plan the
// instance as a cold spawn plans its child, find the program as execvp would,
// take (or start, or rotate) its template, check that the template still
// stands for a cold start, then ask it for an instance and hand it back as a
// spawn::Child. Whenever a stage says no, the spawn goes cold and the report
// says why.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "spawn/child_access.hpp"
#include "warm/detail.hpp"

namespace procforge::warm {

using clock = std::chrono::steady_clock;

namespace {

// The options of the instance as a cold child would see them, with what it
// inherits made explicit: an instance is a copy of the template, not of the
// caller, so the caller's stdio and kept fds travel to it as dup sources.
spawn::Options instance_options(const spawn::Options& o) {
  spawn::Options w = o;
  spawn::Stdio* stdio[3] = {&w.stdin_, &w.stdout_, &w.stderr_};
  for (int fd = 0; fd < 3; ++fd) {
    if (stdio[fd]->kind != spawn::Stdio::Kind::inherit) continue;
    if (fcntl(fd, F_GETFD) < 0) {
      w.fd_actions.insert(w.fd_actions.begin(), {spawn::FdAction::Kind::close, fd, -1, {}, 0, 0});
      continue;
    }
    stdio[fd]->kind = spawn::Stdio::Kind::fd;
    stdio[fd]->fd = fd;
  }
  for (int fd : o.keep_fds) w.fd_actions.push_back({spawn::FdAction::Kind::dup2, fd, fd, {}, 0, 0});
  w.keep_fds.clear();
  return w;
}

// The file execvp would run: the first candidate that is an executable
// regular file (posix/execvpe.c tries each in turn). Empty when none is:
// then the cold spawn finds the same and reports it with execvp's errno.
std::string runnable(const spawn::Plan& plan) {
  for (int i = 0; i < plan.block.ncandidates; ++i) {
    const char* c = plan.block.candidates[i];
    struct stat st {};
    if (stat(c, &st) == 0 && S_ISREG(st.st_mode) && access(c, X_OK) == 0) return c;
  }
  return {};
}

std::vector<std::string> strings_of(char* const* v) {
  std::vector<std::string> out;
  for (; v && *v; ++v) out.emplace_back(*v);
  return out;
}

std::string absolute_cwd(const std::string& cwd) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(
      cwd.empty() ? std::filesystem::current_path(ec) : std::filesystem::absolute(cwd, ec), ec);
  return p.string();
}

struct ProgramVerdict {
  std::uint64_t dev = 0, ino = 0;
  std::int64_t mtime_ns = 0;
  std::string refusal;
};

}  // namespace

struct Pool::Impl {
  Limits limits;
  std::string agent = find_agent();
  std::mutex mu;
  std::map<std::string, Template> templates;  // by program path
  std::vector<Template> retiring;             // stopped, not yet reaped
  struct Failed {
    std::string why;
    clock::time_point at;
  };
  std::map<std::string, Failed> failed;  // programs whose template did not reach main
  std::map<std::string, ProgramVerdict> verdicts;

  std::string program_verdict(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return program_refusal(path);
    std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    auto& v = verdicts[path];
    if (v.dev != st.st_dev || v.ino != st.st_ino || v.mtime_ns != mtime || (v.dev == 0 && v.ino == 0)) {
      v = {st.st_dev, st.st_ino, mtime, program_refusal(path)};
    }
    return v.refusal;
  }

  Template* by_pid(pid_t pid) {
    for (auto& [path, t] : templates)
      if (t.pid == pid) return &t;
    return nullptr;
  }

  void retire(Template& t) {
    end(t);  // the template sees EOF and exits
    retiring.push_back(std::move(t));
  }

  void reap_retired() { std::erase_if(retiring, reap_if_ended); }

  // The template for program, started (or replaced) as needed; nullptr and
  // why when there is none.
  Template* template_for(const std::string& program, const std::vector<std::string>& argv,
                         const std::vector<std::string>& env, const std::string& asked_cwd, Report& r,
                         std::string& why) {
    if (auto f = failed.find(program); f != failed.end()) {
      if (clock::now() - f->second.at < limits.max_age) {
        why = f->second.why;
        return nullptr;
      }
      failed.erase(f);
    }
    auto it = templates.find(program);
    if (it != templates.end()) {
      Template& t = it->second;
      bool rotate = t.uses >= limits.max_uses || clock::now() - t.started >= limits.max_age;
      if (!rotate && alive(t)) return &t;
      retire(t);
      templates.erase(it);
    }
    auto t = start_template(program, argv, env, absolute_cwd(asked_cwd), agent, limits.start_timeout);
    if (!t) {
      why = t.error().message;
      failed[program] = {why, clock::now()};
      return nullptr;
    }
    std::string output_note;
    struct stat st {};
    if (fstat(t->output.get(), &st) == 0 && st.st_size > 0) {
      why = "the program wrote " + std::to_string(st.st_size) +
            " bytes to stdout or stderr before main, which an instance would not repeat";
      stop(*t, std::chrono::milliseconds(100));
      failed[program] = {why, clock::now()};
      return nullptr;
    }
    if (t->facts.threads != 1) {
      why = "the program runs " + std::to_string(t->facts.threads) + " threads before main: fork copies only one";
      stop(*t, std::chrono::milliseconds(100));
      failed[program] = {why, clock::now()};
      return nullptr;
    }
    r.template_started = true;
    // Watched from here on; a change between the template's own look at its
    // files and the watches is caught by the first spawn's stat pass.
    watch_objects(*t);
    return &templates.insert_or_assign(program, std::move(*t)).first->second;
  }
};

Pool::Pool(Limits limits) : impl_(std::make_unique<Impl>()) { impl_->limits = limits; }

Pool::~Pool() { clear(); }

void Pool::clear() {
  std::lock_guard lock(impl_->mu);
  for (auto& [path, t] : impl_->templates) end(t);
  for (auto& [path, t] : impl_->templates) stop(t, std::chrono::milliseconds(1000));
  impl_->templates.clear();
  for (auto& t : impl_->retiring) stop(t, std::chrono::milliseconds(1000));
  impl_->retiring.clear();
}

Result<spawn::Child> Pool::spawn(const spawn::Options& o, Report* report) {
  const auto t0 = clock::now();
  Report local;
  Report& r = report ? *report : local;
  r = Report{};
  auto cold = [&](std::string why) {
    r.warm = false;
    r.fallback_reason = std::move(why);
    return spawn::spawn(o);
  };

  // 1. Controls a copy of a started program cannot apply.
  if (auto why = options_refusal(o); !why.empty()) return cold(why);
  if (impl_->agent.empty()) return cold("the warm agent procforge_warm.so was not found (set PROCFORGE_WARM_AGENT)");

  // 2. The instance's plan: what a cold child would do, made explicit.
  const spawn::Options wo = instance_options(o);
  spawn::Plan plan(wo);
  if (auto st = spawn::make_plan(plan); !st) return st.error();
  spawn::finish_kept(plan, -1);

  // 3. The program, as execvp finds it, and whether a template can hold it.
  std::string program = runnable(plan);
  if (program.empty()) return cold("no runnable file found for " + o.path + ": the cold spawn reports why");
  std::lock_guard lock(impl_->mu);
  impl_->reap_retired();
  if (auto why = impl_->program_verdict(program); !why.empty()) return cold(why);

  // 4. Its template, and whether it still stands for a cold start.
  const std::vector<std::string> argv = strings_of(plan.block.argv), env = strings_of(plan.block.envp);
  std::string why;
  Template* t = impl_->template_for(program, argv, env, o.cwd, r, why);
  if (!t) return cold(why);
  // The cwd (a path walk) only counts when the program looked at it.
  const std::string cwd = t->facts.looked_at_cwd ? absolute_cwd(o.cwd) : std::string();
  if (why = instance_refusal(*t, plan, env, cwd); !why.empty()) {
    if (why.find(" since the template started") != std::string::npos) {
      impl_->retire(*t);  // stale: the next spawn starts a fresh one
      impl_->templates.erase(program);
    }
    return cold(why);
  }

  // 5. The instance.
  std::vector<char> message;
  std::vector<int> fds;
  if (auto st = flatten(plan, message, fds); !st) return cold(st.error().message);
  const auto t1 = clock::now();
  auto reply = request(*t, message, fds);
  if (!reply || reply->refused) {
    why = reply ? "the template refused: " + reply->why : "the template failed: " + reply.error().message;
    impl_->retire(*t);
    impl_->templates.erase(program);
    return cold(why);
  }
  const wire::SpawnedReply& s = reply->spawned;
  if (s.pid < 0) return Error::call(ErrorStep::clone, s.report.err, "forking the template of", program);
  ++t->uses;
  r.template_pid = t->pid;
  r.template_uses = t->uses;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, s.pid, 0));
  const bool leads = o.setsid || (o.process_group && (*o.process_group == 0 || *o.process_group == s.pid));
  spawn::Child child = spawn::ChildAccess::adopt(s.pid, pidfd, t0, leads);
  if (pidfd < 0) {
    (void)child.kill();
    return Error::call(ErrorStep::clone, errno, "opening the instance's pidfd", program);
  }
  if (s.report.step != 0) {
    // A control failed in the instance, as it would have in a cold child.
    Error e = spawn::describe(plan, s.report);
    (void)child.wait();
    if (static_cast<spawn::Step>(s.report.step) == spawn::Step::warm_enter) return cold(e.message);
    return e;
  }
  int* ends[3] = {&child.stdin_fd, &child.stdout_fd, &child.stderr_fd};
  for (int fd = 0; fd < 3; ++fd) *ends[fd] = plan.parent_pipes[fd][1].release();
  const auto t2 = clock::now();
  spawn::ChildAccess::set_timings(child, {t1 - t0, t2 - t1, t2 - t0});
  r.warm = true;
  r.differences = differences(*t, argv);
  return child;
}

Result<std::chrono::nanoseconds> Pool::fork_only(const spawn::Options& o) {
  Report r;
  auto first = spawn(o, &r);  // starts the template if needed
  if (!first) return first.error();
  (void)first->wait();
  if (!r.warm) return Error{ENOENT, "no template serves " + o.path + ": " + r.fallback_reason};
  std::lock_guard lock(impl_->mu);
  Template* t = impl_->by_pid(r.template_pid);
  if (!t) return Error{ENOENT, "the template of " + o.path + " is gone"};
  const auto t0 = clock::now();
  wire::Header h{wire::kMagic, wire::Kind::fork_only};
  std::vector<char> message(reinterpret_cast<const char*>(&h), reinterpret_cast<const char*>(&h) + sizeof h);
  auto reply = request(*t, message, {});
  if (!reply) return reply.error();
  if (reply->refused || reply->spawned.pid < 0)
    return Error{reply->spawned.report.err, "the template could not fork: " + reply->why};
  siginfo_t si{};
  while (waitid(P_PID, static_cast<id_t>(reply->spawned.pid), &si, WEXITED) != 0 && errno == EINTR) {
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0);
}

Result<TemplateFacts> Pool::facts(const spawn::Options& o) {
  Report r;
  auto child = spawn(o, &r);
  if (!child) return child.error();
  (void)child->wait();
  std::lock_guard lock(impl_->mu);
  if (Template* t = impl_->by_pid(r.template_pid)) return t->facts;
  return Error{ENOENT, "no template serves " + o.path + (r.fallback_reason.empty() ? "" : ": " + r.fallback_reason)};
}

}  // namespace procforge::warm
