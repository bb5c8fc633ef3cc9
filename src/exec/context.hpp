// Shared state of one prediction: the request, the machine's facts, and the
// Prediction being filled in as the kernel's steps are replayed in order.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>

#include "common/unique_fd.hpp"
#include "procforge/exec.hpp"
#include "procforge/open_writers.hpp"

namespace procforge::exec {

// A file the kernel has opened for exec (open_exec): our read-only handle on it.
struct ExecFile {
  std::string path;      // as named (execve filename, #! interpreter, PT_INTERP)
  std::string resolved;  // after symlinks, for messages
  struct stat st {};
  UniqueFd fd;
  unsigned long mount_flags = 0;  // statfs f_flags of its mount (ST_NOEXEC, ST_NOSUID)

  // kernel_read(): bytes read, fewer at end of file; Error when the file
  // cannot be read by us (the kernel could) or changed while read.
  [[nodiscard]] Result<std::size_t> read_at(void* buf, std::size_t len, std::uint64_t off) const;
};

struct Context {
  const Request& req;
  const SystemFacts& facts;
  Prediction& out;
  std::string cwd;  // absolute
  std::unique_ptr<OpenWriters> own_writers;

  void check(std::string step, std::string object, bool passed, std::string detail, std::string rule);
  // Record the kernel's failure: execve returns err.
  void fail(int err, std::string step, std::string object, std::string diagnosis, std::string fix);
  // Record a kill after the point of no return (or at the first instruction).
  void kill(int sig, bool at_first_instruction, std::string step, std::string object, std::string diagnosis,
            std::string fix);
  const OpenWriters& writers();
};

}  // namespace procforge::exec
