// The io_uring backend (liburing): every operation is a submission and ends
// as a completion of the ring: IORING_OP_ACCEPT, IORING_OP_RECVMSG,
// IORING_OP_SENDMSG, and IORING_OP_POLL_ADD for readiness (a pidfd becomes
// readable when its process exits: kernel/pid.c pidfd_poll()). forget()
// cancels by fd (IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL, 5.19).
#include <liburing.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "server/backend.hpp"

namespace procforge::server {

namespace {

constexpr unsigned kEntries = 256;

class Uring final : public Backend {
 public:
  ~Uring() override { io_uring_queue_exit(&ring_); }
  [[nodiscard]] const char* name() const override { return "io_uring"; }

  // The server is one thread that both submits and reaps, so completions'
  // task work can wait for its next io_uring_enter instead of interrupting
  // it (IORING_SETUP_DEFER_TASKRUN with SINGLE_ISSUER, Linux 6.1; else
  // COOP_TASKRUN, 5.19; else the default, which signals the task).
  Status init() {
    int r = -EINVAL;
    for (unsigned flags : {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0u}) {
      r = io_uring_queue_init(kEntries, &ring_, flags);
      if (r != -EINVAL) break;  // EINVAL: flags this kernel does not know
    }
    if (r < 0) return Error{-r, "io_uring_setup"};
    return ok_status();
  }

  void accept(int fd, std::uint64_t token) override {
    io_uring_prep_accept(sqe(Completion::Op::accept, token), fd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  void receive(int fd, msghdr* msg, std::uint64_t token) override {
    io_uring_prep_recvmsg(sqe(Completion::Op::receive, token), fd, msg, MSG_CMSG_CLOEXEC);
  }
  void send(int fd, msghdr* msg, std::uint64_t token) override {
    io_uring_prep_sendmsg(sqe(Completion::Op::send, token), fd, msg, MSG_NOSIGNAL);
  }
  void readable(int fd, std::uint64_t token) override {
    io_uring_prep_poll_add(sqe(Completion::Op::readable, token), fd, POLLIN);
  }
  void forget(int fd) override {
    io_uring_sqe* s = get_sqe();
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, kCancel);
    // Submitted now: the caller closes fd next, and a cancel by fd must
    // find the requests while fd still names their file.
    io_uring_submit(&ring_);
  }

  Status wait(std::vector<Completion>& out, int timeout_ms) override {
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout_ms < 0) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{timeout_ms / 1000, static_cast<long long>(timeout_ms % 1000) * 1000000};
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (r < 0 && r != -ETIME && r != -EINTR) return Error{-r, "io_uring_enter"};
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == kCancel) continue;
      auto it = ops_.find(data);
      if (it == ops_.end()) continue;
      out.push_back({it->second.op, it->second.token, cqe->res});
      ops_.erase(it);
    }
    io_uring_cq_advance(&ring_, seen);
    return ok_status();
  }

 private:
  struct Op {
    Completion::Op op;
    std::uint64_t token;
  };
  static constexpr std::uint64_t kCancel = ~0ULL;

  io_uring_sqe* get_sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {  // the submission queue is full: hand it to the kernel
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }

  io_uring_sqe* sqe(Completion::Op op, std::uint64_t token) {
    io_uring_sqe* s = get_sqe();
    std::uint64_t key = ++next_;
    ops_[key] = {op, token};
    io_uring_sqe_set_data64(s, key);
    return s;
  }

  io_uring ring_{};
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, Op> ops_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_uring_backend() {
  auto u = std::make_unique<Uring>();
  if (auto st = u->init(); !st) return st.error();
  return std::unique_ptr<Backend>(std::move(u));
}

Result<std::unique_ptr<Backend>> make_backend(std::string_view which, std::string& why) {
  if (which == "epoll") return make_epoll_backend();
  if (which != "io_uring" && which != "auto")
    return Error{EINVAL, "--backend takes io_uring, epoll or auto, not '" + std::string(which) + "'"};
  auto u = make_uring_backend();
  if (u) return u;
  if (which == "io_uring")
    return Error{u.error().err,
                 "io_uring_setup was refused (" + std::string(strerrorname_np(u.error().err)) +
                     "): the kernel, a seccomp filter or kernel.io_uring_disabled; --backend epoll works"};
  why = std::string("io_uring_setup was refused (") + strerrorname_np(u.error().err) + "), using epoll";
  return make_epoll_backend();
}

}  // namespace procforge::server
