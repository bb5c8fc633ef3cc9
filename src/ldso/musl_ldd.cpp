// musl's ldd: musl's loader run as ldd (`ld-musl-x86_64.so.1 --list FILE`,
// or the loader through a link whose name ends in "ldd"), for one FILE,
// following musl 1.2.3 ldso/dynlink.c __dls3() when the loader is not
// AT_BASE's:
//   - open(FILE, O_RDONLY) fails: "LDNAME: cannot load FILE: STRERROR",
//     exit 1 (LDNAME: the loader's argv[0]);
//   - map_library() refuses it (not ET_EXEC/ET_DYN, no PT_DYNAMIC, a read
//     error such as EISDIR): "LDNAME: FILE: Not a valid dynamic program",
//     exit 1;
//   - else the program is the list's head under the name given, the
//     loader's name becomes the program's PT_INTERP (its first line, and
//     the base of the path file), and the loader loads and relocates as at
//     a start (musl.cpp): each object on stdout as it is loaded, every
//     error line on stderr, exit 127 after one, else 0 (never runs main).
// Unlike glibc's ldd script there is no test of the file first and no
// "./" before a name without '/': open() takes FILE relative to the cwd.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"

namespace procforge::ldso::detail {

Result<LddResult> musl_ldd(const LddRequest& req, const std::string& loader, const SystemInfo& sys) {
  if (::access(loader.c_str(), X_OK) != 0)
    return Error(errno, "musl's loader " + loader + " (" + errno_name(errno) +
                            ") cannot be run as ldd here; --loader=glibc answers as the system's ldd");
  LddResult r;
  r.kind = LoaderKind::musl;
  r.file = req.file;
  r.loader = loader;
  UniqueFd dir;
  if (!req.cwd.empty()) {
    dir.reset(::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return Error(errno, "opening the working directory " + req.cwd + ": " + errno_name(errno));
  }
  // O_NONBLOCK: the loader's open() of a FIFO waits for a writer; the fstat below says so instead.
  const UniqueFd fd(::openat(dir ? dir.get() : AT_FDCWD, req.file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    r.musl_outcome = LddResult::MuslOutcome::cannot_load;
    r.why = musl_strerror(errno);
    return r;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error(errno, "fstat " + req.file + ": " + errno_name(errno));
  if (S_ISFIFO(st.st_mode))
    return Error(ENOTSUP, req.file + " is a FIFO: musl's loader would wait for a writer to open it");
  auto bytes = musl_read_all(fd.get(), static_cast<std::uint64_t>(S_ISREG(st.st_mode) ? st.st_size : 0));
  if (!bytes || musl_map_check(*bytes) != 0) {
    r.musl_outcome = LddResult::MuslOutcome::not_valid_dynamic;
    return r;
  }
  Request lr;
  lr.program = req.file;
  lr.envp = req.envp;
  lr.cwd = req.cwd;
  lr.explicit_loader = loader;
  auto p = resolve(lr, sys);
  if (!p) return p.error();
  r.trace = std::move(*p);
  return r;
}

LddText musl_ldd_text(const LddResult& r) {
  LddText t;
  t.status = 1;
  switch (r.musl_outcome) {
    case LddResult::MuslOutcome::cannot_load:
      t.err = r.loader + ": cannot load " + r.file + ": " + r.why + "\n";
      return t;
    case LddResult::MuslOutcome::not_valid_dynamic:
      t.err = r.loader + ": " + r.file + ": Not a valid dynamic program\n";
      return t;
    case LddResult::MuslOutcome::none: break;
  }
  const Prediction& p = *r.trace;
  // "\t%s (%p)" for the loader, then "\t%s => %s (%p)" for each object
  // loaded (load_library()), without the addresses.
  for (std::size_t i = 0; i < p.objects.size(); ++i) {
    const Object& o = p.objects[i];
    if (o.path) t.out += "\t" + (i == 0 ? o.name : o.name + " => " + *o.path) + "\n";
  }
  for (const auto& l : p.trace_stderr) t.err += l + "\n";
  t.status = p.error ? exit_status(*p.error) : 0;
  return t;
}

}  // namespace procforge::ldso::detail
