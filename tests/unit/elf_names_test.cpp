// Printable names: spelled as <elf.h> spells them, hex when unknown.
#include <gtest/gtest.h>

#include <elf.h>

#include "procforge/elf.hpp"

namespace {

using namespace procforge::elf;

TEST(ElfNames, known_values_use_elf_h_spelling) {
  EXPECT_EQ(type_name(ET_DYN), "ET_DYN");
  EXPECT_EQ(machine_name(EM_X86_64), "EM_X86_64");
  EXPECT_EQ(machine_name(EM_AARCH64), "EM_AARCH64");
  EXPECT_EQ(segment_type_name(PT_LOAD), "PT_LOAD");
  EXPECT_EQ(segment_type_name(PT_GNU_PROPERTY), "PT_GNU_PROPERTY");
  EXPECT_EQ(dynamic_tag_name(DT_NEEDED), "DT_NEEDED");
  EXPECT_EQ(dynamic_tag_name(DT_GNU_HASH), "DT_GNU_HASH");
  EXPECT_EQ(dynamic_tag_name(DT_RELR), "DT_RELR");
}

TEST(ElfNames, unknown_values_print_as_hex) {
  EXPECT_EQ(type_name(0xfe00), "0xfe00");
  EXPECT_EQ(machine_name(0x9999), "0x9999");
  EXPECT_EQ(segment_type_name(0x70000001), "0x70000001");
  EXPECT_EQ(dynamic_tag_name(0x12345), "0x12345");
}

TEST(ElfNames, negative_dynamic_tag_prints_as_its_bit_pattern) {
  EXPECT_EQ(dynamic_tag_name(-16), "0xfffffffffffffff0");
}

TEST(ElfNames, segment_flags_are_rwx_columns) {
  EXPECT_EQ(segment_flags_string(PF_R | PF_X), "R-X");
  EXPECT_EQ(segment_flags_string(PF_R | PF_W), "RW-");
  EXPECT_EQ(segment_flags_string(0), "---");
}

TEST(ElfNames, segment_flags_keep_os_and_processor_bits) {
  EXPECT_EQ(segment_flags_string(PF_R | 0x00100000), "R--+0x100000");
}

}  // namespace
