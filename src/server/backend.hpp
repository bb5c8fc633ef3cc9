// The server's event loop under one interface, two implementations: io_uring
// (backend_uring.cpp: accept, recvmsg, sendmsg and readiness all submitted
// to the ring and completed there) and epoll (backend_epoll.cpp: readiness,
// then the same calls made directly). The server asks for operations and
// reacts to their completions; it does not know which backend runs them.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"

namespace procforge::server {

struct Completion {
  enum class Op { accept, receive, send, readable } op = Op::accept;
  std::uint64_t token = 0;
  int result = 0;  // accept: the new fd; receive/send: bytes; readable: 0; or -errno
};

class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual const char* name() const = 0;
  // One accept4(SOCK_CLOEXEC) on a listening socket.
  virtual void accept(int fd, std::uint64_t token) = 0;
  // One recvmsg(MSG_CMSG_CLOEXEC) into msg, which stays alive until it completes.
  virtual void receive(int fd, msghdr* msg, std::uint64_t token) = 0;
  // One sendmsg(MSG_NOSIGNAL) of msg, alive until it completes.
  virtual void send(int fd, msghdr* msg, std::uint64_t token) = 0;
  // fd becomes readable (a pidfd's process exited, a signalfd has a signal).
  virtual void readable(int fd, std::uint64_t token) = 0;
  // Ends every operation still outstanding on fd: each completes, with
  // -ECANCELED unless it had already finished; call before closing fd, and
  // keep the operations' buffers until their completions are in.
  virtual void forget(int fd) = 0;
  // Appends completions; waits up to timeout_ms (-1: until one comes).
  virtual Status wait(std::vector<Completion>& out, int timeout_ms) = 0;
};

// "io_uring", "epoll" or "auto" (io_uring unless the kernel or a seccomp
// filter refuses io_uring_setup; then epoll, and `why` says why).
Result<std::unique_ptr<Backend>> make_backend(std::string_view which, std::string& why);

std::unique_ptr<Backend> make_epoll_backend();
Result<std::unique_ptr<Backend>> make_uring_backend();

}  // namespace procforge::server
