// Starting, asking and stopping a template: the program run once with the
// agent preloaded (agent.cpp), held at main() behind a control socket.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/fd_passing.hpp"
#include "procforge/spawn.hpp"
#include "spawn/child_access.hpp"
#include "warm/detail.hpp"

namespace procforge::warm {

namespace {

using clock = std::chrono::steady_clock;

// What the template wrote before main (its stdout and stderr), for the
// message when it did not get there.
std::string first_output_line(int memfd) {
  char buf[512];
  ssize_t n = pread(memfd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

std::string exit_text(const siginfo_t& si) {
  if (si.si_code == CLD_EXITED) return "exited with status " + std::to_string(si.si_status);
  const char* abbrev = sigabbrev_np(si.si_status);
  return "was killed by " + (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(si.si_status));
}

}  // namespace

// The text lines of a ready message (agent.cpp send_ready()).
void parse_facts(Template& t, std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    std::string key = line.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "threads") t.facts.threads = std::atoi(rest.c_str());
    else if (key == "looked_at_cwd") t.facts.looked_at_cwd = rest == "1";
    else if (key == "atfork") t.atfork_handlers = std::atoi(rest.c_str());
    else if (key == "cwd") t.cwd = rest;
    else if (key == "env") t.facts.env_read.push_back(rest);
    else if (key == "env_overflow" || key == "truncated") t.env_overflow = true;
    else if (key == "atfork_overflow") t.atfork_overflow = true;
    else if (key == "replaced") t.replaced.push_back(rest);
    else if (key == "fd") t.facts.fds_open_before_main.push_back(std::atoi(rest.c_str()));
    else if (key == "obj") {
      std::istringstream f(rest);
      ObjectIdentity o;
      f >> o.dev >> o.ino >> o.mtime_ns >> o.size;
      f.get();
      std::getline(f, o.path);
      t.facts.objects.push_back(o.path);
      t.objects.push_back(std::move(o));
    }
  }
}

std::string find_agent() {
  namespace fs = std::filesystem;
  if (const char* e = getenv("PROCFORGE_WARM_AGENT"); e && *e) return e;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const fs::path& c :
       {exe.parent_path() / "procforge_warm.so", exe.parent_path() / ".." / "lib" / "procforge" / "procforge_warm.so",
        exe.parent_path() / ".." / "procforge_warm.so"})
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec).string();
  return {};
}

Result<Template> start_template(const std::string& program, const std::vector<std::string>& argv,
                                const std::vector<std::string>& env, const std::string& cwd, const std::string& agent,
                                std::chrono::milliseconds timeout) {
  Template t;
  t.program = program;
  t.argv = argv;
  t.env = env;
  t.cwd = cwd;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::call(ErrorStep::clone, errno, "making the template's control socket");
  t.control.reset(sv[0]);
  UniqueFd theirs(sv[1]);
  t.output.reset(static_cast<int>(syscall(SYS_memfd_create, "procforge-warm-output", MFD_CLOEXEC)));
  if (!t.output) return Error::call(ErrorStep::clone, errno, "making the template's output file");

  spawn::Options o;
  o.path = program;
  o.search_path = false;
  o.argv = argv;
  o.inherit_env = false;
  o.envp = env;
  std::string preload = "LD_PRELOAD=" + agent;
  for (auto& kv : o.envp)
    if (kv.rfind("LD_PRELOAD=", 0) == 0) {
      preload += ":" + kv.substr(11);
      kv = "LD_PRELOAD=";  // replaced below
    }
  std::erase(o.envp, std::string("LD_PRELOAD="));
  o.envp.push_back(preload);
  o.envp.push_back(std::string(wire::kFdVariable) + "=" + std::to_string(wire::kControlFd));
  o.cwd = cwd;
  o.stdin_.kind = spawn::Stdio::Kind::null;
  o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::fd;
  o.stdout_.fd = o.stderr_.fd = t.output.get();
  o.fd_actions.push_back({spawn::FdAction::Kind::dup2, wire::kControlFd, theirs.get(), {}, 0, 0644});
  auto child = spawn::spawn(o);
  if (!child) return child.error().with_context("starting the template");
  theirs.reset();
  t.started = clock::now();
  t.pid = child->pid();
  // The template is ours to reap from here on: its pidfd leaves the Child
  // (whose destructor would kill it).
  t.pidfd.reset(spawn::ChildAccess::release(*child));
  if (!t.pidfd) t.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, t.pid, 0)));
  if (!t.pidfd) return Error::call(ErrorStep::clone, errno, "opening the template's pidfd");

  // Ready, or gone, or too slow.
  std::vector<char> buf(256 << 10);
  pollfd p[2] = {{t.control.get(), POLLIN, 0}, {t.pidfd.get(), POLLIN, 0}};
  const auto deadline = t.started + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      stop(t, std::chrono::milliseconds(0));
      return Error{ETIMEDOUT, "the template did not reach main within " + std::to_string(timeout.count()) + " ms"};
    }
    int r = poll(p, 2, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::call(ErrorStep::wait, errno, "waiting for the template");
    if (p[0].revents & POLLIN) {
      ssize_t n = recv(t.control.get(), buf.data(), buf.size(), 0);
      wire::Header h;
      if (n >= static_cast<ssize_t>(sizeof h)) {
        std::memcpy(&h, buf.data(), sizeof h);
        if (h.magic == wire::kMagic && h.kind == wire::Kind::ready) {
          parse_facts(t, std::string_view(buf.data() + sizeof h, static_cast<std::size_t>(n) - sizeof h));
          t.facts.program = program;
          return t;
        }
      }
    }
    if (p[1].revents & POLLIN || p[0].revents & (POLLHUP | POLLERR)) {
      siginfo_t si{};
      if (waitid(P_PIDFD, static_cast<id_t>(t.pidfd.get()), &si, WEXITED) != 0)
        return Error::call(ErrorStep::wait, errno, "reaping the template");
      std::string said = first_output_line(t.output.get());
      t.pid = -1;
      return Error{ECHILD, "the template " + exit_text(si) + " before main" + (said.empty() ? "" : ": " + said)};
    }
  }
}

namespace {

// One message from the template side; a spare's announcement is recorded and
// not returned. 0 at the end of the channel, -1 and errno on error.
ssize_t receive(Template& t, char* buf, std::size_t size, int flags) {
  for (;;) {
    ssize_t n = recv(t.control.get(), buf, size, flags);
    if (n < 0 && errno == EINTR) continue;
    wire::SpareNotice notice;
    if (n != static_cast<ssize_t>(sizeof notice)) return n;
    std::memcpy(&notice, buf, sizeof notice);
    if (notice.h.magic != wire::kMagic || notice.h.kind != wire::Kind::spare) return n;
    t.spare = notice.pid;
    t.spare_pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, notice.pid, 0)));
  }
}

}  // namespace

Result<Reply> request(Template& t, const std::vector<char>& message, const std::vector<int>& fds) {
  ssize_t n = send_with_fds(t.control.get(), std::string_view(message.data(), message.size()), fds);
  if (n < 0) return Error::call(ErrorStep::clone, errno, "sending the request to the template");
  char buf[1024];
  // The reply, or the template's end (then no reply can come: a template
  // whose spare died ends itself, agent.cpp hold_spares()).
  for (;;) {
    pollfd p[2] = {{t.control.get(), POLLIN, 0}, {t.pidfd.get(), POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::call(ErrorStep::clone, errno, "waiting for the template's reply");
    }
    n = receive(t, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) break;
    if (p[1].revents & POLLIN) return Error{EPIPE, "the template ended without replying"};
  }
  if (n < 0) return Error::call(ErrorStep::clone, errno, "reading the template's reply");
  wire::Header h;
  if (n < static_cast<ssize_t>(sizeof h)) return Error{EPIPE, "the template ended without replying"};
  std::memcpy(&h, buf, sizeof h);
  Reply r;
  if (n == static_cast<ssize_t>(sizeof(spawn::Report))) {  // from the instance itself
    std::memcpy(&r.spawned.report, buf, sizeof r.spawned.report);
    r.spawned.pid = r.spawned.report.pid;
    if (r.spawned.pid == t.spare) {  // the spare became this instance: the caller's child now
      t.spare = -1;
      t.spare_pidfd.reset();
    }
    return r;
  }
  if (h.magic == wire::kMagic && h.kind == wire::Kind::spawned && n == static_cast<ssize_t>(sizeof r.spawned)) {
    std::memcpy(&r.spawned, buf, sizeof r.spawned);
    return r;
  }
  if (h.magic == wire::kMagic && h.kind == wire::Kind::refused) {
    r.refused = true;
    r.why.assign(buf + sizeof(wire::RefusedReply), static_cast<std::size_t>(n) - sizeof(wire::RefusedReply));
    return r;
  }
  return Error{EPROTO, "the template's reply makes no sense"};
}

bool alive(const Template& t) {
  if (t.pid < 0 || !t.pidfd) return false;
  pollfd p{t.pidfd.get(), POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

void end(Template& t) {
  if (t.control) shutdown(t.control.get(), SHUT_WR);
}

namespace {

// Every announcement still queued (a template's last ones come before its exit).
void drain(Template& t) {
  char buf[1024];
  while (t.control && receive(t, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

// Reaps the process behind pidfd when it has exited (now, or by `deadline`,
// after which it is killed); true when it is gone.
bool reap(UniqueFd& pidfd, std::optional<clock::time_point> deadline) {
  if (!pidfd) return true;
  if (deadline) {
    pollfd p{pidfd.get(), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()).count();
    while (poll(&p, 1, static_cast<int>(std::max<long>(left, 0))) < 0 && errno == EINTR) {
    }
    if (!(p.revents & POLLIN)) syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }
  siginfo_t si{};
  int r;
  while ((r = waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &si, WEXITED | (deadline ? 0 : WNOHANG))) != 0 &&
         errno == EINTR) {
  }
  if (r == 0 && si.si_pid == 0) return false;  // still running
  pidfd.reset();
  return true;
}

}  // namespace

bool reap_if_ended(Template& t) {
  if (!reap(t.pidfd, std::nullopt)) return false;
  t.pid = -1;
  drain(t);
  if (!reap(t.spare_pidfd, std::nullopt)) return false;
  t.spare = -1;
  t.control.reset();
  return true;
}

void stop(Template& t, std::chrono::milliseconds grace) {
  // The spare reads the end of the channel and tells the template, which
  // then exits too (agent.cpp hold_spares()).
  end(t);
  const auto deadline = clock::now() + grace;
  reap(t.pidfd, deadline);
  t.pid = -1;
  drain(t);
  reap(t.spare_pidfd, deadline);
  t.spare = -1;
  t.control.reset();
}

}  // namespace procforge::warm
