// A client's request as spawn::Options. The child applies descriptors and
// limits before it changes credentials (spawn/child.cpp child_main()), so a
// server running as root checks here what only privilege could do for a
// client of another uid: lower nice, raise a hard limit, take other ids.
// Files are never opened by the server for a client: the client opens them
// and passes descriptors, with its own permissions.
#include "server/requests.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

namespace procforge::server {

Result<Client> peer_of(int fd) {
  Client c;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return Error::call(ErrorStep::unspecified, errno, "reading the client's credentials (SO_PEERCRED)");
  c.pid = cred.pid;
  c.uid = cred.uid;
  c.gid = cred.gid;
  // net/core/sock.c: SO_PEERGROUPS gives the groups of the peer's
  // credentials at connect(); ERANGE says how much room they need.
  std::vector<gid_t> g(64);
  for (;;) {
    len = static_cast<socklen_t>(g.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g.data(), &len) == 0) {
      g.resize(len / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE)
      return Error::call(ErrorStep::unspecified, errno, "reading the client's groups (SO_PEERGROUPS)");
    g.resize(len / sizeof(gid_t) + 1);
  }
  c.groups = std::move(g);
  return c;
}

Status admitted(const Client& who, const std::vector<uid_t>& allow) {
  if (who.uid == geteuid() || who.uid == 0 || std::find(allow.begin(), allow.end(), who.uid) != allow.end())
    return ok_status();
  return Error{EACCES, "uid " + std::to_string(who.uid) + " may not use this server (it serves uid " +
                           std::to_string(geteuid()) + ", root and --allow-uid)"};
}

namespace {

// What only privilege gives, refused for a client of another uid when the
// server has it.
Status within_client_rights(const proto::Request& r, const Client& who) {
  auto deny = [](const std::string& what) { return Error{EPERM, what}; };
  if (r.uid && *r.uid != who.uid)
    return deny("uid " + std::to_string(*r.uid) + ": a client of uid " + std::to_string(who.uid) +
                " runs its processes as itself");
  if (r.gid && *r.gid != who.gid && std::find(who.groups.begin(), who.groups.end(), *r.gid) == who.groups.end())
    return deny("gid " + std::to_string(*r.gid) + " is not one of the client's groups");
  if (r.groups)
    for (gid_t g : *r.groups)
      if (g != who.gid && std::find(who.groups.begin(), who.groups.end(), g) == who.groups.end())
        return deny("group " + std::to_string(g) + " is not one of the client's groups");
  errno = 0;
  int current = getpriority(PRIO_PROCESS, 0);
  if (r.nice && *r.nice < current)
    return deny("nice " + std::to_string(*r.nice) + " is below the server's " + std::to_string(current) +
                " (only privilege lowers it)");
  for (const auto& l : r.rlimits) {
    rlimit now{};
    getrlimit(static_cast<__rlimit_resource>(l.resource), &now);
    if (l.hard > now.rlim_max)
      return deny("a hard limit of resource " + std::to_string(l.resource) +
                  " above the server's (only privilege raises it)");
  }
  return ok_status();
}

}  // namespace

Result<Planned> options_for(const proto::Request& r, const std::vector<UniqueFd>& fds, const Client& who) {
  Planned p;
  spawn::Options& o = p.options;
  o.path = r.path;
  o.search_path = r.search_path;
  o.argv = r.argv;
  o.inherit_env = false;
  o.envp = r.envp;
  o.cwd = r.cwd.empty() ? "/" : r.cwd;
  // Descriptors: 0-2 default to /dev/null (never the server's own).
  o.stdin_.kind = o.stdout_.kind = o.stderr_.kind = spawn::Stdio::Kind::null;
  spawn::Stdio* stdio[3] = {&o.stdin_, &o.stdout_, &o.stderr_};
  for (const auto& f : r.fds) {
    if (f.target < 3) {
      if (f.index >= 0) {
        stdio[f.target]->kind = spawn::Stdio::Kind::fd;
        stdio[f.target]->fd = fds[static_cast<std::size_t>(f.index)].get();
      }
      continue;
    }
    if (f.index < 0) o.fd_actions.push_back({spawn::FdAction::Kind::open, f.target, -1, "/dev/null", O_RDWR, 0});
    else
      o.fd_actions.push_back(
          {spawn::FdAction::Kind::dup2, f.target, fds[static_cast<std::size_t>(f.index)].get(), {}, 0, 0});
  }
  o.close_other_fds = true;
  if (r.umask) o.umask = static_cast<mode_t>(*r.umask);
  o.nice = r.nice;
  for (const auto& l : r.rlimits) o.rlimits.push_back({l.resource, l.soft, l.hard});
  if (r.signal_mask) {
    sigset_t m;
    sigemptyset(&m);
    for (int s = 1; s <= 64 && s < NSIG; ++s)
      if (*r.signal_mask & (std::uint64_t{1} << (s - 1))) sigaddset(&m, s);
    o.signal_mask = m;
  }
  o.reset_signal_dispositions = r.reset_signal_dispositions;
  o.ignore_signals = r.ignore_signals;
  o.setsid = r.setsid;
  // A group of its own unless the request names one: what the process starts
  // (a shell's commands) then ends with it when the server kills it for a
  // client that went away or for a drain (kill(-pgid)); the server's own
  // group is no client's terminal group, so nothing else changes for it.
  if (r.process_group) o.process_group = *r.process_group;
  else if (!r.setsid) o.process_group = 0;
  o.no_new_privs = r.no_new_privs;

  // Credentials: a server of another uid (root) runs the process as the client.
  const bool other = geteuid() == 0 && who.uid != 0;
  if (other) {
    if (auto st = within_client_rights(r, who); !st) return st.error();
    o.uid = who.uid;
    o.gid = r.gid ? *r.gid : who.gid;
    o.groups = r.groups ? std::vector<gid_t>(r.groups->begin(), r.groups->end()) : who.groups;
    p.warm_refusal = "warm templates run as the server's uid " + std::to_string(geteuid()) + "; a process of uid " +
                     std::to_string(who.uid) + " starts cold";
  } else {
    if (r.uid) o.uid = *r.uid;
    if (r.gid) o.gid = *r.gid;
    if (r.groups) o.groups = std::vector<gid_t>(r.groups->begin(), r.groups->end());
  }
  return p;
}

}  // namespace procforge::server
