// Relocation counts against binutils and ld.so itself: every count is
// compared with `readelf -rW` / `readelf -dW` output parsed here (never with
// numbers written into the test), on system libraries and on fixtures built
// with gcc/ld for the kinds system libraries lack (RELR, COPY, TEXTREL,
// IRELATIVE, TLS, BIND_NOW). Symbol lookups and relative counts are checked
// against LD_DEBUG=statistics of a real run.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "ldso/relocations.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"

namespace procforge::ldso {
namespace {

using testsupport::CommandOptions;
using testsupport::run_command;

struct Readelf {
  std::map<std::string, std::uint64_t> by_type;  // "R_X86_64_RELATIVE" -> entries (REL/RELA sections)
  std::uint64_t entries = 0;
  std::uint64_t relr_offsets = 0;
  std::uint64_t plt_entries = 0;  // entries of .rela.plt
  std::set<std::uint64_t> pages;
  std::uint64_t relacount = 0;
  bool bind_now = false, textrel = false;
};

Readelf readelf(const std::string& path) {
  Readelf r;
  CommandOptions o;
  o.env = {"LC_ALL=C", "PATH=/usr/bin:/bin"};
  const auto rel = run_command({"/usr/bin/readelf", "-rW", path}, o);
  std::istringstream in(rel.out);
  const std::regex section(R"(^Relocation section '([^']+)' at offset \S+ contains (\d+) entr)");
  const std::regex entry(R"(^([0-9a-f]{16})\s+[0-9a-f]{16}\s+(R_X86_64_\w+))");
  const std::regex relr_addr(R"(^([0-9a-f]{16})\s*$)");
  const std::regex relr_count(R"(^\s+(\d+) offsets?)");
  std::string current;
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, section)) {
      current = m[1];
      continue;
    }
    if (current == ".relr.dyn") {
      if (std::regex_search(line, m, relr_count)) r.relr_offsets += std::stoull(m[1]);
      else if (std::regex_search(line, m, relr_addr)) r.pages.insert(std::stoull(m[1], nullptr, 16) >> 12);
      continue;
    }
    if (std::regex_search(line, m, entry)) {
      ++r.entries;
      ++r.by_type[m[2]];
      if (current == ".rela.plt") ++r.plt_entries;
      r.pages.insert(std::stoull(m[1], nullptr, 16) >> 12);
    }
  }
  const auto dyn = run_command({"/usr/bin/readelf", "-dW", path}, o);
  std::istringstream din(dyn.out);
  for (std::string line; std::getline(din, line);) {
    if (line.find("(RELACOUNT)") != std::string::npos) r.relacount = std::stoull(line.substr(line.rfind(' ') + 1));
    if (line.find("(BIND_NOW)") != std::string::npos) r.bind_now = true;
    if (line.find("(FLAGS)") != std::string::npos && line.find("BIND_NOW") != std::string::npos) r.bind_now = true;
    if (line.find("(FLAGS_1)") != std::string::npos && line.find(" NOW") != std::string::npos) r.bind_now = true;
    if (line.find("(TEXTREL)") != std::string::npos) r.textrel = true;
    if (line.find("(FLAGS)") != std::string::npos && line.find("TEXTREL") != std::string::npos) r.textrel = true;
  }
  return r;
}

std::uint64_t of(const Readelf& r, const std::string& type) {
  auto it = r.by_type.find(type);
  return it == r.by_type.end() ? 0 : it->second;
}

void expect_matches_readelf(const std::string& path) {
  SCOPED_TRACE(path);
  auto w = analyze_relocations(path, false);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(w->problems.empty()) << w->problems.front();
  const Readelf r = readelf(path);
  EXPECT_EQ(w->entries, r.entries);
  EXPECT_EQ(w->relative, of(r, "R_X86_64_RELATIVE"));
  EXPECT_EQ(w->relative_count_tag, r.relacount);
  EXPECT_EQ(w->relr_relative, r.relr_offsets);
  EXPECT_EQ(w->plt, of(r, "R_X86_64_JUMP_SLOT"));
  EXPECT_EQ(w->irelative, of(r, "R_X86_64_IRELATIVE"));
  EXPECT_EQ(w->tls, of(r, "R_X86_64_DTPMOD64") + of(r, "R_X86_64_DTPOFF64") + of(r, "R_X86_64_TPOFF64") +
                        of(r, "R_X86_64_TPOFF32"));
  EXPECT_EQ(w->copy, of(r, "R_X86_64_COPY"));
  EXPECT_EQ(w->symbolic, of(r, "R_X86_64_64") + of(r, "R_X86_64_GLOB_DAT") + of(r, "R_X86_64_PC32") +
                             of(r, "R_X86_64_32") + of(r, "R_X86_64_32S") + of(r, "R_X86_64_PC64"));
  EXPECT_EQ(w->pages_dirtied, r.pages.size());
  EXPECT_EQ(w->bind_now_flag, r.bind_now);
  EXPECT_EQ(w->textrel, r.textrel);
  EXPECT_EQ(w->lazy, !r.bind_now);
}

TEST(LdsoRelocations, system_libraries_match_readelf) {
  SKIP_UNLESS_INSTALLED("/usr/bin/readelf", "/usr/bin/cmake");
  for (const char* lib :
       {"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/cmake"}) {
    if (!std::filesystem::exists(lib)) {
      ADD_FAILURE() << lib << " is missing: the differential check cannot run";
      continue;
    }
    expect_matches_readelf(lib);
  }
}

// analyze_relocations(path) reads only the tables and the symbols they
// name; decoding the whole file must give the same counts, for every shared
// library of the system and every program under /usr/bin.
TEST(LdsoRelocations, sparse_read_counts_like_the_whole_file) {
  namespace fs = std::filesystem;
  SKIP_IF_TOO_FEW_FILES(500u, false, "/usr/lib/x86_64-linux-gnu", "/usr/bin");
  std::size_t compared = 0;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/bin"}) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
      const std::string path = it->path().string();
      auto bytes = read_object_bytes(path);
      if (!bytes) continue;
      auto file = elf::File::parse(*bytes);
      if (!file || !file->header().is64 || file->header().machine != 62 || !file->dynamic()) continue;
      for (bool now : {false, true}) {
        const RelocationWork whole = analyze_relocations(*file, now);
        auto sparse = analyze_relocations(path, now);
        ASSERT_TRUE(sparse.ok()) << path << ": " << sparse.error().message;
        EXPECT_EQ(sparse->relative, whole.relative) << path;
        EXPECT_EQ(sparse->relr_relative, whole.relr_relative) << path;
        EXPECT_EQ(sparse->symbolic, whole.symbolic) << path;
        EXPECT_EQ(sparse->plt, whole.plt) << path;
        EXPECT_EQ(sparse->irelative, whole.irelative) << path;
        EXPECT_EQ(sparse->tls, whole.tls) << path;
        EXPECT_EQ(sparse->copy, whole.copy) << path;
        EXPECT_EQ(sparse->symbol_lookups, whole.symbol_lookups) << path;
        EXPECT_EQ(sparse->lookup_cache_hits, whole.lookup_cache_hits) << path;
        EXPECT_EQ(sparse->pages_dirtied, whole.pages_dirtied) << path;
        EXPECT_EQ(sparse->problems, whole.problems) << path;
      }
      ++compared;
    }
  }
  std::printf("ldso relocations: %zu files counted both ways\n", compared);
  EXPECT_GT(compared, 500u);
}

TEST(LdsoRelocations, fixtures_with_every_kind_match_readelf) {
  SKIP_UNLESS_INSTALLED("/usr/bin/readelf", "/usr/bin/gcc");
  testsupport::FixtureDir d;
  const std::string relr = d.write("relr.c",
                                   "static int a, b, c; int *p[] = {&a, &b, &c, &a, &b, &c, &a, &a, &a};\n"
                                   "extern int ext; int *q = &ext; int f(void) { return ext; }\n");
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("librelr.so"), relr, "-Wl,-z,pack-relative-relocs"})) << d.error();
  expect_matches_readelf(d.at("librelr.so"));
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("libnow.so"), relr, "-Wl,-z,now"})) << d.error();
  expect_matches_readelf(d.at("libnow.so"));
  const std::string tls = d.write("tls.c",
                                  "__thread int t1; static __thread int t2; extern __thread int t3;\n"
                                  "int get(void) { return t1 + t2 + t3; }\n");
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("libtls.so"), tls})) << d.error();
  expect_matches_readelf(d.at("libtls.so"));
  const std::string ifunc = d.write("ifunc.c",
                                    "static int impl(void) { return 1; }\n"
                                    "static int (*resolve(void))(void) { return impl; }\n"
                                    "int f(void) __attribute__((ifunc(\"resolve\")));\n"
                                    "int g(void) { return f(); }\n");
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("libifunc.so"), ifunc})) << d.error();
  expect_matches_readelf(d.at("libifunc.so"));
  // A non-PIE program taking a library variable by value: R_X86_64_COPY.
  const std::string var = d.write("var.c", "int shared_var = 3;\n");
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("libvar.so"), var})) << d.error();
  const std::string copy = d.write("copy.c", "extern int shared_var; int main(void) { return shared_var; }\n");
  ASSERT_TRUE(d.gcc({"-no-pie", "-fno-pic", "-o", d.at("copyprog"), copy, d.at("libvar.so")})) << d.error();
  expect_matches_readelf(d.at("copyprog"));
  // An absolute address in .text: DT_TEXTREL.
  const std::string text = d.write("text.c", "int target;\n__asm__(\".text\\n.quad target\\n\");\n");
  ASSERT_TRUE(d.gcc({"-shared", "-fPIC", "-o", d.at("libtext.so"), text, "-Wl,-z,notext"})) << d.error();
  expect_matches_readelf(d.at("libtext.so"));
}

TEST(LdsoRelocations, ld_bind_now_environment) {
  EXPECT_TRUE(env_bind_now({"LD_BIND_NOW=1"}));
  EXPECT_FALSE(env_bind_now({"LD_BIND_NOW="}));
  EXPECT_FALSE(env_bind_now({"LD_BIND_NOWX=1"}));
  auto lazy = analyze_relocations("/lib/x86_64-linux-gnu/libm.so.6", false);
  auto now = analyze_relocations("/lib/x86_64-linux-gnu/libm.so.6", true);
  ASSERT_TRUE(lazy.ok() && now.ok());
  EXPECT_TRUE(lazy->lazy);
  EXPECT_FALSE(now->lazy);
  EXPECT_GT(now->symbol_lookups, lazy->symbol_lookups);
}

// "number of relocations" (symbol lookups), "from cache" and "number of
// relative relocations" of LD_DEBUG=statistics, against the sum of the
// per-object predictions over the objects the trace lists.
struct Stats {
  std::uint64_t lookups = 0, cached = 0, relative = 0, reloc_cycles = 0;
};

Stats ld_debug_statistics(const std::string& prog, bool bind_now) {
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin", "LD_DEBUG=statistics"};
  if (bind_now) o.env.emplace_back("LD_BIND_NOW=1");
  const auto r = run_command({prog, "--version"}, o);
  Stats s;
  std::smatch m;
  auto grab = [&](const char* re) {
    std::regex rx(re);
    return std::regex_search(r.err, m, rx) ? std::stoull(m[1]) : 0ull;
  };
  s.lookups = grab(R"(\s number of relocations: (\d+))");
  s.cached = grab(R"(\s number of relocations from cache: (\d+))");
  s.relative = grab(R"(number of relative relocations: (\d+))");
  s.reloc_cycles = grab(R"(time needed for relocation: (\d+) cycles)");
  return s;
}

std::vector<std::string> trace_paths(const std::string& prog) {
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin", "LD_TRACE_LOADED_OBJECTS=1"};
  const auto r = run_command({prog}, o);
  std::vector<std::string> paths = {prog};
  std::istringstream in(r.out);
  const std::regex arrow(R"(=> (/\S+) \()"), bare(R"(^\s+(/\S+) \()");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, arrow) || std::regex_search(line, m, bare)) paths.push_back(m[1]);
  return paths;
}

TEST(LdsoRelocations, lookups_and_relative_counts_match_ld_debug_statistics) {
  const std::string prog = "/usr/bin/cmake";
  SKIP_UNLESS_INSTALLED("/usr/bin/cmake");
  for (bool bind_now : {false, true}) {
    SCOPED_TRACE(bind_now ? "LD_BIND_NOW=1" : "lazy");
    std::vector<RelocationWork> works;
    RelocationWork sum;
    for (const auto& p : trace_paths(prog)) {
      auto w = analyze_relocations(p, bind_now || p == "/lib64/ld-linux-x86-64.so.2");
      ASSERT_TRUE(w.ok()) << w.error().message;
      sum.symbol_lookups += w->symbol_lookups;
      sum.lookup_cache_hits += w->lookup_cache_hits;
      sum.relative_count_tag += w->relative_count_tag;
      sum.pages_dirtied += w->pages_dirtied;
      works.push_back(*w);
    }
    const Stats s = ld_debug_statistics(prog, bind_now);
    EXPECT_EQ(sum.relative_count_tag, s.relative);
    EXPECT_EQ(sum.lookup_cache_hits, s.cached);
    // ld.so's own lookups (kRtldOwnLookups) come on top. A residual remains
    // on big C++ programs (cmake: +21 lazy, +28 bind-now of ~12-16k, not
    // yet explained; a C hello world is exact with LD_BIND_NOW and +1 lazy,
    // one lazy PLT bind in __libc_early_init), so this pins 0.5%.
    const std::uint64_t predicted = sum.symbol_lookups + kRtldOwnLookups;
    EXPECT_LE(predicted, s.lookups);
    EXPECT_LE(s.lookups - predicted, s.lookups / 200) << "predicted " << predicted << ", ld.so " << s.lookups;
    std::cout << "[ lookups  ] predicted " << predicted << ", LD_DEBUG=statistics " << s.lookups << "\n";
    const auto est = estimate_startup(works);
    std::cout << "[ calib    ] " << prog << (bind_now ? " bind-now" : " lazy") << ": ld.so relocation "
              << s.reloc_cycles << " cycles; model: " << sum.symbol_lookups << " lookups, " << sum.relative_count_tag
              << " relative, " << sum.pages_dirtied << " pages -> relocation " << est.relocation_ns / 1000
              << " us + faults " << est.fault_ns / 1000 << " us\n";
  }
}

}  // namespace
}  // namespace procforge::ldso
