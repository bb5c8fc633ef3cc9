// The client side of the spawn server (procforge/client.hpp): spawn::Options
// resolved where the client stands (its environment, cwd and descriptors),
// one request, and the events that answer it.
#include "procforge/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>

#include "common/fd_passing.hpp"
#include "common/unique_fd.hpp"
#include "procforge/server.hpp"
#include "server/protocol.hpp"
#include "spawn/child_access.hpp"

namespace procforge::client {

using clock = std::chrono::steady_clock;
namespace proto = server::proto;

// One message received, with its descriptors.
struct Received {
  std::string bytes;
  std::vector<UniqueFd> fds;
};

struct Connection::State {
  UniqueFd fd;
  std::uint64_t next_id = 0;
  std::deque<Received> later;  // events of other requests, in arrival order
};

namespace {

Status send_message(int fd, const std::string& bytes, const std::vector<int>& fds) {
  ssize_t n = send_with_fds(fd, bytes, fds);
  if (n < 0) return Error::call(ErrorStep::spawn_setup, errno, "sending a request to the procforge server");
  return ok_status();
}

// The next message; ETIMEDOUT when none came within the timeout.
Result<Received> receive(int fd, std::optional<clock::time_point> deadline) {
  for (;;) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()).count();
      wait_ms = static_cast<int>(std::max<long>(left, 0));
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::call(ErrorStep::wait, errno, "waiting for the procforge server");
    if (r == 0) return Error{ETIMEDOUT, "no answer from the procforge server in time"};
    Received m;
    m.bytes.resize(proto::kMaxMessage);
    iovec iov{m.bytes.data(), m.bytes.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::call(ErrorStep::wait, errno, "reading from the procforge server");
    if (n == 0) return Error{ECONNRESET, "the procforge server closed the connection"};
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        m.fds.emplace_back(f);
      }
    }
    m.bytes.resize(static_cast<std::size_t>(n));
    return m;
  }
}

Error failure(const proto::Failed& f) {
  // The step says which shell status the failure means (spawn::failure_status).
  ErrorStep step = f.status == 127 || f.status == 126 ? ErrorStep::execve : ErrorStep::spawn_setup;
  return Error{step, f.err, {}, f.message};
}

// spawn::Options as a request: what the client's side resolves, and the
// descriptors that go with it (owned by `keep` until sent).
struct Resolved {
  proto::Request request;
  std::vector<int> fds;          // to pass, in index order
  std::vector<UniqueFd> opened;  // files and pipe ends opened here for the child
  UniqueFd ends[3];              // our ends of Stdio::Kind::pipe
};

Status refuse_option(const std::string& what) {
  return Error{ErrorStep::options, EINVAL, what,
               what +
                   " is not available through the procforge server (it needs the server's privileges); spawn it "
                   "directly"};
}

Result<Resolved> resolve(const spawn::Options& o, bool warm, bool detach) {
  if (o.controlling_tty) return refuse_option("a controlling terminal").error();
  if (o.pdeathsig) return refuse_option("pdeathsig").error();
  if (o.namespaces) return refuse_option("namespaces").error();
  if (o.cgroup) return refuse_option("a cgroup").error();
  if (!o.seccomp_filter.empty()) return refuse_option("a seccomp filter").error();
  if (o.capability_bounding || !o.ambient_capabilities.empty()) return refuse_option("capability sets").error();
  if (o.sched_policy) return refuse_option("a scheduling policy").error();
  if (o.exec_replacement) return refuse_option("a user-space exec").error();
  if (!o.close_other_fds) return refuse_option("keeping every fd (the server's fds are not the client's)").error();

  Resolved r;
  proto::Request& q = r.request;
  q.path = o.path;
  q.search_path = o.search_path;
  q.argv = o.argv.empty() ? std::vector<std::string>{o.path} : o.argv;
  auto env = spawn::child_environment(o);
  if (!env) return env.error();
  for (auto kv : *env) q.envp.emplace_back(kv);
  std::error_code ec;
  std::filesystem::path here = std::filesystem::current_path(ec);
  if (ec) return Error{ErrorStep::options, ec.value(), ".", "the client's cwd cannot be read: " + ec.message()};
  q.cwd = o.cwd.empty() ? here.string() : (here / o.cwd).lexically_normal().string();
  if (q.cwd.size() > 1 && q.cwd.back() == '/') q.cwd.pop_back();

  auto pass = [&](int target, int fd) {
    q.fds.push_back({target, static_cast<int>(r.fds.size())});
    r.fds.push_back(fd);
  };
  const spawn::Stdio* stdio[3] = {&o.stdin_, &o.stdout_, &o.stderr_};
  for (int t = 0; t < 3; ++t) {
    const spawn::Stdio& s = *stdio[t];
    switch (s.kind) {
      case spawn::Stdio::Kind::inherit:
        if (fcntl(t, F_GETFD) >= 0) pass(t, t);
        break;  // closed here: closed (as /dev/null) there
      case spawn::Stdio::Kind::null: q.fds.push_back({t, -1}); break;
      case spawn::Stdio::Kind::fd: pass(t, s.fd); break;
      case spawn::Stdio::Kind::file: {
        int flags = s.flags ? s.flags : (t == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
        UniqueFd f(open(s.path.c_str(), flags | O_CLOEXEC, 0666));
        if (!f) return Error::call(ErrorStep::open, errno, "opening", s.path);
        pass(t, f.get());
        r.opened.push_back(std::move(f));
        break;
      }
      case spawn::Stdio::Kind::pipe: {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return Error::call(ErrorStep::spawn_setup, errno, "making a pipe");
        UniqueFd theirs(t == 0 ? p[0] : p[1]);
        r.ends[t].reset(t == 0 ? p[1] : p[0]);
        pass(t, theirs.get());
        r.opened.push_back(std::move(theirs));
        break;
      }
    }
  }
  for (const auto& a : o.fd_actions) {
    switch (a.kind) {
      case spawn::FdAction::Kind::dup2: pass(a.fd, a.source); break;
      case spawn::FdAction::Kind::open: {
        UniqueFd f(open(a.path.c_str(), (a.flags ? a.flags : O_RDONLY) | O_CLOEXEC, a.mode));
        if (!f) return Error::call(ErrorStep::open, errno, "opening", a.path);
        pass(a.fd, f.get());
        r.opened.push_back(std::move(f));
        break;
      }
      case spawn::FdAction::Kind::close:
        std::erase_if(q.fds, [&](const proto::FdPlacement& p) { return p.target == a.fd && p.index < 0; });
        break;  // every fd the request does not place is closed there
    }
  }
  for (int fd : o.keep_fds) pass(fd, fd);

  q.umask = o.umask ? std::optional<std::uint32_t>(*o.umask) : std::nullopt;
  q.nice = o.nice;
  for (const auto& l : o.rlimits) q.rlimits.push_back({l.resource, l.soft, l.hard});
  sigset_t mask;
  sigemptyset(&mask);
  if (o.signal_mask) mask = *o.signal_mask;
  else if (!o.reset_signal_mask) sigprocmask(SIG_SETMASK, nullptr, &mask);
  std::uint64_t bits = 0;
  for (int s = 1; s <= 64 && s < NSIG; ++s)
    if (sigismember(&mask, s) == 1) bits |= std::uint64_t{1} << (s - 1);
  if (bits) q.signal_mask = bits;
  q.reset_signal_dispositions = o.reset_signal_dispositions;
  q.ignore_signals = o.ignore_signals;
  if (!o.reset_signal_dispositions)  // what this process ignores, the child ignores too
    for (int s = 1; s < NSIG; ++s) {
      struct sigaction sa {};
      if (sigaction(s, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN && s != SIGKILL && s != SIGSTOP)
        q.ignore_signals.push_back(s);
    }
  q.setsid = o.setsid;
  q.process_group = o.process_group;
  q.no_new_privs = o.no_new_privs;
  q.uid = o.uid;
  q.gid = o.gid;
  if (o.groups) q.groups = std::vector<std::uint32_t>(o.groups->begin(), o.groups->end());
  q.warm = warm;
  q.detach = detach;
  if (q.fds.size() > static_cast<std::size_t>(proto::kMaxFds))
    return Error{ErrorStep::options,
                 EINVAL,
                 {},
                 std::to_string(q.fds.size()) + " descriptors for one process, above the server's " +
                     std::to_string(proto::kMaxFds)};
  return r;
}

}  // namespace

Result<Connection> Connection::connect(const std::string& path) {
  std::string where = path;
  if (where.empty()) {
    auto d = server::default_socket_path();
    if (!d) return d.error();
    where = *d;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (where.size() >= sizeof addr.sun_path) return Error{ENAMETOOLONG, "socket path " + where + " is too long"};
  std::memcpy(addr.sun_path, where.c_str(), where.size() + 1);
  Connection c;
  c.state_ = std::make_shared<State>();
  c.state_->fd.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  const int fd = c.state_->fd.get();
  if (fd < 0) return Error::call(ErrorStep::spawn_setup, errno, "making a socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Error e = Error::call(ErrorStep::spawn_setup, errno, "connecting to the procforge server at", where);
    if (e.err == ENOENT || e.err == ECONNREFUSED) e.message += " (is `procforge serve` running there?)";
    return e;
  }
  if (auto st = send_message(fd, proto::encode(0, proto::Hello{}), {}); !st) return st.error();
  auto m = receive(fd, clock::now() + std::chrono::seconds(10));
  if (!m) return m.error();
  auto parsed = proto::parse(m->bytes);
  if (!parsed) return parsed.error().with_context("the server's answer");
  if (parsed->header.kind == proto::Kind::failed) {
    auto f = proto::decode_failed(*parsed);
    if (!f) return f.error();
    return Error{f->err, "the procforge server refused the connection: " + f->message};
  }
  auto w = proto::decode_welcome(*parsed);
  if (!w) return w.error();
  c.backend_ = w->backend;
  c.server_pid_ = w->server_pid;
  return c;
}

Connection::~Connection() = default;

namespace {

// The next message about request `id`: from the queue, else from the socket
// (queueing the others).
Result<Received> next_for(int fd, std::deque<Received>& later, std::uint64_t id,
                          std::optional<clock::time_point> deadline) {
  for (auto it = later.begin(); it != later.end(); ++it) {
    auto h = proto::parse(it->bytes);
    if (h && h->header.id == id) {
      Received m = std::move(*it);
      later.erase(it);
      return m;
    }
  }
  for (;;) {
    auto m = receive(fd, deadline);
    if (!m) return m.error();
    auto h = proto::parse(m->bytes);
    if (!h) return h.error().with_context("a message from the procforge server");
    if (h->header.id == id || h->header.id == 0) return m;
    later.push_back(std::move(*m));
  }
}

}  // namespace

namespace {

spawn::Child::Exit exit_of(const proto::Exited& e) {
  spawn::Child::Exit x;
  x.exited = e.exited;
  x.status = e.status;
  x.core_dumped = e.core_dumped;
  auto tv = [](std::uint64_t us) {
    return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  };
  x.usage.ru_utime = tv(e.utime_us);
  x.usage.ru_stime = tv(e.stime_us);
  x.usage.ru_maxrss = static_cast<long>(e.maxrss_kb);
  x.usage.ru_minflt = static_cast<long>(e.minflt);
  x.usage.ru_majflt = static_cast<long>(e.majflt);
  x.usage.ru_nvcsw = static_cast<long>(e.nvcsw);
  x.usage.ru_nivcsw = static_cast<long>(e.nivcsw);
  return x;
}

// A process's exit, from the server's exited event for its request.
struct ServerReaper final : spawn::ChildReaper {
  std::shared_ptr<Connection::State> state;
  std::uint64_t id = 0;

  Result<spawn::Child::Exit> reap(pid_t) override {
    auto m = next_for(state->fd.get(), state->later, id, std::nullopt);
    if (!m) return m.error().with_context("waiting for the exit of request " + std::to_string(id));
    auto parsed = proto::parse(m->bytes);
    if (parsed->header.kind == proto::Kind::failed) {
      auto f = proto::decode_failed(*parsed);
      if (!f) return f.error();
      return Error{ErrorStep::wait, f->err, {}, f->message};
    }
    auto e = proto::decode_exited(*parsed);
    if (!e) return e.error();
    return exit_of(*e);
  }
};

}  // namespace

Result<spawn::Child> Connection::spawn(const spawn::Options& o, bool warm, bool detach, Spawned* info) {
  const auto t0 = clock::now();
  auto r = resolve(o, warm, detach);
  if (!r) return r.error();
  State& st = *state_;
  const std::uint64_t id = ++st.next_id;
  std::string request = proto::encode(id, r->request);
  if (request.size() > proto::kMaxMessage)
    return Error{ErrorStep::options,
                 E2BIG,
                 {},
                 "the request (program, arguments and environment) is " + std::to_string(request.size()) +
                     " bytes, above the server's " + std::to_string(proto::kMaxMessage)};
  if (auto sent = send_message(st.fd.get(), request, r->fds); !sent) return sent.error();
  r->opened.clear();  // the server holds copies now
  auto m = next_for(st.fd.get(), st.later, id, std::nullopt);
  if (!m) return m.error();
  auto parsed = proto::parse(m->bytes);
  if (parsed->header.kind == proto::Kind::failed) {
    auto f = proto::decode_failed(*parsed);
    if (!f) return f.error();
    return failure(*f);
  }
  auto s = proto::decode_spawned(*parsed);
  if (!s) return s.error();
  if (m->fds.size() != 1) return Error{EPROTO, "the spawned reply came without the process's pidfd"};
  if (info) *info = {s->warm, s->fallback_reason};
  auto reaper = std::make_shared<ServerReaper>();
  reaper->state = state_;
  reaper->id = id;
  const bool leads = o.setsid || (o.process_group && (*o.process_group == 0 || *o.process_group == s->pid));
  spawn::Child child = spawn::ChildAccess::adopt_reported(s->pid, m->fds.front().release(), t0, leads, reaper);
  child.stdin_fd = r->ends[0].release();
  child.stdout_fd = r->ends[1].release();
  child.stderr_fd = r->ends[2].release();
  return child;
}

}  // namespace procforge::client
