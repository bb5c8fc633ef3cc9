// Which files are open for writing anywhere on the system: the kernel refuses
// to exec those with ETXTBSY (fs/exec.c do_open_execat() ->
// exe_file_deny_write_access(), i_writecount > 0). User space cannot read
// i_writecount, so we rebuild it from /proc: every fd opened with FMODE_WRITE
// (the /proc/PID/fd/N link's mode carries S_IWUSR, fs/proc/fd.c) and every
// shared writable mapping.
//
//   const exec::OpenWriters writers = exec::OpenWriters::scan();  // one /proc walk
//   for (auto& path : paths) {
//     exec::Request req;
//     req.writers = &writers;                      // shared by a batch of predictions
//     ...
//   }
//
// Threads: scan() is a snapshot taken at the call, stale as soon as it
// returns; a scanned OpenWriters is only read afterwards and may be shared
// between threads. Nothing is cached process-wide. Processes whose /proc
// entries the caller may not read are missed (run as root for the full set).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <utility>

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::exec {

class OpenWriters {
 public:
  static OpenWriters scan();
  [[nodiscard]] bool contains(dev_t dev, ino_t ino) const { return files_.count({dev, ino}) != 0; }
  [[nodiscard]] std::size_t size() const { return files_.size(); }

 private:
  std::set<std::pair<std::uint64_t, std::uint64_t>> files_;
};

}  // namespace procforge::exec

#pragma GCC visibility pop
