// The parts of Error that are not inline: the errno's symbolic name, the
// step's name and the common "WHAT OBJECT: ENAME" text. Symbolic errno names
// come from glibc's strerrorname_np (glibc 2.32+), so the table stays in step
// with the C library the kernel's errnos are read from.
#include <cstring>
#include <string>

#include "procforge/result.hpp"

namespace procforge {

std::string errno_name(int err) {
  if (const char* name = strerrorname_np(err)) return name;
  return "E?" + std::to_string(err);
}

const char* step_name(ErrorStep step) {
  switch (step) {
    case ErrorStep::unspecified: return "unspecified";
    case ErrorStep::options: return "options";
    case ErrorStep::open: return "open";
    case ErrorStep::read: return "read";
    case ErrorStep::write: return "write";
    case ErrorStep::parse: return "parse";
    case ErrorStep::execve: return "execve";
    case ErrorStep::exec_model: return "exec model";
    case ErrorStep::ldso: return "ld.so";
    case ErrorStep::spawn_setup: return "spawn setup";
    case ErrorStep::clone: return "clone";
    case ErrorStep::cgroup: return "cgroup";
    case ErrorStep::wait: return "wait";
  }
  return "unspecified";
}

Error Error::call(ErrorStep s, int e, const std::string& what, std::string obj) {
  std::string text = obj.empty() ? what : what + " " + obj;
  return Error{s, e, std::move(obj), text + ": " + errno_name(e)};
}

}  // namespace procforge
