// ELF notes (gABI "Note Section") and the GNU property note inside them.
// A note is {n_namesz, n_descsz, n_type} followed by the name and the
// descriptor, each padded to the note alignment: 4 bytes per the gABI, but 8
// for the SHT_NOTE / PT_NOTE entries GNU tools align to 8 (.note.gnu.property
// on ELF64), which is how binutils' readelf and the kernel tell them apart.
// The property layout and the kernel's reading of it follow
// fs/binfmt_elf.c parse_elf_properties() / parse_elf_property().
#include <elf.h>

#include <fmt/format.h>

#include "elf/detail.hpp"

namespace procforge::elf {

using detail::hex;
using detail::malformed;

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Decodes the notes in region (which starts at file offset base); where says
// which segment or section it is, for messages.
Status parse_notes(const ByteView& file, std::uint64_t base, std::uint64_t len, std::uint64_t align,
                   const std::string& where, std::vector<Note>& out) {
  auto region = file.sub(base, len);
  if (!region) return malformed(where + ": note region is past end of file");
  const ByteView v(*region, file.big_endian());
  std::uint64_t pos = 0;
  // Each iteration consumes at least the 12-byte header, so the loop is
  // bounded by len / 12 whatever the sizes say.
  while (range_fits(pos, 12, len)) {
    const std::uint32_t namesz = v.u32(pos).value_or(0);
    const std::uint32_t descsz = v.u32(pos + 4).value_or(0);
    const std::uint32_t type = v.u32(pos + 8).value_or(0);
    const std::uint64_t name_off = pos + 12;
    // Padding is measured from the note's start (binutils ELF_NOTE_DESC_OFFSET,
    // kernel parse_elf_properties()), which differs from padding namesz
    // alone once the alignment is 8.
    const std::uint64_t desc_off = pos + align_up(12 + std::uint64_t{namesz}, align);
    if (!range_fits(name_off, namesz, len) || !range_fits(desc_off, descsz, len)) {
      return malformed(
          fmt::format("{}: note at offset {}: n_namesz {} + n_descsz {} run past the "
                      "end of the notes (offset {})",
                      where, hex(base + pos), hex(namesz), hex(descsz), hex(base + len)));
    }
    Note n;
    n.type = type;
    n.offset = base + pos;
    // The name's size counts its NUL; a name with none is taken whole.
    auto name = v.cstr(name_off, namesz == 0 ? 0 : namesz - 1);
    if (namesz == 0) {
      n.name = {};
    } else if (name) {
      n.name = *name;
    } else {
      n.name = std::string_view(reinterpret_cast<const char*>(region->data() + name_off), namesz);
    }
    n.desc = region->subspan(desc_off, descsz);
    out.push_back(n);
    pos += align_up(desc_off - pos + descsz, align);
  }
  return ok_status();
}

std::uint64_t note_align(std::uint64_t declared) { return declared == 8 ? 8 : 4; }

// Properties in an NT_GNU_PROPERTY_TYPE_0 descriptor: {pr_type, pr_datasz,
// data padded to 8 on ELF64 / 4 on ELF32} (kernel elf_gnu_property_align).
Result<std::vector<GnuProperty>> parse_properties(const Note& n, bool is64, bool be) {
  const ByteView v(n.desc, be);
  const std::uint64_t align = is64 ? 8 : 4;
  std::vector<GnuProperty> out;
  std::uint64_t pos = 0;
  while (range_fits(pos, 8, v.size())) {
    GnuProperty p;
    p.type = v.u32(pos).value_or(0);
    const std::uint32_t datasz = v.u32(pos + 4).value_or(0);
    auto data = v.sub(pos + 8, datasz);
    if (!data) {
      return malformed(
          fmt::format("GNU property note (offset {}): property at descriptor offset {} "
                      "has pr_datasz {} past the descriptor's end ({})",
                      hex(n.offset), hex(pos), hex(datasz), hex(v.size())));
    }
    p.data = *data;
    out.push_back(p);
    pos = pos + 8 + align_up(datasz, align);
  }
  return out;
}

bool is_property_note(const Note& n) { return n.type == NT_GNU_PROPERTY_TYPE_0 && n.name == "GNU"; }

}  // namespace

Result<std::vector<Note>> File::notes() const {
  std::vector<Note> out;
  auto phdrs = program_headers();
  if (!phdrs) return phdrs.error();
  if (!phdrs->empty()) {
    for (std::size_t i = 0; i < phdrs->size(); ++i) {
      const auto& ph = (*phdrs)[i];
      if (ph.type != PT_NOTE) continue;
      auto bytes = detail::segment_bytes(v_, ph, i);
      if (!bytes) return bytes.error();
      auto st = parse_notes(v_, ph.offset, ph.filesz, note_align(ph.align),
                            fmt::format("program header {} (offset {})", i, hex(ph.table_offset)), out);
      if (!st) return st.error();
    }
    return out;
  }
  auto shdrs = section_headers();
  if (!shdrs) return shdrs.error();
  for (std::size_t i = 0; i < shdrs->size(); ++i) {
    const auto& sh = (*shdrs)[i];
    if (sh.type != SHT_NOTE) continue;
    auto bytes = detail::section_bytes(v_, sh, i);
    if (!bytes) return bytes.error();
    auto st =
        parse_notes(v_, sh.offset, sh.size, note_align(sh.addralign), fmt::format("section {} ({})", i, sh.name), out);
    if (!st) return st.error();
  }
  return out;
}

Result<std::vector<GnuProperty>> File::gnu_properties() const {
  auto phdrs = program_headers();
  if (!phdrs) return phdrs.error();
  // PT_GNU_PROPERTY is what the kernel and ld.so read; it points at the
  // property note directly, aligned like the properties themselves.
  for (std::size_t i = 0; i < phdrs->size(); ++i) {
    const auto& ph = (*phdrs)[i];
    if (ph.type != PT_GNU_PROPERTY) continue;
    auto bytes = detail::segment_bytes(v_, ph, i);
    if (!bytes) return bytes.error();
    std::vector<Note> notes;
    auto st = parse_notes(v_, ph.offset, ph.filesz, h_.is64 ? 8 : 4,
                          fmt::format("program header {} (offset {})", i, hex(ph.table_offset)), notes);
    if (!st) return st.error();
    for (const auto& n : notes) {
      if (is_property_note(n)) return parse_properties(n, h_.is64, h_.big_endian);
    }
    return std::vector<GnuProperty>{};
  }
  auto all = notes();
  if (!all) return all.error();
  for (const auto& n : *all) {
    if (is_property_note(n)) return parse_properties(n, h_.is64, h_.big_endian);
  }
  return std::vector<GnuProperty>{};
}

}  // namespace procforge::elf
