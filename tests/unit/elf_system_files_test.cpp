// The reader against real files of this system, with binutils' readelf as
// the oracle: every expectation below that is not a fixed fact about glibc
// is read from readelf's output for the same file, so the tests follow the
// installed binaries instead of pinning today's build of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "elf_test_util.hpp"

namespace {

using namespace procforge::elf;

constexpr const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

// A file's bytes plus the parsed File (which views them).
struct Loaded {
  std::vector<std::uint8_t> bytes;
  std::optional<File> file;
};

std::unique_ptr<Loaded> load(const std::string& path) {
  auto l = std::make_unique<Loaded>();
  auto b = elftest::read_file(path);
  if (!b) return nullptr;
  l->bytes = std::move(*b);
  auto f = File::parse(l->bytes);
  EXPECT_TRUE(f) << path << ": " << f.error().message;
  if (f) l->file.emplace(std::move(f).value());
  return l;
}

#define LOAD_OR_SKIP(var, path)                                 \
  auto var = load(path);                                        \
  if (!var) GTEST_SKIP() << (path) << " is not on this system"; \
  ASSERT_TRUE(var->file)

std::vector<std::string> all_matches(const std::string& text, const std::string& re) {
  std::vector<std::string> out;
  const std::regex r(re);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), r); it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

std::optional<std::string> first_match(const std::string& text, const std::string& re) {
  auto m = all_matches(text, re);
  if (m.empty()) return std::nullopt;
  return m[0];
}

std::vector<std::string> strings(const std::vector<std::string_view>& v) { return {v.begin(), v.end()}; }

TEST(ElfSystemFiles, bin_ls_is_a_dynamic_x86_64_executable) {
  LOAD_OR_SKIP(ls, "/bin/ls");
  const File& f = *ls->file;
  EXPECT_EQ(f.header().machine, EM_X86_64);
  EXPECT_TRUE(f.header().type == ET_DYN || f.header().type == ET_EXEC);
  auto interp = f.interpreter();
  ASSERT_TRUE(interp) << interp.error().message;
  EXPECT_EQ(interp->value_or(""), "/lib64/ld-linux-x86-64.so.2");
  auto info = f.dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_NE(std::find(info->needed.begin(), info->needed.end(), "libc.so.6"), info->needed.end());
}

TEST(ElfSystemFiles, bin_ls_needs_glibc_versions_from_libc) {
  LOAD_OR_SKIP(ls, "/bin/ls");
  auto needs = ls->file->version_needs();
  ASSERT_TRUE(needs) << needs.error().message;
  auto libc = std::find_if(needs->begin(), needs->end(), [](const VersionNeed& n) { return n.file == "libc.so.6"; });
  ASSERT_NE(libc, needs->end());
  ASSERT_FALSE(libc->entries.empty());
  for (const auto& e : libc->entries) EXPECT_EQ(e.name.substr(0, 8), "GLIBC_2.") << e.name;
}

TEST(ElfSystemFiles, libc_has_soname_version_defs_dynsym_and_gnu_properties) {
  LOAD_OR_SKIP(libc, kLibc);
  const File& f = *libc->file;
  auto info = f.dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->soname, "libc.so.6");
  EXPECT_EQ(strings(info->needed), std::vector<std::string>{"ld-linux-x86-64.so.2"});

  auto defs = f.version_defs();
  ASSERT_TRUE(defs) << defs.error().message;
  ASSERT_FALSE(defs->empty());
  EXPECT_EQ((*defs)[0].flags & VER_FLG_BASE, VER_FLG_BASE);
  EXPECT_EQ((*defs)[0].names.at(0), "libc.so.6");
  EXPECT_TRUE(
      std::any_of(defs->begin(), defs->end(), [](const VersionDef& d) { return d.names.at(0) == "GLIBC_2.34"; }));

  auto dynsym = f.symbols(SymbolTable::dynsym);
  ASSERT_TRUE(dynsym) << dynsym.error().message;
  EXPECT_GT(dynsym->size(), 1000u);
  EXPECT_TRUE(std::any_of(dynsym->begin(), dynsym->end(), [](const Symbol& s) { return s.name == "malloc"; }));
  auto versym = f.version_symbols();
  ASSERT_TRUE(versym) << versym.error().message;
  EXPECT_EQ(versym->size(), dynsym->size());

  auto props = f.gnu_properties();
  ASSERT_TRUE(props) << props.error().message;
  EXPECT_FALSE(props->empty());
}

TEST(ElfSystemFiles, relocatable_object_has_symtab_and_no_program_headers) {
  const std::string crt1 = "/usr/lib/x86_64-linux-gnu/crt1.o";
  LOAD_OR_SKIP(obj, crt1);
  const File& f = *obj->file;
  EXPECT_EQ(f.header().type, ET_REL);
  auto ph = f.program_headers();
  ASSERT_TRUE(ph);
  EXPECT_TRUE(ph->empty());
  auto symtab = f.symbols(SymbolTable::symtab);
  ASSERT_TRUE(symtab) << symtab.error().message;
  auto out = elftest::run("readelf -sW " + crt1);
  if (!out) GTEST_SKIP() << "readelf could not be run";
  auto n = first_match(*out, R"(Symbol table '\.symtab' contains (\d+) entries)");
  ASSERT_TRUE(n);
  EXPECT_EQ(symtab->size(), std::stoul(*n));
  EXPECT_TRUE(std::any_of(symtab->begin(), symtab->end(), [](const Symbol& s) { return s.name == "_start"; }));
}

TEST(ElfSystemFiles, header_prefix_is_enough_for_parse_header) {
  LOAD_OR_SKIP(ls, "/bin/ls");
  // The exec model hands over the kernel's 256-byte buffer only.
  auto h = parse_header(std::span(ls->bytes).first(256));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->phnum, ls->file->header().phnum);
  EXPECT_EQ(h->phoff, ls->file->header().phoff);
}

// --- Differential tests against readelf --------------------------------------

const std::vector<std::string> kCorpus = {
    "/bin/ls",
    "/usr/bin/bash",
    "/usr/bin/cmake",
    "/usr/bin/perl",
    "/usr/bin/python3",
    "/usr/bin/git",
    "/usr/bin/readelf",
    kLibc,
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/usr/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib/x86_64-linux-gnu/crt1.o",
};

class ElfReadelfDiff : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    loaded = load(GetParam());
    if (!loaded) GTEST_SKIP() << GetParam() << " is not on this system";
    ASSERT_TRUE(loaded->file);
    if (!elftest::run("readelf --version")) GTEST_SKIP() << "readelf could not be run";
  }
  std::string readelf(const std::string& opts) {
    auto out = elftest::run("readelf -W " + opts + " " + GetParam());
    EXPECT_TRUE(out) << "readelf " << opts << " " << GetParam() << " failed";
    return out.value_or("");
  }
  const File& file() { return *loaded->file; }
  std::unique_ptr<Loaded> loaded;
};

INSTANTIATE_TEST_SUITE_P(SystemFiles, ElfReadelfDiff, testing::ValuesIn(kCorpus),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param.substr(i.param.rfind('/') + 1);
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST_P(ElfReadelfDiff, header_counts_match) {
  const std::string out = readelf("-h");
  auto phnum = first_match(out, R"(Number of program headers:\s+(\d+))");
  auto shnum = first_match(out, R"(Number of section headers:\s+(\d+))");
  ASSERT_TRUE(phnum && shnum) << out;
  auto ph = file().program_headers();
  auto sh = file().section_headers();
  ASSERT_TRUE(ph) << ph.error().message;
  ASSERT_TRUE(sh) << sh.error().message;
  EXPECT_EQ(ph->size(), std::stoul(*phnum));
  EXPECT_EQ(sh->size(), std::stoul(*shnum));
}

TEST_P(ElfReadelfDiff, program_headers_match) {
  const std::string out = readelf("-l");
  // "  LOAD  0x000000 0x0000000000000000 0x0000000000000000 0x0036c0 0x0036c0 R   0x1000"
  const std::regex row(R"(\n  (\w+)\s+(0x[0-9a-f]+) (0x[0-9a-f]+) 0x[0-9a-f]+ (0x[0-9a-f]+) (0x[0-9a-f]+) )");
  std::vector<std::string> want;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), row); it != std::sregex_iterator(); ++it) {
    want.push_back(fmt::format("{} {:#x} {:#x} {:#x} {:#x}", (*it)[1].str(), std::stoull((*it)[2].str(), nullptr, 16),
                               std::stoull((*it)[3].str(), nullptr, 16), std::stoull((*it)[4].str(), nullptr, 16),
                               std::stoull((*it)[5].str(), nullptr, 16)));
  }
  auto ph = file().program_headers();
  ASSERT_TRUE(ph);
  std::vector<std::string> got;
  for (const auto& p : *ph) {
    // readelf drops the PT_ prefix and prints GNU_* types as e.g. GNU_STACK.
    std::string type = segment_type_name(p.type);
    if (type.rfind("PT_", 0) == 0) type = type.substr(3);
    got.push_back(fmt::format("{} {:#x} {:#x} {:#x} {:#x}", type, p.offset, p.vaddr, p.filesz, p.memsz));
  }
  EXPECT_EQ(got, want);
}

TEST_P(ElfReadelfDiff, interpreter_matches) {
  const std::string out = readelf("-l");
  auto want = first_match(out, R"(\[Requesting program interpreter: ([^\]]+)\])");
  auto interp = file().interpreter();
  ASSERT_TRUE(interp) << interp.error().message;
  EXPECT_EQ(interp->has_value(), want.has_value());
  if (want && interp->has_value()) {
    EXPECT_EQ(std::string(**interp), *want);
  }
}

TEST_P(ElfReadelfDiff, dynamic_strings_match) {
  const std::string out = readelf("-d");
  auto info = file().dynamic_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(strings(info->needed), all_matches(out, R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])"));
  auto soname = first_match(out, R"(\(SONAME\)\s+Library soname: \[([^\]]+)\])");
  EXPECT_EQ(info->soname.has_value(), soname.has_value());
  if (soname && info->soname) {
    EXPECT_EQ(std::string(*info->soname), *soname);
  }
  auto runpath = first_match(out, R"(\(RUNPATH\)\s+Library runpath: \[([^\]]+)\])");
  EXPECT_EQ(info->runpath.has_value(), runpath.has_value());
  auto entries = file().dynamic();
  ASSERT_TRUE(entries);
  auto count = first_match(out, R"(contains (\d+) entries)");
  // readelf counts the terminating DT_NULL; dynamic() stops before it.
  if (count) {
    EXPECT_EQ(entries->size() + 1, std::stoul(*count));
  } else {
    EXPECT_TRUE(entries->empty());
  }
}

TEST_P(ElfReadelfDiff, dynsym_count_matches_with_and_without_section_headers) {
  const std::string out = readelf("--dyn-syms");
  auto want = first_match(out, R"(Symbol table '\.dynsym' contains (\d+) entries)");
  auto syms = file().symbols(SymbolTable::dynsym);
  ASSERT_TRUE(syms) << syms.error().message;
  EXPECT_EQ(syms->size(), want ? std::stoul(*want) : 0);
  if (!want) return;

  // Hide the section table: the count must now come from DT_HASH/DT_GNU_HASH
  // and the names from DT_STRTAB, and agree with the section-based read.
  std::vector<std::uint8_t> copy = loaded->bytes;
  elftest::Buf edit(true, false);
  edit.bytes() = copy;
  edit.u64(0x28, 0);  // e_shoff
  edit.u16(0x3c, 0);  // e_shnum
  auto stripped = File::parse(edit.bytes());
  ASSERT_TRUE(stripped);
  ASSERT_TRUE(stripped->section_headers()->empty());
  auto dyn_syms = stripped->symbols(SymbolTable::dynsym);
  ASSERT_TRUE(dyn_syms) << dyn_syms.error().message;
  ASSERT_EQ(dyn_syms->size(), syms->size());
  for (std::size_t i = 0; i < syms->size(); ++i) {
    EXPECT_EQ((*dyn_syms)[i].name, (*syms)[i].name) << i;
    EXPECT_EQ((*dyn_syms)[i].value, (*syms)[i].value) << i;
  }
  auto v1 = file().version_needs();
  auto v2 = stripped->version_needs();
  ASSERT_TRUE(v1 && v2);
  EXPECT_EQ(v1->size(), v2->size());
}

TEST_P(ElfReadelfDiff, version_needs_match) {
  const std::string out = readelf("-V");
  // Pairs "file version-name index" in readelf's order.
  std::vector<std::string> want;
  std::string current;
  const std::regex file_re(R"(File: (\S+)\s+Cnt:)");
  const std::regex name_re(R"(Name: (\S+)\s+Flags: \S+\s+Version: (\d+))");
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, file_re)) {
      current = m[1];
    } else if (std::regex_search(line, m, name_re)) {
      want.push_back(current + " " + m[1].str() + " " + m[2].str());
    }
  }
  auto needs = file().version_needs();
  ASSERT_TRUE(needs) << needs.error().message;
  std::vector<std::string> got;
  for (const auto& n : *needs) {
    for (const auto& e : n.entries) got.push_back(fmt::format("{} {} {}", n.file, e.name, e.other));
  }
  EXPECT_EQ(got, want);
}

TEST_P(ElfReadelfDiff, version_defs_match) {
  const std::string out = readelf("-V");
  auto want = all_matches(out, R"(Index: \d+\s+Cnt: \d+\s+Name: (\S+))");
  auto defs = file().version_defs();
  ASSERT_TRUE(defs) << defs.error().message;
  std::vector<std::string> got;
  for (const auto& d : *defs) got.emplace_back(d.names.at(0));
  EXPECT_EQ(got, want);
}

TEST_P(ElfReadelfDiff, build_id_note_matches) {
  const std::string out = readelf("-n");
  auto want = first_match(out, R"(Build ID: ([0-9a-f]+))");
  auto notes = file().notes();
  ASSERT_TRUE(notes) << notes.error().message;
  std::optional<std::string> got;
  for (const auto& n : *notes) {
    if (n.name == "GNU" && n.type == NT_GNU_BUILD_ID) {
      std::string hexs;
      for (auto byte : n.desc) hexs += fmt::format("{:02x}", byte);
      got = hexs;
    }
  }
  EXPECT_EQ(got, want);
}

}  // namespace
