// Zero-copy, bounds-checked view of an ELF file (ELF32 and ELF64, either byte
// order). Nothing here casts bytes to structs: every field is read through
// ByteView, which checks bounds and integer overflow, so no input can make the
// reader touch memory outside the span it was given. A malformed file yields an
// Error whose message names the field and its file offset, e.g.
//   "program header 3 (offset 0xf8): p_offset 0x9000 + p_filesz 0x20 is past end of file (0x8000)".
// Layouts follow the System V gABI and include/uapi/linux/elf.h.
//
//   std::vector<std::uint8_t> bytes = ...;         // the whole file, owned by the caller
//   auto f = elf::File::parse(bytes);
//   if (!f) return f.error();                      // ENOEXEC, message names the field
//   auto interp = f->interpreter();                // Result<optional<string_view>>
//   auto dyn = f->dynamic_info();                  // DT_NEEDED, DT_RUNPATH, ...
//
// Threads: a File is an immutable view; its const members may be called from
// any number of threads. It and every string_view or span it returns point
// into the caller's bytes, which must outlive them. Nothing here caches
// anything process-wide.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::elf {

// Bounds- and overflow-checked reads of fixed-width integers and strings.
class ByteView {
 public:
  ByteView() = default;
  ByteView(std::span<const std::uint8_t> bytes, bool big_endian) : b_(bytes), be_(big_endian) {}

  [[nodiscard]] std::size_t size() const { return b_.size(); }
  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return b_; }
  [[nodiscard]] bool big_endian() const { return be_; }

  [[nodiscard]] std::optional<std::uint8_t> u8(std::uint64_t off) const;
  [[nodiscard]] std::optional<std::uint16_t> u16(std::uint64_t off) const;
  [[nodiscard]] std::optional<std::uint32_t> u32(std::uint64_t off) const;
  [[nodiscard]] std::optional<std::uint64_t> u64(std::uint64_t off) const;
  // Reads a 4- or 8-byte word (ELF32 / ELF64 "Addr"/"Off"/"Xword" fields).
  [[nodiscard]] std::optional<std::uint64_t> word(std::uint64_t off, bool is64) const;
  // [off, off+len) if it lies wholly inside the view.
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> sub(std::uint64_t off, std::uint64_t len) const;
  // NUL-terminated string starting at off, at most max_len bytes before the NUL;
  // nullopt when no NUL is found inside the view within max_len.
  [[nodiscard]] std::optional<std::string_view> cstr(std::uint64_t off, std::size_t max_len = SIZE_MAX) const;

 private:
  std::span<const std::uint8_t> b_;
  bool be_ = false;
};

// True when [off, off+len) fits inside size without overflow.
[[nodiscard]] bool range_fits(std::uint64_t off, std::uint64_t len, std::uint64_t size);

struct Header {
  std::uint8_t ei_class = 0;       // e_ident[EI_CLASS]: 1 ELF32, 2 ELF64, anything else kept as is
  std::uint8_t ei_data = 0;        // e_ident[EI_DATA]: 1 LSB, 2 MSB
  std::uint8_t ei_version = 0;     // e_ident[EI_VERSION]
  std::uint8_t ei_osabi = 0;       // e_ident[EI_OSABI]
  std::uint8_t ei_abiversion = 0;  // e_ident[EI_ABIVERSION]
  bool is64 = true;                // layout used to decode the rest
  bool big_endian = false;
  std::uint16_t type = 0;
  std::uint16_t machine = 0;
  std::uint32_t version = 0;
  std::uint64_t entry = 0;
  std::uint64_t phoff = 0;
  std::uint64_t shoff = 0;
  std::uint32_t flags = 0;
  std::uint16_t ehsize = 0;
  std::uint16_t phentsize = 0;
  std::uint16_t phnum = 0;
  std::uint16_t shentsize = 0;
  std::uint16_t shnum = 0;
  std::uint16_t shstrndx = 0;
};

struct ProgramHeader {
  std::uint32_t type = 0;
  std::uint32_t flags = 0;  // PF_R / PF_W / PF_X
  std::uint64_t offset = 0;
  std::uint64_t vaddr = 0;
  std::uint64_t paddr = 0;
  std::uint64_t filesz = 0;
  std::uint64_t memsz = 0;
  std::uint64_t align = 0;
  std::uint64_t table_offset = 0;  // where this entry sits in the file
};

struct SectionHeader {
  std::uint32_t name_offset = 0;
  std::string_view name;  // empty when shstrtab is missing or the offset is bad
  std::uint32_t type = 0;
  std::uint64_t flags = 0;
  std::uint64_t addr = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint32_t link = 0;
  std::uint32_t info = 0;
  std::uint64_t addralign = 0;
  std::uint64_t entsize = 0;
};

struct DynamicEntry {
  std::int64_t tag = 0;
  std::uint64_t value = 0;
  std::uint64_t offset = 0;  // file offset of the entry, for messages
};

struct Note {
  std::uint32_t type = 0;
  std::string_view name;  // without the trailing NUL
  std::span<const std::uint8_t> desc;
  std::uint64_t offset = 0;  // file offset of the note header
};

struct GnuProperty {
  std::uint32_t type = 0;
  std::span<const std::uint8_t> data;
};

struct Symbol {
  std::string_view name;
  std::uint64_t value = 0;
  std::uint64_t size = 0;
  std::uint8_t info = 0;
  std::uint8_t other = 0;
  std::uint16_t shndx = 0;
  [[nodiscard]] unsigned bind() const { return info >> 4; }
  [[nodiscard]] unsigned type() const { return info & 0xf; }
};

struct VersionNeedAux {
  std::uint32_t hash = 0;
  std::uint16_t flags = 0;
  std::uint16_t other = 0;  // version index used in .gnu.version
  std::string_view name;    // "GLIBC_2.34"
};

struct VersionNeed {
  std::string_view file;  // "libc.so.6"
  std::vector<VersionNeedAux> entries;
};

struct VersionDef {
  std::uint16_t flags = 0;  // VER_FLG_BASE, VER_FLG_WEAK
  std::uint16_t index = 0;
  std::uint32_t hash = 0;
  std::vector<std::string_view> names;  // first is the version, the rest its parents
};

// The dynamic section decoded into what the loader needs. Strings are views
// into the file (DT_STRTAB translated through PT_LOAD).
struct DynamicInfo {
  std::vector<std::string_view> needed;
  std::optional<std::string_view> soname;
  std::optional<std::string_view> rpath;
  std::optional<std::string_view> runpath;
  std::vector<std::string_view> filters;    // DT_FILTER
  std::vector<std::string_view> auxiliary;  // DT_AUXILIARY
  std::vector<std::string_view> audit;      // DT_AUDIT / DT_DEPAUDIT
  std::uint64_t flags = 0;                  // DT_FLAGS
  std::uint64_t flags_1 = 0;                // DT_FLAGS_1
  bool bind_now = false;                    // DT_BIND_NOW or DF_BIND_NOW or DF_1_NOW
  bool textrel = false;                     // DT_TEXTREL or DF_TEXTREL
};

enum class SymbolTable { dynsym, symtab };

class File {
 public:
  // Validates the identification and the file header only; everything else is
  // decoded (and checked) when asked for, so a damaged section table does not
  // hide a usable program header table.
  static Result<File> parse(std::span<const std::uint8_t> bytes);

  [[nodiscard]] const Header& header() const { return h_; }
  [[nodiscard]] const ByteView& view() const { return v_; }

  [[nodiscard]] Result<std::vector<ProgramHeader>> program_headers() const;
  [[nodiscard]] Result<std::vector<SectionHeader>> section_headers() const;

  // File offset holding virtual address vaddr, through the PT_LOAD segments
  // (the first whose file-backed range contains it). A file without program
  // headers is mapped through its SHF_ALLOC sections instead. nullopt when no
  // file byte holds vaddr.
  [[nodiscard]] std::optional<std::uint64_t> vaddr_to_offset(std::uint64_t vaddr) const;

  // The first PT_INTERP's string, cut at its first NUL (as the kernel uses it);
  // an error when the segment holds no NUL or lies past the end of the file.
  [[nodiscard]] Result<std::optional<std::string_view>> interpreter() const;

  // PT_DYNAMIC entries up to and excluding DT_NULL; from SHT_DYNAMIC when the
  // file has no program headers (ld.so never looks at sections).
  [[nodiscard]] Result<std::vector<DynamicEntry>> dynamic() const;
  [[nodiscard]] Result<DynamicInfo> dynamic_info() const;

  // Notes from PT_NOTE segments; from SHT_NOTE sections when there are no phdrs.
  [[nodiscard]] Result<std::vector<Note>> notes() const;
  // NT_GNU_PROPERTY_TYPE_0 properties (from PT_GNU_PROPERTY, else from notes).
  [[nodiscard]] Result<std::vector<GnuProperty>> gnu_properties() const;

  [[nodiscard]] Result<std::vector<Symbol>> symbols(SymbolTable which) const;
  [[nodiscard]] Result<std::vector<VersionNeed>> version_needs() const;
  [[nodiscard]] Result<std::vector<VersionDef>> version_defs() const;
  [[nodiscard]] Result<std::vector<std::uint16_t>> version_symbols() const;  // .gnu.version

 private:
  File(ByteView v, Header h) : v_(v), h_(h) {}
  ByteView v_;
  Header h_;
};

// Decodes the file header's fields with the layout of the given class and
// byte order, whatever e_ident says; a field past the end of bytes reads as 0.
// The one decoder of the header: parse_header() calls it once the magic and
// the size are checked; the exec model calls it the way an x86 kernel reads
// the header (the handler's class, little endian, EI_CLASS and EI_DATA unchecked).
Header decode_header(std::span<const std::uint8_t> bytes, bool is64, bool big_endian);

// Decodes only the file header from the first bytes of a file (the kernel's
// 256-byte buffer is enough). Used by the exec model, which reads the file the
// way the kernel does instead of loading it whole.
Result<Header> parse_header(std::span<const std::uint8_t> first_bytes);

// Decodes a program header table already read into memory.
Result<std::vector<ProgramHeader>> parse_program_headers(std::span<const std::uint8_t> table, const Header& h,
                                                         std::uint64_t table_file_offset);

// Names for printing: "ET_DYN", "EM_X86_64", "PT_LOAD", "DT_NEEDED"...; "0x<hex>" when unknown.
std::string type_name(std::uint16_t e_type);
std::string machine_name(std::uint16_t e_machine);
std::string segment_type_name(std::uint32_t p_type);
std::string dynamic_tag_name(std::int64_t d_tag);
std::string segment_flags_string(std::uint32_t p_flags);  // "R-X"

}  // namespace procforge::elf

#pragma GCC visibility pop
