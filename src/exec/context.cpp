#include "exec/context.hpp"

#include <unistd.h>

#include <cerrno>

namespace procforge::exec {

Result<std::size_t> ExecFile::read_at(void* buf, std::size_t len, std::uint64_t off) const {
  std::size_t done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < len) {
    ssize_t n = pread(fd.get(), p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      return Error(e, "reading " + path + " at offset " + std::to_string(off) + ": " + errno_name(e));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void Context::check(std::string step, std::string object, bool passed, std::string detail, std::string rule) {
  if (req.explain)
    out.checks.push_back({std::move(step), std::move(object), passed, std::move(detail), std::move(rule)});
}

void Context::fail(int err, std::string step, std::string object, std::string diagnosis, std::string fix) {
  out.outcome = Outcome::error;
  out.err = err;
  out.failed_step = std::move(step);
  out.failed_object = std::move(object);
  out.diagnosis = std::move(diagnosis);
  out.fix = std::move(fix);
}

void Context::kill(int sig, bool at_first_instruction, std::string step, std::string object, std::string diagnosis,
                   std::string fix) {
  out.outcome = Outcome::killed;
  out.signal = sig;
  out.killed_at_first_instruction = at_first_instruction;
  out.failed_step = std::move(step);
  out.failed_object = std::move(object);
  out.diagnosis = std::move(diagnosis);
  out.fix = std::move(fix);
}

const OpenWriters& Context::writers() {
  if (req.writers) return *req.writers;
  if (!own_writers) own_writers = std::make_unique<OpenWriters>(OpenWriters::scan());
  return *own_writers;
}

}  // namespace procforge::exec
