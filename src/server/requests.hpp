// Who a client is and what it may ask: the peer's credentials
// (SO_PEERCRED, SO_PEERGROUPS), whether the server admits it, and its
// request turned into the spawn::Options of a process that runs as that
// client and never with more than it has.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "procforge/spawn.hpp"
#include "server/protocol.hpp"

namespace procforge::server {

struct Client {
  pid_t pid = -1;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;
};

Result<Client> peer_of(int fd);

// The server's own uid, root, and the allowed ones; EACCES for the rest.
Status admitted(const Client& who, const std::vector<uid_t>& allow);

struct Planned {
  spawn::Options options;
  std::string warm_refusal;  // why this client's processes cannot come from a warm template
};

// fds: the descriptors that came with the request (the child gets copies).
Result<Planned> options_for(const proto::Request& r, const std::vector<UniqueFd>& fds, const Client& who);

}  // namespace procforge::server
