// The control channel between a Pool and one of its templates: a
// SOCK_SEQPACKET socketpair, the template's end at kControlFd. One message a
// datagram, each starting with a Header.
//
//   template -> pool  ready    facts recorded before main, as text lines (see agent.cpp)
//   pool -> template  spawn    a spawn::Block flattened (below); the dup sources as SCM_RIGHTS
//   template -> pool  spare    SpareNotice: the pid of the copy now waiting for the next
//                     request (agent.cpp hold_spares()); the pool reaps the last one
//   instance -> pool  a bare spawn::Report (no Header): step 0 and the instance's pid once
//                     it enters main, or the step and errno of the control that failed, as a
//                     cold child reports it. The instance writes it itself, so the template
//                     goes back to its next request at once after the clone, and a
//                     spare becomes the instance with no fork on the request's path.
//   template -> pool  spawned  SpawnedReply with pid -1: the clone itself failed
//   template -> pool  refused  RefusedReply + text: why no instance was made
//   pool -> template  fork_only  a Header alone: fork as for an instance, but the copy
//                     exits at once (the floor under an instance, for benchmarks);
//                     the template answers with SpawnedReply (pid, step 0)
//
// The spawn request is the same Block a cold spawn hands to its child
// (spawn/plan.hpp): the instance runs spawn::child_main() on it, so a warm
// instance applies the controls in the same order, with the same errors, as
// a cold child; only execve is replaced by entering main(). Pointers travel
// as offsets into the message (offset + 1; 0 is null), rebased by the agent.
// This header is compiled into the agent, which has no C++ runtime: nothing
// below may allocate or throw on the agent's side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "spawn/plan.hpp"

namespace procforge::warm::wire {

// Where the template keeps its end of the control socket: high enough that
// the program's own opens before main get the numbers a cold start gives them
// (unless it opens 60 or more), and below 64, the size of a new process's fd
// table (fs/file.c NR_OPEN_DEFAULT): a higher fd grows the template's table,
// which every instance then copies (dup_fd) and close_range walks, a few
// microseconds each per spawn.
constexpr int kControlFd = 63;
constexpr const char* kFdVariable = "PROCFORGE_WARM_FD";
constexpr std::uint32_t kMagic = 0x31776670;  // "pfw1"
constexpr std::size_t kMaxMessage = 1 << 20;  // the agent's receive buffer
constexpr int kMaxFds = 64;                   // descriptors one spawn may pass

enum class Kind : std::uint32_t { ready = 1, spawn = 2, spawned = 3, refused = 4, fork_only = 5, spare = 6 };

struct Header {
  std::uint32_t magic = kMagic;
  Kind kind = Kind::ready;
};

struct SpawnedReply {
  Header h{kMagic, Kind::spawned};
  std::int32_t pid = -1;   // -1: the clone itself failed (report.err)
  spawn::Report report{};  // step 0 and report.pid: the instance entered main
};
static_assert(sizeof(SpawnedReply) != sizeof(spawn::Report));

struct SpareNotice {
  Header h{kMagic, Kind::spare};
  std::int32_t pid = -1;
};
static_assert(sizeof(SpareNotice) != sizeof(spawn::Report));

struct RefusedReply {
  Header h{kMagic, Kind::refused};
  // followed by the reason, not NUL-terminated
};

// ---- the agent's side: rebase a received request in place ----------------

// Checks every offset of a flattened Block against the message and turns it
// back into a pointer. False when the message is malformed.
//
// Nothing may point below `floor` (the header and the Block itself): the
// rebasing writes pointers into the Block and into fd_ops, so an array or
// string lying over those fields would change after it was checked.
class Rebaser {
 public:
  Rebaser(char* base, std::size_t size, std::size_t floor = 0) : base_(base), size_(size), floor_(floor) {}

  template <class T>
  bool array(T*& p, long count) {
    auto off = reinterpret_cast<std::uintptr_t>(p);
    if (off == 0) return count == 0;
    --off;
    if (count < 0 || off < floor_ || off > size_ || static_cast<std::size_t>(count) > (size_ - off) / sizeof(T) ||
        off % alignof(T) != 0)
      return false;
    p = reinterpret_cast<T*>(base_ + off);
    return true;
  }

  bool string(const char*& s) {
    auto off = reinterpret_cast<std::uintptr_t>(s);
    if (off == 0) return true;
    --off;
    if (off < floor_ || off >= size_ || std::memchr(base_ + off, 0, size_ - off) == nullptr) return false;
    s = base_ + off;
    return true;
  }

  // A NULL-terminated array of strings (argv, envp); count set to its length.
  bool strings(char* const*& v, long& count) {
    auto off = reinterpret_cast<std::uintptr_t>(v);
    if (off == 0) return false;
    --off;
    if (off < floor_ || off > size_ || off % alignof(char*) != 0) return false;
    auto* slots = reinterpret_cast<char**>(base_ + off);
    std::size_t max = (size_ - off) / sizeof(char*);
    for (std::size_t i = 0; i < max; ++i) {
      if (slots[i] == nullptr) {
        count = static_cast<long>(i);
        v = slots;
        return true;
      }
      const char* s = slots[i];
      if (!string(s)) return false;
      slots[i] = const_cast<char*>(s);
    }
    return false;
  }

 private:
  char* base_;
  std::size_t size_, floor_;
};

// The Block of a spawn request, rebased; nullptr when malformed or when it
// asks for something an instance cannot do (the pool never sends those).
inline spawn::Block* rebase_block(char* msg, std::size_t size, long& argc, long& envc) {
  if (size < sizeof(Header) + sizeof(spawn::Block)) return nullptr;
  auto* b = reinterpret_cast<spawn::Block*>(msg + sizeof(Header));
  Rebaser r(msg, size, sizeof(Header) + sizeof(spawn::Block));
  if (!r.strings(b->argv, argc) || !r.strings(b->envp, envc) || argc < 1) return nullptr;
  if (!r.string(b->cwd) || !r.array(b->fd_ops, b->nfd_ops) || !r.array(b->keep_fds, b->nkeep_fds) ||
      !r.array(b->kept, b->nkept) || !r.array(b->ignore, b->nignore) || !r.array(b->rlimits, b->nrlimits) ||
      !r.array(b->groups, b->ngroups))
    return nullptr;
  for (int i = 0; i < b->nfd_ops; ++i)
    if (!r.string(b->fd_ops[i].path)) return nullptr;
  if (b->candidates || b->replace || b->filter || b->cgroup_procs || b->v2_procs || b->ctty || b->hostname ||
      b->sync_fd >= 0 || b->pdeathsig)
    return nullptr;
  return b;
}

}  // namespace procforge::warm::wire
