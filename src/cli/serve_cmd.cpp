// `procforge serve [--socket PATH] [--backend io_uring|epoll|auto]
// [--max-children N] [--allow-uid UID]... [--warm-max-uses N]
// [--warm-max-age S] [--grace S]`: the spawn server (procforge/server.hpp)
// in the foreground until SIGTERM or SIGINT. Clients: `procforge run
// --server`, the library (procforge/client.hpp). Exits 0 after a drain, 1
// when it cannot serve (the socket, the backend), 2 on bad usage.
#include <pwd.h>

#include <cstdlib>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "procforge/server.hpp"

namespace procforge::cli {

namespace {

struct ServeOptions {
  std::string socket, backend = "auto";
  int max_children = 1024;
  std::vector<std::string> allow;
  unsigned warm_max_uses = 256;
  double warm_max_age_s = 60, grace_s = 5;
};

void ready(const char* path, const char* backend, void*) {
  std::cerr << "procforge serve: listening on " << path << " (" << backend << ")" << std::endl;
}

int serve_main(const ServeOptions& o) {
  server::Config c;
  c.socket_path = o.socket;
  c.backend = o.backend;
  c.max_children = o.max_children;
  for (const auto& u : o.allow) {
    char* end = nullptr;
    unsigned long id = strtoul(u.c_str(), &end, 10);
    if (!u.empty() && *end == 0) {
      c.allow_uids.push_back(static_cast<uid_t>(id));
    } else if (const passwd* pw = getpwnam(u.c_str())) {
      c.allow_uids.push_back(pw->pw_uid);
    } else {
      print_error("serve", "--allow-uid takes a user name or id, and '" + u + "' is neither");
      return kExitCannot;
    }
  }
  c.warm.max_uses = o.warm_max_uses;
  c.warm.max_age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::duration<double>(o.warm_max_age_s));
  c.grace = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(o.grace_s));
  c.listen_fd = server::socket_activation_fd();
  c.on_ready = ready;
  auto s = server::serve(c);
  if (!s) {
    print_error("serve", s.error().message);
    return s.error().err == EINVAL ? kExitCannot : kExitFails;
  }
  std::cerr << "procforge serve: stopped after " << s->connections << " connections, " << s->requests << " requests, "
            << s->spawned << " processes (" << s->warm << " warm), " << s->refused << " refused" << std::endl;
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<ServeOptions>();
  auto* s = app.add_subcommand("serve", "Run the spawn server: create processes for clients on a Unix socket");
  s->add_option("--socket", o->socket,
                "Socket path (default $XDG_RUNTIME_DIR/procforge.sock, or /run/procforge/procforge.sock for root)");
  s->add_option("--backend", o->backend, "io_uring, epoll or auto (io_uring unless refused)")
      ->check(CLI::IsMember({"io_uring", "epoll", "auto"}));
  s->add_option("--max-children", o->max_children, "Refuse requests beyond this many running processes (default 1024)")
      ->check(CLI::PositiveNumber);
  s->add_option("--allow-uid", o->allow, "Also serve this user (name or id; repeatable); the socket is then 0666");
  s->add_option("--warm-max-uses", o->warm_max_uses, "A fresh template after this many instances (default 256)")
      ->check(CLI::PositiveNumber);
  s->add_option("--warm-max-age", o->warm_max_age_s, "A fresh template after this many seconds (default 60)")
      ->check(CLI::PositiveNumber);
  s->add_option("--grace", o->grace_s, "On SIGTERM: seconds between SIGTERM and SIGKILL to the children (default 5)")
      ->check(CLI::NonNegativeNumber);
  commands.push_back({s, [o](std::vector<std::string> rest) {
                        if (!rest.empty()) {
                          print_error("serve", "takes no PROGRAM; clients send their own (procforge run --server)");
                          return kExitCannot;
                        }
                        return serve_main(*o);
                      }});
}

}  // namespace procforge::cli
