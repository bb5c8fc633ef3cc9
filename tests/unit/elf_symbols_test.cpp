// Symbols and symbol versions found through the dynamic section (no section
// table), sized through DT_HASH or DT_GNU_HASH, and the walks' limits.
#include <gtest/gtest.h>

#include <chrono>

#include "elf_test_util.hpp"

namespace {

using namespace procforge::elf;
using elftest::DynImage;

struct Layout {
  bool is64;
  bool be;
};

// Table positions inside DynImage's free area.
constexpr std::uint64_t kSyms = 0x700;
constexpr std::uint64_t kHash = 0x800;
constexpr std::uint64_t kVersym = 0x880;
constexpr std::uint64_t kVerneed = 0x900;
constexpr std::uint64_t kVerdef = 0xa00;

void put_sym(elftest::Buf& b, std::uint64_t off, std::uint64_t name, std::uint64_t value, std::uint64_t size,
             std::uint8_t info, std::uint16_t shndx) {
  b.u32(off, name);
  if (b.is64()) {
    b.u8(off + 4, info);
    b.u8(off + 5, STV_DEFAULT);
    b.u16(off + 6, shndx);
    b.u64(off + 8, value);
    b.u64(off + 16, size);
  } else {
    b.u32(off + 4, value);
    b.u32(off + 8, size);
    b.u8(off + 12, info);
    b.u8(off + 13, STV_DEFAULT);
    b.u16(off + 14, shndx);
  }
}

std::uint64_t sym_size(bool is64) { return is64 ? 24 : 16; }

class ElfSymbols : public testing::TestWithParam<Layout> {
 protected:
  DynImage img{GetParam().is64, GetParam().be};
  std::vector<std::uint8_t> bytes;

  // Three symbols: the null one, "open" (undefined), "my_func" (defined).
  void add_symbols() {
    const auto open = img.add_string("open");
    const auto func = img.add_string("my_func");
    const auto es = sym_size(GetParam().is64);
    put_sym(img.b, kSyms, 0, 0, 0, 0, SHN_UNDEF);
    put_sym(img.b, kSyms + es, open, 0, 0, ELF64_ST_INFO(STB_GLOBAL, STT_FUNC), SHN_UNDEF);
    put_sym(img.b, kSyms + 2 * es, func, 0x401020, 0x42, ELF64_ST_INFO(STB_WEAK, STT_FUNC), 12);
    img.dyn.emplace_back(DT_SYMTAB, DynImage::kBase + kSyms);
    img.dyn.emplace_back(DT_SYMENT, es);
  }
  void add_sysv_hash(std::uint32_t nchain) {
    img.b.u32(kHash, 1);
    img.b.u32(kHash + 4, nchain);
    img.dyn.emplace_back(DT_HASH, DynImage::kBase + kHash);
  }
  File parse() {
    bytes = img.build();
    auto f = File::parse(bytes);
    EXPECT_TRUE(f) << f.error().message;
    return std::move(f).value();
  }
};

INSTANTIATE_TEST_SUITE_P(AllLayouts, ElfSymbols,
                         testing::Values(Layout{true, false}, Layout{true, true}, Layout{false, false},
                                         Layout{false, true}),
                         [](const testing::TestParamInfo<Layout>& i) {
                           return std::string(i.param.is64 ? "elf64" : "elf32") + (i.param.be ? "_msb" : "_lsb");
                         });

TEST_P(ElfSymbols, dynsym_sized_by_dt_hash_nchain) {
  add_symbols();
  add_sysv_hash(3);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].name, "");
  EXPECT_EQ((*s)[1].name, "open");
  EXPECT_EQ((*s)[1].bind(), unsigned{STB_GLOBAL});
  EXPECT_EQ((*s)[1].shndx, SHN_UNDEF);
  EXPECT_EQ((*s)[2].name, "my_func");
  EXPECT_EQ((*s)[2].value, 0x401020u);
  EXPECT_EQ((*s)[2].size, 0x42u);
  EXPECT_EQ((*s)[2].bind(), unsigned{STB_WEAK});
  EXPECT_EQ((*s)[2].type(), unsigned{STT_FUNC});
  EXPECT_EQ((*s)[2].shndx, 12);
}

TEST_P(ElfSymbols, dynsym_sized_by_walking_dt_gnu_hash) {
  add_symbols();
  // nbuckets 1, symoffset 1, bloom_size 1, bloom_shift 0; bucket 0 -> symbol 1;
  // chain: symbol 1 continues (bit 0 clear), symbol 2 ends it (bit 0 set).
  const bool is64 = GetParam().is64;
  img.b.u32(kHash, 1);
  img.b.u32(kHash + 4, 1);
  img.b.u32(kHash + 8, 1);
  img.b.u32(kHash + 12, 0);
  const std::uint64_t buckets = kHash + 16 + (is64 ? 8 : 4);
  img.b.u32(buckets, 1);
  img.b.u32(buckets + 4, 0x1234);
  img.b.u32(buckets + 8, 0x5679);
  img.dyn.emplace_back(DT_GNU_HASH, DynImage::kBase + kHash);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->size(), 3u);
}

TEST_P(ElfSymbols, gnu_hash_with_empty_buckets_counts_symoffset) {
  add_symbols();
  img.b.u32(kHash, 2);      // two empty buckets
  img.b.u32(kHash + 4, 3);  // symoffset: symbols 0..2 are not hashed
  img.b.u32(kHash + 8, 1);
  img.dyn.emplace_back(DT_GNU_HASH, DynImage::kBase + kHash);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->size(), 3u);
}

TEST_P(ElfSymbols, unterminated_gnu_hash_chain_is_error_not_endless_walk) {
  add_symbols();
  img.b.u32(kHash, 1);
  img.b.u32(kHash + 4, 1);
  img.b.u32(kHash + 8, 1);
  const std::uint64_t buckets = kHash + 16 + (GetParam().is64 ? 8 : 4);
  img.b.u32(buckets, 1);
  // Chain words are all zero up to the end of the file: no end marker.
  img.dyn.emplace_back(DT_GNU_HASH, DynImage::kBase + kHash);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("DT_GNU_HASH"), std::string::npos) << s.error().message;
}

TEST_P(ElfSymbols, huge_nchain_is_error_not_allocation) {
  add_symbols();
  add_sysv_hash(0xffffffff);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("run past end of file"), std::string::npos) << s.error().message;
}

TEST_P(ElfSymbols, symbol_name_outside_string_table_names_the_symbol) {
  add_symbols();
  add_sysv_hash(3);
  put_sym(img.b, kSyms + sym_size(GetParam().is64), 0x7777, 0, 0, 0, 0);
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("DT_SYMTAB symbol 1"), std::string::npos) << s.error().message;
}

TEST_P(ElfSymbols, no_dt_hash_or_gnu_hash_cannot_size_dynsym) {
  add_symbols();
  auto s = parse().symbols(SymbolTable::dynsym);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("cannot size .dynsym"), std::string::npos);
}

TEST_P(ElfSymbols, symtab_without_section_table_is_empty) {
  add_symbols();
  add_sysv_hash(3);
  auto s = parse().symbols(SymbolTable::symtab);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->empty());
}

TEST_P(ElfSymbols, versym_has_one_entry_per_dynsym_symbol) {
  add_symbols();
  add_sysv_hash(3);
  img.b.u16(kVersym, 0);
  img.b.u16(kVersym + 2, 2);
  img.b.u16(kVersym + 4, 1);
  img.dyn.emplace_back(DT_VERSYM, DynImage::kBase + kVersym);
  auto v = parse().version_symbols();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(*v, (std::vector<std::uint16_t>{0, 2, 1}));
}

TEST_P(ElfSymbols, version_needs_follow_vn_aux_and_vna_next) {
  auto& b = img.b;
  b.u16(kVerneed, 1);  // vn_version
  b.u16(kVerneed + 2, 2);
  b.u32(kVerneed + 4, img.add_string("libc.so.6"));
  b.u32(kVerneed + 8, 16);
  b.u32(kVerneed + 12, 0);
  b.u32(kVerneed + 16, 0x09691a75);
  b.u16(kVerneed + 20, 0);
  b.u16(kVerneed + 22, 2);
  b.u32(kVerneed + 24, img.add_string("GLIBC_2.2.5"));
  b.u32(kVerneed + 28, 16);
  b.u32(kVerneed + 32, 0x069691b4);
  b.u16(kVerneed + 36, VER_FLG_WEAK);
  b.u16(kVerneed + 38, 3);
  b.u32(kVerneed + 40, img.add_string("GLIBC_2.34"));
  b.u32(kVerneed + 44, 0);
  img.dyn.emplace_back(DT_VERNEED, DynImage::kBase + kVerneed);
  img.dyn.emplace_back(DT_VERNEEDNUM, 1);
  auto n = parse().version_needs();
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_EQ(n->size(), 1u);
  EXPECT_EQ((*n)[0].file, "libc.so.6");
  ASSERT_EQ((*n)[0].entries.size(), 2u);
  EXPECT_EQ((*n)[0].entries[0].name, "GLIBC_2.2.5");
  EXPECT_EQ((*n)[0].entries[0].hash, 0x09691a75u);
  EXPECT_EQ((*n)[0].entries[0].other, 2);
  EXPECT_EQ((*n)[0].entries[1].name, "GLIBC_2.34");
  EXPECT_EQ((*n)[0].entries[1].flags, VER_FLG_WEAK);
  EXPECT_EQ((*n)[0].entries[1].other, 3);
}

TEST_P(ElfSymbols, version_defs_list_version_then_parents) {
  auto& b = img.b;
  b.u16(kVerdef, 1);
  b.u16(kVerdef + 2, VER_FLG_BASE);
  b.u16(kVerdef + 4, 1);
  b.u16(kVerdef + 6, 1);
  b.u32(kVerdef + 8, 0x1111);
  b.u32(kVerdef + 12, 20);
  b.u32(kVerdef + 16, 28);
  b.u32(kVerdef + 20, img.add_string("libfoo.so.1"));
  b.u32(kVerdef + 24, 0);
  const std::uint64_t d2 = kVerdef + 28;
  b.u16(d2, 1);
  b.u16(d2 + 2, 0);
  b.u16(d2 + 4, 2);
  b.u16(d2 + 6, 2);
  b.u32(d2 + 8, 0x2222);
  b.u32(d2 + 12, 20);
  b.u32(d2 + 16, 0);
  b.u32(d2 + 20, img.add_string("FOO_1.0"));
  b.u32(d2 + 24, 8);
  b.u32(d2 + 28, img.add_string("FOO_0.9"));
  b.u32(d2 + 32, 0);
  img.dyn.emplace_back(DT_VERDEF, DynImage::kBase + kVerdef);
  img.dyn.emplace_back(DT_VERDEFNUM, 2);
  auto d = parse().version_defs();
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].flags, VER_FLG_BASE);
  EXPECT_EQ((*d)[0].names, std::vector<std::string_view>{"libfoo.so.1"});
  EXPECT_EQ((*d)[1].index, 2);
  EXPECT_EQ((*d)[1].hash, 0x2222u);
  EXPECT_EQ((*d)[1].names, (std::vector<std::string_view>{"FOO_1.0", "FOO_0.9"}));
}

TEST_P(ElfSymbols, verdefnum_larger_than_chain_stops_at_vd_next_zero) {
  auto& b = img.b;
  b.u16(kVerdef + 6, 1);
  b.u32(kVerdef + 12, 20);
  b.u32(kVerdef + 20, img.add_string("ONLY"));
  img.dyn.emplace_back(DT_VERDEF, DynImage::kBase + kVerdef);
  img.dyn.emplace_back(DT_VERDEFNUM, 0xffffffff);
  auto d = parse().version_defs();
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].names.at(0), "ONLY");
}

TEST(ElfVersionWalk, overlapping_verneed_chains_hit_the_budget_quickly) {
  // Every 16-byte slot is both a Verneed (vn_cnt 0x8000, vn_aux 16,
  // vn_next 16) and a Vernaux (vna_next 16): each entry's aux chain runs over
  // the next 32768 entries, so without a global budget the walk would take
  // about 30000 * 32768 steps, every one of them in bounds.
  elftest::Buf b(true, false);
  const std::uint64_t size = 1 << 20;
  b.resize(size);
  elftest::HeaderSpec h;
  h.phoff = 0x40;
  h.phnum = 2;
  elftest::put_header(b, h);
  elftest::put_phdr(b, 0x40, elftest::phdr(PT_LOAD, 0, 0, size, 0x1000));
  elftest::put_phdr(b, 0x78, elftest::phdr(PT_DYNAMIC, 0x100, 0x100, 0x60));
  elftest::put_dyn(b, 0x100, DT_STRTAB, 0x200);
  elftest::put_dyn(b, 0x110, DT_STRSZ, 0x100);  // all zero: every index < 0x100 is ""
  elftest::put_dyn(b, 0x120, DT_VERNEED, 0x1000);
  elftest::put_dyn(b, 0x130, DT_VERNEEDNUM, 0xffffffff);
  for (std::uint64_t off = 0x1000; off + 16 <= size; off += 16) {
    b.u16(off, 1);
    b.u16(off + 2, 0x8000);
    b.u32(off + 4, 0);
    b.u32(off + 8, 16);
    b.u32(off + 12, 16);
  }
  auto f = File::parse(b.span());
  const auto start = std::chrono::steady_clock::now();
  auto n = f->version_needs();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("does not end"), std::string::npos) << n.error().message;
  EXPECT_LT(took, std::chrono::seconds(5));
}

}  // namespace
