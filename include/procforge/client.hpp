// procforge::client: spawning through a procforge server (procforge/server.hpp).
// The request carries what spawn::Options says, resolved on the client's
// side: its environment, its cwd, and its descriptors (stdio, dup2 sources,
// files it opens itself, the child's end of pipes), passed as SCM_RIGHTS.
// Controls that act before or at execve with privilege (namespaces, cgroups,
// capabilities, seccomp, a controlling terminal) are refused: run those
// with spawn::spawn directly.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "procforge/result.hpp"
#include "procforge/spawn.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::client {

// What the server said of a spawn besides the process.
struct Spawned {
  bool warm = false;            // from a warm template
  std::string fallback_reason;  // asked warm, started cold: why
};

class Connection {
 public:
  // Connects and makes the handshake. Empty path: the default socket.
  static Result<Connection> connect(const std::string& path = {});
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ~Connection();

  // Asks for a process and waits for the server's answer. The process is
  // the server's child, not ours, yet the handle is the same spawn::Child:
  // its pidfd polls and signals it, wait() (with a timeout, which kills
  // as for a local child) takes its exit from the connection, and a failed
  // spawn gives the error a local one would (spawn::failure_status()).
  // detach: the process keeps running when this connection ends.
  Result<spawn::Child> spawn(const spawn::Options& o, bool warm = false, bool detach = false, Spawned* info = nullptr);

  [[nodiscard]] const std::string& backend() const { return backend_; }
  [[nodiscard]] pid_t server_pid() const { return server_pid_; }

  struct State;  // the socket and the events read ahead, shared with the handles

 private:
  Connection() = default;
  std::shared_ptr<State> state_;
  std::string backend_;
  pid_t server_pid_ = -1;
};

}  // namespace procforge::client

#pragma GCC visibility pop
