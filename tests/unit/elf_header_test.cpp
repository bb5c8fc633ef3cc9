// File header, program header and section header tables, in both classes
// and byte orders, including the malformed cases the fuzzer and the kernel
// care about.
#include <gtest/gtest.h>

#include "elf_test_util.hpp"

namespace {

using namespace procforge::elf;
using elftest::Buf;
using elftest::HeaderSpec;

struct Layout {
  bool is64;
  bool be;
};

std::string layout_name(const testing::TestParamInfo<Layout>& i) {
  return std::string(i.param.is64 ? "elf64" : "elf32") + (i.param.be ? "_msb" : "_lsb");
}

class ElfLayout : public testing::TestWithParam<Layout> {};

INSTANTIATE_TEST_SUITE_P(AllLayouts, ElfLayout,
                         testing::Values(Layout{true, false}, Layout{true, true}, Layout{false, false},
                                         Layout{false, true}),
                         layout_name);

// Header + n program headers right after it.
Buf image_with_phdrs(bool is64, bool be, const std::vector<ProgramHeader>& ph, std::size_t size = 0x400) {
  Buf b(is64, be);
  b.resize(size);
  HeaderSpec h;
  h.phoff = elftest::ehdr_size(is64);
  h.phnum = static_cast<std::uint16_t>(ph.size());
  elftest::put_header(b, h);
  for (std::size_t i = 0; i < ph.size(); ++i) {
    elftest::put_phdr(b, h.phoff + i * elftest::phdr_size(is64), ph[i]);
  }
  return b;
}

TEST(ElfHeader, missing_magic_is_enoexec) {
  const std::vector<std::uint8_t> b(64, 0);
  auto f = File::parse(b);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().err, ENOEXEC);
  EXPECT_NE(f.error().message.find("magic"), std::string::npos) << f.error().message;
}

TEST(ElfHeader, file_shorter_than_magic_is_enoexec) {
  const std::vector<std::uint8_t> b = {0x7f, 'E'};
  auto f = File::parse(b);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().err, ENOEXEC);
}

TEST(ElfHeader, truncated_elf64_header_names_both_sizes) {
  Buf b(true, false);
  elftest::put_header(b, {});
  b.resize(63);
  auto f = File::parse(b.span());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().err, ENOEXEC);
  EXPECT_EQ(f.error().message, "file header (offset 0): file size 0x3f is smaller than an ELF64 header (0x40)");
}

TEST(ElfHeader, elf32_header_needs_only_52_bytes) {
  Buf b(false, false);
  elftest::put_header(b, {});
  ASSERT_EQ(b.size(), 52u);
  EXPECT_TRUE(File::parse(b.span()));
}

TEST_P(ElfLayout, header_fields_round_trip) {
  Buf b(GetParam().is64, GetParam().be);
  HeaderSpec h;
  h.type = ET_EXEC;
  h.machine = EM_PPC64;
  h.entry = 0x10203040;
  h.phoff = 0x50;
  h.shoff = 0x1234;
  h.phnum = 7;
  h.shnum = 9;
  h.shstrndx = 8;
  elftest::put_header(b, h);
  auto r = parse_header(b.span());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->is64, GetParam().is64);
  EXPECT_EQ(r->big_endian, GetParam().be);
  EXPECT_EQ(r->ei_class, GetParam().is64 ? ELFCLASS64 : ELFCLASS32);
  EXPECT_EQ(r->ei_data, GetParam().be ? ELFDATA2MSB : ELFDATA2LSB);
  EXPECT_EQ(r->type, ET_EXEC);
  EXPECT_EQ(r->machine, EM_PPC64);
  EXPECT_EQ(r->version, EV_CURRENT);
  EXPECT_EQ(r->entry, 0x10203040u);
  EXPECT_EQ(r->phoff, 0x50u);
  EXPECT_EQ(r->shoff, 0x1234u);
  EXPECT_EQ(r->ehsize, elftest::ehdr_size(GetParam().is64));
  EXPECT_EQ(r->phentsize, elftest::phdr_size(GetParam().is64));
  EXPECT_EQ(r->phnum, 7);
  EXPECT_EQ(r->shentsize, elftest::shdr_size(GetParam().is64));
  EXPECT_EQ(r->shnum, 9);
  EXPECT_EQ(r->shstrndx, 8);
}

TEST(ElfHeader, elf32_big_endian_header_has_known_bytes) {
  // Spelled out by hand (not through the builder) so a shared mistake in the
  // builder and the reader cannot hide: a 32-bit big-endian MIPS executable.
  std::vector<std::uint8_t> b = {
      0x7f, 'E',  'L',  'F',  1,    2,    1, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // e_ident
      0x00, 0x02,                                                        // e_type ET_EXEC
      0x00, 0x08,                                                        // e_machine EM_MIPS
      0x00, 0x00, 0x00, 0x01,                                            // e_version
      0x00, 0x40, 0x01, 0x20,                                            // e_entry
      0x00, 0x00, 0x00, 0x34,                                            // e_phoff
      0x00, 0x00, 0x10, 0x00,                                            // e_shoff
      0x70, 0x00, 0x10, 0x07,                                            // e_flags
      0x00, 0x34, 0x00, 0x20, 0x00, 0x03,                                // ehsize, phentsize, phnum
      0x00, 0x28, 0x00, 0x11, 0x00, 0x10,                                // shentsize, shnum, shstrndx
  };
  auto h = parse_header(b);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_FALSE(h->is64);
  EXPECT_TRUE(h->big_endian);
  EXPECT_EQ(h->type, ET_EXEC);
  EXPECT_EQ(h->machine, EM_MIPS);
  EXPECT_EQ(h->entry, 0x400120u);
  EXPECT_EQ(h->phoff, 0x34u);
  EXPECT_EQ(h->shoff, 0x1000u);
  EXPECT_EQ(h->flags, 0x70001007u);
  EXPECT_EQ(h->ehsize, 52);
  EXPECT_EQ(h->phentsize, 32);
  EXPECT_EQ(h->phnum, 3);
  EXPECT_EQ(h->shentsize, 40);
  EXPECT_EQ(h->shnum, 17);
  EXPECT_EQ(h->shstrndx, 16);
}

TEST(ElfHeader, unknown_class_decodes_as_elf64_and_keeps_ei_class) {
  // The x86_64 kernel never looks at EI_CLASS; it reads an Elf64_Ehdr.
  Buf b(true, false);
  HeaderSpec h;
  h.ei_class = 7;
  h.phoff = 0x40;
  elftest::put_header(b, h);
  auto r = parse_header(b.span());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ei_class, 7);
  EXPECT_TRUE(r->is64);
  EXPECT_EQ(r->phoff, 0x40u);
}

TEST(ElfHeader, ei_data_other_than_msb_decodes_little_endian) {
  Buf b(true, false);
  elftest::put_header(b, {});
  b.u8(EI_DATA, 0);
  auto r = parse_header(b.span());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ei_data, 0);
  EXPECT_FALSE(r->big_endian);
  EXPECT_EQ(r->machine, EM_X86_64);
}

TEST_P(ElfLayout, program_headers_round_trip_with_table_offsets) {
  const auto [is64, be] = GetParam();
  ProgramHeader load = elftest::phdr(PT_LOAD, 0, 0x8000, 0x400, 0x1000);
  load.flags = PF_R | PF_X;
  load.memsz = 0x2000;
  ProgramHeader stack = elftest::phdr(PT_GNU_STACK, 0, 0, 0, 16);
  stack.flags = PF_R | PF_W;
  auto b = image_with_phdrs(is64, be, {load, stack});
  auto f = File::parse(b.span());
  ASSERT_TRUE(f);
  auto ph = f->program_headers();
  ASSERT_TRUE(ph) << ph.error().message;
  ASSERT_EQ(ph->size(), 2u);
  EXPECT_EQ((*ph)[0].type, PT_LOAD);
  EXPECT_EQ((*ph)[0].flags, PF_R | PF_X);
  EXPECT_EQ((*ph)[0].vaddr, 0x8000u);
  EXPECT_EQ((*ph)[0].filesz, 0x400u);
  EXPECT_EQ((*ph)[0].memsz, 0x2000u);
  EXPECT_EQ((*ph)[0].align, 0x1000u);
  EXPECT_EQ((*ph)[0].table_offset, elftest::ehdr_size(is64));
  EXPECT_EQ((*ph)[1].type, PT_GNU_STACK);
  EXPECT_EQ((*ph)[1].flags, PF_R | PF_W);
  EXPECT_EQ((*ph)[1].table_offset, elftest::ehdr_size(is64) + elftest::phdr_size(is64));
}

TEST(ElfProgramHeaders, phoff_past_eof_names_field_and_offset) {
  Buf b(true, false);
  b.resize(0x200);
  HeaderSpec h;
  h.phoff = 0x9000;
  h.phnum = 2;
  elftest::put_header(b, h);
  auto f = File::parse(b.span());
  ASSERT_TRUE(f);
  auto ph = f->program_headers();
  ASSERT_FALSE(ph);
  EXPECT_EQ(ph.error().err, ENOEXEC);
  EXPECT_EQ(ph.error().message,
            "file header (offset 0x20): e_phoff 0x9000 + e_phnum 2 * e_phentsize 56 is past end "
            "of file (size 0x200)");
}

TEST(ElfProgramHeaders, huge_phnum_is_rejected_without_allocating) {
  Buf b(true, false);
  HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = 0xfffe;
  elftest::put_header(b, h);
  b.resize(0x1000);
  auto f = File::parse(b.span());
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->program_headers());
}

TEST(ElfProgramHeaders, phentsize_smaller_than_entry_is_error) {
  Buf b(true, false);
  HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = 1;
  h.phentsize = 32;  // an ELF32 size in an ELF64 file
  elftest::put_header(b, h);
  b.resize(0x200);
  auto ph = File::parse(b.span())->program_headers();
  ASSERT_FALSE(ph);
  EXPECT_NE(ph.error().message.find("e_phentsize 32"), std::string::npos) << ph.error().message;
  EXPECT_NE(ph.error().message.find("offset 0x36"), std::string::npos) << ph.error().message;
}

TEST(ElfProgramHeaders, larger_phentsize_is_used_as_stride) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = 2;
  h.phentsize = 64;
  elftest::put_header(b, h);
  elftest::put_phdr(b, 0x40, elftest::phdr(PT_LOAD, 0, 0, 0x100));
  elftest::put_phdr(b, 0x80, elftest::phdr(PT_NOTE, 0x100, 0x100, 0));
  auto ph = File::parse(b.span())->program_headers();
  ASSERT_TRUE(ph);
  ASSERT_EQ(ph->size(), 2u);
  EXPECT_EQ((*ph)[1].type, PT_NOTE);
  EXPECT_EQ((*ph)[1].table_offset, 0x80u);
}

TEST(ElfProgramHeaders, zero_phnum_gives_empty_table_even_with_bogus_phoff) {
  Buf b(true, false);
  HeaderSpec h;
  h.phoff = 0xffffffffffff;
  elftest::put_header(b, h);
  auto ph = File::parse(b.span())->program_headers();
  ASSERT_TRUE(ph);
  EXPECT_TRUE(ph->empty());
}

TEST(ElfProgramHeaders, pn_xnum_takes_count_from_section_zero_sh_info) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = PN_XNUM;
  h.shoff = 0x200;
  h.shnum = 1;
  elftest::put_header(b, h);
  SectionHeader s0;
  s0.info = 3;
  elftest::put_shdr(b, 0x200, s0);
  auto ph = File::parse(b.span())->program_headers();
  ASSERT_TRUE(ph) << ph.error().message;
  EXPECT_EQ(ph->size(), 3u);
}

TEST(ElfProgramHeaders, parse_program_headers_decodes_a_separate_buffer) {
  Buf table(false, true);
  elftest::put_phdr(table, 0, elftest::phdr(PT_INTERP, 0x134, 0x134, 0x13));
  Header h;
  h.is64 = false;
  h.big_endian = true;
  h.phentsize = 32;
  h.phnum = 1;
  auto ph = parse_program_headers(table.span(), h, 0x34);
  ASSERT_TRUE(ph) << ph.error().message;
  ASSERT_EQ(ph->size(), 1u);
  EXPECT_EQ((*ph)[0].type, PT_INTERP);
  EXPECT_EQ((*ph)[0].offset, 0x134u);
  EXPECT_EQ((*ph)[0].filesz, 0x13u);
  EXPECT_EQ((*ph)[0].table_offset, 0x34u);
}

TEST(ElfProgramHeaders, parse_program_headers_short_buffer_is_error) {
  std::vector<std::uint8_t> table(56 + 10);
  Header h;
  h.phentsize = 56;
  h.phnum = 2;
  auto ph = parse_program_headers(table, h, 0x40);
  ASSERT_FALSE(ph);
  EXPECT_EQ(ph.error().err, ENOEXEC);
  EXPECT_NE(ph.error().message.find("offset 0x40"), std::string::npos) << ph.error().message;
}

TEST_P(ElfLayout, section_headers_round_trip_with_names) {
  const auto [is64, be] = GetParam();
  Buf b(is64, be);
  b.resize(0x300);
  HeaderSpec h;
  h.shoff = 0x100;
  h.shnum = 3;
  h.shstrndx = 2;
  elftest::put_header(b, h);
  b.str(0x80, "");
  b.str(0x81, ".text");
  b.str(0x87, ".shstrtab");
  SectionHeader text;
  text.name_offset = 1;
  text.type = SHT_PROGBITS;
  text.flags = SHF_ALLOC | SHF_EXECINSTR;
  text.addr = 0x1000;
  text.offset = 0x40;
  text.size = 0x20;
  text.addralign = 16;
  SectionHeader strs;
  strs.name_offset = 7;
  strs.type = SHT_STRTAB;
  strs.offset = 0x80;
  strs.size = 0x11;
  const auto es = elftest::shdr_size(is64);
  elftest::put_shdr(b, 0x100, SectionHeader{});
  elftest::put_shdr(b, 0x100 + es, text);
  elftest::put_shdr(b, 0x100 + 2 * es, strs);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_TRUE(sh) << sh.error().message;
  ASSERT_EQ(sh->size(), 3u);
  EXPECT_EQ((*sh)[0].name, "");
  EXPECT_EQ((*sh)[1].name, ".text");
  EXPECT_EQ((*sh)[1].flags, SHF_ALLOC | SHF_EXECINSTR);
  EXPECT_EQ((*sh)[1].addr, 0x1000u);
  EXPECT_EQ((*sh)[1].addralign, 16u);
  EXPECT_EQ((*sh)[2].name, ".shstrtab");
  EXPECT_EQ((*sh)[2].type, SHT_STRTAB);
}

TEST(ElfSectionHeaders, no_shoff_means_no_sections) {
  Buf b(true, false);
  HeaderSpec h;
  h.shnum = 40;
  elftest::put_header(b, h);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_TRUE(sh);
  EXPECT_TRUE(sh->empty());
}

TEST(ElfSectionHeaders, shoff_past_eof_names_field_and_offset) {
  Buf b(false, false);
  b.resize(0x100);
  HeaderSpec h;
  h.shoff = 0x800;
  h.shnum = 4;
  elftest::put_header(b, h);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_FALSE(sh);
  EXPECT_EQ(sh.error().message,
            "file header (offset 0x20): e_shoff 0x800 + e_shnum 4 * e_shentsize 40 is past end of "
            "file (size 0x100)");
}

TEST(ElfSectionHeaders, shentsize_smaller_than_entry_names_field_offset) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.shoff = 0x100;
  h.shnum = 2;
  h.shentsize = 40;  // an ELF32 size in an ELF64 file
  elftest::put_header(b, h);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_FALSE(sh);
  EXPECT_EQ(sh.error().message,
            "file header (offset 0x3a): e_shentsize 40 is smaller than an ELF64 section header (64)");
}

TEST(ElfSectionHeaders, zero_shnum_takes_count_from_section_zero_size) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.shoff = 0x100;
  h.shnum = 0;
  elftest::put_header(b, h);
  SectionHeader s0;
  s0.size = 4;
  elftest::put_shdr(b, 0x100, s0);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_TRUE(sh) << sh.error().message;
  EXPECT_EQ(sh->size(), 4u);
}

TEST(ElfSectionHeaders, shn_xindex_takes_string_table_from_section_zero_link) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.shoff = 0x100;
  h.shnum = 2;
  h.shstrndx = SHN_XINDEX;
  elftest::put_header(b, h);
  b.str(0x80, "");
  b.str(0x81, ".strs");
  SectionHeader s0;
  s0.link = 1;
  SectionHeader s1;
  s1.name_offset = 1;
  s1.type = SHT_STRTAB;
  s1.offset = 0x80;
  s1.size = 7;
  elftest::put_shdr(b, 0x100, s0);
  elftest::put_shdr(b, 0x140, s1);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_TRUE(sh);
  EXPECT_EQ((*sh)[1].name, ".strs");
}

TEST(ElfSectionHeaders, name_not_terminated_inside_shstrtab_is_left_empty) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.shoff = 0x100;
  h.shnum = 2;
  h.shstrndx = 1;
  elftest::put_header(b, h);
  b.str(0x81, ".strs");  // 0x80 stays 0: the empty name
  SectionHeader s1;
  s1.name_offset = 1;
  s1.type = SHT_STRTAB;
  s1.offset = 0x80;
  s1.size = 4;  // cuts ".strs" before its NUL
  elftest::put_shdr(b, 0x140, s1);
  auto sh = File::parse(b.span())->section_headers();
  ASSERT_TRUE(sh);
  EXPECT_EQ((*sh)[1].name, "");
}

TEST(ElfSectionHeaders, broken_section_table_does_not_hide_program_headers) {
  auto b = image_with_phdrs(true, false, {elftest::phdr(PT_LOAD, 0, 0, 0x100)});
  b.word(0x28, 0xdead0000);  // e_shoff
  b.u16(0x3c, 5);            // e_shnum
  auto f = File::parse(b.span());
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->section_headers());
  auto ph = f->program_headers();
  ASSERT_TRUE(ph);
  EXPECT_EQ(ph->size(), 1u);
}

TEST_P(ElfLayout, vaddr_to_offset_uses_file_backed_part_of_pt_load) {
  ProgramHeader text = elftest::phdr(PT_LOAD, 0, 0x10000, 0x200, 0x1000);
  ProgramHeader data = elftest::phdr(PT_LOAD, 0x200, 0x21200, 0x100, 0x1000);
  data.memsz = 0x1000;  // .bss beyond filesz
  auto b = image_with_phdrs(GetParam().is64, GetParam().be, {text, data});
  auto f = File::parse(b.span());
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vaddr_to_offset(0x10000), 0u);
  EXPECT_EQ(f->vaddr_to_offset(0x101ff), 0x1ffu);
  EXPECT_FALSE(f->vaddr_to_offset(0x10200).has_value());
  EXPECT_EQ(f->vaddr_to_offset(0x21210), 0x210u);
  EXPECT_FALSE(f->vaddr_to_offset(0x21300).has_value());  // zero-fill, not in the file
  EXPECT_FALSE(f->vaddr_to_offset(0xffff).has_value());
}

TEST(ElfProgramHeaders, vaddr_to_offset_past_end_of_file_is_nullopt) {
  auto b = image_with_phdrs(true, false, {elftest::phdr(PT_LOAD, 0x300, 0x1000, 0x1000)});
  auto f = File::parse(b.span());
  EXPECT_EQ(f->vaddr_to_offset(0x1000), 0x300u);
  EXPECT_FALSE(f->vaddr_to_offset(0x1100).has_value());  // file is 0x400 bytes
}

TEST(ElfSectionHeaders, vaddr_to_offset_falls_back_to_alloc_sections_without_phdrs) {
  Buf b(true, false);
  b.resize(0x400);
  HeaderSpec h;
  h.shoff = 0x200;
  h.shnum = 3;
  elftest::put_header(b, h);
  SectionHeader alloc;
  alloc.type = SHT_PROGBITS;
  alloc.flags = SHF_ALLOC;
  alloc.addr = 0x5000;
  alloc.offset = 0x100;
  alloc.size = 0x80;
  SectionHeader bss = alloc;
  bss.type = SHT_NOBITS;
  bss.addr = 0x6000;
  elftest::put_shdr(b, 0x240, alloc);
  elftest::put_shdr(b, 0x280, bss);
  auto f = File::parse(b.span());
  EXPECT_EQ(f->vaddr_to_offset(0x5010), 0x110u);
  EXPECT_FALSE(f->vaddr_to_offset(0x6000).has_value());
}

TEST_P(ElfLayout, interpreter_is_cut_at_first_nul) {
  auto b = image_with_phdrs(GetParam().is64, GetParam().be, {elftest::phdr(PT_INTERP, 0x200, 0x200, 0x20, 1)});
  b.str(0x200, "/lib/ld.so");
  b.str(0x20b, "junk");
  auto interp = File::parse(b.span())->interpreter();
  ASSERT_TRUE(interp) << interp.error().message;
  EXPECT_EQ(*interp, "/lib/ld.so");
}

TEST(ElfProgramHeaders, interpreter_absent_is_nullopt) {
  auto b = image_with_phdrs(true, false, {elftest::phdr(PT_LOAD, 0, 0, 0x100)});
  auto interp = File::parse(b.span())->interpreter();
  ASSERT_TRUE(interp);
  EXPECT_FALSE(interp->has_value());
}

TEST(ElfProgramHeaders, interpreter_without_nul_is_error) {
  auto b = image_with_phdrs(true, false, {elftest::phdr(PT_INTERP, 0x200, 0x200, 4, 1)});
  b.u32(0x200, 0x41414141);
  auto interp = File::parse(b.span())->interpreter();
  ASSERT_FALSE(interp);
  EXPECT_EQ(interp.error().err, ENOEXEC);
  EXPECT_NE(interp.error().message.find("no NUL"), std::string::npos);
}

TEST(ElfProgramHeaders, interpreter_past_eof_names_entry_offset_and_sizes) {
  auto b = image_with_phdrs(true, false,
                            {elftest::phdr(PT_LOAD, 0, 0, 0x100), elftest::phdr(PT_INTERP, 0x9000, 0x9000, 0x20, 1)});
  auto interp = File::parse(b.span())->interpreter();
  ASSERT_FALSE(interp);
  EXPECT_EQ(interp.error().message,
            "program header 1 (offset 0x78): p_offset 0x9000 + p_filesz 0x20 is past end of file "
            "(size 0x400)");
}

}  // namespace
