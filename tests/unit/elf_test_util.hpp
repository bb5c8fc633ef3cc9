// Test-only builders for ELF images: they write each field byte by byte in
// the chosen class and byte order, so tests can describe a file field by
// field (including broken ones) instead of shipping binaries. The layouts
// are written from the gABI independently of src/elf/ so that round trips
// between the two catch mistakes in either; the real-file and readelf tests
// pin both to the truth.
#pragma once

#include <elf.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procforge/elf.hpp"
#include "support/run_command.hpp"

namespace elftest {

class Buf {
 public:
  Buf(bool is64, bool be) : is64_(is64), be_(be) {}

  void u8(std::uint64_t off, std::uint64_t v) { put(off, v, 1); }
  void u16(std::uint64_t off, std::uint64_t v) { put(off, v, 2); }
  void u32(std::uint64_t off, std::uint64_t v) { put(off, v, 4); }
  void u64(std::uint64_t off, std::uint64_t v) { put(off, v, 8); }
  void word(std::uint64_t off, std::uint64_t v) { put(off, v, is64_ ? 8 : 4); }
  void str(std::uint64_t off, std::string_view s) {  // s plus a NUL
    for (std::size_t i = 0; i < s.size(); ++i) u8(off + i, static_cast<unsigned char>(s[i]));
    u8(off + s.size(), 0);
  }
  void resize(std::size_t n) { b_.resize(n); }

  [[nodiscard]] bool is64() const { return is64_; }
  [[nodiscard]] bool be() const { return be_; }
  [[nodiscard]] std::size_t size() const { return b_.size(); }
  std::vector<std::uint8_t>& bytes() { return b_; }
  [[nodiscard]] std::span<const std::uint8_t> span() const { return b_; }

 private:
  void put(std::uint64_t off, std::uint64_t v, unsigned width) {
    if (b_.size() < off + width) b_.resize(off + width);
    for (unsigned i = 0; i < width; ++i) {
      const unsigned shift = be_ ? (width - 1 - i) * 8 : i * 8;
      b_[off + i] = static_cast<std::uint8_t>(v >> shift);
    }
  }
  bool is64_;
  bool be_;
  std::vector<std::uint8_t> b_;
};

inline std::uint64_t ehdr_size(bool is64) { return is64 ? 64 : 52; }
inline std::uint64_t phdr_size(bool is64) { return is64 ? 56 : 32; }
inline std::uint64_t shdr_size(bool is64) { return is64 ? 64 : 40; }
inline std::uint64_t dyn_size(bool is64) { return is64 ? 16 : 8; }

struct HeaderSpec {
  std::uint8_t ei_class = 0;  // 0: from the Buf's class
  std::uint16_t type = ET_DYN;
  std::uint16_t machine = EM_X86_64;
  std::uint64_t entry = 0x1000;
  std::uint64_t phoff = 0;
  std::uint64_t shoff = 0;
  std::uint16_t phentsize = 0;  // 0: the class's size
  std::uint16_t phnum = 0;
  std::uint16_t shentsize = 0;
  std::uint16_t shnum = 0;
  std::uint16_t shstrndx = 0;
};

inline void put_header(Buf& b, const HeaderSpec& h) {
  const bool w = b.is64();
  b.u8(0, 0x7f);
  b.u8(1, 'E');
  b.u8(2, 'L');
  b.u8(3, 'F');
  b.u8(EI_CLASS, h.ei_class ? h.ei_class : (w ? ELFCLASS64 : ELFCLASS32));
  b.u8(EI_DATA, b.be() ? ELFDATA2MSB : ELFDATA2LSB);
  b.u8(EI_VERSION, EV_CURRENT);
  b.u8(EI_OSABI, ELFOSABI_SYSV);
  b.u16(16, h.type);
  b.u16(18, h.machine);
  b.u32(20, EV_CURRENT);
  const std::uint64_t a = w ? 8 : 4;
  b.word(24, h.entry);
  b.word(24 + a, h.phoff);
  b.word(24 + 2 * a, h.shoff);
  const std::uint64_t r = 24 + 3 * a;
  b.u32(r, 0);
  b.u16(r + 4, ehdr_size(w));
  b.u16(r + 6, h.phentsize ? h.phentsize : phdr_size(w));
  b.u16(r + 8, h.phnum);
  b.u16(r + 10, h.shentsize ? h.shentsize : shdr_size(w));
  b.u16(r + 12, h.shnum);
  b.u16(r + 14, h.shstrndx);
}

inline void put_phdr(Buf& b, std::uint64_t off, const procforge::elf::ProgramHeader& p) {
  b.u32(off, p.type);
  if (b.is64()) {
    b.u32(off + 4, p.flags);
    b.u64(off + 8, p.offset);
    b.u64(off + 16, p.vaddr);
    b.u64(off + 24, p.paddr);
    b.u64(off + 32, p.filesz);
    b.u64(off + 40, p.memsz);
    b.u64(off + 48, p.align);
  } else {
    b.u32(off + 4, p.offset);
    b.u32(off + 8, p.vaddr);
    b.u32(off + 12, p.paddr);
    b.u32(off + 16, p.filesz);
    b.u32(off + 20, p.memsz);
    b.u32(off + 24, p.flags);
    b.u32(off + 28, p.align);
  }
}

inline void put_shdr(Buf& b, std::uint64_t off, const procforge::elf::SectionHeader& s) {
  b.u32(off, s.name_offset);
  b.u32(off + 4, s.type);
  if (b.is64()) {
    b.u64(off + 8, s.flags);
    b.u64(off + 16, s.addr);
    b.u64(off + 24, s.offset);
    b.u64(off + 32, s.size);
    b.u32(off + 40, s.link);
    b.u32(off + 44, s.info);
    b.u64(off + 48, s.addralign);
    b.u64(off + 56, s.entsize);
  } else {
    b.u32(off + 8, s.flags);
    b.u32(off + 12, s.addr);
    b.u32(off + 16, s.offset);
    b.u32(off + 20, s.size);
    b.u32(off + 24, s.link);
    b.u32(off + 28, s.info);
    b.u32(off + 32, s.addralign);
    b.u32(off + 36, s.entsize);
  }
}

inline void put_dyn(Buf& b, std::uint64_t off, std::int64_t tag, std::uint64_t value) {
  b.word(off, static_cast<std::uint64_t>(tag));
  b.word(off + (b.is64() ? 8 : 4), value);
}

inline procforge::elf::ProgramHeader phdr(std::uint32_t type, std::uint64_t offset, std::uint64_t vaddr,
                                          std::uint64_t filesz, std::uint64_t align = 8) {
  procforge::elf::ProgramHeader p;
  p.type = type;
  p.flags = PF_R;
  p.offset = offset;
  p.vaddr = vaddr;
  p.paddr = vaddr;
  p.filesz = filesz;
  p.memsz = filesz;
  p.align = align;
  return p;
}

// A small dynamically linked image: one PT_LOAD mapping the whole file at
// kBase, PT_DYNAMIC, and whatever the test adds. Fixed offsets keep the
// layout readable in failure messages:
//   0x000 header, 0x040.. program headers (up to 8), 0x300 .dynstr,
//   0x500 dynamic array, 0x700.. free for the test (notes, tables), size 0x1000.
struct DynImage {
  static constexpr std::uint64_t kBase = 0x400000;
  static constexpr std::uint64_t kStr = 0x300;
  static constexpr std::uint64_t kDyn = 0x500;
  static constexpr std::uint64_t kFree = 0x700;
  static constexpr std::uint64_t kSize = 0x1000;

  Buf b;
  std::vector<procforge::elf::ProgramHeader> phdrs;
  std::vector<std::pair<std::int64_t, std::uint64_t>> dyn;
  std::uint64_t str_end = 1;  // index 0 is the empty string

  DynImage(bool is64, bool be) : b(is64, be) {
    b.resize(kSize);
    phdrs.push_back(phdr(PT_LOAD, 0, kBase, kSize, 0x1000));
  }
  // Adds s to .dynstr and returns its index.
  std::uint64_t add_string(std::string_view s) {
    const std::uint64_t at = str_end;
    b.str(kStr + at, s);
    str_end += s.size() + 1;
    return at;
  }
  void add_dyn_string(std::int64_t tag, std::string_view s) { dyn.emplace_back(tag, add_string(s)); }
  std::vector<std::uint8_t> build() {
    HeaderSpec h;
    h.phoff = ehdr_size(b.is64());
    std::vector<procforge::elf::ProgramHeader> all = phdrs;
    all.push_back(phdr(PT_DYNAMIC, kDyn, kBase + kDyn, (dyn.size() + 3) * dyn_size(b.is64())));
    h.phnum = static_cast<std::uint16_t>(all.size());
    put_header(b, h);
    for (std::size_t i = 0; i < all.size(); ++i) {
      put_phdr(b, h.phoff + i * phdr_size(b.is64()), all[i]);
    }
    std::uint64_t off = kDyn;
    put_dyn(b, off, DT_STRTAB, kBase + kStr);
    off += dyn_size(b.is64());
    put_dyn(b, off, DT_STRSZ, str_end);
    off += dyn_size(b.is64());
    for (const auto& [tag, value] : dyn) {
      put_dyn(b, off, tag, value);
      off += dyn_size(b.is64());
    }
    put_dyn(b, off, DT_NULL, 0);
    return b.bytes();
  }
};

inline std::optional<std::vector<std::uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// stdout of a shell command (readelf), nullopt when it cannot be run or fails.
inline std::optional<std::string> run(const std::string& cmd) {
  procforge::testsupport::CommandOptions o;
  o.inherit_env = true;
  o.timeout_ms = 60000;
  auto r = procforge::testsupport::run_command({"/bin/sh", "-c", cmd}, o);
  if (r.exit_code != 0) return std::nullopt;
  return std::move(r.out);
}

}  // namespace elftest
