// Symbol lookup (glibc 2.36 elf/dl-lookup.c). For one reference:
//   RESOLVE_MAP (elf/dl-reloc.c): a local symbol, or one of hidden or
//     internal visibility, binds to its own object without a lookup (the
//     relocation walk, relocations.cpp, does not record those);
//   the version asked for is l_versions[versym & 0x7fff] of the referencing
//     object, none when its hash is 0;
//   do_lookup_x: the scope's objects in order; the executable is skipped for
//     a copy relocation; in each, the symbols of that name in symbol-index
//     order (the hash chain's order) through check_match(); with no exact
//     match, the one versioned symbol seen (if exactly one); a hidden or
//     internal, or a local definition is passed over, a weak or global or
//     unique one is taken;
//   check_match: no value (unless SHN_ABS or TLS), or undefined for a PLT
//     class lookup, or a type other than NOTYPE/OBJECT/FUNC/COMMON/TLS/IFUNC:
//     not a definition; a version asked for matches the definition's version
//     by hash and name, or any definition whose version is not hidden and
//     has no hash (unversioned); without a version, a definition of version
//     index 3 or more is not taken (counted, when not hidden) and 0, 1, 2 are.
#include "ldso/bindings.hpp"

#include <elf.h>

#include "ldso/relocations.hpp"

namespace procforge::ldso {

Result<ObjectSymbols> ObjectSymbols::read(const elf::File& file, bool ld_bind_now) {
  ObjectSymbols o;
  auto syms = file.symbols(elf::SymbolTable::dynsym);
  if (!syms) return syms.error();
  std::vector<std::uint16_t> versym;
  if (auto dyn = file.dynamic()) {
    bool tag = false;
    for (const auto& d : *dyn) tag |= d.tag == DT_VERSYM;
    if (tag) {
      auto v = file.version_symbols();
      if (!v) return v.error();
      versym = std::move(*v);
      o.has_versym = true;
    }
  }
  o.syms.reserve(syms->size());
  for (std::size_t i = 0; i < syms->size(); ++i) {
    const auto& s = (*syms)[i];
    Sym sym{std::string(s.name), s.value, s.info, s.other, s.shndx, i < versym.size() ? versym[i] : std::uint16_t{0}};
    if (s.shndx != SHN_UNDEF || s.value != 0) o.by_name[sym.name].push_back(static_cast<std::uint32_t>(i));
    o.syms.push_back(std::move(sym));
  }
  // _dl_check_map_versions(): l_versions from Elf_Verneed and Elf_Verdef.
  auto put = [&](std::size_t ndx, VersionEntry e) {
    if (ndx >= o.versions.size()) o.versions.resize(ndx + 1);
    o.versions[ndx] = std::move(e);
  };
  if (auto needs = file.version_needs())
    for (const auto& n : *needs)
      for (const auto& a : n.entries)
        put(a.other & 0x7fff, {std::string(a.name), a.hash, (a.other & 0x8000) != 0, std::string(n.file)});
  // The base version (VER_FLG_BASE, the file's own name) is not there to be
  // matched.
  if (auto defs = file.version_defs())
    for (const auto& d : *defs)
      if (!d.names.empty() && (d.flags & VER_FLG_BASE) == 0)
        put(d.index & 0x7fff, {std::string(d.names[0]), d.hash, false, ""});
  const RelocationWork w = analyze_relocations(file, ld_bind_now, /*record_lookups=*/true);
  for (const auto& l : w.lookups) o.lookups.push_back({l.sym, l.type_class});
  return o;
}

namespace {

constexpr unsigned kAllowedTypes = (1u << STT_NOTYPE) | (1u << STT_OBJECT) | (1u << STT_FUNC) | (1u << STT_COMMON) |
                                   (1u << STT_TLS) | (1u << STT_GNU_IFUNC);

struct Seen {
  int versioned = -1;
  int count = 0;
};

// check_match(): whether symbol IDX of MAP answers the reference.
bool check_match(const ScopeObject& obj, std::uint32_t idx, const VersionEntry* version, int type_class, Seen& seen,
                 bool& asserts) {
  const ObjectSymbols& map = *obj.symbols;
  const auto& s = map.syms[idx];
  const unsigned stt = s.info & 0xf;
  if ((s.value == 0 && s.shndx != SHN_ABS && stt != STT_TLS) || ((type_class & 1) && s.shndx == SHN_UNDEF))
    return false;
  if (((1u << stt) & kAllowedTypes) == 0) return false;
  if (!map.has_versym) {
    // assert (version->filename == NULL || ! _dl_name_match_p (version->filename, map))
    if (version && !version->filename.empty())
      for (const auto& n : obj.names) asserts |= n == version->filename;
    return true;
  }
  const unsigned ndx = s.versym & 0x7fff;
  const VersionEntry none;
  const VersionEntry& mine = ndx < map.versions.size() ? map.versions[ndx] : none;
  if (version) {
    return !((mine.hash != version->hash || mine.name != version->name) &&
             (version->hidden || mine.hash || (s.versym & 0x8000)));
  }
  if (ndx >= 3) {
    if ((s.versym & 0x8000) == 0 && seen.count++ == 0) seen.versioned = static_cast<int>(idx);
    return false;
  }
  return true;
}

}  // namespace

int lookup(const std::vector<ScopeObject>& scope, std::size_t undef, const ObjectSymbols::Lookup& ref) {
  const ObjectSymbols& from = *scope[undef].symbols;
  if (ref.sym >= from.syms.size()) return -1;
  const auto& want = from.syms[ref.sym];
  const VersionEntry* version = nullptr;
  if (from.has_versym) {
    const unsigned ndx = want.versym & 0x7fff;
    if (ndx < from.versions.size() && from.versions[ndx].hash != 0) version = &from.versions[ndx];
  }
  for (std::size_t i = 0; i < scope.size(); ++i) {
    const ScopeObject& obj = scope[i];
    if (!obj.symbols || ((ref.type_class & 2) && obj.executable)) continue;
    const ObjectSymbols& map = *obj.symbols;
    auto it = map.by_name.find(want.name);
    if (it == map.by_name.end()) continue;
    Seen seen;
    int found = -1;
    bool asserts = false;
    for (std::uint32_t idx : it->second)
      if (check_match(obj, idx, version, ref.type_class, seen, asserts)) {
        found = static_cast<int>(idx);
        break;
      }
    if (asserts) return kLookupAsserts;
    if (found < 0 && seen.count == 1) found = seen.versioned;
    if (found < 0) continue;
    const auto& def = map.syms[static_cast<std::size_t>(found)];
    const unsigned vis = def.other & 3;
    if (vis == STV_HIDDEN || vis == STV_INTERNAL) continue;
    const unsigned bind = def.info >> 4;
    if (bind == STB_WEAK || bind == STB_GLOBAL || bind == STB_GNU_UNIQUE) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace procforge::ldso
