// procforge::server: a persistent spawn server. It listens on a Unix
// SOCK_SEQPACKET socket, creates processes for the clients that connect
// (as those clients: their uid and gids, never more), keeps warm templates
// (procforge/warm.hpp) alive between client invocations, and reports each
// process's pid (with a pidfd) and its exit. The event loop runs on io_uring
// where the kernel allows it, else on epoll. The protocol: docs/server.md;
// the client side: procforge/client.hpp.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "procforge/result.hpp"
#include "procforge/warm.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::server {

struct Config {
  std::string socket_path;        // empty: default_socket_path()
  std::string backend = "auto";   // io_uring, epoll or auto
  int max_children = 1024;        // requests beyond this many running processes are refused (EAGAIN)
  std::vector<uid_t> allow_uids;  // besides the server's own uid and root
  warm::Limits warm;
  std::chrono::milliseconds grace{5000};  // SIGTERM: children get SIGTERM, SIGKILL after this
  int listen_fd = -1;                     // an inherited listening socket (systemd's LISTEN_FDS); -1: bind socket_path
  // Called once the socket listens (tests, the CLI's "listening" line).
  void (*on_ready)(const char* path, const char* backend, void* arg) = nullptr;
  void* on_ready_arg = nullptr;
};

// $XDG_RUNTIME_DIR/procforge.sock, else /run/procforge/procforge.sock for
// root, else an error naming both.
Result<std::string> default_socket_path();

// The fd systemd passed (LISTEN_PID is us and LISTEN_FDS >= 1), or -1.
int socket_activation_fd();

struct Summary {
  std::string backend, backend_fallback;  // which ran, and why not io_uring when auto fell back
  std::uint64_t connections = 0, requests = 0, spawned = 0, warm = 0, refused = 0;
};

// Serves until SIGTERM or SIGINT (then drains: no new requests, children
// get SIGTERM then SIGKILL after `grace`, templates stop, the socket is
// removed). Blocks those signals and SIGCHLD in the calling thread.
Result<Summary> serve(const Config& config);

}  // namespace procforge::server

#pragma GCC visibility pop
