// The C API of the spawn server's client (procforge/procforge_client.h): a
// thin layer over client::Connection that keeps each spawn::Child until it
// is waited for.
#include "procforge/procforge_client.h"

#include <cstring>
#include <map>

#include "procforge/client.hpp"

struct procforge_client {
  procforge::client::Connection connection;
  std::map<pid_t, procforge::spawn::Child> children;
};

namespace {

void say(char* err, std::size_t errlen, const std::string& what) {
  if (!err || errlen == 0) return;
  std::size_t n = std::min(what.size(), errlen - 1);
  std::memcpy(err, what.data(), n);
  err[n] = 0;
}

std::vector<std::string> strings(const char* const* v) {
  std::vector<std::string> out;
  for (; v && *v; ++v) out.emplace_back(*v);
  return out;
}

}  // namespace

extern "C" procforge_client* procforge_client_connect(const char* socket_path, char* err, size_t errlen) {
  auto c = procforge::client::Connection::connect(socket_path ? socket_path : "");
  if (!c) {
    say(err, errlen, c.error().message);
    return nullptr;
  }
  return new procforge_client{std::move(*c), {}};
}

extern "C" void procforge_client_close(procforge_client* c) { delete c; }

extern "C" pid_t procforge_client_spawn(procforge_client* c, const char* const* argv, const char* const* envp,
                                        const char* cwd, int warm, int* pidfd, int* status, char* err, size_t errlen) {
  if (!c || !argv || !argv[0]) {
    say(err, errlen, "procforge_client_spawn: no client or no argv[0]");
    if (status) *status = 125;
    return -1;
  }
  procforge::spawn::Options o;
  o.path = argv[0];
  o.argv = strings(argv);
  if (envp) {
    o.inherit_env = false;
    o.envp = strings(envp);
  }
  if (cwd) o.cwd = cwd;
  auto child = c->connection.spawn(o, warm != 0);
  if (!child) {
    say(err, errlen, child.error().message);
    if (status) *status = procforge::spawn::failure_status(child.error());
    return -1;
  }
  const pid_t pid = child->pid();
  if (pidfd) *pidfd = child->pidfd();
  c->children.insert_or_assign(pid, std::move(*child));
  return pid;
}

extern "C" int procforge_client_wait(procforge_client* c, pid_t pid, char* err, size_t errlen) {
  auto it = c ? c->children.find(pid) : decltype(c->children.end()){};
  if (!c || it == c->children.end()) {
    say(err, errlen, "procforge_client_wait: pid " + std::to_string(pid) + " was not started by this client");
    return -1;
  }
  auto e = it->second.wait();
  c->children.erase(it);
  if (!e) {
    say(err, errlen, e.error().message);
    return -1;
  }
  return e->shell_status();
}
