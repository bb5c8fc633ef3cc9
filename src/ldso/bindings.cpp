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
//     unique one is taken; with LD_DYNAMIC_WEAK a weak one is only kept (the
//     first met) while the walk goes on for a global or unique one;
//   check_match: no value (unless SHN_ABS or TLS), or undefined for a PLT
//     class lookup, or a type other than NOTYPE/OBJECT/FUNC/COMMON/TLS/IFUNC:
//     not a definition; a version asked for matches the definition's version
//     by hash and name, or any definition whose version is not hidden and
//     has no hash (unversioned); without a version, a definition of version
//     index 3 or more is not taken (counted, when not hidden) and 0, 1, 2 are;
//   a protected definition the executable's lookup meets goes through
//     sysdeps/generic/dl-protected.h _dl_check_protected_symbol().
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
    for (const auto& d : *dyn) {
      tag |= d.tag == DT_VERSYM;
      // elf/get-dynamic-info.h: DF_SYMBOLIC counts as DT_SYMBOLIC.
      o.symbolic |= d.tag == DT_SYMBOLIC || (d.tag == DT_FLAGS && (d.value & DF_SYMBOLIC) != 0);
    }
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
    Sym sym{std::string(s.name),
            s.value,
            s.size,
            s.info,
            s.other,
            s.shndx,
            i < versym.size() ? versym[i] : std::uint16_t{0}};
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
  // sysdeps/x86/dl-prop.h: l_1_needed from GNU_PROPERTY_1_NEEDED.
  if (auto props = file.gnu_properties())
    for (const auto& p : *props)
      if (p.type == GNU_PROPERTY_1_NEEDED && p.data.size() == 4)
        o.indirect_extern_access = (p.data[0] & GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS) != 0;
  const RelocationWork w = analyze_relocations(file, ld_bind_now, /*record_lookups=*/true);
  o.bind_now_flag = w.bind_now_flag;
  for (const auto& l : w.lookups) o.lookups.push_back({l.sym, l.type_class, l.type, l.cached});
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

// The reference being looked up.
struct Query {
  const std::string& name;
  const VersionEntry* version;
  int type_class;
  std::size_t undef;
  std::uint32_t ref_sym;
  bool dynamic_weak;
  const ObjectSymbols::Sym* ref = nullptr;  // null: no undef_map (the protected rule's second lookup)
};

// do_lookup_x() over the objects ORDER names in SCOPE: 1 found (in OUT), 0
// not (OUT may hold the weak definition LD_DYNAMIC_WEAK kept), kLookupAsserts.
int do_lookup_x(const std::vector<ScopeObject>& scope, const std::vector<std::size_t>& order, const Query& q,
                UniqueTable& unique, Bound& out) {
  for (std::size_t i : order) {
    const ScopeObject& obj = scope[i];
    if (!obj.symbols || ((q.type_class & 2) && obj.executable)) continue;
    const ObjectSymbols& map = *obj.symbols;
    auto it = map.by_name.find(q.name);
    if (it == map.by_name.end()) continue;
    Seen seen;
    int found = -1;
    bool asserts = false;
    for (std::uint32_t idx : it->second)
      if (check_match(obj, idx, q.version, q.type_class, seen, asserts)) {
        found = static_cast<int>(idx);
        break;
      }
    if (asserts) return kLookupAsserts;
    if (found < 0 && seen.count == 1) found = seen.versioned;
    if (found < 0) continue;
    const auto idx = static_cast<std::uint32_t>(found);
    const auto& def = map.syms[idx];
    const unsigned vis = def.other & 3;
    if (vis == STV_HIDDEN || vis == STV_INTERNAL) continue;
    if (vis == STV_PROTECTED && q.ref && scope[q.undef].executable) {
      if (q.type_class & 2) out.protected_use = Bound::ProtectedUse::copied;
      else if ((q.type_class & 1) && q.ref->value != 0 && q.ref->shndx == SHN_UNDEF)
        out.protected_use = Bound::ProtectedUse::address_taken;
      if (out.protected_use != Bound::ProtectedUse::none) out.protected_owner = static_cast<int>(i);
    }
    const unsigned bind = def.info >> 4;
    // GLRO(dl_dynamic_weak): "Weak definition.  Use this value if we don't
    // find another." The walk goes on to the next object.
    if (bind == STB_WEAK && q.dynamic_weak) {
      if (out.object < 0) {
        out.object = static_cast<int>(i);
        out.sym = idx;
      }
      continue;
    }
    if (bind == STB_WEAK || bind == STB_GLOBAL) {
      out.object = static_cast<int>(i);
      out.sym = idx;
      return 1;
    }
    if (bind == STB_GNU_UNIQUE) {
      // do_lookup_unique(): the first definition met stays the one every
      // later lookup gets; a copy relocation enters the executable's copy.
      auto u = unique.find(q.name);
      if (u != unique.end() && (q.type_class & 2) == 0) {
        out.object = u->second.first;
        out.sym = u->second.second;
        return 1;
      }
      if (u == unique.end())
        unique[q.name] = (q.type_class & 2) ? std::pair<int, std::uint32_t>{static_cast<int>(q.undef), q.ref_sym}
                                            : std::pair<int, std::uint32_t>{static_cast<int>(i), idx};
      out.object = static_cast<int>(i);
      out.sym = idx;
      return 1;
    }
  }
  return 0;
}

}  // namespace

Bound bind(const std::vector<ScopeObject>& scope, std::size_t undef, const ObjectSymbols& from,
           const ObjectSymbols::Lookup& ref, UniqueTable& unique, bool dynamic_weak) {
  Bound b;
  if (ref.sym >= from.syms.size()) return b;
  const auto& want = from.syms[ref.sym];
  if (from.has_versym) {
    const unsigned ndx = want.versym & 0x7fff;
    if (ndx < from.versions.size() && from.versions[ndx].hash != 0) b.version = &from.versions[ndx];
  }
  // l_scope: the object alone first with DT_SYMBOLIC, then the global scope.
  // DF_1_GROUP (ld -Bgroup; Solaris: lookups from the object and its
  // dependencies stay inside that group, in its DT_NEEDED order) changes
  // nothing: glibc 2.36 copies DT_FLAGS_1 to l_flags_1
  // (elf/get-dynamic-info.h, which only warns of the bits outside
  // include/elf.h DT_1_SUPPORTED_MASK under LD_DEBUG=files), and no lookup
  // (elf/dl-lookup.c), scope (elf/dl-object.c) or search list (elf/dl-deps.c)
  // reads the bit.
  std::vector<std::size_t> order;
  if (from.symbolic && !scope[undef].executable) order.push_back(undef);
  for (std::size_t i = 0; i < scope.size(); ++i) order.push_back(i);
  const Query q{want.name, b.version, ref.type_class, undef, ref.sym, dynamic_weak, &want};
  const int r = do_lookup_x(scope, order, q, unique, b);
  if (r == kLookupAsserts) b.object = kLookupAsserts;
  if (b.object < 0) return b;
  // _dl_lookup_symbol_x: a reference that is itself a protected definition
  // binds to its own object when the lookup (for a PLT slot), or a second
  // lookup of class PLT (for the others), finds it in another object.
  if ((want.other & 3) == STV_PROTECTED) {
    b.protected_ref = true;
    bool elsewhere = b.object != static_cast<int>(undef);
    if (ref.type_class != 1) {
      Bound again;
      const Query plt{want.name, b.version, 1, undef, ref.sym, dynamic_weak, nullptr};
      // protected_value.s is read whatever do_lookup_x() returned.
      elsewhere = do_lookup_x(scope, order, plt, unique, again) != kLookupAsserts && again.object >= 0 &&
                  again.object != static_cast<int>(undef);
    }
    if (elsewhere) {
      b.object = static_cast<int>(undef);
      b.sym = ref.sym;
    }
  }
  return b;
}

// rtld.c process_envvars(): any LD_DYNAMIC_WEAK=..., empty or not, sets
// GLRO(dl_dynamic_weak); never in secure mode (the check there, and
// sysdeps/generic/unsecvars.h takes the variable out of the environment).
bool env_dynamic_weak(const std::vector<std::string>& envp, bool secure) {
  if (secure) return false;
  for (const auto& e : envp)
    if (e.rfind("LD_DYNAMIC_WEAK=", 0) == 0) return true;
  return false;
}

std::string protected_warning(const Bound& b, const std::string& symbol, const std::string& owner) {
  if (b.protected_use == Bound::ProtectedUse::copied)
    return "warning: copy relocation against non-copyable protected symbol `" + symbol + "' in `" + owner + "'";
  return "warning: direct reference to protected function `" + symbol + "' in `" + owner +
         "' may break pointer equality";
}

std::string relocation_name(std::uint32_t type) {
  switch (type) {
    case R_X86_64_64: return "R_X86_64_64";
    case R_X86_64_PC32: return "R_X86_64_PC32";
    case R_X86_64_COPY: return "R_X86_64_COPY";
    case R_X86_64_GLOB_DAT: return "R_X86_64_GLOB_DAT";
    case R_X86_64_JUMP_SLOT: return "R_X86_64_JUMP_SLOT";
    case R_X86_64_32: return "R_X86_64_32";
    case R_X86_64_32S: return "R_X86_64_32S";
    case R_X86_64_DTPMOD64: return "R_X86_64_DTPMOD64";
    case R_X86_64_DTPOFF64: return "R_X86_64_DTPOFF64";
    case R_X86_64_TPOFF64: return "R_X86_64_TPOFF64";
    case R_X86_64_TPOFF32: return "R_X86_64_TPOFF32";
    case R_X86_64_PC64: return "R_X86_64_PC64";
    case R_X86_64_SIZE32: return "R_X86_64_SIZE32";
    case R_X86_64_SIZE64: return "R_X86_64_SIZE64";
    case R_X86_64_TLSDESC: return "R_X86_64_TLSDESC";
    default: return "R_X86_64_" + std::to_string(type);
  }
}

std::string symbol_type_name(std::uint8_t info) {
  switch (info & 0xf) {
    case STT_NOTYPE: return "NOTYPE";
    case STT_OBJECT: return "OBJECT";
    case STT_FUNC: return "FUNC";
    case STT_COMMON: return "COMMON";
    case STT_TLS: return "TLS";
    case STT_GNU_IFUNC: return "IFUNC";
    default: return std::to_string(info & 0xf);
  }
}

std::string version_of(const ObjectSymbols& map, std::uint32_t idx) {
  if (!map.has_versym || idx >= map.syms.size()) return "";
  const unsigned ndx = map.syms[idx].versym & 0x7fff;
  return ndx < map.versions.size() ? map.versions[ndx].name : "";
}

std::uint32_t elf_hash(const std::string& name) {
  std::uint32_t h = 0;
  for (unsigned char c : name) {
    h = (h << 4) + c;
    const std::uint32_t hi = h & 0xf0000000;
    h ^= hi >> 24;
    h &= ~hi;
  }
  return h;
}

}  // namespace procforge::ldso
