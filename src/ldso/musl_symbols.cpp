// musl 1.2.3's symbol lookup at start-up and the relocation errors it prints
// (ldso/dynlink.c):
//   - find_sym2(): the objects of the global namespace in order (syms_next:
//     the program, then the list in load order); in each, only the symbol
//     the hash table gives (sysv_lookup()/gnu_lookup(): the first of the
//     name whose versym is not negative, i.e. not hidden; versions are
//     otherwise ignored); it is skipped when undefined and the lookup needs
//     a definition (a JUMP_SLOT) or is TLS, when its value is 0 (not TLS),
//     when its type is not NOTYPE/OBJECT/FUNC/COMMON/TLS (an IFUNC is never
//     a definition) or its binding not GLOBAL/WEAK/GNU_UNIQUE; the next
//     object is then asked;
//   - do_relocs(): per entry, R_X86_64_NONE skipped; a symbol reference is
//     looked up from the head (from the object after the program for a
//     COPY), a STB_LOCAL one binds to itself; not found and not a weak
//     undefined reference: error("Error relocating %s: %s: symbol not
//     found") and the next entry; a type outside arch/x86_64/reloc.h's list:
//     "unsupported relocation type %d". error() before runtime prints the
//     line and sets ldso_fail: every line is printed, and __dls3() exits
//     with 127 after relocating (in --list mode too);
//   - reloc_all(): DT_JMPREL, DT_REL, DT_RELA of each object, the objects
//     after the program first, the program last; the loader (relocated in
//     __dls2) is skipped. Lazy binding exists only for dlopen().
// Nothing is mapped: tables are read from the file through its PT_LOAD
// segments.
#include "ldso/musl_symbols.hpp"

#include <elf.h>

#include <optional>

#include "procforge/elf.hpp"

namespace procforge::ldso::detail {

namespace {

// arch/x86_64/reloc.h: the types do_relocs() applies (REL_SYMBOLIC ...
// REL_TLSDESC); the rest of its switch names types x86_64 does not have.
bool musl_applies(std::uint32_t type) {
  switch (type) {
    case R_X86_64_64:
    case R_X86_64_PC32:
    case R_X86_64_GLOB_DAT:
    case R_X86_64_JUMP_SLOT:
    case R_X86_64_RELATIVE:
    case R_X86_64_COPY:
    case R_X86_64_DTPMOD64:
    case R_X86_64_DTPOFF64:
    case R_X86_64_TPOFF64:
    case R_X86_64_TLSDESC: return true;
    default: return false;
  }
}

// decode_dyn()'s values for the tables read here.
struct DynTables {
  std::optional<std::uint64_t> jmprel, pltrelsz, pltrel, rel, relsz, rela, relasz, gnu_hash, hash;
};

DynTables dyn_tables(const std::vector<elf::DynamicEntry>& entries) {
  DynTables t;
  for (const auto& e : entries) {
    std::optional<std::uint64_t>* slot = e.tag == DT_JMPREL     ? &t.jmprel
                                         : e.tag == DT_PLTRELSZ ? &t.pltrelsz
                                         : e.tag == DT_PLTREL   ? &t.pltrel
                                         : e.tag == DT_REL      ? &t.rel
                                         : e.tag == DT_RELSZ    ? &t.relsz
                                         : e.tag == DT_RELA     ? &t.rela
                                         : e.tag == DT_RELASZ   ? &t.relasz
                                         : e.tag == DT_GNU_HASH ? &t.gnu_hash
                                         : e.tag == DT_HASH     ? &t.hash
                                                                : nullptr;
    if (slot) *slot = e.value;  // decode_vec(): the last entry of a tag wins
  }
  return t;
}

// One table of SIZE bytes at VADDR, entries of STRIDE bytes (16: REL, 24: RELA).
void read_table(const elf::File& f, std::optional<std::uint64_t> vaddr, std::optional<std::uint64_t> size,
                std::uint64_t stride, MuslSymbols& out) {
  if (!vaddr || !size || *size == 0) return;
  const auto off = f.vaddr_to_offset(*vaddr);
  if (!off) {
    out.problem = "a relocation table is not backed by the file";
    return;
  }
  for (std::uint64_t at = 0; at + stride <= *size; at += stride) {
    const auto info = f.view().u64(*off + at + 8);
    if (!info) {
      out.problem = "a relocation table runs past the end of the file";
      return;
    }
    out.relocs.push_back({static_cast<std::uint32_t>(*info & 0xffffffff), static_cast<std::uint32_t>(*info >> 32)});
  }
}

// The first index the hash chains hold (DT_GNU_HASH symoffset); 1 for DT_HASH.
std::uint64_t first_hashed(const elf::File& f, const DynTables& t, MuslSymbols& out) {
  if (!t.gnu_hash) {
    if (!t.hash) out.problem = "no DT_HASH or DT_GNU_HASH: musl's lookup finds nothing in it";
    return t.hash ? 1 : UINT64_MAX;
  }
  const auto off = f.vaddr_to_offset(*t.gnu_hash);
  const auto symoffset = off ? f.view().u32(*off + 4) : std::nullopt;
  if (!symoffset) {
    out.problem = "DT_GNU_HASH is not backed by the file";
    return UINT64_MAX;
  }
  return *symoffset;
}

}  // namespace

MuslSymbols MuslSymbols::read(std::span<const std::uint8_t> bytes) {
  MuslSymbols out;
  auto file = elf::File::parse(bytes);
  if (!file) {
    out.problem = file.error().message;
    return out;
  }
  auto dyn = file->dynamic();
  if (!dyn) {
    out.problem = dyn.error().message;
    return out;
  }
  const DynTables t = dyn_tables(*dyn);
  auto syms = file->symbols(elf::SymbolTable::dynsym);
  if (!syms) {
    out.problem = syms.error().message;
  } else {
    const auto versym = file->version_symbols();
    const std::uint64_t first = first_hashed(*file, t, out);
    out.syms.reserve(syms->size());
    for (std::size_t i = 0; i < syms->size(); ++i) {
      const auto& s = (*syms)[i];
      out.syms.push_back({std::string(s.name), s.value, s.info, s.shndx});
      const bool hidden = versym && i < versym->size() && ((*versym)[i] & 0x8000) != 0;
      if (i >= first && !hidden) out.findable.emplace(out.syms.back().name, static_cast<std::uint32_t>(i));
    }
  }
  read_table(*file, t.jmprel, t.pltrelsz, t.pltrel == DT_RELA ? 24 : 16, out);
  read_table(*file, t.rel, t.relsz, 16, out);
  read_table(*file, t.rela, t.relasz, 24, out);
  return out;
}

bool MuslSymbols::defines(const std::string& name, bool need_def) const {
  constexpr unsigned kOkTypes = 1u << STT_NOTYPE | 1u << STT_OBJECT | 1u << STT_FUNC | 1u << STT_COMMON | 1u << STT_TLS;
  constexpr unsigned kOkBinds = 1u << STB_GLOBAL | 1u << STB_WEAK | 1u << STB_GNU_UNIQUE;
  const auto it = findable.find(name);
  if (it == findable.end()) return false;
  const Sym& sym = syms[it->second];
  const unsigned type = sym.info & 0xf, bind = sym.info >> 4;
  if (sym.shndx == SHN_UNDEF && (need_def || type == STT_TLS)) return false;
  if (sym.value == 0 && type != STT_TLS) return false;
  return ((1u << type) & kOkTypes) && ((1u << bind) & kOkBinds);
}

namespace {

// find_sym2(dso, s, need_def, 0) from list position FROM: found or not.
bool find_sym(const std::vector<MuslRelocObject>& list, std::size_t from, const std::string& name, bool need_def) {
  for (std::size_t i = from; i < list.size(); ++i)
    if (list[i].symbols && list[i].symbols->defines(name, need_def)) return true;
  return false;
}

void do_relocs(const std::vector<MuslRelocObject>& list, const MuslRelocObject& dso, std::vector<MuslRelocError>& out) {
  for (const auto& r : dso.symbols->relocs) {
    if (r.type == R_X86_64_NONE) continue;
    if (r.sym != 0) {
      if (r.sym >= dso.symbols->syms.size()) continue;  // outside .dynsym: musl would read past it
      const MuslSymbols::Sym& sym = dso.symbols->syms[r.sym];
      const bool found = (sym.info >> 4) == STB_LOCAL ||
                         find_sym(list, r.type == R_X86_64_COPY ? 1 : 0, sym.name, r.type == R_X86_64_JUMP_SLOT);
      if (!found && (sym.shndx != SHN_UNDEF || (sym.info >> 4) != STB_WEAK)) {
        out.push_back({dso.name, sym.name + ": symbol not found"});
        continue;
      }
    }
    if (!musl_applies(r.type)) out.push_back({dso.name, "unsupported relocation type " + std::to_string(r.type)});
  }
}

}  // namespace

std::vector<MuslRelocError> musl_relocation_errors(const std::vector<MuslRelocObject>& list) {
  std::vector<MuslRelocError> out;
  for (std::size_t i = 1; i <= list.size(); ++i) {
    const MuslRelocObject& dso = list[i % list.size()];  // the program last
    if (!dso.relocated && dso.symbols) do_relocs(list, dso, out);
  }
  return out;
}

}  // namespace procforge::ldso::detail
