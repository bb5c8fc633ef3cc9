// Helpers shared by the src/elf/ sources (not part of the public API): error
// wording, ELF structure sizes per class, checked access to the bytes of a
// segment or section, string tables, and where the dynamic section says its
// tables are. Keeping them here lets every file report errors the same way:
// "<object> (offset 0x..): <field> <value> <what is wrong>".
#pragma once

#include <cerrno>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/elf.hpp"

namespace procforge::elf::detail {

std::string hex(std::uint64_t v);  // "0x1f"

// A malformed file: the kernel answers such files with ENOEXEC.
inline Error malformed(std::string message) { return Error{ENOEXEC, std::move(message)}; }

// On-disk sizes (gABI "Object Files" chapter; include/uapi/linux/elf.h).
inline std::uint64_t ehdr_size(bool is64) { return is64 ? 64 : 52; }
inline std::uint64_t phdr_size(bool is64) { return is64 ? 56 : 32; }
inline std::uint64_t shdr_size(bool is64) { return is64 ? 64 : 40; }
inline std::uint64_t dyn_size(bool is64) { return is64 ? 16 : 8; }
inline std::uint64_t sym_size(bool is64) { return is64 ? 24 : 16; }

// Decodes count entries of entsize bytes at file offset off of v.
// table_file_offset is added to each entry's position for ProgramHeader::table_offset
// and for error messages (v may be a buffer holding only the table).
Result<std::vector<ProgramHeader>> decode_program_headers(const ByteView& v, std::uint64_t off, std::uint64_t count,
                                                          std::uint64_t entsize, bool is64,
                                                          std::uint64_t table_file_offset);

// Virtual address -> file offset, decoded once so callers that translate
// many addresses (every d_ptr of the dynamic section) do not re-decode the
// tables each time, which a file with many entries could make quadratic.
// Built from the PT_LOAD segments, or from the SHF_ALLOC sections when the
// file has no program headers.
class AddressMap {
 public:
  static AddressMap of(const File& f);
  // The first range containing vaddr decides; nullopt when none does or
  // when that range's bytes lie past the end of the file.
  [[nodiscard]] std::optional<std::uint64_t> translate(std::uint64_t vaddr) const;

 private:
  struct Range {
    std::uint64_t vaddr;
    std::uint64_t size;  // file-backed bytes only (p_filesz, not p_memsz)
    std::uint64_t offset;
  };
  std::vector<Range> ranges_;
  std::uint64_t file_size_ = 0;
};

// The file bytes of a segment / section, or an error naming the entry.
Result<std::span<const std::uint8_t>> segment_bytes(const ByteView& v, const ProgramHeader& ph, std::size_t index);
Result<std::span<const std::uint8_t>> section_bytes(const ByteView& v, const SectionHeader& sh, std::size_t index);

// A string table as a byte range of the file; strings must end with a NUL
// inside that range.
struct StringTable {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::string_view what;  // "DT_STRTAB", ".dynstr", for messages
};
Result<std::string_view> read_string(const ByteView& v, const StringTable& t, std::uint64_t index);

// A d_ptr entry of the dynamic section: the virtual address it holds and,
// when some file byte holds that address, its file offset. Translation
// failures are reported only by the reader that needs the table, so a bogus
// DT_GNU_HASH does not stop DT_NEEDED from being read.
struct TableRef {
  std::int64_t tag = 0;
  std::uint64_t vaddr = 0;
  std::uint64_t entry_offset = 0;  // where the dynamic entry sits in the file
  std::optional<std::uint64_t> offset;
};
Result<std::uint64_t> table_offset(const TableRef& ref);

// What the dynamic section says about the tables the symbol and version
// readers need. Like glibc's elf_get_dynamic_info() (elf/get-dynamic-info.h),
// a repeated tag overrides the earlier one.
struct DynamicTables {
  std::optional<TableRef> strtab;
  std::optional<std::uint64_t> strsz;
  std::optional<TableRef> symtab;
  std::uint64_t syment = 0;  // DT_SYMENT, 0 when absent
  std::optional<TableRef> hash;
  std::optional<TableRef> gnu_hash;
  std::optional<TableRef> versym;
  std::optional<TableRef> verneed;
  std::optional<std::uint64_t> verneednum;
  std::optional<TableRef> verdef;
  std::optional<std::uint64_t> verdefnum;
};
Result<DynamicTables> dynamic_tables(const File& f);
// DT_STRTAB bounded by DT_STRSZ (by the end of the file when DT_STRSZ is missing).
Result<StringTable> dynamic_string_table(const File& f, const DynamicTables& t);

// Sections of the given type; an unreadable section table counts as none,
// so callers fall back to the dynamic section instead of failing.
std::vector<SectionHeader> sections_of_type(const File& f, std::uint32_t type);

// Number of .dynsym entries: SHT_DYNSYM's size when the section table has
// one, else DT_HASH's nchain, else a walk of DT_GNU_HASH.
Result<std::uint64_t> dynsym_count(const File& f, const DynamicTables& t);

}  // namespace procforge::elf::detail
