// ld.so run as a command: glibc 2.36 elf/rtld.c dl_main, the rtld_is_main
// branch. The kernel ran ld.so itself (no PT_INTERP: its entry point is the
// one ld.so was built with, user_entry == ENTRY_POINT), so ld.so reads its
// own options from argv[1] on, one at a time, until the first argument that
// is not one of them:
//   --list, --verify, --inhibit-cache, --list-tunables, --list-diagnostics,
//   --help: flags (--list and --verify do not override --help; the two
//   --list-* modes end the run before any FILE is looked at);
//   --library-path, --inhibit-rpath, --audit, --preload, --argv0,
//   --glibc-hwcaps-prepend, --glibc-hwcaps-mask: take the next argument, and
//   only when there is one (else they are unrecognized options);
//   --version: prints and exits 0 at once, whatever follows;
//   any other argument starting with "--" (even "--" alone: rtld.c tests
//   _dl_argv[1][1] == '\0' where it means [2]) is refused by _dl_usage()
//   (elf/dl-usage.c) with exit status 1; so is a missing FILE, unless --help.
// FILE is then what argv[0] was: the main program, opened by ld.so itself.
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/unique_fd.hpp"
#include "ldso/detail.hpp"

namespace procforge::ldso {

const char* loader_mode_name(LoaderCommand::Mode m) {
  switch (m) {
    case LoaderCommand::Mode::run: return "run";
    case LoaderCommand::Mode::list: return "list";
    case LoaderCommand::Mode::verify: return "verify";
    case LoaderCommand::Mode::help: return "help";
    case LoaderCommand::Mode::version: return "version";
    case LoaderCommand::Mode::list_tunables: return "list_tunables";
    case LoaderCommand::Mode::list_diagnostics: return "list_diagnostics";
    case LoaderCommand::Mode::usage: return "usage";
  }
  return "?";
}

LoaderCommand parse_loader_command(const std::vector<std::string>& argv) {
  using Mode = LoaderCommand::Mode;
  LoaderCommand c;
  c.ld_so_name = argv.empty() ? "" : argv[0];
  std::size_t i = 1;
  // The options that take the next argument, and where each one goes.
  const std::pair<const char*, std::optional<std::string> LoaderCommand::*> valued[] = {
      {"--library-path", &LoaderCommand::library_path},
      {"--inhibit-rpath", &LoaderCommand::inhibit_rpath},
      {"--preload", &LoaderCommand::preload},
      {"--argv0", &LoaderCommand::argv0},
      {"--glibc-hwcaps-prepend", &LoaderCommand::hwcaps_prepend},
      {"--glibc-hwcaps-mask", &LoaderCommand::hwcaps_mask},
  };
  while (i < argv.size()) {
    const std::string& a = argv[i];
    const bool has_value = i + 1 < argv.size();
    bool taken = false;
    for (const auto& [name, field] : valued)
      if (a == name && has_value) {
        c.*field = argv[i + 1];
        taken = true;
      }
    if (taken) {
      i += 2;
    } else if (a == "--audit" && has_value) {
      c.audit.push_back(argv[i + 1]);
      i += 2;
    } else if (a == "--list" || a == "--verify") {
      if (c.mode != Mode::help) c.mode = a == "--list" ? Mode::list : Mode::verify;
      ++i;
    } else if (a == "--inhibit-cache") {
      c.inhibit_cache = true;
      ++i;
    } else if (a == "--list-tunables" || a == "--list-diagnostics" || a == "--help") {
      c.mode = a == "--help" ? Mode::help : a == "--list-tunables" ? Mode::list_tunables : Mode::list_diagnostics;
      ++i;
    } else if (a == "--version") {
      c.mode = Mode::version;
      return c;
    } else if (a.size() >= 2 && a[0] == '-' && a[1] == '-') {
      c.mode = Mode::usage;
      c.unrecognized = a;
      return c;
    } else {
      break;
    }
  }
  if (c.mode == Mode::list_tunables || c.mode == Mode::list_diagnostics) return c;
  if (i >= argv.size()) {
    if (c.mode != Mode::help) c.mode = Mode::usage;
    return c;
  }
  c.program = argv[i];
  c.program_argv.assign(argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());
  if (c.argv0) c.program_argv.front() = *c.argv0;
  return c;
}

int command_exit_status(const LoaderCommand& c) { return c.mode == LoaderCommand::Mode::usage ? 1 : 0; }

std::string usage_text(const LoaderCommand& c) {
  if (c.mode != LoaderCommand::Mode::usage) return "";
  const std::string& n = c.ld_so_name;
  return (c.unrecognized.empty() ? n + ": missing program name\n"
                                 : n + ": unrecognized option '" + c.unrecognized + "'\n") +
         "Try '" + n + " --help' for more information.\n";
}

namespace detail {

namespace {

// dl-hwcaps_split.c: the names of a ':' list, empty ones skipped.
std::vector<std::string> hwcaps_names(const std::string& list) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t end = std::min(list.find(':', at), list.size());
    if (end > at) out.push_back(list.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// How dl_main's _dl_map_object(NULL, FILE, ..., __RTLD_OPENEXEC) refuses the
// main program: open_verify()'s message, or open()'s errno after
// "cannot open shared object file". Nullopt: it opens.
std::optional<std::string> main_program_refusal(const Opened& o) {
  if (!o.facts) return "cannot open shared object file: " + std::string(std::strerror(o.err));
  if (o.facts->verify == FileFacts::Verify::ok) return std::nullopt;
  if (!o.facts->verify_message.empty()) return o.facts->verify_message;
  return std::string(o.facts->other_class ? "wrong ELF class: ELFCLASS32" : "wrong ELF class or machine");
}

// A FILE without '/' is a library name to dl-load.c _dl_map_object(), which
// dl_main calls before _dl_init_paths(): open_path() gives up at once on the
// library path and the system directories, whose lists are not set up yet
// ("We're called before _dl_init_paths"), and no object has a DT_RPATH yet.
// What is left is the cache (not with --inhibit-cache), and of it only the
// plain entries: dl-cache.c's glibc-hwcaps priorities are merged with
// _dl_hwcaps_priorities, still empty until _dl_important_hwcaps(). The
// refusal when the cache has no FILE carries the errno left by then: none,
// unless opening the cache failed.
// The refusal is the Error's message.
Result<std::string> program_from_cache(const LoaderCommand& c, const SystemInfo& sys) {
  const std::string refused = "cannot open shared object file";
  if (c.inhibit_cache) return Error(ENOENT, refused);
  auto cache = shared_cache(sys.cache_path);
  if (!cache) return Error(cache.error().err, refused + ": " + std::strerror(cache.error().err));
  SystemInfo plain = sys;
  plain.hwcaps_subdirs.clear();
  if (auto found = (*cache)->lookup(c.program, plain)) return *found;
  return Error(ENOENT, refused);
}

}  // namespace

std::optional<Result<Prediction>> command_without_load(const Request& req, const SystemInfo& sys,
                                                       std::string& main_file) {
  using Mode = LoaderCommand::Mode;
  const LoaderCommand& c = *req.command;
  Prediction p;
  p.command = c;
  p.dynamic = false;
  if (c.mode != Mode::run && c.mode != Mode::list && c.mode != Mode::verify) {
    p.command_exit = command_exit_status(c);
    return p;
  }
  main_file = c.program;
  std::optional<std::string> refusal;
  Opened o;
  if (c.program.find('/') == std::string::npos) {
    auto found = program_from_cache(c, sys);
    if (found) main_file = *found;
    else refusal = found.error().message;
    if (!found && c.mode != Mode::verify)
      p.warnings.push_back(c.program + " has no '/': ld.so looked it up in " + sys.cache_path +
                           " only, not in the working directory or any search path; ./" + c.program +
                           " names a file here");
  }
  if (!refusal) {
    const UniqueFd dir(req.cwd.empty() ? -1 : ::open(req.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!req.cwd.empty() && !dir) return Result<Prediction>(Error(errno, "opening the working directory " + req.cwd));
    o = open_file(dir ? dir.get() : AT_FDCWD, main_file);
    refusal = main_program_refusal(o);
  }
  // rtld.c dl_main, verify mode: 1 when FILE cannot be the main program or
  // has no PT_DYNAMIC, else 0 with PT_INTERP and 2 without.
  if (c.mode == Mode::verify) {
    p.command_exit = refusal || !o.facts->has_dynamic ? 1 : o.facts->interp ? 0 : 2;
    return p;
  }
  if (!refusal) return std::nullopt;
  // Not caught: the usual "error while loading shared libraries", named after
  // FILE (--argv0 is put in place only once FILE is mapped).
  p.dynamic = true;
  p.error = LoaderError{c.program, *refusal};
  p.argv0 = c.program;
  p.stopped = true;
  return p;
}

SystemInfo with_hwcaps_options(const SystemInfo& sys, const LoaderCommand& c) {
  SystemInfo s = sys;
  s.hwcaps_subdirs = c.hwcaps_prepend ? hwcaps_names(*c.hwcaps_prepend) : std::vector<std::string>{};
  const auto mask = c.hwcaps_mask ? std::optional(hwcaps_names(*c.hwcaps_mask)) : std::nullopt;
  for (const auto& h : sys.hwcaps_subdirs)
    if (!mask || std::find(mask->begin(), mask->end(), h) != mask->end()) s.hwcaps_subdirs.push_back(h);
  return s;
}

}  // namespace detail

bool is_glibc_loader_file(const std::string& path, const std::string& cwd) {
  const UniqueFd dir(cwd.empty() ? -1 : ::open(cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  const detail::Opened o = detail::open_file(dir ? dir.get() : AT_FDCWD, path);
  return o.facts && o.facts->verify == detail::FileFacts::Verify::ok && o.facts->type == ET_DYN && !o.facts->interp &&
         o.facts->soname == "ld-linux-x86-64.so.2";
}

}  // namespace procforge::ldso
