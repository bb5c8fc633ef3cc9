// glibc 2.36's ldd (elf/ldd.bash.in) for one file, as a prediction: the
// script's own checks, the loader it picks, and what that loader's trace
// prints. The script, for each FILE:
//   - a name without '/' becomes ./NAME (so ld.so never searches PATH);
//   - `test -e`, `test -f`, `test -r`: "No such file or directory", "not
//     regular file", "you do not have read permission", each status 1;
//   - for RTLD in RTLDLIST (/lib/ld-linux.so.2 /lib64/ld-linux-x86-64.so.2
//     /libx32/ld-linux-x32.so.2), if executable: `RTLD --verify FILE`; 0 (it
//     has PT_INTERP) or 2 (dynamic without one) picks RTLD. rtld.c
//     dl_main's verify mode exits with 1 when _dl_map_object() refuses the
//     file as a main program (__RTLD_OPENEXEC) or it has no PT_DYNAMIC;
//   - no RTLD: "\tnot a dynamic executable" on stderr, status 1;
//   - else `LD_TRACE_LOADED_OBJECTS=1 RTLD FILE` with stderr merged into
//     stdout (try_trace); its status becomes ldd's (0, or 127 when the
//     load stops).
// The x86-64 loader's trace is resolve() with Request::explicit_loader and
// Request::trace; nothing is run.
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"
#include "procforge/elf.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

namespace {

constexpr const char* kRtld64 = "/lib64/ld-linux-x86-64.so.2";

// The other loaders of RTLDLIST and the files their --verify accepts:
// ELFCLASS32 objects of their machine with PT_DYNAMIC (elf/dl-load.c
// open_verify() checks class and machine; dl_main's verify mode needs
// l_ld). nullptr: FILE is none of theirs.
const char* other_loader_for(int dir_fd, const std::string& file) {
  const UniqueFd fd(::openat(dir_fd, file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return nullptr;
  unsigned char ident[EI_NIDENT + 4] = {};
  if (::pread(fd.get(), ident, sizeof ident, 0) != static_cast<ssize_t>(sizeof ident)) return nullptr;
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0 || ident[EI_CLASS] != ELFCLASS32 || ident[EI_DATA] != ELFDATA2LSB)
    return nullptr;
  const unsigned machine = ident[EI_NIDENT + 2] | ident[EI_NIDENT + 3] << 8;
  const char* loader = machine == EM_386      ? "/lib/ld-linux.so.2"
                       : machine == EM_X86_64 ? "/libx32/ld-linux-x32.so.2"
                                              : nullptr;
  if (!loader || ::access(loader, X_OK) != 0) return nullptr;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size <= 0) return nullptr;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  if (::pread(fd.get(), bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) return nullptr;
  auto f = elf::File::parse(bytes);
  if (!f) return nullptr;
  auto ph = f->program_headers();
  if (!ph) return nullptr;
  for (const auto& h : *ph)
    if (h.type == PT_DYNAMIC) return loader;
  return nullptr;
}

}  // namespace

std::string musl_ldd_loader(const LddRequest& req) {
  constexpr const char* kMuslLoader = "/lib/ld-musl-x86_64.so.1";
  if (req.as == LoaderKind::glibc) return "";
  Request r;
  r.program = req.file;
  r.cwd = req.cwd;
  const std::string interp = detail::program_interp(r);
  if (is_musl_loader(interp)) return interp;
  return req.as == LoaderKind::musl ? kMuslLoader : "";
}

Result<LddResult> ldd(const LddRequest& req, const SystemInfo& sys) {
  // musl's programs get musl's ldd: its loader run as ldd (musl_ldd.cpp).
  if (const std::string musl = musl_ldd_loader(req); !musl.empty()) return detail::musl_ldd(req, musl, sys);
  LddResult r;
  r.vdso = sys.vdso_name;
  r.file = req.file.find('/') == std::string::npos ? "./" + req.file : req.file;
  UniqueFd dir;
  if (!req.cwd.empty()) {
    dir.reset(::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return Error(errno, "opening the working directory " + req.cwd + ": " + errno_name(errno));
  }
  const int at = dir ? dir.get() : AT_FDCWD;
  // test -e / -f (stat, following links), test -r (faccessat with the
  // effective ids, as bash's test does).
  struct stat st {};
  if (::fstatat(at, r.file.c_str(), &st, 0) != 0) {
    r.outcome = LddResult::Outcome::no_such_file;
    return r;
  }
  if (!S_ISREG(st.st_mode)) {
    r.outcome = LddResult::Outcome::not_regular;
    return r;
  }
  if (::faccessat(at, r.file.c_str(), R_OK, AT_EACCESS) != 0) {
    r.outcome = LddResult::Outcome::no_read_permission;
    return r;
  }
  // RTLDLIST's order: the i386 loader is asked first.
  if (const char* other = other_loader_for(at, r.file))
    return Error(ENOTSUP, r.file + ": a 32-bit object that ldd traces with " + other +
                              "; procforge models the x86-64 ld.so only");
  Request lr;
  lr.program = r.file;
  lr.envp = req.envp;
  lr.cwd = req.cwd;
  lr.explicit_loader = kRtld64;
  lr.trace = true;
  lr.unused = req.unused;
  lr.check_symbols = req.check_symbols;
  auto p = ::access(kRtld64, X_OK) == 0 ? resolve(lr, sys) : Result<Prediction>(Error(ENOENT, "no x86-64 ld.so"));
  if (!p || !p->dynamic) {
    r.outcome = LddResult::Outcome::not_dynamic;
    r.why = p ? "no PT_DYNAMIC" : p.error().message;
    return r;
  }
  // ldd -u with a dependency not found: ld.so crashed (SIGSEGV) on some such
  // files and not on others (observed, glibc 2.36); which ones is not known.
  if (req.unused && !p->stopped)
    for (const auto& o : p->objects)
      if (!o.path)
        return Error(ENOTSUP, r.file + ": ldd -u with a dependency not found (" + o.name +
                                  "): ld.so crashes on some such files, which ones is not modelled");
  // ldd -d/-r meeting check_match()'s assertion: ld.so stops after the list
  // with exit 127; where its line goes among the others is not modelled.
  if (req.check_symbols != Request::SymbolCheck::none && !req.unused && p->abort_line)
    return Error(ENOTSUP, r.file + ": ld.so stops on an assertion while relocating (-d/-r): not modelled");
  r.loader = kRtld64;
  r.trace = std::move(*p);
  return r;
}

std::vector<std::string> ldd_shell_lines(const std::vector<std::string>& envp, const std::string& cwd,
                                         const SystemInfo& sys) {
  std::vector<std::string> lines;
  bool preloads = ::access(sys.preload_path.c_str(), F_OK) == 0;
  for (const auto& e : envp) preloads |= e.rfind("LD_PRELOAD=", 0) == 0;
  if (!preloads) return lines;  // the common case costs nothing
  Request shell;
  shell.program = "/bin/bash";
  shell.envp = envp;
  shell.cwd = cwd;
  auto p = resolve(shell, sys);
  if (!p) return lines;
  const std::string failed = "ERROR: ld.so: object '";
  for (const auto& l : p->trace_stderr)
    if (l.rfind(failed, 0) == 0) lines.push_back(l);
  return lines;
}

LddText ldd_text(const LddResult& r, bool version_info) {
  if (r.kind == LoaderKind::musl) return detail::musl_ldd_text(r);
  LddText t;
  t.status = 1;
  switch (r.outcome) {
    case LddResult::Outcome::no_such_file: t.err = "ldd: " + r.file + ": No such file or directory\n"; return t;
    case LddResult::Outcome::not_regular: t.err = "ldd: " + r.file + ": not regular file\n"; return t;
    case LddResult::Outcome::no_read_permission:
      t.err = "ldd: error: you do not have read permission for `" + r.file + "'\n";
      return t;
    case LddResult::Outcome::not_dynamic: t.err = "\tnot a dynamic executable\n"; return t;
    case LddResult::Outcome::traced: break;
  }
  const Prediction& p = *r.trace;
  for (const auto& l : p.trace_stderr) t.out += l + "\n";
  if (p.stopped && p.error) {
    // ld.so's _dl_argv[0] is FILE as ldd passed it.
    t.out += error_line(r.file, *p.error) + "\n";
    return t;
  }
  t.status = 0;
  // rtld.c dl_main: with LD_DEBUG=unused, the walk's lines instead of the list,
  // and ld.so's exit status 1 when it printed one.
  if (p.abort_line) {
    t.out += *p.abort_line + "\n";
    t.status = 1;
    return t;
  }
  if (p.unused) {
    for (const auto& l : p.symbol_lines) t.out += l + "\n";
    // The walk stopped at a lookup (dl-protected.h): the error instead of the
    // list; ld.so's exit 127 makes ldd's status 1.
    if (p.error && p.error->stage == LoaderError::Stage::relocating) {
      t.out += error_line(r.file, *p.error) + "\n";
      t.status = 1;
      return t;
    }
    if (!p.unused->empty()) t.out += "Unused direct dependencies:\n";
    for (const auto& u : *p.unused) t.out += "\t" + u + "\n";
    t.status = p.unused->empty() ? 0 : 1;
    return t;
  }
  // rtld.c dl_main, trace mode's listing: l_libname->name, then "=> l_name"
  // unless they are equal (the vDSO, ld.so named by its path).
  if (p.statically_linked) {
    t.out += "\tstatically linked\n";
  } else {
    for (std::size_t i = 0; i <= p.objects.size(); ++i) {
      if (p.vdso_index && *p.vdso_index == i) t.out += "\t" + r.vdso + "\n";
      if (i == p.objects.size()) break;
      const Object& o = p.objects[i];
      if (!o.path) t.out += "\t" + o.name + " => not found\n";
      else if (*o.path == o.name) t.out += "\t" + o.name + "\n";
      else t.out += "\t" + o.name + " => " + *o.path + "\n";
    }
  }
  // rtld.c dl_main: with LD_WARN, the relocation's lines come after the list.
  for (const auto& l : p.symbol_lines) t.out += l + "\n";
  // A lookup that stops ld.so while it relocates (dl-protected.h): its line
  // last, and ld.so's exit 127 makes ldd's status 1.
  if (p.error && p.error->stage == LoaderError::Stage::relocating) {
    t.out += error_line(r.file, *p.error) + "\n";
    t.status = 1;
    return t;
  }
  if (version_info && !p.version_info.empty()) {
    t.out += "\n\tVersion information:\n";
    for (const auto& v : p.version_info) {
      t.out += "\t" + v.object + ":\n";
      for (const auto& n : v.needs)
        t.out += "\t\t" + n.file + " (" + n.version + ") " + (n.weak ? "[WEAK] " : "") + "=> " +
                 n.path.value_or("not found") + "\n";
    }
  }
  return t;
}

}  // namespace procforge::ldso
