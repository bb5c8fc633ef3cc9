// Symbol lookup as glibc 2.36's ld.so makes it (elf/dl-lookup.c
// _dl_lookup_symbol_x -> do_lookup_x -> check_match), over a scope of
// objects read from their files: which object a symbol reference binds to.
// It answers ldd -u (which direct dependencies no relocation of the main
// program binds to), ldd -d/-r (the references nothing defines) and explain
// --bindings (where every reference of every object binds).
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
    std::uint64_t size = 0;
    std::uint8_t info = 0, other = 0;
    std::uint16_t shndx = 0;
    std::uint16_t versym = 0;  // .gnu.version entry (0 when the object has none)
  };
  std::vector<Sym> syms;                                                // .dynsym by index
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_name;  // defined symbols, index order
  bool has_versym = false;
  bool symbolic = false;                // DT_SYMBOLIC or DF_SYMBOLIC: its own definitions first
  bool bind_now_flag = false;           // DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW: PLT slots bound at start-up
  bool indirect_extern_access = false;  // GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (l_1_needed)
  std::vector<VersionEntry> versions;   // l_versions by version index
  // The lookups start-up relocation makes for this object (lazy unless
  // BIND_NOW), in order: symbol index, elf_machine_type_class, relocation
  // type, and whether the one-entry cache answered it (RESOLVE_MAP).
  struct Lookup {
    std::uint32_t sym = 0;
    int type_class = 0;
    std::uint32_t type = 0;
    bool cached = false;
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

// Bound::object when a versioned reference met its symbol in the object its
// version names, which has no DT_VERSYM, and ld.so stops on check_match()'s
// assertion.
constexpr int kLookupAsserts = -2;

// The namespace's table of STB_GNU_UNIQUE symbols (do_lookup_unique): the
// first definition a lookup met, by name, as (scope index, symbol index).
using UniqueTable = std::unordered_map<std::string, std::pair<int, std::uint32_t>>;

// What one _dl_lookup_symbol_x() call gives.
struct Bound {
  int object = -1;                        // index in the scope; -1 not found; kLookupAsserts
  std::uint32_t sym = 0;                  // the definition's symbol index there
  bool protected_ref = false;             // the reference is STV_PROTECTED ("protected symbol")
  const VersionEntry* version = nullptr;  // the version asked for (in the referencing object)
  // sysdeps/generic/dl-protected.h _dl_check_protected_symbol(): the
  // executable copies (a copy relocation) or takes the address of (a PLT
  // class lookup of an undefined symbol with a value: a canonical PLT entry)
  // the protected definition the lookup met in scope entry protected_owner.
  // ld.so warns, and stops if that object needs indirect extern access.
  enum class ProtectedUse { none, copied, address_taken };
  ProtectedUse protected_use = ProtectedUse::none;
  int protected_owner = -1;
};

// _dl_lookup_symbol_x() for reference REF of UNDEF (an index into SCOPE, the
// object making it). The whole lookup: the referencing object itself first when it has
// DT_SYMBOLIC (elf/dl-load.c l_symbolic_searchlist; never for the main
// program), then SCOPE; STB_GNU_UNIQUE through UNIQUE; the protected
// rule of _dl_lookup_symbol_x. FROM holds the reference (UNDEF's symbols,
// or ld.so's own lookups made in UNDEF's name). DYNAMIC_WEAK: LD_DYNAMIC_WEAK's
// rule (env_dynamic_weak()), a weak definition taken only when no later
// object has a global one.
Bound bind(const std::vector<ScopeObject>& scope, std::size_t undef, const ObjectSymbols& from,
           const ObjectSymbols::Lookup& ref, UniqueTable& unique, bool dynamic_weak);

// Whether ld.so run with ENVP looks past weak definitions (GLRO(dl_dynamic_weak),
// LD_DYNAMIC_WEAK); SECURE: AT_SECURE, where it never does.
bool env_dynamic_weak(const std::vector<std::string>& envp, bool secure);

// The warning dl-protected.h prints for B's protected_use (not none) of
// SYMBOL, defined in OWNER (its l_name).
std::string protected_warning(const Bound& b, const std::string& symbol, const std::string& owner);

// R_X86_64_GLOB_DAT...; "R_X86_64_<n>" for another.
std::string relocation_name(std::uint32_t type);
// FUNC, OBJECT, IFUNC, TLS, NOTYPE, COMMON... of a symbol's st_info.
std::string symbol_type_name(std::uint8_t info);
// The version name of symbol IDX of MAP ("" unversioned or none).
std::string version_of(const ObjectSymbols& map, std::uint32_t idx);

// Elf_Hash of a version name (elf/dl-hash.h _dl_elf_hash), as vna_hash holds it.
std::uint32_t elf_hash(const std::string& name);

}  // namespace procforge::ldso
