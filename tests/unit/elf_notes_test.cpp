// Notes and GNU properties: alignment by class / p_align, bounds, and where
// the property note is found.
#include <gtest/gtest.h>

#include "elf_test_util.hpp"

namespace {

using namespace procforge::elf;
using elftest::Buf;

// Writes a note at off; returns the offset after it (padded to align).
std::uint64_t put_note(Buf& b, std::uint64_t off, std::string_view name, std::uint32_t type,
                       const std::vector<std::uint8_t>& desc, std::uint64_t align) {
  // Padding counts from the note's start, as binutils' ELF_NOTE_DESC_OFFSET does.
  const auto pad = [align](std::uint64_t v) { return (v + align - 1) / align * align; };
  b.u32(off, name.size() + 1);
  b.u32(off + 4, desc.size());
  b.u32(off + 8, type);
  b.str(off + 12, name);
  const std::uint64_t d = off + pad(12 + name.size() + 1);
  for (std::size_t i = 0; i < desc.size(); ++i) b.u8(d + i, desc[i]);
  return off + pad(d - off + desc.size());
}

// Header and program headers at 0x40; contents from 0x200; size 0x600.
Buf image(bool is64, bool be, const std::vector<ProgramHeader>& ph) {
  Buf b(is64, be);
  b.resize(0x600);
  elftest::HeaderSpec h;
  h.phoff = elftest::ehdr_size(is64);
  h.phnum = static_cast<std::uint16_t>(ph.size());
  elftest::put_header(b, h);
  for (std::size_t i = 0; i < ph.size(); ++i) {
    elftest::put_phdr(b, h.phoff + i * elftest::phdr_size(is64), ph[i]);
  }
  return b;
}

TEST(ElfNotes, four_byte_aligned_notes_decode_name_type_and_desc) {
  Buf b = image(false, true, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x30, 4)});
  auto end = put_note(b, 0x200, "GNU", NT_GNU_ABI_TAG, {0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2}, 4);
  EXPECT_EQ(end, 0x21cu);
  put_note(b, end, "Go", 4, {'x', 'y'}, 4);
  auto n = File::parse(b.span())->notes();
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_EQ(n->size(), 2u);
  EXPECT_EQ((*n)[0].name, "GNU");
  EXPECT_EQ((*n)[0].type, static_cast<std::uint32_t>(NT_GNU_ABI_TAG));
  EXPECT_EQ((*n)[0].desc.size(), 12u);
  EXPECT_EQ((*n)[0].desc[7], 3);
  EXPECT_EQ((*n)[0].offset, 0x200u);
  EXPECT_EQ((*n)[1].name, "Go");
  EXPECT_EQ((*n)[1].offset, 0x21cu);
  EXPECT_EQ((*n)[1].desc.size(), 2u);
}

TEST(ElfNotes, segment_aligned_to_eight_pads_desc_to_eight) {
  Buf b = image(true, false, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x30, 8)});
  auto end = put_note(b, 0x200, "GNU", 1, {1, 2, 3, 4}, 8);  // desc at 0x210, next at 0x218
  ASSERT_EQ(end, 0x218u);
  put_note(b, end, "GNU", 3, {9}, 8);
  auto n = File::parse(b.span())->notes();
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_EQ(n->size(), 2u);
  EXPECT_EQ((*n)[1].offset, 0x218u);
  EXPECT_EQ((*n)[1].type, 3u);
}

TEST(ElfNotes, desc_past_end_of_segment_is_error_naming_note_offset) {
  Buf b = image(true, false, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x14, 4)});
  put_note(b, 0x200, "GNU", 1, {1, 2, 3, 4, 5, 6, 7, 8}, 4);
  auto n = File::parse(b.span())->notes();
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().err, ENOEXEC);
  EXPECT_NE(n.error().message.find("note at offset 0x200"), std::string::npos) << n.error().message;
}

TEST(ElfNotes, huge_namesz_does_not_wrap) {
  Buf b = image(true, false, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x20, 4)});
  b.u32(0x200, 0xffffffff);
  EXPECT_FALSE(File::parse(b.span())->notes());
}

TEST(ElfNotes, pt_note_past_eof_is_error) {
  Buf b = image(true, false, {elftest::phdr(PT_NOTE, 0x500, 0x500, 0x200, 4)});
  auto n = File::parse(b.span())->notes();
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("past end of file"), std::string::npos);
}

TEST(ElfNotes, without_program_headers_sht_note_sections_are_read) {
  Buf b(true, false);
  b.resize(0x400);
  elftest::HeaderSpec h;
  h.shoff = 0x300;
  h.shnum = 2;
  elftest::put_header(b, h);
  put_note(b, 0x100, "GNU", NT_GNU_BUILD_ID, {0xaa, 0xbb, 0xcc, 0xdd}, 4);
  SectionHeader s;
  s.type = SHT_NOTE;
  s.offset = 0x100;
  s.size = 0x14;
  s.addralign = 4;
  elftest::put_shdr(b, 0x340, s);
  auto n = File::parse(b.span())->notes();
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_EQ(n->size(), 1u);
  EXPECT_EQ((*n)[0].type, static_cast<std::uint32_t>(NT_GNU_BUILD_ID));
  EXPECT_EQ((*n)[0].desc[0], 0xaa);
}

std::vector<std::uint8_t> x86_feature_property(bool be) {
  // {pr_type GNU_PROPERTY_X86_FEATURE_1_AND, pr_datasz 4, IBT|SHSTK, pad}
  Buf p(true, be);
  p.u32(0, GNU_PROPERTY_X86_FEATURE_1_AND);
  p.u32(4, 4);
  p.u32(8, GNU_PROPERTY_X86_FEATURE_1_IBT | GNU_PROPERTY_X86_FEATURE_1_SHSTK);
  p.u32(12, 0);
  return p.bytes();
}

TEST(ElfGnuProperties, read_from_pt_gnu_property) {
  Buf b = image(true, false,
                {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x20, 8), elftest::phdr(PT_GNU_PROPERTY, 0x200, 0x200, 0x20, 8)});
  put_note(b, 0x200, "GNU", NT_GNU_PROPERTY_TYPE_0, x86_feature_property(false), 8);
  auto p = File::parse(b.span())->gnu_properties();
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].type, GNU_PROPERTY_X86_FEATURE_1_AND);
  ASSERT_EQ((*p)[0].data.size(), 4u);
  EXPECT_EQ((*p)[0].data[0], GNU_PROPERTY_X86_FEATURE_1_IBT | GNU_PROPERTY_X86_FEATURE_1_SHSTK);
}

TEST(ElfGnuProperties, found_in_pt_note_when_there_is_no_pt_gnu_property) {
  Buf b = image(true, true, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x38, 8)});
  auto end = put_note(b, 0x200, "GNU", NT_GNU_BUILD_ID, {1, 2, 3, 4}, 8);
  put_note(b, end, "GNU", NT_GNU_PROPERTY_TYPE_0, x86_feature_property(true), 8);
  auto p = File::parse(b.span())->gnu_properties();
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].type, GNU_PROPERTY_X86_FEATURE_1_AND);
}

TEST(ElfGnuProperties, property_note_from_other_owner_is_ignored) {
  Buf b = image(true, false, {elftest::phdr(PT_NOTE, 0x200, 0x200, 0x20, 8)});
  put_note(b, 0x200, "XYZ", NT_GNU_PROPERTY_TYPE_0, x86_feature_property(false), 8);
  auto p = File::parse(b.span())->gnu_properties();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->empty());
}

TEST(ElfGnuProperties, datasz_past_descriptor_is_error) {
  Buf b = image(true, false, {elftest::phdr(PT_GNU_PROPERTY, 0x200, 0x200, 0x20, 8)});
  auto desc = x86_feature_property(false);
  desc[4] = 0x40;  // pr_datasz 0x40 in a 16-byte descriptor
  put_note(b, 0x200, "GNU", NT_GNU_PROPERTY_TYPE_0, desc, 8);
  auto p = File::parse(b.span())->gnu_properties();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("pr_datasz 0x40"), std::string::npos) << p.error().message;
}

TEST(ElfGnuProperties, elf32_properties_are_four_byte_aligned) {
  Buf prop(false, false);
  prop.u32(0, 0xc0000001);
  prop.u32(4, 1);  // one data byte, padded to 4 on ELF32
  prop.u8(8, 7);
  prop.u32(12, 0xc0000002);
  prop.u32(16, 4);
  prop.u32(20, 3);
  Buf b = image(false, false, {elftest::phdr(PT_GNU_PROPERTY, 0x200, 0x200, 0x28, 4)});
  put_note(b, 0x200, "GNU", NT_GNU_PROPERTY_TYPE_0, prop.bytes(), 4);
  auto p = File::parse(b.span())->gnu_properties();
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].data.size(), 1u);
  EXPECT_EQ((*p)[1].type, 0xc0000002u);
  EXPECT_EQ((*p)[1].data[0], 3);
}

}  // namespace
