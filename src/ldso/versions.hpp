// Symbol-version checks ld.so makes once the link map is complete, before
// relocation: every Elf_Verneed of every object is matched against the
// Elf_Verdef of the object it names (glibc 2.36 elf/dl-version.c
// _dl_check_all_versions -> _dl_check_map_versions -> match_symbol; called
// from elf/rtld.c dl_main through version_check_doit, which prints with
// print_missing_version). Each problem becomes one stderr line
//   "<argv0>: <object lacking the version>: <message>"
// and a normal run exits with status 1 after the check when any was fatal;
// trace mode (ldd, ld.so --list) prints the same lines and goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/elf.hpp"
#include "procforge/ldso.hpp"
#include "procforge/result.hpp"

namespace procforge::ldso {

// What ld.so reads of one object's versioning, from its dynamic section only
// (DT_VERNEED / DT_VERDEF; ld.so never looks at section headers).
struct VersionTables {
  struct Requirement {
    std::string name;        // vna_name, "GLIBC_2.34"
    std::uint32_t hash = 0;  // vna_hash (match_symbol compares it before the name)
    bool weak = false;       // VER_FLG_WEAK: a miss is not fatal
  };
  struct Need {
    std::string file;  // vn_file, "libc.so.6"
    std::vector<Requirement> versions;
  };
  struct Definition {
    std::uint32_t hash = 0;  // vd_hash
    std::string name;        // the first Elf_Verdaux name (the version itself)
  };
  std::vector<Need> needs;
  bool has_verdef = false;  // DT_VERDEF present
  std::vector<Definition> defs;

  static Result<VersionTables> from_file(const elf::File& file);
  // Reads PATH with pread() (never maps or runs it).
  static Result<VersionTables> read(const std::string& path);
};

// One object of the link map as the version check reads it (glibc's struct
// link_map; not profile::LoadedObject, a traced run's object), in l_next
// (search-list) order: the main program first, then what ld.so loaded,
// including ld.so itself and the vDSO where the link map has them
// (find_needed() walks the whole namespace).
struct LinkMapObject {
  std::string l_name;                 // the path it was opened as; "" for the main program of a normal run
  std::vector<std::string> libnames;  // every name it is known by (requested names, SONAME once matched)
  std::string path;                   // the file to read when tables is not set ("" = unreadable: not checked)
  bool faked = false;                 // trace mode's "not found" placeholder: neither checked nor matched
  std::shared_ptr<const VersionTables> tables;  // pre-read tables; read from path when null
};

// One line ld.so would print.
struct VersionDiagnostic {
  std::string object;   // objname: the object that lacks the version (DSO_FILENAME of its l_name)
  std::string message;  // "version `V2' not found (required by ./prog)"
  bool fatal = false;
};

// "<argv0>: <object>: <message>", exactly as print_missing_version() prints it.
std::string version_line(std::string_view argv0, const VersionDiagnostic& d);

// Everything _dl_check_all_versions(main, verbose=1, trace) reports, in order.
// ARGV0 is _dl_argv[0] (the program as named on the command line); it names
// the main program wherever its l_name is empty. Objects whose tables cannot
// be read are skipped and named in PROBLEMS (when given).
std::vector<VersionDiagnostic> check_all_versions(const std::vector<LinkMapObject>& objects, std::string_view argv0,
                                                  bool trace_mode = false,
                                                  std::vector<std::string>* problems = nullptr);

// For resolve(): the first fatal diagnostic as the run's error
// ({object, message}; render it as version_line(), not as "error while loading
// shared libraries"), every other diagnostic line appended to WARNINGS (as
// full version_line() text). ALL, when given, gets every diagnostic in the
// order ld.so prints them, the fatal ones included.
std::optional<LoaderError> check_versions(const std::vector<LinkMapObject>& objects, std::string_view argv0,
                                          std::vector<std::string>& warnings,
                                          std::vector<VersionDiagnostic>* all = nullptr);

}  // namespace procforge::ldso
