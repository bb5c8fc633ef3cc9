// Symbol lookup as glibc 2.36's ld.so makes it (elf/dl-lookup.c
// _dl_lookup_symbol_x -> do_lookup_x -> check_match), over a scope of
// objects read from their files: which object a symbol reference binds to.
// Today it answers ldd -u (which direct dependencies no relocation of the
// main program binds to); the same lookup is what every binding of every
// object needs (ldd -r, explain --bindings), which a caller makes by giving
// another object's references.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "procforge/elf.hpp"
#include "procforge/result.hpp"

namespace procforge::ldso {

// An entry of glibc's l_versions: a version an object defines (Elf_Verdef,
// filename empty) or needs (Elf_Vernaux: hidden from vna_other's bit 15).
struct VersionEntry {
  std::string name;
  std::uint32_t hash = 0;  // 0: none (VER_NDX_LOCAL, VER_NDX_GLOBAL, a gap)
  bool hidden = false;
  std::string filename;
};

// What do_lookup_x() reads of one object, and its own references.
struct ObjectSymbols {
  struct Sym {
    std::string name;
    std::uint64_t value = 0;
    std::uint8_t info = 0, other = 0;
    std::uint16_t shndx = 0;
    std::uint16_t versym = 0;  // .gnu.version entry (0 when the object has none)
  };
  std::vector<Sym> syms;                                                // .dynsym by index
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_name;  // defined symbols, index order
  bool has_versym = false;
  std::vector<VersionEntry> versions;  // l_versions by version index
  // The lookups start-up relocation makes for this object (lazy unless
  // BIND_NOW), in order: symbol index and elf_machine_type_class.
  struct Lookup {
    std::uint32_t sym = 0;
    int type_class = 0;
  };
  std::vector<Lookup> lookups;

  // Reads FILE (whole, already in memory). LD_BIND_NOW as for
  // analyze_relocations().
  static Result<ObjectSymbols> read(const elf::File& file, bool ld_bind_now);
};

// One object of a lookup scope.
struct ScopeObject {
  std::shared_ptr<const ObjectSymbols> symbols;  // null: nothing to find in it
  bool executable = false;                       // lt_executable: skipped for copy relocations
  std::vector<std::string> names;                // l_name and every name it is known by (_dl_name_match_p)
};

// _dl_lookup_symbol_x() for reference number LOOKUP of UNDEF (an index into
// SCOPE, the object making it): the index in SCOPE of the object it binds
// to, or -1 (undefined; for a weak reference, bound to nothing), or
// kLookupAsserts: a versioned reference met its symbol in the object its
// version names, which has no DT_VERSYM, and ld.so stops on check_match()'s
// assertion.
constexpr int kLookupAsserts = -2;
int lookup(const std::vector<ScopeObject>& scope, std::size_t undef, const ObjectSymbols::Lookup& lookup);

}  // namespace procforge::ldso
