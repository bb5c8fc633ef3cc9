// The epoll backend: each operation waits for its fd's readiness, then the
// call is made directly. Sends are tried at once (a local SEQPACKET send
// rarely blocks) and wait for EPOLLOUT only when the socket is full.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <map>

#include "server/backend.hpp"

namespace procforge::server {

namespace {

class Epoll final : public Backend {
 public:
  Epoll() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Epoll() override {
    if (ep_ >= 0) close(ep_);
  }
  [[nodiscard]] const char* name() const override { return "epoll"; }

  void accept(int fd, std::uint64_t token) override { add(fd, {Completion::Op::accept, token, nullptr}); }
  void receive(int fd, msghdr* msg, std::uint64_t token) override { add(fd, {Completion::Op::receive, token, msg}); }
  void readable(int fd, std::uint64_t token) override { add(fd, {Completion::Op::readable, token, nullptr}); }
  void send(int fd, msghdr* msg, std::uint64_t token) override {
    ssize_t n = sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      done_.push_back({Completion::Op::send, token, n >= 0 ? static_cast<int>(n) : -errno});
      return;
    }
    add(fd, {Completion::Op::send, token, msg});
  }
  void forget(int fd) override {
    if (waiting_.count(fd)) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    fail_all(fd, -ECANCELED);
  }

  Status wait(std::vector<Completion>& out, int timeout_ms) override {
    if (!done_.empty()) timeout_ms = 0;
    epoll_event ev[64];
    int n = epoll_wait(ep_, ev, 64, timeout_ms);
    if (n < 0 && errno != EINTR) return Error{errno, "epoll_wait"};
    for (int i = 0; i < n; ++i) run_ready(ev[i].data.fd, ev[i].events);
    out.insert(out.end(), done_.begin(), done_.end());
    done_.clear();
    return ok_status();
  }

 private:
  struct Pending {
    Completion::Op op;
    std::uint64_t token;
    msghdr* msg;
  };

  static std::uint32_t interest(const std::deque<Pending>& ops) {
    std::uint32_t e = 0;
    for (const auto& p : ops) e |= p.op == Completion::Op::send ? EPOLLOUT : EPOLLIN;
    return e;
  }

  void add(int fd, Pending p) {
    auto [it, fresh] = waiting_.try_emplace(fd);
    it->second.push_back(p);
    watch(fd, fresh);
  }

  void watch(int fd, bool fresh) {
    epoll_event ev{};
    ev.events = interest(waiting_[fd]);
    ev.data.fd = fd;
    if (epoll_ctl(ep_, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0)
      // Not pollable (or closed): the operation fails as its call would.
      fail_all(fd, -errno);
  }

  void fail_all(int fd, int err) {
    auto it = waiting_.find(fd);
    if (it == waiting_.end()) return;
    for (const auto& p : it->second) done_.push_back({p.op, p.token, err});
    waiting_.erase(it);
  }

  // Runs the first waiting operation of each kind the events allow.
  void run_ready(int fd, std::uint32_t events) {
    auto it = waiting_.find(fd);
    if (it == waiting_.end()) return;
    auto& ops = it->second;
    const bool in = events & (EPOLLIN | EPOLLHUP | EPOLLERR), out = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    for (auto p = ops.begin(); p != ops.end();) {
      const bool wants_out = p->op == Completion::Op::send;
      if (wants_out ? !out : !in) {
        ++p;
        continue;
      }
      int r = 0;
      switch (p->op) {
        case Completion::Op::accept: r = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK); break;
        case Completion::Op::receive: r = static_cast<int>(recvmsg(fd, p->msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)); break;
        case Completion::Op::send: r = static_cast<int>(sendmsg(fd, p->msg, MSG_NOSIGNAL | MSG_DONTWAIT)); break;
        case Completion::Op::readable: r = 0; break;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ++p;
        continue;
      }
      done_.push_back({p->op, p->token, r < 0 ? -errno : r});
      p = ops.erase(p);
    }
    if (ops.empty()) {
      waiting_.erase(it);
      epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    } else {
      watch(fd, false);
    }
  }

  int ep_;
  std::map<int, std::deque<Pending>> waiting_;
  std::vector<Completion> done_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend() { return std::make_unique<Epoll>(); }

}  // namespace procforge::server
