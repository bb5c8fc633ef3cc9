// Builds x86_64 ELF64 files byte by byte for exec tests, with every field
// under the test's control: e_ident, each header field, program headers in
// any order and number (duplicates, PT_NULL padding, bogus values), raw
// blobs at chosen offsets, and truncation. Nothing is validated: producing
// malformed files is the point. Little-endian field encoding throughout
// (the kernel reads x86_64 headers as native LE whatever EI_DATA says).
//
// Ready-made starting points (fields can be changed afterwards):
//   minimal_exec(N)       ET_EXEC, one R+X PT_LOAD of the whole file at 0x400000, code: exit_group(N)
//   minimal_pie(N)        the same as ET_DYN with vaddr 0
//   with_interp(spec, p)  adds a PT_INTERP naming p (NUL-terminated) before the PT_LOADs
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procforge::testsupport {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint32_t kPtNull = 0, kPtLoad = 1, kPtDynamic = 2, kPtInterp = 3, kPtNote = 4, kPtPhdr = 6,
                               kPtGnuStack = 0x6474e551;
inline constexpr std::uint32_t kPfX = 1, kPfW = 2, kPfR = 4;
inline constexpr std::uint16_t kEtNone = 0, kEtRel = 1, kEtExec = 2, kEtDyn = 3, kEtCore = 4;
inline constexpr std::uint16_t kEm386 = 3, kEmX86_64 = 62, kEmAarch64 = 183;

// A filesz/memsz of kAuto means "from this segment's p_offset to the end of
// the file as built" (before truncation).
inline constexpr std::uint64_t kAuto = ~0ull;

struct Phdr {
  std::uint32_t type = kPtLoad;
  std::uint32_t flags = kPfR;
  std::uint64_t offset = 0;
  std::uint64_t vaddr = 0;
  std::uint64_t paddr = 0;
  std::uint64_t filesz = 0;
  std::uint64_t memsz = 0;
  std::uint64_t align = 0x1000;
};

struct ElfSpec {
  std::array<std::uint8_t, 16> ident{0x7f, 'E', 'L', 'F', 2 /*64*/, 1 /*LSB*/, 1 /*current*/};
  std::uint16_t type = kEtExec;
  std::uint16_t machine = kEmX86_64;
  std::uint32_t version = 1;
  std::uint64_t entry = 0;
  std::uint64_t phoff = 64;
  std::uint64_t shoff = 0;
  std::uint32_t flags = 0;
  std::uint16_t ehsize = 64;
  std::uint16_t phentsize = 56;
  std::optional<std::uint16_t> phnum;  // default: phdrs.size()
  std::uint16_t shentsize = 64;
  std::uint16_t shnum = 0;
  std::uint16_t shstrndx = 0;

  std::vector<Phdr> phdrs;
  bool write_phdrs = true;  // false: header says phnum/phoff, table bytes not written

  struct Blob {
    std::uint64_t offset;
    Bytes bytes;
  };
  std::vector<Blob> blobs;                   // written after the headers, in order (later wins)
  std::uint64_t min_size = 0;                // zero-pad the file to at least this size
  std::optional<std::uint64_t> truncate_to;  // cut the final file to this size

  // Convenience editors.
  ElfSpec& blob(std::uint64_t offset, Bytes bytes);
  ElfSpec& blob(std::uint64_t offset, std::string_view bytes);
  Phdr* first(std::uint32_t type);  // first phdr of that type, nullptr if none
};

// Layout of the ready-made files.
inline constexpr std::uint64_t kExecBase = 0x400000;
inline constexpr std::uint64_t kCodeOffset = 0x400;    // room for 17 phdrs after the header
inline constexpr std::uint64_t kInterpOffset = 0x800;  // where with_interp() puts the path
inline constexpr std::uint64_t kMinimalSize = 0x1000;

// x86_64 machine code snippets.
Bytes code_exit(int status);                       // exit_group(status)
Bytes code_exit_with_byte_at(std::uint64_t addr);  // exit_group(*(uint8_t*)addr), addr < 2 GiB

ElfSpec minimal_exec(int exit_status);
ElfSpec minimal_pie(int exit_status);
// Adds a PT_INTERP segment whose bytes are `path` followed by one NUL, placed
// before the first PT_LOAD. Use interp_raw() for other byte strings.
ElfSpec& with_interp(ElfSpec& spec, std::string_view path);
ElfSpec& interp_raw(ElfSpec& spec, std::string_view bytes, std::uint64_t offset = kInterpOffset);

Bytes build(const ElfSpec& spec);

// Writes bytes to path (created or truncated) and chmods it. Returns false on error.
bool write_file(const std::string& path, const Bytes& bytes, unsigned mode = 0755);
bool write_file(const std::string& path, std::string_view bytes, unsigned mode = 0755);

}  // namespace procforge::testsupport
