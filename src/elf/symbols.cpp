// Symbol tables and GNU symbol versioning (gABI "Symbol Table"; the Linux
// Standard Base "Symbol Versioning" chapter for .gnu.version,
// .gnu.version_r and .gnu.version_d).
//
// .symtab exists only as a section. .dynsym and the version tables are found
// the way ld.so finds them, through DT_SYMTAB / DT_VERSYM / DT_VERNEED /
// DT_VERDEF, with the section table as a fallback; .dynsym prefers its
// section header because only that records its size. Without one the size
// comes from DT_HASH's nchain or, for DT_GNU_HASH-only objects, from the
// highest symbol index the hash chains reach (as glibc's dl-lookup and
// binutils' readelf do). Version chains are linked lists with file-supplied
// offsets, so every walk carries a budget no well-formed file can exceed.
#include <elf.h>

#include <fmt/format.h>

#include "elf/detail.hpp"

namespace procforge::elf {

using detail::hex;
using detail::malformed;

namespace detail {

std::vector<SectionHeader> sections_of_type(const File& f, std::uint32_t type) {
  std::vector<SectionHeader> out;
  auto shdrs = f.section_headers();
  if (!shdrs) return out;
  for (const auto& sh : *shdrs) {
    if (sh.type == type) out.push_back(sh);
  }
  return out;
}

namespace {

Result<std::uint64_t> gnu_hash_count(const File& f, const TableRef& ref) {
  auto base = table_offset(ref);
  if (!base) return base.error();
  const ByteView& v = f.view();
  const bool is64 = f.header().is64;
  auto bad = [&](std::uint64_t at) {
    return malformed(fmt::format("DT_GNU_HASH (offset {}): table truncated at offset {} (file size {})", hex(*base),
                                 hex(at), hex(v.size())));
  };
  const auto nbuckets = v.u32(*base);
  const auto symoffset = v.u32(*base + 4);
  const auto bloom_size = v.u32(*base + 8);
  if (!nbuckets || !symoffset || !bloom_size) return bad(*base);
  // Header of four words, then bloom_size Elf_Addr-sized bloom words.
  const std::uint64_t buckets = *base + 16 + std::uint64_t{*bloom_size} * (is64 ? 8 : 4);
  std::uint32_t max = 0;
  for (std::uint64_t b = 0; b < *nbuckets; ++b) {
    auto idx = v.u32(buckets + 4 * b);  // fails past EOF, so the loop is file-bounded
    if (!idx) return bad(buckets + 4 * b);
    max = std::max(max, *idx);
  }
  if (max < *symoffset) return std::uint64_t{*symoffset};
  // Chain i holds the hash of symbol symoffset + i; bit 0 set ends a chain.
  const std::uint64_t chains = buckets + 4 * std::uint64_t{*nbuckets};
  for (std::uint64_t i = max;; ++i) {
    const std::uint64_t at = chains + 4 * (i - *symoffset);
    auto h = v.u32(at);  // each step reads further into the file: bounded
    if (!h) return bad(at);
    if (*h & 1) return i + 1;
  }
}

}  // namespace

Result<std::uint64_t> dynsym_count(const File& f, const DynamicTables& t) {
  for (const auto& sh : sections_of_type(f, SHT_DYNSYM)) {
    const std::uint64_t es = sh.entsize ? sh.entsize : sym_size(f.header().is64);
    return sh.size / es;
  }
  if (t.hash) {
    auto off = table_offset(*t.hash);
    if (!off) return off.error();
    // DT_HASH is {nbucket, nchain, ...}; nchain equals the number of symbols.
    if (auto nchain = f.view().u32(*off + 4)) return std::uint64_t{*nchain};
    return malformed(fmt::format("DT_HASH (offset {}): nchain past end of file", hex(*off)));
  }
  if (t.gnu_hash) return gnu_hash_count(f, *t.gnu_hash);
  return malformed("cannot size .dynsym: no SHT_DYNSYM section, DT_HASH or DT_GNU_HASH");
}

}  // namespace detail

namespace {

// Where a symbol table is and how to read it.
struct SymTableLoc {
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
  std::uint64_t entsize = 0;
  detail::StringTable strings;
  std::string what;
};

Result<std::vector<Symbol>> decode_symbols(const File& f, const SymTableLoc& loc) {
  const bool is64 = f.header().is64;
  const ByteView& v = f.view();
  const std::uint64_t es = loc.entsize ? loc.entsize : detail::sym_size(is64);
  if (es < detail::sym_size(is64)) {
    return malformed(fmt::format("{} (offset {}): entry size {} is smaller than an ELF{} symbol ({})", loc.what,
                                 hex(loc.offset), es, is64 ? 64 : 32, detail::sym_size(is64)));
  }
  // Checking the whole table first caps count (and the allocation) by the file size.
  if (loc.count > v.size() / es || !range_fits(loc.offset, loc.count * es, v.size())) {
    return malformed(
        fmt::format("{} (offset {}): {} symbols of {} bytes run past end of file "
                    "(size {})",
                    loc.what, hex(loc.offset), loc.count, es, hex(v.size())));
  }
  std::vector<Symbol> out;
  out.reserve(loc.count);
  for (std::uint64_t i = 0; i < loc.count; ++i) {
    const std::uint64_t e = loc.offset + i * es;
    Symbol s;
    const std::uint32_t name = v.u32(e).value_or(0);
    if (is64) {
      s.info = v.u8(e + 4).value_or(0);
      s.other = v.u8(e + 5).value_or(0);
      s.shndx = v.u16(e + 6).value_or(0);
      s.value = v.u64(e + 8).value_or(0);
      s.size = v.u64(e + 16).value_or(0);
    } else {
      s.value = v.u32(e + 4).value_or(0);
      s.size = v.u32(e + 8).value_or(0);
      s.info = v.u8(e + 12).value_or(0);
      s.other = v.u8(e + 13).value_or(0);
      s.shndx = v.u16(e + 14).value_or(0);
    }
    if (name != 0) {
      auto n = detail::read_string(v, loc.strings, name);
      if (!n) {
        return n.error().with_context(fmt::format("{} symbol {} (offset {})", loc.what, i, hex(e)));
      }
      s.name = *n;
    }
    out.push_back(s);
  }
  return out;
}

// The string table a section's sh_link names.
Result<detail::StringTable> linked_strings(const std::vector<SectionHeader>& shdrs, const SectionHeader& sh,
                                           std::size_t index) {
  if (sh.link == 0 || sh.link >= shdrs.size()) {
    return malformed(fmt::format("section {} ({}): sh_link {} is not a section", index, sh.name, sh.link));
  }
  const auto& st = shdrs[sh.link];
  return detail::StringTable{st.offset, st.type == SHT_NOBITS ? 0 : st.size, ".dynstr/.strtab"};
}

Result<std::optional<SymTableLoc>> section_symtab(const std::vector<SectionHeader>& shdrs, std::uint32_t type,
                                                  bool is64) {
  for (std::size_t i = 0; i < shdrs.size(); ++i) {
    const auto& sh = shdrs[i];
    if (sh.type != type) continue;
    auto strings = linked_strings(shdrs, sh, i);
    if (!strings) return strings.error();
    SymTableLoc loc;
    loc.offset = sh.offset;
    // sh_entsize 0 is common in hand-made files; the class fixes the size anyway.
    loc.entsize = sh.entsize ? sh.entsize : detail::sym_size(is64);
    loc.count = sh.size / loc.entsize;
    loc.strings = *strings;
    loc.what = fmt::format("section {} ({})", i, sh.name);
    return std::optional<SymTableLoc>(loc);
  }
  return std::optional<SymTableLoc>{};
}

}  // namespace

Result<std::vector<Symbol>> File::symbols(SymbolTable which) const {
  if (which == SymbolTable::symtab) {
    auto shdrs = section_headers();
    if (!shdrs) return shdrs.error();
    auto loc = section_symtab(*shdrs, SHT_SYMTAB, h_.is64);
    if (!loc) return loc.error();
    if (!*loc) return std::vector<Symbol>{};
    return decode_symbols(*this, **loc);
  }
  // A damaged section table must not hide .dynsym: fall through to DT_SYMTAB.
  if (auto shdrs = section_headers()) {
    auto loc = section_symtab(*shdrs, SHT_DYNSYM, h_.is64);
    if (loc && *loc) return decode_symbols(*this, **loc);
  }
  auto t = detail::dynamic_tables(*this);
  if (!t) return t.error();
  if (!t->symtab) return std::vector<Symbol>{};
  auto off = detail::table_offset(*t->symtab);
  if (!off) return off.error();
  auto count = detail::dynsym_count(*this, *t);
  if (!count) return count.error();
  auto strings = detail::dynamic_string_table(*this, *t);
  if (!strings) return strings.error();
  SymTableLoc loc;
  loc.offset = *off;
  loc.count = *count;
  loc.entsize = t->syment;
  loc.strings = *strings;
  loc.what = "DT_SYMTAB";
  return decode_symbols(*this, loc);
}

Result<std::vector<std::uint16_t>> File::version_symbols() const {
  std::uint64_t off = 0;
  std::uint64_t count = 0;
  std::string what;
  auto t = detail::dynamic_tables(*this);
  if (t && t->versym) {
    auto o = detail::table_offset(*t->versym);
    if (!o) return o.error();
    // .gnu.version runs parallel to .dynsym: one half-word per symbol.
    auto n = detail::dynsym_count(*this, *t);
    if (!n) return n.error();
    off = *o;
    count = *n;
    what = "DT_VERSYM";
  } else {
    auto secs = detail::sections_of_type(*this, SHT_GNU_versym);
    if (secs.empty()) {
      if (!t) return t.error();
      return std::vector<std::uint16_t>{};
    }
    off = secs[0].offset;
    count = secs[0].size / 2;
    what = fmt::format("section {}", secs[0].name);
  }
  if (count > v_.size() / 2 || !range_fits(off, count * 2, v_.size())) {
    return malformed(fmt::format("{} (offset {}): {} entries run past end of file (size {})", what, hex(off), count,
                                 hex(v_.size())));
  }
  std::vector<std::uint16_t> out;
  out.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) out.push_back(v_.u16(off + 2 * i).value_or(0));
  return out;
}

namespace {

// Where a version table starts, how many entries it claims and its strings.
struct VersionLoc {
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> count;  // DT_VERxxxNUM / sh_info; absent: follow the chain
  detail::StringTable strings;
};

Result<std::optional<VersionLoc>> locate_versions(const File& f, std::int64_t tag, std::uint32_t sh_type) {
  auto t = detail::dynamic_tables(f);
  if (t) {
    const auto& ref = tag == DT_VERNEED ? t->verneed : t->verdef;
    if (ref) {
      auto off = detail::table_offset(*ref);
      if (!off) return off.error();
      auto strings = detail::dynamic_string_table(f, *t);
      if (!strings) return strings.error();
      return std::optional<VersionLoc>(VersionLoc{*off, tag == DT_VERNEED ? t->verneednum : t->verdefnum, *strings});
    }
  }
  auto shdrs = f.section_headers();
  if (!shdrs) {
    // Neither source is readable: report the dynamic section's problem,
    // which is the one ld.so would have hit.
    if (!t) return t.error();
    return std::optional<VersionLoc>{};
  }
  for (std::size_t i = 0; i < shdrs->size(); ++i) {
    const auto& sh = (*shdrs)[i];
    if (sh.type != sh_type) continue;
    auto strings = linked_strings(*shdrs, sh, i);
    if (!strings) return strings.error();
    return std::optional<VersionLoc>(VersionLoc{sh.offset, sh.info, *strings});
  }
  return std::optional<VersionLoc>{};
}

}  // namespace

Result<std::vector<VersionNeed>> File::version_needs() const {
  auto loc = locate_versions(*this, DT_VERNEED, SHT_GNU_verneed);
  if (!loc) return loc.error();
  std::vector<VersionNeed> out;
  if (!*loc) return out;
  const auto& l = **loc;
  // Every Elf_Verneed and Elf_Vernaux is 16 bytes, so a file cannot hold more
  // distinct entries than this; a walk that goes further revisits bytes
  // (chains that overlap, or wrap on a 32-bit reader), and would be quadratic.
  std::uint64_t budget = v_.size() / 16 + 1;
  std::uint64_t off = l.offset;
  for (std::uint64_t i = 0; !l.count || i < *l.count; ++i) {
    if (budget-- == 0) {
      return malformed(
          fmt::format("version needs (offset {}): vn_next chain does not end within the file "
                      "(overlapping or cyclic entries)",
                      hex(l.offset)));
    }
    const auto cnt = v_.u16(off + 2);
    const auto file = v_.u32(off + 4);
    const auto aux = v_.u32(off + 8);
    const auto next = v_.u32(off + 12);
    if (!cnt || !file || !aux || !next) {
      return malformed(
          fmt::format("version need {} (offset {}): entry past end of file (size {})", i, hex(off), hex(v_.size())));
    }
    VersionNeed need;
    auto name = detail::read_string(v_, l.strings, *file);
    if (!name) return name.error().with_context(fmt::format("version need {} (offset {}) vn_file", i, hex(off)));
    need.file = *name;
    std::uint64_t a = off + *aux;
    for (std::uint16_t j = 0; j < *cnt; ++j) {
      if (budget-- == 0) {
        return malformed(
            fmt::format("version need {} (offset {}): vna_next chain does not end within the file "
                        "(overlapping or cyclic entries)",
                        i, hex(off)));
      }
      VersionNeedAux e;
      const auto hash = v_.u32(a);
      const auto flags = v_.u16(a + 4);
      const auto other = v_.u16(a + 6);
      const auto vname = v_.u32(a + 8);
      const auto vnext = v_.u32(a + 12);
      if (!hash || !flags || !other || !vname || !vnext) {
        return malformed(
            fmt::format("version need {} aux {} (offset {}): entry past end of file "
                        "(size {})",
                        i, j, hex(a), hex(v_.size())));
      }
      e.hash = *hash;
      e.flags = *flags;
      e.other = *other;
      auto n = detail::read_string(v_, l.strings, *vname);
      if (!n) return n.error().with_context(fmt::format("version need {} aux {} (offset {}) vna_name", i, j, hex(a)));
      e.name = *n;
      need.entries.push_back(e);
      if (*vnext == 0) break;
      a += *vnext;
    }
    out.push_back(std::move(need));
    if (*next == 0) break;
    off += *next;
  }
  return out;
}

Result<std::vector<VersionDef>> File::version_defs() const {
  auto loc = locate_versions(*this, DT_VERDEF, SHT_GNU_verdef);
  if (!loc) return loc.error();
  std::vector<VersionDef> out;
  if (!*loc) return out;
  const auto& l = **loc;
  // Elf_Verdaux is 8 bytes and Elf_Verdef 20: no file holds more entries.
  std::uint64_t budget = v_.size() / 8 + 1;
  std::uint64_t off = l.offset;
  for (std::uint64_t i = 0; !l.count || i < *l.count; ++i) {
    if (budget-- == 0) {
      return malformed(
          fmt::format("version definitions (offset {}): vd_next chain does not end within the file "
                      "(overlapping or cyclic entries)",
                      hex(l.offset)));
    }
    const auto flags = v_.u16(off + 2);
    const auto ndx = v_.u16(off + 4);
    const auto cnt = v_.u16(off + 6);
    const auto hash = v_.u32(off + 8);
    const auto aux = v_.u32(off + 12);
    const auto next = v_.u32(off + 16);
    if (!flags || !ndx || !cnt || !hash || !aux || !next) {
      return malformed(
          fmt::format("version definition {} (offset {}): entry past end of file "
                      "(size {})",
                      i, hex(off), hex(v_.size())));
    }
    VersionDef d;
    d.flags = *flags;
    d.index = *ndx;
    d.hash = *hash;
    std::uint64_t a = off + *aux;
    for (std::uint16_t j = 0; j < *cnt; ++j) {
      if (budget-- == 0) {
        return malformed(
            fmt::format("version definition {} (offset {}): vda_next chain does not end within the "
                        "file (overlapping or cyclic entries)",
                        i, hex(off)));
      }
      const auto vname = v_.u32(a);
      const auto vnext = v_.u32(a + 4);
      if (!vname || !vnext) {
        return malformed(
            fmt::format("version definition {} aux {} (offset {}): entry past end of "
                        "file (size {})",
                        i, j, hex(a), hex(v_.size())));
      }
      auto n = detail::read_string(v_, l.strings, *vname);
      if (!n)
        return n.error().with_context(fmt::format("version definition {} aux {} (offset {}) vda_name", i, j, hex(a)));
      d.names.push_back(*n);
      if (*vnext == 0) break;
      a += *vnext;
    }
    out.push_back(std::move(d));
    if (*next == 0) break;
    off += *next;
  }
  return out;
}

}  // namespace procforge::elf
