// Internal pieces of the ld.so model shared by object_file.cpp (what ld.so
// reads from one file), search.cpp (where it looks for a name) and
// link_map.cpp (the link map: dedup, breadth-first order, preloads).
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ldso/versions.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso::detail {

// ------------------------------------------------------------ one file

struct DepEntry {
  enum class Kind { needed, auxiliary, filter };
  Kind kind = Kind::needed;
  std::string name;  // as written in the dynamic section (DSTs unexpanded)
};

// What ld.so learns from a file: open_verify() (elf/dl-load.c), the checks of
// _dl_map_object_from_fd() and the dynamic section. Immutable once built;
// cached process-wide and shared between predictions and threads (keyed by
// device, inode, size, mtime and ctime).
struct FileFacts {
  enum class Verify { ok, skip, fatal };
  Verify verify = Verify::ok;
  bool other_class = false;    // skipped for EI_CLASS (not e_machine)
  std::string verify_message;  // open_verify()'s errstring when fatal
  int verify_errno = 0;
  // _dl_map_object_from_fd() refusals for an object loaded as a library
  // (not for the main program, which is opened with __RTLD_OPENEXEC).
  std::string map_message;
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t mode = 0;
  std::uint16_t type = 0;
  bool has_dynamic = false;
  std::vector<DepEntry> deps;  // DT_NEEDED / DT_AUXILIARY / DT_FILTER in dynamic-section order
  std::optional<std::string> soname, rpath, runpath, interp;
  std::uint64_t flags_1 = 0;
  std::uint32_t isa_1_needed = 0;  // GNU_PROPERTY_X86_ISA_1_NEEDED
  std::string read_problem;        // the dynamic section could not be decoded (treated as empty)
  // DT_VERNEED / DT_VERDEF for the version check; null with a problem when
  // they could not be decoded (the object is then not checked).
  std::shared_ptr<const VersionTables> versions;
  std::string versions_problem;
};

struct Opened {
  int err = 0;                             // open()'s errno when the file could not be opened
  std::shared_ptr<const FileFacts> facts;  // set when it could
};

// Opens PATH read-only (relative to CWD_FD when relative), reads what ld.so
// would read with read()/pread(), and closes it. Never maps or runs anything.
// The facts come from the process-wide cache when this version of the file
// was read before.
Opened open_file(int cwd_fd, const std::string& path);

// ------------------------------------------------------------ link map

struct Map {
  std::string l_name;                 // the path it was opened as ("" for the main program)
  std::vector<std::string> libnames;  // names it was requested by (first = the one ldd prints)
  std::shared_ptr<const FileFacts> facts;
  int loader = -1;                    // l_loader: whose DT_NEEDED first caused the load
  std::optional<std::string> origin;  // $ORIGIN
  bool faked = false;                 // trace mode's "not found" placeholder
  bool is_main = false, is_rtld = false, is_vdso = false;
  bool reserved = false;  // l_reserved: already in the breadth-first list
  bool soname_added = false;
  std::vector<int> needed;  // its DT_NEEDED and filter objects in order (l_initfini's edges)
  // cache_rpath(): decomposed once per object.
  std::optional<std::vector<SearchDir>> rpath_dirs, runpath_dirs;
  Object report;  // what Prediction::objects shows for it
};

// Search results for one name.
struct Found {
  bool ok = false;
  std::string path;  // realname
  std::shared_ptr<const FileFacts> facts;
  FoundBy by = FoundBy::not_found;
  std::string via;
  bool in_subdir = false;
  // Not found: what the real run reports.
  int err = ENOENT;
  bool other_class = false;
  // A fatal open_verify() error: the load stops.
  std::optional<LoaderError> fatal;
};

// Everything one prediction shares: facts, the cache, directory status. One
// per resolve() call; only FileFacts and the Cache behind it are process-wide.
struct State {
  const SystemInfo* sys = nullptr;
  std::vector<std::string> capstrs;  // SystemInfo::subdirs()
  int cwd_fd = -1;
  bool secure = false;
  std::shared_ptr<const Cache> cache;                   // parsed once per cache file version, shared by predictions
  std::vector<SearchDir> library_path;                  // LD_LIBRARY_PATH (empty in secure mode)
  std::string library_path_source = "LD_LIBRARY_PATH";  // or "--library-path" (rtld.c library_path_source)
  // ld.so's --inhibit-rpath: the objects (by l_name, "" for the main
  // program) whose DT_RPATH and DT_RUNPATH are not used.
  std::optional<std::string> inhibit_rpath;
  std::map<std::string, bool> dir_exists;  // open_path()'s r_dir_status per dir + '\0' + capstr index
  std::vector<Map> maps;
  int main = 0;
  std::vector<std::string> tried;  // places tried by the current search
  // ld.so's errno, carried from search to search as in the real process: an
  // open() that fails sets it, open_verify() accepting a file clears it, a
  // search that tries nothing leaves it. A name not found is reported with
  // it, and with no errno text when it is 0 (_dl_signal_error).
  int last_errno = 0;

  Map& map(int l) { return maps[static_cast<std::size_t>(l)]; }
  [[nodiscard]] const Map& map(int l) const { return maps[static_cast<std::size_t>(l)]; }
  DstContext dst_for(const Map& m) const;
  bool rpath_inhibited(const Map& m) const;
  const std::vector<SearchDir>& rpath_of(int l);
  const std::vector<SearchDir>& runpath_of(int l);
  // A human name for a map: its path, or the program for the main map.
  std::string display(int l) const;
};

// _dl_map_object()'s search for NAME on behalf of LOADER (-1: none):
// slash names, RPATH chain, LD_LIBRARY_PATH, RUNPATH, ld.so.cache, default
// dirs. SECURE_LOAD is __RTLD_SECURE (preloads). Does not touch the link map.
Found search(State& st, int loader, const std::string& name, bool secure_load);

// Cache::load(PATH), parsed once per version of the file (device, inode,
// size, mtime) and shared by every prediction of the process.
Result<std::shared_ptr<const Cache>> shared_cache(const std::string& path);

// Runs PROGRAM [ARG] with an empty environment and returns what it wrote to
// CAPTURE_FD (stdout or stderr; the other goes to /dev/null); "" when it
// cannot be run, or (NEED_SUCCESS) exits other than with 0. Used only on a
// system loader, to ask it about itself.
std::string run_and_read(const std::string& program, const std::string& arg, int capture_fd, bool need_success);

// The PT_INTERP of REQ's program ("" when it has none or cannot be read).
std::string program_interp(const Request& req);
// ld.so run as a command (command_line.cpp): the prediction of a run that
// loads none of FILE's objects (help, version, the --list-* modes, a usage
// error, --verify, a FILE ld.so cannot open as its main program, or
// a FILE it finds nowhere); nullopt when the load goes on, with MAIN_FILE
// the file ld.so opens as the main program (FILE, or the cache's entry for a
// FILE without '/').
std::optional<Result<Prediction>> command_without_load(const Request& req, const SystemInfo& sys,
                                                       std::string& main_file);
// SYS with the glibc-hwcaps subdirectories dl-hwcaps.c _dl_important_hwcaps()
// builds for C: --glibc-hwcaps-prepend's names first, then the active
// built-in ones --glibc-hwcaps-mask keeps.
SystemInfo with_hwcaps_options(const SystemInfo& sys, const LoaderCommand& c);

// musl's loader (musl.cpp): resolve() for a program whose loader is musl's.
Result<Prediction> resolve_musl(const Request& req, const SystemInfo& sys);
// musl's strerror() text for E (src/errno/__strerror.h).
std::string musl_strerror(int e);
// map_library()'s refusal of a file's bytes: ENOEXEC, or 0 when it maps.
int musl_map_check(const std::vector<std::uint8_t>& bytes);
// The whole of an open file FD of SIZE bytes (0: not a regular file, read()
// decides), as musl's loader reads it.
Result<std::vector<std::uint8_t>> musl_read_all(int fd, std::uint64_t size);
// musl's loader run as ldd (musl_ldd.cpp): ldd() for a FILE it answers for
// with the loader LOADER.
Result<LddResult> musl_ldd(const LddRequest& req, const std::string& loader, const SystemInfo& sys);
LddText musl_ldd_text(const LddResult& r);

// _dl_map_object_from_fd()'s identity: device and inode.
bool same_file(const FileFacts& a, const FileFacts& b);

}  // namespace procforge::ldso::detail
