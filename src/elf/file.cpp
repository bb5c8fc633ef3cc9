// The ELF file header, program header table and section header table
// (System V gABI, "ELF Header", "Program Header", "Sections"), decoded through
// ByteView in either class and byte order.
//
// Like the kernel's load_elf_binary() (fs/binfmt_elf.c), only the magic is
// required to open a file: EI_CLASS, EI_VERSION and e_version are kept as
// read. An EI_CLASS that is neither ELFCLASS32 nor ELFCLASS64 is decoded with
// the ELF64 layout because that is what an x86_64 kernel would do with it;
// EI_DATA == ELFDATA2MSB selects big endian, anything else little endian.
// The tables are decoded on demand so that a damaged section table does not
// hide a usable program header table (and the other way round).
#include <elf.h>

#include <cstring>

#include <fmt/format.h>

#include "elf/detail.hpp"

namespace procforge::elf {

namespace detail {

std::string hex(std::uint64_t v) { return fmt::format("{:#x}", v); }

Result<std::vector<ProgramHeader>> decode_program_headers(const ByteView& v, std::uint64_t off, std::uint64_t count,
                                                          std::uint64_t entsize, bool is64,
                                                          std::uint64_t table_file_offset) {
  if (entsize < phdr_size(is64)) {
    return malformed(fmt::format("e_phentsize {} is smaller than an ELF{} program header ({})", entsize, is64 ? 64 : 32,
                                 phdr_size(is64)));
  }
  // Checking the whole table up front caps count by the input size, so a
  // forged e_phnum cannot make us reserve more than the bytes we were given.
  if (count > 0 && (count > v.size() / entsize || !range_fits(off, count * entsize, v.size()))) {
    return malformed(
        fmt::format("program header table (offset {}): {} entries of {} bytes run past "
                    "the end of the {}-byte buffer",
                    hex(table_file_offset), count, entsize, hex(v.size())));
  }
  std::vector<ProgramHeader> out;
  out.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t e = off + i * entsize;
    ProgramHeader ph;
    ph.table_offset = table_file_offset + i * entsize;
    // The range check above makes every read below succeed; value_or keeps
    // that an invariant rather than a crash if it were ever wrong.
    ph.type = v.u32(e).value_or(0);
    if (is64) {
      ph.flags = v.u32(e + 4).value_or(0);
      ph.offset = v.u64(e + 8).value_or(0);
      ph.vaddr = v.u64(e + 16).value_or(0);
      ph.paddr = v.u64(e + 24).value_or(0);
      ph.filesz = v.u64(e + 32).value_or(0);
      ph.memsz = v.u64(e + 40).value_or(0);
      ph.align = v.u64(e + 48).value_or(0);
    } else {
      // ELF32 moves p_flags after p_memsz (gABI Figure 5-1).
      ph.offset = v.u32(e + 4).value_or(0);
      ph.vaddr = v.u32(e + 8).value_or(0);
      ph.paddr = v.u32(e + 12).value_or(0);
      ph.filesz = v.u32(e + 16).value_or(0);
      ph.memsz = v.u32(e + 20).value_or(0);
      ph.flags = v.u32(e + 24).value_or(0);
      ph.align = v.u32(e + 28).value_or(0);
    }
    out.push_back(ph);
  }
  return out;
}

AddressMap AddressMap::of(const File& f) {
  AddressMap m;
  m.file_size_ = f.view().size();
  auto phdrs = f.program_headers();
  if (!phdrs) return m;
  if (!phdrs->empty()) {
    for (const auto& ph : *phdrs) {
      // Only the file-backed part counts: [p_filesz, p_memsz) is zero fill.
      if (ph.type == PT_LOAD) m.ranges_.push_back({ph.vaddr, ph.filesz, ph.offset});
    }
    return m;
  }
  // No program headers (a relocatable object, or a stripped table): the
  // allocated sections' sh_addr is the only address map left.
  auto shdrs = f.section_headers();
  if (!shdrs) return m;
  for (const auto& sh : *shdrs) {
    if ((sh.flags & SHF_ALLOC) && sh.type != SHT_NOBITS) {
      m.ranges_.push_back({sh.addr, sh.size, sh.offset});
    }
  }
  return m;
}

std::optional<std::uint64_t> AddressMap::translate(std::uint64_t vaddr) const {
  for (const auto& r : ranges_) {
    if (vaddr < r.vaddr || vaddr - r.vaddr >= r.size) continue;
    const std::uint64_t delta = vaddr - r.vaddr;
    if (!range_fits(r.offset, delta + 1, file_size_)) return std::nullopt;
    return r.offset + delta;
  }
  return std::nullopt;
}

Result<std::span<const std::uint8_t>> segment_bytes(const ByteView& v, const ProgramHeader& ph, std::size_t index) {
  if (auto s = v.sub(ph.offset, ph.filesz)) return *s;
  return malformed(
      fmt::format("program header {} (offset {}): p_offset {} + p_filesz {} is past end "
                  "of file (size {})",
                  index, hex(ph.table_offset), hex(ph.offset), hex(ph.filesz), hex(v.size())));
}

Result<std::span<const std::uint8_t>> section_bytes(const ByteView& v, const SectionHeader& sh, std::size_t index) {
  if (sh.type == SHT_NOBITS) return std::span<const std::uint8_t>{};
  if (auto s = v.sub(sh.offset, sh.size)) return *s;
  return malformed(
      fmt::format("section {} ({}): sh_offset {} + sh_size {} is past end of file "
                  "(size {})",
                  index, sh.name.empty() ? "unnamed" : sh.name, hex(sh.offset), hex(sh.size), hex(v.size())));
}

Result<std::string_view> read_string(const ByteView& v, const StringTable& t, std::uint64_t index) {
  if (index >= t.size) {
    return malformed(fmt::format("{} (offset {}, size {}): string index {} is outside the table", t.what, hex(t.offset),
                                 hex(t.size), hex(index)));
  }
  const std::uint64_t max_len = t.size - index - 1;
  auto s = v.cstr(t.offset + index, max_len > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(max_len));
  if (!s || t.offset + index < t.offset) {
    return malformed(
        fmt::format("{} (offset {}, size {}): string at index {} is not NUL-terminated "
                    "inside the table (file size {})",
                    t.what, hex(t.offset), hex(t.size), hex(index), hex(v.size())));
  }
  return *s;
}

}  // namespace detail

using detail::hex;
using detail::malformed;

namespace {

struct RawSection0 {
  std::uint64_t size = 0;
  std::uint32_t link = 0;
  std::uint32_t info = 0;
};

// Section header 0 carries the real e_phnum / e_shnum / e_shstrndx when they
// do not fit in the 16-bit header fields (gABI "Sections", Figure 4-7 notes;
// PN_XNUM is a Linux/Solaris extension, see include/uapi/linux/elf.h).
std::optional<RawSection0> read_section0(const ByteView& v, const Header& h) {
  if (h.shoff == 0) return std::nullopt;
  const std::uint64_t e = h.shoff;
  if (!range_fits(e, detail::shdr_size(h.is64), v.size())) return std::nullopt;
  RawSection0 s;
  if (h.is64) {
    s.size = v.u64(e + 32).value_or(0);
    s.link = v.u32(e + 40).value_or(0);
    s.info = v.u32(e + 44).value_or(0);
  } else {
    s.size = v.u32(e + 20).value_or(0);
    s.link = v.u32(e + 24).value_or(0);
    s.info = v.u32(e + 28).value_or(0);
  }
  return s;
}

// Offsets of header fields inside the file header, for messages.
std::uint64_t phoff_field(bool is64) { return is64 ? 0x20 : 0x1c; }
std::uint64_t shoff_field(bool is64) { return is64 ? 0x28 : 0x20; }
std::uint64_t phentsize_field(bool is64) { return is64 ? 0x36 : 0x2a; }
std::uint64_t shentsize_field(bool is64) { return is64 ? 0x3a : 0x2e; }

}  // namespace

Header decode_header(std::span<const std::uint8_t> bytes, bool is64, bool big_endian) {
  // The ident bytes are single bytes: the byte order does not matter for them.
  const ByteView v(bytes, big_endian);
  Header h;
  h.ei_class = v.u8(EI_CLASS).value_or(0);
  h.ei_data = v.u8(EI_DATA).value_or(0);
  h.ei_version = v.u8(EI_VERSION).value_or(0);
  h.ei_osabi = v.u8(EI_OSABI).value_or(0);
  h.ei_abiversion = v.u8(EI_ABIVERSION).value_or(0);
  h.is64 = is64;
  h.big_endian = big_endian;
  h.type = v.u16(16).value_or(0);
  h.machine = v.u16(18).value_or(0);
  h.version = v.u32(20).value_or(0);
  const std::uint64_t w = is64 ? 8 : 4;  // Elf_Addr / Elf_Off width
  h.entry = v.word(24, is64).value_or(0);
  h.phoff = v.word(24 + w, is64).value_or(0);
  h.shoff = v.word(24 + 2 * w, is64).value_or(0);
  const std::uint64_t rest = 24 + 3 * w;
  h.flags = v.u32(rest).value_or(0);
  h.ehsize = v.u16(rest + 4).value_or(0);
  h.phentsize = v.u16(rest + 6).value_or(0);
  h.phnum = v.u16(rest + 8).value_or(0);
  h.shentsize = v.u16(rest + 10).value_or(0);
  h.shnum = v.u16(rest + 12).value_or(0);
  h.shstrndx = v.u16(rest + 14).value_or(0);
  return h;
}

Result<Header> parse_header(std::span<const std::uint8_t> first_bytes) {
  if (first_bytes.size() < SELFMAG || std::memcmp(first_bytes.data(), ELFMAG, SELFMAG) != 0) {
    return malformed(
        fmt::format("not an ELF file: no \\x7fELF magic at offset 0 (file size {})", hex(first_bytes.size())));
  }
  const bool is64 = first_bytes.size() <= EI_CLASS || first_bytes[EI_CLASS] != ELFCLASS32;
  const bool big_endian = first_bytes.size() > EI_DATA && first_bytes[EI_DATA] == ELFDATA2MSB;
  const std::uint64_t need = detail::ehdr_size(is64);
  if (first_bytes.size() < need) {
    return malformed(
        fmt::format("file header (offset 0): file size {} is smaller than an ELF{} "
                    "header ({})",
                    hex(first_bytes.size()), is64 ? 64 : 32, hex(need)));
  }
  return decode_header(first_bytes, is64, big_endian);
}

Result<std::vector<ProgramHeader>> parse_program_headers(std::span<const std::uint8_t> table, const Header& h,
                                                         std::uint64_t table_file_offset) {
  return detail::decode_program_headers(ByteView(table, h.big_endian), 0, h.phnum, h.phentsize, h.is64,
                                        table_file_offset);
}

Result<File> File::parse(std::span<const std::uint8_t> bytes) {
  auto h = parse_header(bytes);
  if (!h) return h.error();
  return File(ByteView(bytes, h->big_endian), *h);
}

Result<std::vector<ProgramHeader>> File::program_headers() const {
  std::uint64_t count = h_.phnum;
  if (count == PN_XNUM) {
    auto s0 = read_section0(v_, h_);
    if (!s0) {
      return malformed(
          fmt::format("file header: e_phnum is PN_XNUM but section header 0 (e_shoff "
                      "{}) is unreadable",
                      hex(h_.shoff)));
    }
    count = s0->info;
  }
  if (count == 0) return std::vector<ProgramHeader>{};
  if (h_.phentsize < detail::phdr_size(h_.is64)) {
    return malformed(
        fmt::format("file header (offset {}): e_phentsize {} is smaller than an ELF{} "
                    "program header ({})",
                    hex(phentsize_field(h_.is64)), h_.phentsize, h_.is64 ? 64 : 32, detail::phdr_size(h_.is64)));
  }
  if (!range_fits(h_.phoff, count * h_.phentsize, v_.size())) {
    return malformed(
        fmt::format("file header (offset {}): e_phoff {} + e_phnum {} * e_phentsize {} "
                    "is past end of file (size {})",
                    hex(phoff_field(h_.is64)), hex(h_.phoff), count, h_.phentsize, hex(v_.size())));
  }
  return detail::decode_program_headers(v_, h_.phoff, count, h_.phentsize, h_.is64, h_.phoff);
}

Result<std::vector<SectionHeader>> File::section_headers() const {
  if (h_.shoff == 0) return std::vector<SectionHeader>{};
  const auto s0 = read_section0(v_, h_);
  std::uint64_t count = h_.shnum;
  // e_shnum == 0 with a table present: the count is in section 0's sh_size.
  if (count == 0 && s0) count = s0->size;
  if (count == 0) return std::vector<SectionHeader>{};
  const std::uint64_t entsize = h_.shentsize;
  if (entsize < detail::shdr_size(h_.is64)) {
    return malformed(
        fmt::format("file header (offset {}): e_shentsize {} is smaller than an "
                    "ELF{} section header ({})",
                    hex(shentsize_field(h_.is64)), entsize, h_.is64 ? 64 : 32, detail::shdr_size(h_.is64)));
  }
  // The fit check bounds count (and the vector below) by the file size.
  if (count > v_.size() / entsize || !range_fits(h_.shoff, count * entsize, v_.size())) {
    return malformed(
        fmt::format("file header (offset {}): e_shoff {} + e_shnum {} * e_shentsize {} "
                    "is past end of file (size {})",
                    hex(shoff_field(h_.is64)), hex(h_.shoff), count, entsize, hex(v_.size())));
  }
  std::vector<SectionHeader> out;
  out.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t e = h_.shoff + i * entsize;
    SectionHeader sh;
    sh.name_offset = v_.u32(e).value_or(0);
    sh.type = v_.u32(e + 4).value_or(0);
    if (h_.is64) {
      sh.flags = v_.u64(e + 8).value_or(0);
      sh.addr = v_.u64(e + 16).value_or(0);
      sh.offset = v_.u64(e + 24).value_or(0);
      sh.size = v_.u64(e + 32).value_or(0);
      sh.link = v_.u32(e + 40).value_or(0);
      sh.info = v_.u32(e + 44).value_or(0);
      sh.addralign = v_.u64(e + 48).value_or(0);
      sh.entsize = v_.u64(e + 56).value_or(0);
    } else {
      sh.flags = v_.u32(e + 8).value_or(0);
      sh.addr = v_.u32(e + 12).value_or(0);
      sh.offset = v_.u32(e + 16).value_or(0);
      sh.size = v_.u32(e + 20).value_or(0);
      sh.link = v_.u32(e + 24).value_or(0);
      sh.info = v_.u32(e + 28).value_or(0);
      sh.addralign = v_.u32(e + 32).value_or(0);
      sh.entsize = v_.u32(e + 36).value_or(0);
    }
    out.push_back(sh);
  }
  // Names are a convenience: a bad e_shstrndx or name offset leaves the
  // name empty rather than failing the whole table.
  std::uint64_t strndx = h_.shstrndx;
  if (strndx == SHN_XINDEX && s0) strndx = s0->link;
  if (strndx != SHN_UNDEF && strndx < out.size() && out[strndx].type != SHT_NOBITS) {
    const auto& st = out[strndx];
    if (range_fits(st.offset, st.size, v_.size())) {
      for (auto& sh : out) {
        if (sh.name_offset >= st.size) continue;
        const std::uint64_t max_len = st.size - sh.name_offset - 1;
        if (auto name = v_.cstr(st.offset + sh.name_offset,
                                max_len > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(max_len))) {
          sh.name = *name;
        }
      }
    }
  }
  return out;
}

std::optional<std::uint64_t> File::vaddr_to_offset(std::uint64_t vaddr) const {
  return detail::AddressMap::of(*this).translate(vaddr);
}

Result<std::optional<std::string_view>> File::interpreter() const {
  auto phdrs = program_headers();
  if (!phdrs) return phdrs.error();
  for (std::size_t i = 0; i < phdrs->size(); ++i) {
    const auto& ph = (*phdrs)[i];
    if (ph.type != PT_INTERP) continue;
    auto bytes = detail::segment_bytes(v_, ph, i);
    if (!bytes) return bytes.error();
    // The kernel opens the path as a C string, so it ends at the first NUL;
    // without any NUL there is no string at all (binfmt_elf.c rejects it).
    const void* nul = bytes->empty() ? nullptr : std::memchr(bytes->data(), 0, bytes->size());
    if (nul == nullptr) {
      return malformed(
          fmt::format("program header {} (offset {}): PT_INTERP (p_offset {}, p_filesz "
                      "{}) has no NUL terminator",
                      i, hex(ph.table_offset), hex(ph.offset), hex(ph.filesz)));
    }
    const auto len = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - bytes->data());
    return std::optional<std::string_view>(std::string_view(reinterpret_cast<const char*>(bytes->data()), len));
  }
  return std::optional<std::string_view>{};
}

}  // namespace procforge::elf
