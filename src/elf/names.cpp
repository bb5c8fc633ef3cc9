// Printable names for ELF constants, spelled as in <elf.h> (and hence as
// binutils and the gABI spell them), for the CLI's renderers and for error
// messages. Unknown values print as "0x<hex>" so nothing is ever hidden.
#include <elf.h>

#include <fmt/format.h>

#include "procforge/elf.hpp"

namespace procforge::elf {

namespace {

template <class T>
struct Named {
  T value;
  const char* name;
};

template <class T, std::size_t N>
std::string lookup(const Named<T> (&table)[N], T value) {
  for (const auto& n : table) {
    if (n.value == value) return n.name;
  }
  return fmt::format("{:#x}", static_cast<std::make_unsigned_t<T>>(value));
}

#define PF_NAME(x) \
  { x, #x }

constexpr Named<std::uint16_t> kTypes[] = {
    PF_NAME(ET_NONE), PF_NAME(ET_REL), PF_NAME(ET_EXEC), PF_NAME(ET_DYN), PF_NAME(ET_CORE),
};

constexpr Named<std::uint16_t> kMachines[] = {
    PF_NAME(EM_NONE),   PF_NAME(EM_SPARC),   PF_NAME(EM_386),       PF_NAME(EM_68K),    PF_NAME(EM_MIPS),
    PF_NAME(EM_PARISC), PF_NAME(EM_SPARCV9), PF_NAME(EM_PPC),       PF_NAME(EM_PPC64),  PF_NAME(EM_S390),
    PF_NAME(EM_ARM),    PF_NAME(EM_SH),      PF_NAME(EM_IA_64),     PF_NAME(EM_X86_64), PF_NAME(EM_AARCH64),
    PF_NAME(EM_RISCV),  PF_NAME(EM_BPF),     PF_NAME(EM_LOONGARCH), PF_NAME(EM_ALPHA),
};

constexpr Named<std::uint32_t> kSegments[] = {
    PF_NAME(PT_NULL),
    PF_NAME(PT_LOAD),
    PF_NAME(PT_DYNAMIC),
    PF_NAME(PT_INTERP),
    PF_NAME(PT_NOTE),
    PF_NAME(PT_SHLIB),
    PF_NAME(PT_PHDR),
    PF_NAME(PT_TLS),
    PF_NAME(PT_GNU_EH_FRAME),
    PF_NAME(PT_GNU_STACK),
    PF_NAME(PT_GNU_RELRO),
    PF_NAME(PT_GNU_PROPERTY),
    {0x6474e554, "PT_GNU_SFRAME"},  // binutils 2.40; not yet in glibc's <elf.h>
};

constexpr Named<std::int64_t> kTags[] = {
    PF_NAME(DT_NULL),          PF_NAME(DT_NEEDED),        PF_NAME(DT_PLTRELSZ),
    PF_NAME(DT_PLTGOT),        PF_NAME(DT_HASH),          PF_NAME(DT_STRTAB),
    PF_NAME(DT_SYMTAB),        PF_NAME(DT_RELA),          PF_NAME(DT_RELASZ),
    PF_NAME(DT_RELAENT),       PF_NAME(DT_STRSZ),         PF_NAME(DT_SYMENT),
    PF_NAME(DT_INIT),          PF_NAME(DT_FINI),          PF_NAME(DT_SONAME),
    PF_NAME(DT_RPATH),         PF_NAME(DT_SYMBOLIC),      PF_NAME(DT_REL),
    PF_NAME(DT_RELSZ),         PF_NAME(DT_RELENT),        PF_NAME(DT_PLTREL),
    PF_NAME(DT_DEBUG),         PF_NAME(DT_TEXTREL),       PF_NAME(DT_JMPREL),
    PF_NAME(DT_BIND_NOW),      PF_NAME(DT_INIT_ARRAY),    PF_NAME(DT_FINI_ARRAY),
    PF_NAME(DT_INIT_ARRAYSZ),  PF_NAME(DT_FINI_ARRAYSZ),  PF_NAME(DT_RUNPATH),
    PF_NAME(DT_FLAGS),         PF_NAME(DT_PREINIT_ARRAY), PF_NAME(DT_PREINIT_ARRAYSZ),
    PF_NAME(DT_SYMTAB_SHNDX),  PF_NAME(DT_RELRSZ),        PF_NAME(DT_RELR),
    PF_NAME(DT_RELRENT),       PF_NAME(DT_GNU_PRELINKED), PF_NAME(DT_GNU_CONFLICTSZ),
    PF_NAME(DT_GNU_LIBLISTSZ), PF_NAME(DT_CHECKSUM),      PF_NAME(DT_PLTPADSZ),
    PF_NAME(DT_MOVEENT),       PF_NAME(DT_MOVESZ),        PF_NAME(DT_FEATURE_1),
    PF_NAME(DT_POSFLAG_1),     PF_NAME(DT_SYMINSZ),       PF_NAME(DT_SYMINENT),
    PF_NAME(DT_GNU_HASH),      PF_NAME(DT_TLSDESC_PLT),   PF_NAME(DT_TLSDESC_GOT),
    PF_NAME(DT_GNU_CONFLICT),  PF_NAME(DT_GNU_LIBLIST),   PF_NAME(DT_CONFIG),
    PF_NAME(DT_DEPAUDIT),      PF_NAME(DT_AUDIT),         PF_NAME(DT_PLTPAD),
    PF_NAME(DT_MOVETAB),       PF_NAME(DT_SYMINFO),       PF_NAME(DT_VERSYM),
    PF_NAME(DT_RELACOUNT),     PF_NAME(DT_RELCOUNT),      PF_NAME(DT_FLAGS_1),
    PF_NAME(DT_VERDEF),        PF_NAME(DT_VERDEFNUM),     PF_NAME(DT_VERNEED),
    PF_NAME(DT_VERNEEDNUM),    PF_NAME(DT_AUXILIARY),     PF_NAME(DT_FILTER),
};

#undef PF_NAME

}  // namespace

std::string type_name(std::uint16_t e_type) { return lookup(kTypes, e_type); }
std::string machine_name(std::uint16_t e_machine) { return lookup(kMachines, e_machine); }
std::string segment_type_name(std::uint32_t p_type) { return lookup(kSegments, p_type); }
std::string dynamic_tag_name(std::int64_t d_tag) { return lookup(kTags, d_tag); }

std::string segment_flags_string(std::uint32_t p_flags) {
  std::string s = {(p_flags & PF_R) ? 'R' : '-', (p_flags & PF_W) ? 'W' : '-', (p_flags & PF_X) ? 'X' : '-'};
  // OS- and processor-specific bits (PF_MASKOS, PF_MASKPROC) are shown, not dropped.
  if (const std::uint32_t rest = p_flags & ~std::uint32_t{PF_R | PF_W | PF_X}) {
    s += fmt::format("+{:#x}", rest);
  }
  return s;
}

}  // namespace procforge::elf
