// The dynamic section and what ld.so takes from it, on images built field by
// field in all four class / byte-order combinations.
#include <gtest/gtest.h>

#include "elf_test_util.hpp"

namespace {

using namespace procforge::elf;
using elftest::DynImage;

struct Layout {
  bool is64;
  bool be;
};

class ElfDynamic : public testing::TestWithParam<Layout> {
 protected:
  DynImage img{GetParam().is64, GetParam().be};
  std::vector<std::uint8_t> bytes;
  File parse() {
    bytes = img.build();
    auto f = File::parse(bytes);
    EXPECT_TRUE(f) << f.error().message;
    return std::move(f).value();
  }
};

INSTANTIATE_TEST_SUITE_P(AllLayouts, ElfDynamic,
                         testing::Values(Layout{true, false}, Layout{true, true}, Layout{false, false},
                                         Layout{false, true}),
                         [](const testing::TestParamInfo<Layout>& i) {
                           return std::string(i.param.is64 ? "elf64" : "elf32") + (i.param.be ? "_msb" : "_lsb");
                         });

TEST_P(ElfDynamic, needed_soname_and_paths_are_read_through_dt_strtab) {
  img.add_dyn_string(DT_NEEDED, "libfoo.so.1");
  img.add_dyn_string(DT_SONAME, "libme.so.2");
  img.add_dyn_string(DT_NEEDED, "libc.so.6");
  img.add_dyn_string(DT_RUNPATH, "$ORIGIN/../lib");
  img.add_dyn_string(DT_RPATH, "/opt/old");
  img.add_dyn_string(DT_FILTER, "libfilter.so");
  img.add_dyn_string(DT_AUXILIARY, "libaux.so");
  img.add_dyn_string(DT_AUDIT, "libaudit.so");
  img.add_dyn_string(DT_DEPAUDIT, "libdepaudit.so");
  auto info = parse().dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->needed, (std::vector<std::string_view>{"libfoo.so.1", "libc.so.6"}));
  EXPECT_EQ(info->soname, "libme.so.2");
  EXPECT_EQ(info->runpath, "$ORIGIN/../lib");
  EXPECT_EQ(info->rpath, "/opt/old");
  EXPECT_EQ(info->filters, std::vector<std::string_view>{"libfilter.so"});
  EXPECT_EQ(info->auxiliary, std::vector<std::string_view>{"libaux.so"});
  EXPECT_EQ(info->audit, (std::vector<std::string_view>{"libaudit.so", "libdepaudit.so"}));
  EXPECT_FALSE(info->bind_now);
  EXPECT_FALSE(info->textrel);
}

TEST_P(ElfDynamic, strings_are_views_into_the_input) {
  img.add_dyn_string(DT_NEEDED, "libz.so.1");
  auto f = parse();
  auto info = f.dynamic_info();
  ASSERT_TRUE(info);
  const auto* p = reinterpret_cast<const std::uint8_t*>(info->needed.at(0).data());
  EXPECT_EQ(p, bytes.data() + DynImage::kStr + 1);
}

TEST_P(ElfDynamic, entries_stop_at_dt_null_and_record_their_offsets) {
  img.dyn.emplace_back(DT_FLAGS, DF_BIND_NOW);
  auto f = parse();
  auto d = f.dynamic();
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->size(), 3u);  // DT_STRTAB, DT_STRSZ, DT_FLAGS; DT_NULL ends it
  EXPECT_EQ((*d)[0].tag, DT_STRTAB);
  EXPECT_EQ((*d)[0].value, DynImage::kBase + DynImage::kStr);
  EXPECT_EQ((*d)[2].tag, DT_FLAGS);
  EXPECT_EQ((*d)[2].offset, DynImage::kDyn + 2 * elftest::dyn_size(GetParam().is64));
}

TEST_P(ElfDynamic, bind_now_has_three_spellings) {
  for (auto [tag, value] : std::vector<std::pair<std::int64_t, std::uint64_t>>{
           {DT_BIND_NOW, 0}, {DT_FLAGS, DF_BIND_NOW}, {DT_FLAGS_1, DF_1_NOW}}) {
    DynImage one(GetParam().is64, GetParam().be);
    one.dyn.emplace_back(tag, value);
    auto b = one.build();
    auto info = File::parse(b)->dynamic_info();
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->bind_now) << dynamic_tag_name(tag);
  }
}

TEST_P(ElfDynamic, textrel_from_tag_or_flag) {
  img.dyn.emplace_back(DT_FLAGS, DF_TEXTREL | DF_STATIC_TLS);
  img.dyn.emplace_back(DT_FLAGS_1, DF_1_PIE);
  auto info = parse().dynamic_info();
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->textrel);
  EXPECT_EQ(info->flags, DF_TEXTREL | DF_STATIC_TLS);
  EXPECT_EQ(info->flags_1, DF_1_PIE);
}

TEST_P(ElfDynamic, later_soname_overrides_earlier_like_glibc) {
  img.add_dyn_string(DT_SONAME, "first.so");
  img.add_dyn_string(DT_SONAME, "second.so");
  auto info = parse().dynamic_info();
  ASSERT_TRUE(info);
  EXPECT_EQ(info->soname, "second.so");
}

TEST_P(ElfDynamic, string_index_past_dt_strsz_names_the_entry) {
  img.add_dyn_string(DT_NEEDED, "libok.so");
  img.dyn.emplace_back(DT_NEEDED, 0x150);  // beyond DT_STRSZ (the strings' end)
  auto f = parse();
  auto info = f.dynamic_info();
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().err, ENOEXEC);
  EXPECT_NE(info.error().message.find("DT_NEEDED"), std::string::npos) << info.error().message;
  EXPECT_NE(info.error().message.find("string index 0x150 is outside the table"), std::string::npos)
      << info.error().message;
}

TEST_P(ElfDynamic, string_cut_by_dt_strsz_is_not_nul_terminated) {
  img.add_dyn_string(DT_NEEDED, "libcut.so");
  // Shrink DT_STRSZ so the NUL after "libcut.so" falls outside the table.
  auto b = img.build();
  elftest::Buf edit(GetParam().is64, GetParam().be);
  edit.bytes() = b;
  elftest::put_dyn(edit, DynImage::kDyn + elftest::dyn_size(GetParam().is64), DT_STRSZ, 5);
  auto info = File::parse(edit.span())->dynamic_info();
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().message.find("not NUL-terminated"), std::string::npos) << info.error().message;
}

TEST_P(ElfDynamic, dt_strtab_outside_every_load_segment_is_error) {
  img.add_dyn_string(DT_NEEDED, "libx.so");
  img.dyn.emplace_back(DT_STRTAB, 0x7000000);  // overrides the first DT_STRTAB
  auto info = parse().dynamic_info();
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().message.find("address 0x7000000 is not backed"), std::string::npos) << info.error().message;
}

TEST_P(ElfDynamic, dynamic_without_string_entries_needs_no_strtab) {
  img.dyn.emplace_back(DT_STRTAB, 0x7000000);
  img.dyn.emplace_back(DT_BIND_NOW, 0);
  auto info = parse().dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_TRUE(info->bind_now);
}

TEST_P(ElfDynamic, pt_dynamic_past_eof_is_error_naming_the_program_header) {
  img.phdrs.push_back(elftest::phdr(PT_NULL, 0, 0, 0));
  auto b = img.build();
  // Point PT_DYNAMIC (the last program header) past the end of the file.
  elftest::Buf edit(GetParam().is64, GetParam().be);
  edit.bytes() = b;
  const auto ph_dyn = elftest::ehdr_size(GetParam().is64) + 2 * elftest::phdr_size(GetParam().is64);
  elftest::put_phdr(edit, ph_dyn, elftest::phdr(PT_DYNAMIC, 0x5000, 0x5000, 0x100));
  auto d = File::parse(edit.span())->dynamic();
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("program header 2"), std::string::npos) << d.error().message;
  EXPECT_NE(d.error().message.find("p_offset 0x5000"), std::string::npos) << d.error().message;
}

TEST(ElfDynamicTags, elf32_tags_are_sign_extended) {
  DynImage img(false, false);
  img.dyn.emplace_back(static_cast<std::int64_t>(0xfffffff0u), 1);  // e.g. a negative processor tag
  auto b = img.build();
  auto d = File::parse(b)->dynamic();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->back().tag, -16);
}

TEST(ElfDynamicTags, file_without_pt_dynamic_has_empty_dynamic_info) {
  elftest::Buf b(true, false);
  b.resize(0x200);
  elftest::HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = 1;
  elftest::put_header(b, h);
  elftest::put_phdr(b, 0x40, elftest::phdr(PT_LOAD, 0, 0, 0x200));
  auto f = File::parse(b.span());
  auto d = f->dynamic();
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->empty());
  auto info = f->dynamic_info();
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->needed.empty());
  EXPECT_FALSE(info->soname);
}

TEST(ElfDynamicTags, without_program_headers_sht_dynamic_and_sections_are_used) {
  // No phdrs: the dynamic array comes from SHT_DYNAMIC, and DT_STRTAB's
  // address is translated through the SHF_ALLOC section that holds it.
  elftest::Buf b(true, false);
  b.resize(0x400);
  elftest::HeaderSpec h;
  h.shoff = 0x200;
  h.shnum = 3;
  elftest::put_header(b, h);
  b.str(0x81, "libsec.so");
  elftest::put_dyn(b, 0x100, DT_NEEDED, 1);
  elftest::put_dyn(b, 0x110, DT_STRTAB, 0x9080);
  elftest::put_dyn(b, 0x120, DT_STRSZ, 0x10);
  elftest::put_dyn(b, 0x130, DT_NULL, 0);
  SectionHeader str;
  str.type = SHT_STRTAB;
  str.flags = SHF_ALLOC;
  str.addr = 0x9080;
  str.offset = 0x80;
  str.size = 0x10;
  SectionHeader dyn;
  dyn.type = SHT_DYNAMIC;
  dyn.flags = SHF_ALLOC;
  dyn.addr = 0x9100;
  dyn.offset = 0x100;
  dyn.size = 0x40;
  dyn.link = 1;
  elftest::put_shdr(b, 0x240, str);
  elftest::put_shdr(b, 0x280, dyn);
  auto info = File::parse(b.span())->dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->needed, std::vector<std::string_view>{"libsec.so"});
}

}  // namespace
