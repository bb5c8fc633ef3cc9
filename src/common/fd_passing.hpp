// One datagram with descriptors attached (SCM_RIGHTS, unix(7)): the one
// sender every local socket of procforge uses (the warm pool's control
// socket, the spawn server's clients).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace procforge {

// sendmsg of bytes with fds, retried on EINTR; the result of sendmsg.
inline ssize_t send_with_fds(int socket, std::string_view bytes, const std::vector<int>& fds,
                             int flags = MSG_NOSIGNAL) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(socket, &mh, flags);
  while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace procforge
