// musl 1.2.3's symbol lookup and the errors its start-up relocation prints
// (ldso/dynlink.c find_sym2(), sysv_lookup(), gnu_lookup(), do_relocs(),
// reloc_all()), for the musl loader model (musl.cpp). One global namespace:
// the program, then every object in load order (the loader itself, musl's
// libc, where something first needed it); no symbol versions beyond
// skipping a definition whose .gnu.version entry is hidden.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace procforge::ldso::detail {

// What find_sym2() and do_relocs() read of one object.
struct MuslSymbols {
  struct Sym {
    std::string name;
    std::uint64_t value = 0;
    std::uint8_t info = 0;
    std::uint16_t shndx = 0;
  };
  std::vector<Sym> syms;  // .dynsym by index
  // The symbol the object's hash table gives for each name: the first of
  // that name whose .gnu.version entry is not hidden (DT_GNU_HASH: only
  // indices from symoffset on are in its chains; DT_HASH: every index).
  std::unordered_map<std::string, std::uint32_t> findable;
  struct Reloc {
    std::uint32_t type = 0;
    std::uint32_t sym = 0;
  };
  std::vector<Reloc> relocs;  // reloc_all()'s order: DT_JMPREL, then DT_REL, then DT_RELA
  std::string problem;        // a table that could not be read (what was read is kept)

  static MuslSymbols read(std::span<const std::uint8_t> bytes);
  // find_sym2()'s test of this object: the hash table's symbol NAME is a
  // definition (NEED_DEF: a JUMP_SLOT's lookup, or load_library()'s test
  // for another libc).
  [[nodiscard]] bool defines(const std::string& name, bool need_def) const;
};

// One object of musl's list (head first, `next` order).
struct MuslRelocObject {
  std::string name;  // dso->name: what the error lines call it
  const MuslSymbols* symbols = nullptr;
  bool relocated = false;  // the loader itself (relocated in __dls2) and the vDSO
};

// reloc_all(app.next), then reloc_all(&app): the lines error() prints, in
// order ("Error relocating NAME: SYMBOL: symbol not found", "Error
// relocating NAME: unsupported relocation type N"). LIST[0] is the program.
struct MuslRelocError {
  std::string object;
  std::string message;  // "SYMBOL: symbol not found"
};
std::vector<MuslRelocError> musl_relocation_errors(const std::vector<MuslRelocObject>& list);

}  // namespace procforge::ldso::detail
