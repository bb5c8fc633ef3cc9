// The spawn server, stage by stage: listen (or take systemd's socket),
// become a child subreaper, then one loop over the backend's completions:
// accept (check the peer's credentials), receive (handshake, requests,
// kills), spawn each request as its client (cold, or from a warm template),
// send the pid with a pidfd, and send the exit when the pidfd turns
// readable. SIGTERM/SIGINT drain; SIGCHLD reaps orphans the subreaper got.
#include "procforge/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "common/unique_fd.hpp"
#include "procforge/spawn.hpp"
#include "server/backend.hpp"
#include "server/protocol.hpp"
#include "server/requests.hpp"

namespace procforge::server {

using clock = std::chrono::steady_clock;

Result<std::string> default_socket_path() {
  if (const char* x = getenv("XDG_RUNTIME_DIR"); x && *x == '/') return std::string(x) + "/procforge.sock";
  if (geteuid() == 0) return std::string("/run/procforge/procforge.sock");
  return Error{ENOENT, "no socket path: XDG_RUNTIME_DIR is not set and /run/procforge is root's; give --socket PATH"};
}

int socket_activation_fd() {
  // sd_listen_fds(3): the fds start at 3, LISTEN_PID names the process meant.
  const char* pid = getenv("LISTEN_PID");
  const char* n = getenv("LISTEN_FDS");
  if (!pid || !n || atoi(pid) != getpid() || atoi(n) < 1) return -1;
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) return -1;
  return 3;
}

namespace {

enum class What : std::uint8_t { listen = 1, conn = 2, child = 3, signals = 4 };
constexpr std::uint64_t token(What w, std::uint64_t id) { return (static_cast<std::uint64_t>(w) << 56) | id; }
What what_of(std::uint64_t t) { return static_cast<What>(t >> 56); }
std::uint64_t id_of(std::uint64_t t) { return t & ((1ULL << 56) - 1); }

// One datagram on its way out, with the fd it carries (closed once sent).
struct Outgoing {
  std::string bytes;
  UniqueFd fd;
  iovec iov{};
  msghdr mh{};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];

  msghdr* prepare() {
    iov = {bytes.data(), bytes.size()};
    mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd) {
      mh.msg_control = control;
      mh.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      int f = fd.get();
      std::memcpy(CMSG_DATA(c), &f, sizeof f);
    }
    return &mh;
  }
};

// A connection's receive buffer: room for the largest message, mapped, so
// that only the pages its messages reach are ever resident, and all of them
// go back to the system with the connection (a heap buffer of this size
// would stay in the server's heap as the allocator's high-water mark).
class ReceiveBuffer {
 public:
  ReceiveBuffer() {
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) data_ = static_cast<char*>(p);
  }
  ReceiveBuffer(const ReceiveBuffer&) = delete;
  ReceiveBuffer& operator=(const ReceiveBuffer&) = delete;
  ~ReceiveBuffer() {
    if (data_) munmap(data_, kSize);
  }
  [[nodiscard]] char* data() const { return data_; }  // null: mmap failed
  [[nodiscard]] static constexpr std::size_t size() { return kSize; }

 private:
  static constexpr std::size_t kSize = proto::kMaxMessage + 1;
  char* data_ = nullptr;
};

struct Conn {
  std::uint64_t id = 0;
  UniqueFd fd;
  Client who;
  bool greeted = false, closing = false;
  std::optional<Error> refusal;  // admitted no: said once its first message is in
  int pending = 0;               // operations of the backend not yet completed
  ReceiveBuffer buf;
  iovec iov{};
  msghdr mh{};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * proto::kMaxFds)];
  std::deque<std::unique_ptr<Outgoing>> out;       // the first is in flight: replies keep their order
  std::map<std::uint64_t, std::uint64_t> running;  // request id -> child key
};

struct Running {
  std::uint64_t conn = 0, request = 0;
  spawn::Child child;
  bool detach = false;
};

// The descriptors that came with a message, owned.
std::vector<UniqueFd> take_fds(msghdr& mh) {
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < k; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      fds.emplace_back(f);
    }
  }
  return fds;
}

class Server {
 public:
  explicit Server(const Config& c) : cfg_(c) {}

  Result<Summary> run() {
    if (auto st = start(); !st) return st.error();
    std::vector<Completion> done;
    while (!(draining_ && children_.empty())) {
      int timeout = -1;
      if (draining_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now()).count();
        if (left <= 0 && !killed_all_) {
          for (auto& [key, r] : children_) (void)r.child.kill(SIGKILL, r.child.leads_group());
          killed_all_ = true;
        }
        timeout = killed_all_ ? 100 : static_cast<int>(left);
      }
      done.clear();
      if (auto st = backend_->wait(done, timeout); !st) return st.error();
      for (const auto& c : done) on(c);
    }
    // The last exits are still to go out.
    const auto until = clock::now() + std::chrono::seconds(1);
    while (sending() && clock::now() < until) {
      done.clear();
      if (auto st = backend_->wait(done, 100); !st) return st.error();
      for (const auto& c : done) on(c);
    }
    pools_.clear();
    return summary_;
  }

  ~Server() {
    if (!path_.empty()) unlink(path_.c_str());
  }

 private:
  // ---- start ----

  Status start() {
    std::string why;
    auto be = make_backend(cfg_.backend, why);
    if (!be) return be.error();
    backend_ = std::move(*be);
    summary_.backend = backend_->name();
    summary_.backend_fallback = why;

    if (auto st = listen_socket(); !st) return st;
    // Orphans of the processes we start come to us, and are reaped here
    // (kernel/exit.c find_new_reaper()).
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGCHLD}) sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    sigfd_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd_) return Error::call(ErrorStep::unspecified, errno, "making the server's signalfd");
    backend_->readable(sigfd_.get(), token(What::signals, 0));
    backend_->accept(listen_.get(), token(What::listen, 0));
    if (cfg_.on_ready)
      cfg_.on_ready(path_.empty() ? "(inherited socket)" : path_.c_str(), backend_->name(), cfg_.on_ready_arg);
    return ok_status();
  }

  Status listen_socket() {
    if (cfg_.listen_fd >= 0) {
      listen_.reset(cfg_.listen_fd);
      return ok_status();
    }
    std::string path = cfg_.socket_path;
    if (path.empty()) {
      auto d = default_socket_path();
      if (!d) return d.error();
      path = *d;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
      return Error{ENAMETOOLONG,
                   "socket path " + path + " is longer than " + std::to_string(sizeof addr.sun_path - 1) + " bytes"};
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    listen_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!listen_) return Error::call(ErrorStep::unspecified, errno, "making the server's socket");
    if (auto st = nobody_answers(addr, path); !st) return st.error();
    {
      struct stat st {};
      if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return Error{EEXIST, path + " exists and is not a socket; not replacing it"};
        unlink(path.c_str());
      }
    }
    // 0600, from the moment it exists (umask around bind); 0666 when other
    // uids are allowed, whose peer credentials are still checked one by one.
    mode_t old = umask(cfg_.allow_uids.empty() ? 0177 : 0111);
    int r = bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    umask(old);
    if (r != 0) return Error::call(ErrorStep::unspecified, errno, "binding", path);
    path_ = path;
    if (::listen(listen_.get(), 128) != 0) return Error::call(ErrorStep::unspecified, errno, "listening on", path);
    return ok_status();
  }

  // Whether a server answers at addr: a live one answers a hello. A stale
  // socket file (a killed server) refuses the connect; so does, a few
  // milliseconds later, the socket of a killed io_uring server, which its
  // ring's teardown (run after the process is gone, io_uring/io_uring.c
  // io_ring_exit_work) keeps listening until then: it takes the connection
  // and then resets it, unanswered.
  static Status nobody_answers(const sockaddr_un& addr, const std::string& path) {
    UniqueFd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return ok_status();
    const std::string hello = proto::encode(0, proto::Hello{});
    if (::send(probe.get(), hello.data(), hello.size(), MSG_NOSIGNAL) < 0) return ok_status();
    pollfd p{probe.get(), POLLIN, 0};
    if (poll(&p, 1, 2000) != 1)
      return Error{EADDRINUSE, "something listens on " + path + " but did not answer a hello within 2 s"};
    char reply[512];
    if (recv(probe.get(), reply, sizeof reply, 0) <= 0) return ok_status();  // reset or closed: nobody is there
    return Error{EADDRINUSE, "another server already listens on " + path};
  }

  // ---- completions ----

  void on(const Completion& c) {
    switch (what_of(c.token)) {
      case What::listen: return accepted(c.result);
      case What::signals: return signals();
      case What::child: return child_exited(id_of(c.token));
      case What::conn: {
        auto it = conns_.find(id_of(c.token));
        if (it == conns_.end()) return;
        Conn& conn = *it->second;
        --conn.pending;
        if (c.op == Completion::Op::receive) received(conn, c.result);
        else sent(conn, c.result);
        release_if_done(conn);
        return;
      }
    }
  }

  void accepted(int fd) {
    if (fd < 0) {
      if (!draining_ && fd != -ECANCELED) backend_->accept(listen_.get(), token(What::listen, 0));
      return;
    }
    if (!draining_) backend_->accept(listen_.get(), token(What::listen, 0));
    auto conn = std::make_unique<Conn>();
    conn->fd.reset(fd);
    if (!conn->buf.data()) return;  // no memory for its buffer: the connection closes at once
    conn->id = ++next_conn_;
    ++summary_.connections;
    Conn& c = *conn;
    conns_[c.id] = std::move(conn);
    // A refusal waits for the client's hello: closing a socket with unread
    // data resets the peer's, which would lose the reply (net/unix/af_unix.c
    // unix_release_sock()).
    auto who = peer_of(fd);
    if (!who) c.refusal = who.error();
    else c.who = *who;
    if (who)
      if (auto st = admitted(c.who, cfg_.allow_uids); !st) c.refusal = st.error();
    if (draining_) c.refusal = Error{ESHUTDOWN, "the server is shutting down"};
    receive(c);
  }

  void receive(Conn& c) {
    c.iov = {c.buf.data(), c.buf.size()};
    c.mh = {};
    c.mh.msg_iov = &c.iov;
    c.mh.msg_iovlen = 1;
    c.mh.msg_control = c.control;
    c.mh.msg_controllen = sizeof c.control;
    ++c.pending;
    backend_->receive(c.fd.get(), &c.mh, token(What::conn, c.id));
  }

  void received(Conn& c, int n) {
    std::vector<UniqueFd> fds = n > 0 ? take_fds(c.mh) : std::vector<UniqueFd>{};
    if (c.closing) return;
    if (n <= 0) return disconnect(c);  // EOF, or an error: the client is gone
    if (c.refusal) return refuse(c, 0, *c.refusal);
    if (c.mh.msg_flags & MSG_CTRUNC)
      return refuse(c, 0, Error{EPROTO, "more than " + std::to_string(proto::kMaxFds) + " descriptors in one message"});
    if ((c.mh.msg_flags & MSG_TRUNC) || static_cast<std::size_t>(n) > proto::kMaxMessage)
      return refuse(c, 0, Error{EMSGSIZE, "message above " + std::to_string(proto::kMaxMessage) + " bytes"});
    auto m = proto::parse(std::string_view(c.buf.data(), static_cast<std::size_t>(n)));
    if (!m) return refuse(c, 0, m.error());
    if (!fds.empty() && m->header.kind != proto::Kind::spawn)  // only a request places descriptors
      return refuse(
          c, m->header.id,
          Error{EPROTO, std::to_string(fds.size()) +
                            " descriptors came with a message of a kind that carries none (only spawn does)"});
    if (!c.greeted) {
      if (m->header.kind != proto::Kind::hello) return refuse(c, 0, Error{EPROTO, "the first message must be hello"});
      auto h = proto::decode_hello(*m);
      if (!h) return refuse(c, 0, h.error());
      if (h->min_version > proto::kVersion || h->max_version < proto::kVersion)
        return refuse(c, 0,
                      Error{EPROTONOSUPPORT, "the client speaks versions " + std::to_string(h->min_version) + ".." +
                                                 std::to_string(h->max_version) + ", this server " +
                                                 std::to_string(proto::kVersion)});
      c.greeted = true;
      proto::Welcome w;
      w.server_pid = getpid();
      w.backend = backend_->name();
      send(c, proto::encode(0, w));
      return receive(c);
    }
    const std::uint64_t id = m->header.id;
    switch (m->header.kind) {
      case proto::Kind::spawn: {
        auto r = proto::decode_request(*m, static_cast<int>(fds.size()));
        if (!r) return refuse(c, id, r.error());
        ++summary_.requests;
        spawn_for(c, id, *r, fds);
        break;
      }
      case proto::Kind::kill: {
        auto k = proto::decode_kill(*m);
        if (!k) return refuse(c, id, k.error());
        auto it = c.running.find(id);
        if (it == c.running.end()) {
          send(c, proto::encode(id, proto::Failed{ESRCH, 125, "no running process of request " + std::to_string(id)}));
        } else {
          Running& r = children_.at(it->second);
          (void)r.child.kill(k->signal, false);
        }
        break;
      }
      default: return refuse(c, id, Error{EPROTO, "a client does not send that kind of message"});
    }
    receive(c);
  }

  // ---- requests ----

  void spawn_for(Conn& c, std::uint64_t id, const proto::Request& req, std::vector<UniqueFd>& fds) {
    auto fail = [&](const Error& e) {
      ++summary_.refused;
      send(c, proto::encode(id, proto::Failed{e.err, spawn::failure_status(e), e.message}));
    };
    if (draining_) return fail(Error{ESHUTDOWN, "the server is shutting down"});
    if (c.running.count(id)) return fail(Error{EEXIST, "request id " + std::to_string(id) + " is still running"});
    if (static_cast<int>(children_.size()) >= cfg_.max_children)
      return fail(Error{
          EAGAIN, "the server runs " + std::to_string(children_.size()) + " processes, its limit (--max-children)"});
    auto planned = options_for(req, fds, c.who);
    if (!planned) return fail(planned.error());
    std::string fallback = planned->warm_refusal;
    Result<spawn::Child> child = Error{};
    bool warm = false;
    if (req.warm && fallback.empty()) {
      warm::Report report;
      child = pool_for(c.who).spawn(planned->options, &report);
      warm = report.warm;
      fallback = report.fallback_reason;
    } else {
      child = spawn::spawn(planned->options);
    }
    fds.clear();  // the child has its copies
    if (!child) return fail(child.error());
    ++summary_.spawned;
    if (warm) ++summary_.warm;
    const std::uint64_t key = ++next_child_;
    proto::Spawned s{child->pid(), warm, req.warm ? fallback : std::string()};
    auto out = std::make_unique<Outgoing>();
    out->bytes = proto::encode(id, s);
    out->fd.reset(fcntl(child->pidfd(), F_DUPFD_CLOEXEC, 0));
    backend_->readable(child->pidfd(), token(What::child, key));
    children_.emplace(key, Running{c.id, id, std::move(*child), req.detach});
    c.running[id] = key;
    queue(c, std::move(out));
  }

  warm::Pool& pool_for(const Client& who) {
    auto& p = pools_[std::to_string(who.uid)];
    if (!p) p = std::make_unique<warm::Pool>(cfg_.warm);
    return *p;
  }

  void child_exited(std::uint64_t key) {
    auto it = children_.find(key);
    if (it == children_.end()) return;
    Running& r = it->second;
    auto e = r.child.wait();
    auto conn = conns_.find(r.conn);
    if (conn != conns_.end() && !conn->second->closing) {
      Conn& c = *conn->second;
      c.running.erase(r.request);
      if (e) send(c, proto::encode(r.request, exited_of(*e)));
      else send(c, proto::encode(r.request, proto::Failed{e.error().err, 125, e.error().message}));
    }
    children_.erase(it);
  }

  static proto::Exited exited_of(const spawn::Child::Exit& e) {
    proto::Exited x;
    x.exited = e.exited;
    x.status = e.status;
    x.core_dumped = e.core_dumped;
    auto us = [](const timeval& t) {
      return static_cast<std::uint64_t>(t.tv_sec) * 1000000 + static_cast<std::uint64_t>(t.tv_usec);
    };
    x.utime_us = us(e.usage.ru_utime);
    x.stime_us = us(e.usage.ru_stime);
    x.maxrss_kb = static_cast<std::uint64_t>(e.usage.ru_maxrss);
    x.minflt = static_cast<std::uint64_t>(e.usage.ru_minflt);
    x.majflt = static_cast<std::uint64_t>(e.usage.ru_majflt);
    x.nvcsw = static_cast<std::uint64_t>(e.usage.ru_nvcsw);
    x.nivcsw = static_cast<std::uint64_t>(e.usage.ru_nivcsw);
    return x;
  }

  // ---- sending ----

  bool sending() const {
    for (const auto& [id, c] : conns_)
      if (!c->out.empty()) return true;
    return false;
  }

  void send(Conn& c, std::string bytes) {
    auto out = std::make_unique<Outgoing>();
    out->bytes = std::move(bytes);
    queue(c, std::move(out));
  }

  void queue(Conn& c, std::unique_ptr<Outgoing> out) {
    c.out.push_back(std::move(out));
    if (c.out.size() == 1) send_first(c);
  }

  void send_first(Conn& c) {
    ++c.pending;
    backend_->send(c.fd.get(), c.out.front()->prepare(), token(What::conn, c.id));
  }

  void sent(Conn& c, int result) {
    if (!c.out.empty()) c.out.pop_front();
    if (result < 0 && !c.closing) return disconnect(c);
    if (!c.out.empty() && !(c.closing && result < 0)) send_first(c);
  }

  // ---- the end of a connection ----

  // A clear error reply, then the connection closes (id 0: about the
  // connection itself).
  void refuse(Conn& c, std::uint64_t id, const Error& e) {
    ++summary_.refused;
    send(c, proto::encode(id, proto::Failed{e.err, spawn::failure_status(e), e.message}));
    c.closing = true;  // closed once the reply is out
    end_processes(c);
    release_if_done(c);
  }

  void disconnect(Conn& c) {
    c.closing = true;
    end_processes(c);
    backend_->forget(c.fd.get());
    release_if_done(c);
  }

  // The client's processes end with it, unless detached.
  void end_processes(Conn& c) {
    for (auto& [request, key] : c.running) {
      auto it = children_.find(key);
      if (it != children_.end() && !it->second.detach)
        (void)it->second.child.kill(SIGKILL, it->second.child.leads_group());
    }
    c.running.clear();
  }

  void release_if_done(Conn& c) {
    if (!c.closing) return;
    if (c.pending > 0) {
      // Replies still going out are waited for; a receive outstanding is not.
      if (c.out.empty()) backend_->forget(c.fd.get());
      return;
    }
    // What the client sent meanwhile is read and dropped (its descriptors
    // too: MSG_CTRUNC discards them), so that closing does not reset the
    // client's side before it reads our last reply.
    char sink[512];
    while (recv(c.fd.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    conns_.erase(c.id);
  }

  // ---- signals ----

  void signals() {
    signalfd_siginfo si;
    bool child = false;
    while (read(sigfd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGCHLD) child = true;
      else if (!draining_) drain();
    }
    if (child) reap_orphans();
    backend_->readable(sigfd_.get(), token(What::signals, 0));
  }

  void drain() {
    draining_ = true;
    deadline_ = clock::now() + cfg_.grace;
    backend_->forget(listen_.get());
    if (!path_.empty()) unlink(path_.c_str());
    path_.clear();
    for (auto& [key, r] : children_) (void)r.child.kill(SIGTERM, r.child.leads_group());
  }

  // Processes we reap that no request tracks: orphans reparented to us as
  // subreaper (a tracked child is reaped by its Child, templates and spares
  // by their pool; a waitid here on one of those would only find it running).
  void reap_orphans() {
    std::set<pid_t> tracked;
    for (auto& [key, r] : children_) tracked.insert(r.child.pid());
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
      std::ifstream in(task.path() / "children");
      for (pid_t p; in >> p;) {
        if (tracked.count(p) || !orphan_zombie(p)) continue;
        siginfo_t info{};
        waitid(P_PID, static_cast<id_t>(p), &info, WEXITED | WNOHANG);
      }
    }
  }

  // A zombie that is not one of the pools' templates (whose pool reaps it):
  // a process that came to us as an orphan.
  static bool orphan_zombie(pid_t p) {
    std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
  }

  Config cfg_;
  std::unique_ptr<Backend> backend_;
  UniqueFd listen_, sigfd_;
  std::string path_;  // ours to remove
  std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<std::uint64_t, Running> children_;
  std::map<std::string, std::unique_ptr<warm::Pool>> pools_;
  std::uint64_t next_conn_ = 0, next_child_ = 0;
  bool draining_ = false, killed_all_ = false;
  clock::time_point deadline_;
  Summary summary_;
};

}  // namespace

Result<Summary> serve(const Config& config) {
  Server s(config);
  return s.run();
}

}  // namespace procforge::server
