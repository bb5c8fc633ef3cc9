// The dynamic section (gABI "Dynamic Section"): the array of {d_tag, d_un}
// pairs that ld.so reads to find DT_NEEDED, DT_SONAME, the search paths and
// its tables. ld.so finds it through PT_DYNAMIC, and the d_ptr values are
// virtual addresses, so they are translated through PT_LOAD here; sections
// are consulted only for files that have no program headers. Decoding stops
// at DT_NULL as in glibc's elf_get_dynamic_info() (elf/get-dynamic-info.h),
// whose "a later entry of the same tag wins" rule is mirrored for the
// single-valued tags.
#include <elf.h>

#include <fmt/format.h>

#include "elf/detail.hpp"

namespace procforge::elf {

using detail::hex;
using detail::malformed;

namespace {

// Where the dynamic array lives: PT_DYNAMIC, or SHT_DYNAMIC without phdrs.
Result<std::optional<std::span<const std::uint8_t>>> dynamic_region(const File& f, std::uint64_t& file_offset) {
  using Region = std::optional<std::span<const std::uint8_t>>;
  auto phdrs = f.program_headers();
  if (!phdrs) return phdrs.error();
  if (!phdrs->empty()) {
    for (std::size_t i = 0; i < phdrs->size(); ++i) {
      const auto& ph = (*phdrs)[i];
      if (ph.type != PT_DYNAMIC) continue;
      auto bytes = detail::segment_bytes(f.view(), ph, i);
      if (!bytes) return bytes.error();
      file_offset = ph.offset;
      return Region(*bytes);
    }
    return Region{};
  }
  auto shdrs = f.section_headers();
  if (!shdrs) return shdrs.error();
  for (std::size_t i = 0; i < shdrs->size(); ++i) {
    const auto& sh = (*shdrs)[i];
    if (sh.type != SHT_DYNAMIC) continue;
    auto bytes = detail::section_bytes(f.view(), sh, i);
    if (!bytes) return bytes.error();
    file_offset = sh.offset;
    return Region(*bytes);
  }
  return Region{};
}

}  // namespace

Result<std::vector<DynamicEntry>> File::dynamic() const {
  std::uint64_t base = 0;
  auto region = dynamic_region(*this, base);
  if (!region) return region.error();
  std::vector<DynamicEntry> out;
  if (!*region) return out;
  const ByteView v(**region, h_.big_endian);
  const std::uint64_t es = detail::dyn_size(h_.is64);
  // A trailing partial entry is ignored: the array ends at DT_NULL or at the
  // end of the segment, whichever comes first.
  for (std::uint64_t off = 0; range_fits(off, es, v.size()); off += es) {
    DynamicEntry e;
    e.offset = base + off;
    if (h_.is64) {
      e.tag = static_cast<std::int64_t>(v.u64(off).value_or(0));
      e.value = v.u64(off + 8).value_or(0);
    } else {
      // Elf32_Sword: sign-extend so processor-specific negative tags survive.
      e.tag = static_cast<std::int32_t>(v.u32(off).value_or(0));
      e.value = v.u32(off + 4).value_or(0);
    }
    if (e.tag == DT_NULL) break;
    out.push_back(e);
  }
  return out;
}

namespace detail {

Result<std::uint64_t> table_offset(const TableRef& ref) {
  if (ref.offset) return *ref.offset;
  return malformed(
      fmt::format("dynamic entry {} (offset {}): address {} is not backed by file "
                  "bytes of any PT_LOAD segment",
                  dynamic_tag_name(ref.tag), hex(ref.entry_offset), hex(ref.vaddr)));
}

Result<DynamicTables> dynamic_tables(const File& f) {
  auto entries = f.dynamic();
  if (!entries) return entries.error();
  DynamicTables t;
  const auto map = AddressMap::of(f);
  auto ref = [&map](const DynamicEntry& e) { return TableRef{e.tag, e.value, e.offset, map.translate(e.value)}; };
  for (const auto& e : *entries) {
    switch (e.tag) {
      case DT_STRTAB: t.strtab = ref(e); break;
      case DT_STRSZ: t.strsz = e.value; break;
      case DT_SYMTAB: t.symtab = ref(e); break;
      case DT_SYMENT: t.syment = e.value; break;
      case DT_HASH: t.hash = ref(e); break;
      case DT_GNU_HASH: t.gnu_hash = ref(e); break;
      case DT_VERSYM: t.versym = ref(e); break;
      case DT_VERNEED: t.verneed = ref(e); break;
      case DT_VERNEEDNUM: t.verneednum = e.value; break;
      case DT_VERDEF: t.verdef = ref(e); break;
      case DT_VERDEFNUM: t.verdefnum = e.value; break;
      default: break;
    }
  }
  return t;
}

Result<StringTable> dynamic_string_table(const File& f, const DynamicTables& t) {
  if (!t.strtab) return malformed("dynamic section has string references but no DT_STRTAB");
  auto off = table_offset(*t.strtab);
  if (!off) return off.error();
  const std::uint64_t rest = f.view().size() - *off;  // *off < size: vaddr_to_offset checked it
  // Without DT_STRSZ the table is bounded only by the file; with it, by both.
  const std::uint64_t size = t.strsz ? std::min(*t.strsz, rest) : rest;
  return StringTable{*off, size, "DT_STRTAB"};
}

}  // namespace detail

Result<DynamicInfo> File::dynamic_info() const {
  auto entries = dynamic();
  if (!entries) return entries.error();
  DynamicInfo info;
  if (entries->empty()) return info;
  auto tables = detail::dynamic_tables(*this);
  if (!tables) return tables.error();
  // Built lazily: a file with no string-valued entries needs no DT_STRTAB.
  std::optional<Result<detail::StringTable>> strtab;
  auto str = [&](const DynamicEntry& e) -> Result<std::string_view> {
    if (!strtab) strtab = detail::dynamic_string_table(*this, *tables);
    if (!*strtab) {
      return strtab->error().with_context(
          fmt::format("dynamic entry {} (offset {})", dynamic_tag_name(e.tag), hex(e.offset)));
    }
    auto s = detail::read_string(v_, strtab->value(), e.value);
    if (!s) {
      return s.error().with_context(
          fmt::format("dynamic entry {} (offset {})", dynamic_tag_name(e.tag), hex(e.offset)));
    }
    return *s;
  };
  for (const auto& e : *entries) {
    switch (e.tag) {
      case DT_NEEDED:
      case DT_SONAME:
      case DT_RPATH:
      case DT_RUNPATH:
      case DT_FILTER:
      case DT_AUXILIARY:
      case DT_AUDIT:
      case DT_DEPAUDIT: {
        auto s = str(e);
        if (!s) return s.error();
        if (e.tag == DT_NEEDED) info.needed.push_back(*s);
        else if (e.tag == DT_SONAME) info.soname = *s;
        else if (e.tag == DT_RPATH) info.rpath = *s;
        else if (e.tag == DT_RUNPATH) info.runpath = *s;
        else if (e.tag == DT_FILTER) info.filters.push_back(*s);
        else if (e.tag == DT_AUXILIARY) info.auxiliary.push_back(*s);
        else info.audit.push_back(*s);
        break;
      }
      case DT_FLAGS: info.flags = e.value; break;
      case DT_FLAGS_1: info.flags_1 = e.value; break;
      case DT_BIND_NOW: info.bind_now = true; break;
      case DT_TEXTREL: info.textrel = true; break;
      default: break;
    }
  }
  // The three spellings of "resolve everything at load time" (gABI DT_BIND_NOW,
  // DF_BIND_NOW; Solaris/GNU DF_1_NOW) all make glibc's ld.so bind eagerly.
  if (info.flags & DF_BIND_NOW) info.bind_now = true;
  if (info.flags_1 & DF_1_NOW) info.bind_now = true;
  if (info.flags & DF_TEXTREL) info.textrel = true;
  return info;
}

}  // namespace procforge::elf
