// ByteView is the reader's only door to file bytes: these tests pin that
// every read is bounds- and overflow-checked and decodes both byte orders.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "procforge/elf.hpp"

namespace {

using procforge::elf::ByteView;
using procforge::elf::range_fits;

const std::vector<std::uint8_t> kBytes = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 'a', 'b', 0};

TEST(ElfByteView, range_fits_accepts_exact_end_and_empty_range_at_end) {
  EXPECT_TRUE(range_fits(0, 10, 10));
  EXPECT_TRUE(range_fits(10, 0, 10));
  EXPECT_FALSE(range_fits(11, 0, 10));
  EXPECT_FALSE(range_fits(5, 6, 10));
}

TEST(ElfByteView, range_fits_rejects_length_that_would_wrap) {
  EXPECT_FALSE(range_fits(8, UINT64_MAX - 4, 16));
  EXPECT_FALSE(range_fits(UINT64_MAX, 2, UINT64_MAX));
}

TEST(ElfByteView, little_endian_reads_least_significant_byte_first) {
  ByteView v(kBytes, false);
  EXPECT_EQ(v.u16(0), 0x0201);
  EXPECT_EQ(v.u32(0), 0x04030201u);
  EXPECT_EQ(v.u64(0), 0x0807060504030201ull);
}

TEST(ElfByteView, big_endian_reads_most_significant_byte_first) {
  ByteView v(kBytes, true);
  EXPECT_EQ(v.u16(0), 0x0102);
  EXPECT_EQ(v.u32(0), 0x01020304u);
  EXPECT_EQ(v.u64(0), 0x0102030405060708ull);
}

TEST(ElfByteView, unaligned_reads_work) {
  ByteView v(kBytes, false);
  EXPECT_EQ(v.u32(1), 0x05040302u);
}

TEST(ElfByteView, read_ending_at_last_byte_succeeds_one_further_fails) {
  ByteView v(kBytes, false);
  EXPECT_TRUE(v.u32(kBytes.size() - 4).has_value());
  EXPECT_FALSE(v.u32(kBytes.size() - 3).has_value());
  EXPECT_FALSE(v.u8(kBytes.size()).has_value());
}

TEST(ElfByteView, offset_near_uint64_max_is_rejected_not_wrapped) {
  ByteView v(kBytes, false);
  EXPECT_FALSE(v.u64(UINT64_MAX - 3).has_value());
  EXPECT_FALSE(v.u16(UINT64_MAX).has_value());
  EXPECT_FALSE(v.sub(UINT64_MAX - 1, 4).has_value());
}

TEST(ElfByteView, word_is_four_bytes_for_elf32_and_eight_for_elf64) {
  ByteView v(kBytes, false);
  EXPECT_EQ(v.word(0, false), 0x04030201u);
  EXPECT_EQ(v.word(0, true), 0x0807060504030201ull);
  EXPECT_FALSE(v.word(4, true).has_value());
}

TEST(ElfByteView, sub_returns_a_view_into_the_same_bytes) {
  ByteView v(kBytes, false);
  auto s = v.sub(2, 3);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->data(), kBytes.data() + 2);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_TRUE(v.sub(kBytes.size(), 0).has_value());
  EXPECT_FALSE(v.sub(kBytes.size() - 1, 2).has_value());
}

TEST(ElfByteView, cstr_stops_at_nul_and_points_into_the_buffer) {
  ByteView v(kBytes, false);
  auto s = v.cstr(8);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "ab");
  EXPECT_EQ(static_cast<const void*>(s->data()), static_cast<const void*>(kBytes.data() + 8));
}

TEST(ElfByteView, cstr_without_nul_before_end_is_nullopt) {
  const std::vector<std::uint8_t> b = {'a', 'b', 'c'};
  EXPECT_FALSE(ByteView(b, false).cstr(0).has_value());
  EXPECT_FALSE(ByteView(b, false).cstr(3).has_value());
}

TEST(ElfByteView, cstr_max_len_counts_bytes_before_the_nul) {
  ByteView v(kBytes, false);
  EXPECT_EQ(v.cstr(8, 2), "ab");
  EXPECT_FALSE(v.cstr(8, 1).has_value());
  EXPECT_EQ(v.cstr(10, 0), "");
}

}  // namespace
