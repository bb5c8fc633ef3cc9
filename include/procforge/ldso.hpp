// glibc's dynamic linker as a prediction: which objects ld.so will load for a
// program, from where, by which rule, in which order, and the fatal error a
// real run would stop with, without loading or running anything. Follows
// glibc 2.36 elf/dl-load.c _dl_map_object(), elf/dl-deps.c and elf/rtld.c,
// version-gated where glibc changed the rules.
//
//   const auto sys = procforge::ldso::SystemInfo::probe();  // once per process
//   procforge::ldso::Request req;
//   req.program = "/usr/bin/ls";                            // as the kernel would run it
//   req.envp = {"LD_LIBRARY_PATH=/opt/lib"};
//   auto p = procforge::ldso::resolve(req, sys);
//   if (!p) return p.error();                               // unreadable, or not ELF
//   for (const auto& o : p->objects)                        // ldd's order
//     fmt::print("{} => {} ({})\n", o.name, o.path.value_or("not found"), found_by_name(o.found_by));
//   if (p->error) fmt::print("{}\n", error_line("ls", *p->error));  // what ld.so would print
//
// Nothing here maps, dlopen()s or executes the program, its libraries or its
// audit modules: files are opened read-only and read with pread(). The only
// program ever run is the system's own ld.so with --list-diagnostics
// (SystemInfo::probe), which loads nothing of the user's.
//
// Threads and process-wide state: resolve() keeps its link map on its own
// stack, so threads may call it at once (with one SystemInfo, read only).
// Two caches are process-wide, as ld.so reads each file once per process: the
// parsed ld.so.cache (one per version of the file) and what was read from
// each object file (keyed by device, inode, size and times, so a changed file
// is read again); both are locked, and shared by every prediction the
// process makes. A Request without a cwd uses the process's working
// directory, which another thread may change.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::exec {
struct Request;
struct Prediction;
}  // namespace procforge::exec

namespace procforge::ldso {

// Facts about the system's ld.so, from `ld.so --list-diagnostics` (runs
// ld.so on nothing of the user's) with built-in fallbacks.
struct SystemInfo {
  std::string ldso_path = "/lib64/ld-linux-x86-64.so.2";
  int glibc_major = 2, glibc_minor = 36;
  std::vector<std::string>
      system_dirs;  // /lib/x86_64-linux-gnu/, /usr/lib/x86_64-linux-gnu/, /lib/, /usr/lib/ (with the trailing '/')
  std::string lib = "lib";                    // $LIB (dl_dst_lib)
  std::string platform = "x86_64";            // $PLATFORM (AT_PLATFORM, or glibc's own choice such as "haswell")
  std::vector<std::string> hwcaps_subdirs;    // active glibc-hwcaps names, best first: x86-64-v3, x86-64-v2
  int isa_level = 1;                          // x86-64 ISA level of this CPU (cpuid): 1 baseline .. 4 v4
  std::uint64_t hwcap = 2;                    // GLRO(dl_hwcap): legacy hwcap bits (HWCAP_X86_64 = 2, AVX512_1 = 4)
  std::uint64_t hwcap_mask = 6;               // glibc.cpu.hwcap_mask (HWCAP_IMPORTANT by default)
  std::string vdso_name = "linux-vdso.so.1";  // the vDSO's SONAME, a name DT_NEEDED could match
  std::string cache_path = "/etc/ld.so.cache";
  std::string preload_path = "/etc/ld.so.preload";
  bool from_ldso = false;  // true when the facts came from the real ld.so

  static SystemInfo probe();
  // probe()'s answer kept in DIR/ldso-facts (DIR made 0700 if missing) and
  // reused while the ld.so file and the boot are the same: a process that
  // asks one question saves running ld.so. Without the env lines of the
  // diagnostics. Probes as probe() when DIR cannot be used.
  static SystemInfo probe_cached(const std::string& dir);
  // The facts of `ld.so --list-diagnostics` output OUT over S.
  static SystemInfo from_diagnostics(SystemInfo s, const std::string& out);
  // Built-in facts (Debian/Ubuntu multiarch x86_64) with this CPU's ISA level;
  // what probe() falls back to.
  static SystemInfo fallback();

  [[nodiscard]] bool at_least(int major, int minor) const {
    return glibc_major > major || (glibc_major == major && glibc_minor >= minor);
  }
  // The subdirectories open_path() tries inside every search directory, in
  // order, each ending in '/', the last one "" (the directory itself):
  // glibc-hwcaps/<active>/, then (glibc <= 2.36) the legacy power set built
  // from the hwcap bits, $PLATFORM and "tls" (elf/dl-hwcaps.c _dl_important_hwcaps).
  [[nodiscard]] std::vector<std::string> subdirs() const;
};

// ---------------------------------------------------------------- ld.so.cache
// sysdeps/generic/dl-cache.h, elf/dl-cache.c: the "glibc-ld.so.cache1.1"
// format (with the extension directory: generator string, glibc-hwcaps
// subdirectory names) and the old "ld.so-1.7.0" format, alone or with the
// new table embedded after it.

struct CacheEntry {
  std::string key;                           // soname
  std::string value;                         // full path
  std::int32_t flags = 0;                    // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 = 0x303 on x86_64
  std::uint64_t hwcap = 0;                   // 0 in the old format
  std::optional<std::string> hwcaps_subdir;  // "x86-64-v3" for a glibc-hwcaps entry
  unsigned isa_level = 0;                    // ISA level bits of a glibc-hwcaps entry
  bool valid = true;                         // key and value string offsets were in bounds
};

class Cache {
 public:
  enum class Format { new_only, old_only, old_with_new };

  // Parses the bytes of an ld.so.cache file. An Error says why ld.so would
  // ignore the file (it then behaves as if there were no cache).
  static Result<Cache> parse(std::span<const std::uint8_t> bytes);
  static Result<Cache> load(const std::string& path);

  [[nodiscard]] Format format() const { return format_; }
  // Entries of the table ld.so searches (the new one when present), file order.
  [[nodiscard]] const std::vector<CacheEntry>& entries() const { return entries_; }
  [[nodiscard]] const std::string& generator() const { return generator_; }
  [[nodiscard]] const std::vector<std::string>& hwcaps_names() const { return hwcaps_names_; }

  // elf/dl-cache.c search_cache(): the path ld.so takes from the cache for
  // NAME on this system, with glibc-hwcaps priorities and ISA-level checks.
  [[nodiscard]] std::optional<std::string> lookup(std::string_view name, const SystemInfo& sys) const;

 private:
  Format format_ = Format::new_only;
  bool entries_have_hwcap_ = true;  // new-format entries (24 bytes)
  std::vector<CacheEntry> entries_;
  std::string generator_;
  std::vector<std::string> hwcaps_names_;
};

// _dl_cache_libcmp: digit runs compare numerically, a digit sorts after a
// non-digit. The cache is sorted in descending order of this.
int cache_libcmp(std::string_view a, std::string_view b);

// ---------------------------------------------------------------- DSTs, paths

// The object a DST is expanded for.
struct DstContext {
  std::optional<std::string> origin;      // $ORIGIN; nullopt when unknown
  std::string lib;                        // $LIB
  std::string platform;                   // $PLATFORM
  bool secure = false;                    // AT_SECURE
  bool is_executable = false;             // the main program (secure $ORIGIN must lie in a trusted dir)
  std::vector<std::string> trusted_dirs;  // system dirs, for the secure $ORIGIN check
};

// elf/dl-load.c _dl_dst_count(): number of recognised $ORIGIN/$LIB/$PLATFORM.
std::size_t dst_count(std::string_view input);
// _dl_dst_substitute(): the expanded string; "" when a recognised DST has no
// value (or is refused in secure mode): glibc then drops the element.
std::string dst_substitute(std::string_view input, const DstContext& ctx);

// One search directory as fillin_rpath() keeps it: DSTs expanded, trailing
// slashes folded to one, "" meaning the current directory.
struct SearchDir {
  std::string dir;   // "/opt/lib/" or "" (relative dirs stay relative)
  std::string from;  // the element as written
};
// fillin_rpath(): split on any of SEPARATORS, expand DSTs, drop elements that
// expand to nothing, keep empty elements (= cwd), remove duplicates.
std::vector<SearchDir> split_search_path(std::string_view list, std::string_view separators, const DstContext& ctx);
// LD_LIBRARY_PATH (':' and ';'), expanded for the main program.
std::vector<SearchDir> parse_library_path(std::string_view value, const DstContext& main_ctx);

// ---------------------------------------------------------------- prediction

// How an object was found (the rule that decided).
enum class FoundBy {
  main_program,
  interpreter,   // the dynamic linker itself (PT_INTERP)
  preload_env,   // LD_PRELOAD
  preload_file,  // /etc/ld.so.preload
  slash_name,    // DT_NEEDED contains '/'
  rpath,         // DT_RPATH of needed_by's loader chain
  ld_library_path,
  runpath,  // DT_RUNPATH of the object that needs it
  ld_so_cache,
  default_dirs,
  already_loaded,  // same name/SONAME already in the link map
  not_found,
};
const char* found_by_name(FoundBy f);

// The relocation work ld.so does for one object at start-up (counted from
// its dynamic section the way glibc 2.36 elf/do-rel.h walks it; the model is
// src/ldso/relocations.hpp).
struct Relocations {
  std::uint64_t relative = 0;        // R_X86_64_RELATIVE entries plus DT_RELR addresses
  std::uint64_t symbolic = 0;        // GLOB_DAT, R_X86_64_64... outside DT_JMPREL: each may need a symbol lookup
  std::uint64_t plt = 0;             // JUMP_SLOT entries in DT_JMPREL (looked up at start-up only with bind_now)
  std::uint64_t irelative = 0;       // IFUNC resolvers run at start-up
  std::uint64_t tls = 0;             // DTPMOD64 / DTPOFF64 / TPOFF64 / TPOFF32
  std::uint64_t copy = 0;            // R_X86_64_COPY
  std::uint64_t symbol_lookups = 0;  // _dl_lookup_symbol_x calls start-up makes for this object
  bool textrel = false;              // DT_TEXTREL: text pages are made writable and relocated
  bool bind_now = false;             // PLT bound eagerly (DT_BIND_NOW, DF_1_NOW or LD_BIND_NOW; always for ld.so)
  std::uint64_t pages_dirtied = 0;   // distinct 4 KiB pages the relocations write (each a COW fault)
};

struct Object {
  std::string name;                 // as requested (DT_NEEDED string, preload entry)
  std::optional<std::string> path;  // where it was found; null when not found
  FoundBy found_by = FoundBy::not_found;
  std::string found_via;           // the directory / cache entry / RPATH owner, for the explanation
  std::string needed_by;           // the object whose DT_NEEDED named it ("" for preloads)
  bool hwcaps_subdir = false;      // found in a glibc-hwcaps or legacy hwcap subdirectory
  bool filter = false;             // loaded for a DT_FILTER / DT_AUXILIARY entry
  std::vector<std::string> tried;  // places tried in order, for failures
  // Start-up relocation work, when Request::relocations asked for it and the
  // object was found and readable.
  std::optional<Relocations> relocations;
};

struct LoaderError {
  // Where a real run stops. loading: while mapping objects; ld.so prints
  // "ARGV0: error while loading shared libraries: OBJECT: MESSAGE" and exits
  // with 127. versions: in the symbol-version check after the link map is
  // complete (elf/rtld.c version_check_doit); it prints "ARGV0: OBJECT:
  // MESSAGE" and exits with 1. Render with error_line().
  // musl_loading: musl's loader could not load OBJECT; it prints "Error
  // loading shared library OBJECT: MESSAGE" (MESSAGE: "STRERROR (needed by
  // X)"), goes on, and exits with 127 once the list is done (ldso/dynlink.c
  // load_direct_deps()). musl_relocating: no object of musl's global
  // namespace defines a symbol OBJECT refers to (MESSAGE: "SYMBOL: symbol
  // not found"), or a relocation type it does not apply; it prints "Error
  // relocating OBJECT: MESSAGE", goes on, and exits with 127 once every
  // object is relocated (ldso/dynlink.c do_relocs()).
  // relocating: a symbol lookup of relocation fails (elf/dl-lookup.c
  // _dl_lookup_symbol_x); ld.so prints "ARGV0: OCCASION: OBJECT: MESSAGE"
  // and exits with 127. OCCASION is "symbol lookup error" for a strong
  // reference nothing defines (MESSAGE "undefined symbol: NAME[, version
  // V]", OBJECT the one referring to it), or the symbol's name when the
  // executable copies or takes the address of a protected symbol of an
  // object marked GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (OBJECT that
  // one; sysdeps/generic/dl-protected.h).
  enum class Stage { loading, versions, musl_loading, musl_relocating, relocating };
  std::string object;   // the object the message names
  std::string message;  // ld.so's own text, e.g. "cannot open shared object file: No such file or directory"
  Stage stage = Stage::loading;
  std::string occasion{};  // relocating: "symbol lookup error" or the symbol's name
};

// The stderr line of a run of ARGV0 (_dl_argv[0]) that stops with E.
std::string error_line(std::string_view argv0, const LoaderError& e);
// The exit status ld.so gives that run: 127 (loading, relocating) or 1 (versions).
int exit_status(const LoaderError& e);

// Plain words for a failure, as the exec model gives them for the kernel's
// refusals: what is wrong and what to do. Built from the prediction: where a
// missing object was looked for, which glibc a missing GLIBC_x.y version
// needs against the one SYS runs.
struct Diagnosis {
  std::string why, fix;
};
Diagnosis diagnose(const struct Prediction& p, const SystemInfo& sys);
// What makes a missing object NAME findable.
std::string missing_object_fix(const std::string& name);
// The same for the loader P modelled (musl has no ld.so.cache, but a path file).
std::string missing_object_fix(const std::string& name, const struct Prediction& p);

// ---------------------------------------------------------------- ld.so as a command
// (src/ldso/command_line.cpp) glibc 2.36 elf/rtld.c dl_main when the kernel
// ran ld.so itself (`ld.so [OPTION]... FILE [ARG]...`): its options, read in
// order until the first argument that is not one of them.

struct LoaderCommand {
  // What the run does: load FILE and run it (run), list its objects (list:
  // --list, a trace where a name not found is fatal), only check it (verify:
  // exit 0 with PT_INTERP, 2 without, 1 when ld.so cannot use it), or print
  // something and exit before any FILE is loaded (help, version,
  // list_tunables, list_diagnostics) or refuse its command line (usage).
  enum class Mode { run, list, verify, help, version, list_tunables, list_diagnostics, usage };
  Mode mode = Mode::run;
  std::string ld_so_name;                 // argv[0] as the kernel gave it: the name ld.so's own messages use
  std::string program;                    // FILE as given (given at all: program_argv not empty)
  std::vector<std::string> program_argv;  // what FILE receives: FILE (or --argv0) and its arguments
  std::string unrecognized;               // usage: the option refused ("" when FILE is missing)
  // The options, each as the last one given says.
  std::optional<std::string> library_path;    // --library-path: replaces LD_LIBRARY_PATH
  std::optional<std::string> preload;         // --preload: loaded after LD_PRELOAD's objects
  std::optional<std::string> inhibit_rpath;   // --inhibit-rpath: objects whose DT_RPATH/RUNPATH are ignored
  std::optional<std::string> argv0;           // --argv0: FILE's argv[0], and the name in ld.so's messages
  std::optional<std::string> hwcaps_prepend;  // --glibc-hwcaps-prepend: glibc-hwcaps subdirectories tried first
  std::optional<std::string> hwcaps_mask;     // --glibc-hwcaps-mask: the built-in subdirectories kept
  std::vector<std::string> audit;             // --audit (every one; audit modules are not modelled)
  bool inhibit_cache = false;                 // --inhibit-cache: no ld.so.cache lookups

  // _dl_argv[0] when ld.so's messages about FILE's load are printed.
  [[nodiscard]] std::string message_name() const { return argv0.value_or(program); }
};
const char* loader_mode_name(LoaderCommand::Mode m);  // "run", "list", "verify", ...

// dl_main's reading of ARGV (ld.so's argv, argv[0] included).
LoaderCommand parse_loader_command(const std::vector<std::string>& argv);
// What a command that ends before loading anything (help, version,
// list_tunables, list_diagnostics, usage) exits with, and the stderr of a
// usage error (_dl_usage(), elf/dl-usage.c), byte for byte.
int command_exit_status(const LoaderCommand& c);
std::string usage_text(const LoaderCommand& c);

// Whether the ELF file at PATH (relative to the caller's cwd, or to CWD) is
// glibc's x86-64 ld.so: an ET_DYN object without PT_INTERP whose SONAME is
// ld-linux-x86-64.so.2. When the kernel runs it, rtld.c dl_main finds that
// the entry point it was given is its own (user_entry == ENTRY_POINT: the
// main map is ld.so itself) and reads its command line.
bool is_glibc_loader_file(const std::string& path, const std::string& cwd = "");

struct Request {
  std::string program;            // path as the kernel would run it (already resolved)
  std::vector<std::string> envp;  // LD_LIBRARY_PATH, LD_PRELOAD, ... come from here
  std::string cwd;                // empty = the caller's
  bool secure = false;            // AT_SECURE (setuid...): ignores unsafe env, restricts paths
  // Models `LDSO PROGRAM` (ld.so run as a command; with
  // LD_TRACE_LOADED_OBJECTS=1 this is what ldd runs) instead of the kernel
  // starting PROGRAM with its PT_INTERP: the main program's $ORIGIN comes
  // from the name given, its l_name is that name, and ld.so's own name is
  // this path. Not `LDSO --list PROGRAM`, which lists the same objects but
  // stops with status 127 at the first one not found (glibc 2.36, observed).
  // Empty: a normal exec.
  std::string explicit_loader;
  // Trace mode (LD_TRACE_LOADED_OBJECTS=1, what ldd sets): a name not found
  // is listed and the run goes on, through the symbol-version check (which
  // prints every line and stops nothing) to the list. Fills
  // Prediction::trace_stderr and Prediction::version_info.
  bool trace = false;
  // With trace: LD_DEBUG=unused (ldd -u). ld.so relocates the main program
  // (every slot, as trace mode does) and lists its direct dependencies no lookup
  // bound to instead of the list: Prediction::unused.
  bool unused = false;
  // With trace: LD_WARN=yes (ldd -d: data relocations) and also
  // LD_BIND_NOW=yes (ldd -r: every PLT slot too). ld.so relocates every
  // object and prints each reference nothing defines:
  // Prediction::symbol_lines.
  enum class SymbolCheck { none, data, all };
  SymbolCheck check_symbols = SymbolCheck::none;
  // Where every symbol reference of every object binds, as a normal run
  // starts (Prediction::bindings); LD_BIND_NOW from envp decides whether
  // PLT slots are bound at start-up.
  bool bindings = false;
  // ld.so run as a command with this command line (explicit_loader is
  // ld.so, program its FILE): its options apply to the load; a mode that
  // loads nothing gives Prediction::command_exit.
  std::optional<LoaderCommand> command;
  // Also count every found object's start-up relocation work
  // (Object::relocations, Prediction::startup_estimate_us). Reads each
  // object whole, so it costs more than the search itself.
  bool relocations = false;
};

// Which dynamic linker the prediction models, chosen by the program's
// PT_INTERP (or Request::explicit_loader): glibc's ld.so, or musl's loader
// (its own search rules, src/ldso/musl.cpp).
enum class LoaderKind { glibc, musl };
const char* loader_kind_name(LoaderKind k);  // "glibc", "musl"
// A loader named like musl's (its basename, or that of the file it links to,
// starts with "ld-musl-").
bool is_musl_loader(const std::string& path);

struct Prediction {
  LoaderKind kind = LoaderKind::glibc;
  // musl: the version the installed loader reports ("1.2.3"), whose
  // ldso/dynlink.c rules were modelled; empty when it could not be asked.
  std::string loader_version;
  // musl: the search path used after LD_LIBRARY_PATH and DT_RPATH/RUNPATH,
  // and where it came from (the path file, or musl's built-in default).
  std::vector<std::string> system_path;
  std::string system_path_from;
  // Every object of the link map except the main program and the vDSO, in
  // the order ld.so's trace mode (LD_TRACE_LOADED_OBJECTS=1) lists them;
  // not-found entries included with path null.
  std::vector<Object> objects;
  std::optional<LoaderError> error;  // the fatal error a real run stops with
  // Notes, and the lines a run prints without stopping: failed preloads
  // ("ERROR: ld.so: object ... cannot be preloaded ..."), version-check
  // lines other than the error, as ld.so prints them ("ARGV0: OBJECT: no
  // version information available (required by X)"), in the order printed.
  std::vector<std::string> warnings;
  bool dynamic = true;                    // false: the program has no PT_DYNAMIC (ld.so has nothing to do)
  std::vector<std::string> library_path;  // LD_LIBRARY_PATH as ld.so uses it (after DSTs)
  // With Request::relocations: the main program's relocation work, and an
  // ESTIMATE of ld.so's start-up time for the whole link map (main program,
  // objects, ld.so itself) from the documented cost model in
  // src/ldso/relocations.hpp (CostModel: one calibration on one VM; an order
  // of magnitude for comparing programs, not a measurement). Unset when the
  // run stops before relocation (error) or a count could not be made.
  std::optional<Relocations> program_relocations;
  std::optional<double> startup_estimate_us;

  // What trace mode prints (Request::trace; see ldd_lines()). The load ended
  // at `error` (a fatal error, which stops trace mode too: ld.so prints
  // error_line() and exits with 127), not only at a name not found.
  bool stopped = false;
  // The main program has no DT_NEEDED: trace mode prints "statically linked"
  // instead of the list (rtld.c dl_main, !main_map->l_info[DT_NEEDED]).
  bool statically_linked = false;
  // Where the vDSO stands in the namespace list trace mode prints: before
  // objects[vdso_index] (objects.size(): last). Unset when there is none.
  std::optional<std::size_t> vdso_index;
  // Trace mode's stderr lines before its list, in the order printed: failed
  // preloads, then every line of the symbol-version check (the fatal ones too).
  // musl (either mode): every line the loader prints on stderr, in order
  // ("Error loading shared library ...", then "Error relocating ...").
  std::vector<std::string> trace_stderr;
  // LD_VERBOSE's "Version information" section (rtld.c dl_main): for every
  // object of the namespace list with DT_VERNEED, main program first, each
  // version it needs and the object that defines it (find_needed() over the
  // main program's search list, match_version() by name).
  struct VersionNeeded {
    std::string file;                 // vn_file
    std::string version;              // vna_name
    bool weak = false;                // VER_FLG_WEAK
    std::optional<std::string> path;  // l_name of the object defining it; null: "not found"
  };
  struct VersionInfo {
    std::string object;  // DSO_FILENAME(l_name)
    std::vector<VersionNeeded> needs;
  };
  std::vector<VersionInfo> version_info;
  // Request::unused: l_name of each DT_NEEDED entry of the main program no
  // symbol lookup of its relocations bound to (rtld.c dl_main, the
  // DL_DEBUG_UNUSED walk), in DT_NEEDED order; unset when not asked for or
  // when a file could not be read for it (said in warnings).
  std::optional<std::vector<std::string>> unused;
  // Request::command: the command line ld.so read and, when the run ends
  // without loading FILE's objects (usage error, --help, --version,
  // --list-tunables, --list-diagnostics, --verify), ld.so's exit status.
  std::optional<LoaderCommand> command;
  std::optional<int> command_exit;
  // Request::command: the name ld.so's messages start with (_dl_argv[0]):
  // FILE, or --argv0's once FILE is mapped.
  std::optional<std::string> argv0;
  // Request::unused: ld.so stops on an assertion while relocating (its line
  // on stderr, exit 127) instead of listing anything.
  std::optional<std::string> abort_line;
  // Request::check_symbols: the lines ld.so prints while relocating in
  // trace mode ("undefined symbol: NAME\t(OBJECT)", copy relocation size
  // warnings), after the list.
  std::vector<std::string> symbol_lines;
  // Request::bindings: every _dl_lookup_symbol_x() call of start-up in
  // ld.so's order (elf/rtld.c dl_main): the vDSO's pointers, each object's
  // relocations (dependencies first, l_initfini reversed), ld.so's malloc
  // switch, ld.so's own relocations. Unset when a file could not be read
  // for it (said in warnings).
  struct Binding {
    std::string object;  // the referencing object (as LD_DEBUG names it)
    std::string symbol;
    std::optional<std::string> version;  // the version the reference asks for
    std::optional<std::string> target;   // the object it binds to; null: nothing defines it
    std::string target_version;          // the definition's version ("" none)
    bool protected_symbol = false;       // LD_DEBUG's "protected symbol": the reference is STV_PROTECTED
    bool weak = false;                   // a weak reference (undefined: bound to 0, no error)
    std::string relocation;              // R_X86_64_GLOB_DAT, ..., or "rtld" for ld.so's own lookups
    std::string definition_type;         // FUNC, OBJECT, IFUNC (its resolver is called), TLS, ...
    bool from_cache = false;             // the object's one-entry lookup cache answered (no LD_DEBUG line)
    bool at_first_call = false;          // a lazy PLT slot: bound when first called, not at start-up
  };
  std::optional<std::vector<Binding>> bindings;
  // Request::bindings: a strong reference nothing defines that start-up
  // binds (a data relocation, or a PLT slot under BIND_NOW: LD_BIND_NOW,
  // DF_BIND_NOW, DF_1_NOW) stops the start: `error` (stage relocating).
  // One in a lazy PLT slot does not: the program runs until its first call
  // through that slot, where elf/dl-runtime.c _dl_fixup() makes the same
  // lookup and ld.so prints error_line() and exits with 127 (a call never
  // made fails nothing). Each such slot, in ld.so's order:
  struct FirstCallError {
    std::string symbol;
    LoaderError error;
  };
  std::vector<FirstCallError> first_call_errors;
};

// The whole prediction. Fails (Error) only when the question cannot be
// answered (the program cannot be read or is not ELF). A program whose
// PT_INTERP (or explicit loader) is musl's gets musl's rules (kind musl);
// explicit_loader then models musl's ldd mode (`ld-musl-ARCH.so.1 --list
// PROGRAM`, or the loader run under a name ending in "ldd").
Result<Prediction> resolve(const Request& req, const SystemInfo& sys);

// ---------------------------------------------------------------- after execve
// (src/ldso/from_exec.cpp) The request ld.so gets when the exec that REQ
// asks for goes as P predicts: nullopt when ld.so does not run (the exec
// fails or is killed, or the program has no PT_INTERP and is not glibc's
// ld.so). When the kernel runs ld.so itself, the request is the one its
// command line makes (parse_loader_command() of the argv it receives:
// Request::command, FILE as the program). The environment and cwd are
// REQ's, AT_SECURE is the auxv's. RELOCATIONS: Request::relocations;
// BINDINGS: Request::bindings.
std::optional<Request> request_after_exec(const exec::Request& req, const exec::Prediction& p, bool relocations = false,
                                          bool bindings = false);
// request_after_exec() then resolve(): what `procforge explain` does after
// exec::predict(). A prediction that cannot be made comes back as one
// warning; nullopt when ld.so does not run.
std::optional<Prediction> predict_after_exec(const exec::Request& req, const exec::Prediction& p, const SystemInfo& sys,
                                             bool relocations = false, bool bindings = false);

// ---------------------------------------------------------------- ldd
// (src/ldso/ldd.cpp) glibc 2.36's ldd (elf/ldd.bash.in) for one FILE,
// without running anything: the shell script's checks (exists, regular
// file, readable), `RTLD --verify FILE` for each loader of its RTLDLIST, then
// `LD_TRACE_LOADED_OBJECTS=1 RTLD FILE`, which resolve() models with
// Request::explicit_loader and Request::trace.

struct LddRequest {
  std::string file;               // as given on ldd's command line
  std::vector<std::string> envp;  // the environment ldd runs in (LD_LIBRARY_PATH, LD_PRELOAD...)
  std::string cwd;                // empty = the caller's
  bool unused = false;            // -u
  // Whose ldd answers. Unset: musl's for a FILE whose PT_INTERP names musl's
  // loader (that loader run as ldd: `LOADER --list FILE`), glibc's
  // otherwise. glibc: the system's ldd script, which traces a musl program
  // with glibc's ld.so too. musl: musl's loader run as ldd on any FILE (its
  // PT_INTERP when that is musl's, else /lib/ld-musl-x86_64.so.1).
  std::optional<LoaderKind> as;
  Request::SymbolCheck check_symbols = Request::SymbolCheck::none;  // -d (data), -r (all)
};

struct LddResult {
  enum class Outcome {
    no_such_file,        // "ldd: FILE: No such file or directory"
    not_regular,         // "ldd: FILE: not regular file"
    no_read_permission,  // "ldd: error: you do not have read permission for `FILE'"
    not_dynamic,         // every ld.so's --verify refused it: "\tnot a dynamic executable"
    traced,              // ld.so's trace of it: `trace`
  };
  // musl's loader run as ldd (kind musl) has two of its own
  // (ldso/dynlink.c __dls3(), status 1): open() fails ("LOADER: cannot load
  // FILE: STRERROR", STRERROR in why), map_library() refuses it ("LOADER:
  // FILE: Not a valid dynamic program").
  enum class MuslOutcome { none, cannot_load, not_valid_dynamic };
  Outcome outcome = Outcome::traced;
  MuslOutcome musl_outcome = MuslOutcome::none;
  LoaderKind kind = LoaderKind::glibc;  // whose ldd answered
  std::string file;                     // FILE as ldd names it to ld.so: "./NAME" for a NAME without '/' (glibc)
  std::string loader;                   // traced: the ld.so that accepted it; musl: the loader run as ldd
  std::string why;                      // not_dynamic: why the x86-64 ld.so refused it
  std::string vdso;                     // the vDSO's name, as the trace lists it
  std::optional<Prediction> trace;
};

// An Error only when the question cannot be answered: FILE is a 32-bit
// object ldd would hand to another loader of its list (/lib/ld-linux.so.2,
// /libx32/ld-linux-x32.so.2), which is not modelled.
Result<LddResult> ldd(const LddRequest& req, const SystemInfo& sys);
// The musl loader ldd() runs as ldd for REQ, or "" when glibc's ldd answers.
std::string musl_ldd_loader(const LddRequest& req);

// The lines ldd's own shell makes ld.so print on ldd's stderr once, before
// anything else: ldd is a bash script (#!/bin/bash), started through ld.so
// with the same environment, so a preload that fails for bash (LD_PRELOAD,
// /etc/ld.so.preload) is reported for it ("ERROR: ld.so: object ... cannot be
// preloaded ...: ignored."). One that loads runs its code in ldd's shell.
std::vector<std::string> ldd_shell_lines(const std::vector<std::string>& envp, const std::string& cwd,
                                         const SystemInfo& sys);

// What ldd writes for R, without load addresses (" (0x...)" left out):
// OUT is its stdout (ld.so's stderr merged in, as ldd's try_trace() does),
// ERR its own stderr, STATUS 0 or 1 (ldd's result for this file). musl's:
// OUT the list, ERR the loader's lines, STATUS its exit status (0, 1, 127).
// VERSION_INFO: -v (LD_VERBOSE), the "Version information" section.
struct LddText {
  std::string out, err;
  int status = 0;
};
LddText ldd_text(const LddResult& r, bool version_info);

}  // namespace procforge::ldso

#pragma GCC visibility pop
