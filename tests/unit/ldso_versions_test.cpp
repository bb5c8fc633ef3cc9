// Symbol-version checks (ldso/versions.hpp) on synthetic link maps, where the
// rules of elf/dl-version.c are pinned one by one, and on system files, whose
// tables are compared with `readelf -V`. The end-to-end comparison with the
// real ld.so's messages is tests/diff/ldso_fixture_test.cpp
// (missing_symbol_version, no_version_information, weak_version_missing).
#include <gtest/gtest.h>

#include <fcntl.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include "ldso/detail.hpp"
#include "ldso/versions.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"

namespace procforge::ldso {
namespace {

using testsupport::elf_hash;

VersionTables::Requirement req(const std::string& v, bool weak = false) { return {v, elf_hash(v), weak}; }
VersionTables::Definition def(const std::string& v) { return {elf_hash(v), v}; }

LinkMapObject object(std::string l_name, std::vector<std::string> names, VersionTables t) {
  LinkMapObject o;
  o.l_name = std::move(l_name);
  o.libnames = std::move(names);
  o.tables = std::make_shared<const VersionTables>(std::move(t));
  return o;
}

VersionTables provides(std::vector<std::string> versions) {
  VersionTables t;
  t.has_verdef = true;
  for (const auto& v : versions) t.defs.push_back(def(v));
  return t;
}

VersionTables needs(const std::string& file, std::vector<VersionTables::Requirement> r) {
  VersionTables t;
  t.needs.push_back({file, std::move(r)});
  return t;
}

TEST(LdsoVersions, missing_version_is_fatal_and_names_main_program_by_argv0) {
  std::vector<LinkMapObject> map = {object("", {""}, needs("libv.so", {req("V1"), req("V2")})),
                                    object("/x/libv.so", {"libv.so"}, provides({"libv.so", "V1"}))};
  const auto d = check_all_versions(map, "./prog");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0].fatal);
  EXPECT_EQ(version_line("./prog", d[0]), "./prog: /x/libv.so: version `V2' not found (required by ./prog)");
  std::vector<std::string> warnings;
  auto err = check_versions(map, "./prog", warnings);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->object, "/x/libv.so");
  EXPECT_TRUE(warnings.empty());
}

TEST(LdsoVersions, weak_version_missing_is_a_warning) {
  std::vector<LinkMapObject> map = {object("", {""}, needs("libv.so", {req("V9", true)})),
                                    object("/x/libv.so", {"libv.so"}, provides({"V1"}))};
  std::vector<std::string> warnings;
  EXPECT_FALSE(check_versions(map, "p", warnings));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "p: /x/libv.so: weak version `V9' not found (required by p)");
}

TEST(LdsoVersions, no_verdef_warns_once_per_required_version) {
  std::vector<LinkMapObject> map = {object("/l/liba.so", {"liba.so"}, needs("libv.so", {req("V1"), req("V2")})),
                                    object("/x/libv.so", {"libv.so"}, VersionTables{})};
  const auto d = check_all_versions(map, "p");
  ASSERT_EQ(d.size(), 2u);
  for (const auto& x : d) {
    EXPECT_FALSE(x.fatal);
    EXPECT_EQ(version_line("p", x), "p: /x/libv.so: no version information available (required by /l/liba.so)");
  }
}

TEST(LdsoVersions, hash_must_match_as_well_as_the_name) {
  VersionTables lib = provides({"V1"});
  lib.defs[0].hash ^= 1;
  std::vector<LinkMapObject> map = {object("", {""}, needs("libv.so", {req("V1")})),
                                    object("/x/libv.so", {"libv.so"}, lib)};
  EXPECT_EQ(check_all_versions(map, "p").size(), 1u);
}

TEST(LdsoVersions, needed_object_found_by_l_name_or_any_libname_first_in_order) {
  // vn_file "libv.so.1" matches the second object's alias; the third (same
  // name, full versions) is never consulted.
  std::vector<LinkMapObject> map = {object("", {""}, needs("libv.so.1", {req("V2")})),
                                    object("/a/libv.so", {"libv.so", "libv.so.1"}, provides({"V1"})),
                                    object("/b/libv.so.1", {"libv.so.1"}, provides({"V1", "V2"}))};
  const auto d = check_all_versions(map, "p");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].object, "/a/libv.so");
}

TEST(LdsoVersions, trace_mode_skips_faked_objects_and_all_lines_are_kept_in_order) {
  LinkMapObject faked;
  faked.l_name = "libgone.so";
  faked.libnames = {"libgone.so"};
  faked.faked = true;
  VersionTables main_needs = needs("libgone.so", {req("G1")});
  main_needs.needs.push_back({"libv.so", {req("V3"), req("V4")}});
  std::vector<LinkMapObject> map = {object("", {""}, main_needs), faked,
                                    object("/x/libv.so", {"libv.so"}, provides({"V1"}))};
  const auto d = check_all_versions(map, "p", true);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NE(d[0].message.find("V3"), std::string::npos);
  EXPECT_NE(d[1].message.find("V4"), std::string::npos);
}

TEST(LdsoVersions, error_line_prints_a_version_error_without_the_loading_prefix) {
  const LoaderError version{"/x/libv.so", "version `V2' not found (required by ./prog)", LoaderError::Stage::versions};
  EXPECT_EQ(error_line("./prog", version), "./prog: /x/libv.so: version `V2' not found (required by ./prog)");
  EXPECT_EQ(exit_status(version), 1);
  const LoaderError loading{"libz.so.1", "cannot open shared object file"};
  EXPECT_EQ(error_line("./prog", loading),
            "./prog: error while loading shared libraries: libz.so.1: cannot open shared object file");
  EXPECT_EQ(exit_status(loading), 127);
}

// resolve() takes the tables from the facts read during the search (a few
// pread()s at DT_VERNEED / DT_VERDEF), not from the whole file: both must
// decode to the same tables, for every shared library of the system and the
// programs under /usr/bin.
TEST(LdsoVersions, tables_read_sparsely_equal_tables_read_whole) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/bin"}) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path().string());
  }
  SKIP_IF_TOO_FEW_FILES(100u, false, "/usr/lib/x86_64-linux-gnu", "/usr/bin");
  std::size_t compared = 0, with_tables = 0;
  for (const auto& path : files) {
    const auto sparse = detail::open_file(AT_FDCWD, path);
    if (!sparse.facts || !sparse.facts->versions) continue;
    auto whole = VersionTables::read(path);
    ASSERT_TRUE(whole.ok()) << path << ": " << whole.error().message;
    const VersionTables& a = *sparse.facts->versions;
    ++compared;
    with_tables += !a.needs.empty() || a.has_verdef;
    ASSERT_EQ(a.has_verdef, whole->has_verdef) << path;
    ASSERT_EQ(a.defs.size(), whole->defs.size()) << path;
    for (std::size_t i = 0; i < a.defs.size(); ++i) {
      EXPECT_EQ(a.defs[i].name, whole->defs[i].name) << path;
      EXPECT_EQ(a.defs[i].hash, whole->defs[i].hash) << path;
    }
    ASSERT_EQ(a.needs.size(), whole->needs.size()) << path;
    for (std::size_t i = 0; i < a.needs.size(); ++i) {
      EXPECT_EQ(a.needs[i].file, whole->needs[i].file) << path;
      ASSERT_EQ(a.needs[i].versions.size(), whole->needs[i].versions.size()) << path;
      for (std::size_t j = 0; j < a.needs[i].versions.size(); ++j) {
        EXPECT_EQ(a.needs[i].versions[j].name, whole->needs[i].versions[j].name) << path;
        EXPECT_EQ(a.needs[i].versions[j].hash, whole->needs[i].versions[j].hash) << path;
        EXPECT_EQ(a.needs[i].versions[j].weak, whole->needs[i].versions[j].weak) << path;
      }
    }
  }
  std::printf("ldso version tables: %zu files compared, %zu with tables\n", compared, with_tables);
  EXPECT_GT(with_tables, 100u);
}

TEST(LdsoVersions, system_tables_match_readelf) {
  SKIP_UNLESS_INSTALLED("/usr/bin/readelf", "/usr/bin/cmake");
  for (const char* path :
       {"/usr/bin/cmake", "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"}) {
    SCOPED_TRACE(path);
    auto t = VersionTables::read(path);
    ASSERT_TRUE(t.ok()) << t.error().message;
    testsupport::CommandOptions o;
    o.env = {"LC_ALL=C"};
    const auto r = testsupport::run_command({"/usr/bin/readelf", "-VW", path}, o);
    // "  0x0010:   Name: GLIBC_2.2.5  Flags: none  Version: 5" under "Version needs",
    // "  0x001c: Rev: 1  Flags: none  Index: 2  Cnt: 1  Name: GLIBC_2.2.5" under definitions.
    std::size_t need_names = 0, def_names = 0;
    std::istringstream in(r.out);
    bool in_needs = false;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("Version needs section", 0) == 0) in_needs = true;
      if (line.rfind("Version definition section", 0) == 0 || line.rfind("Version symbols", 0) == 0) in_needs = false;
      if (in_needs && line.find("  Name: ") != std::string::npos && line.find("Flags:") != std::string::npos)
        ++need_names;
      if (line.find("Rev: 1") != std::string::npos && line.find("Name: ") != std::string::npos) ++def_names;
    }
    std::size_t mine = 0;
    for (const auto& n : t->needs) mine += n.versions.size();
    EXPECT_EQ(mine, need_names);
    EXPECT_EQ(t->defs.size(), def_names);
    EXPECT_EQ(t->has_verdef, def_names > 0);
  }
}

}  // namespace
}  // namespace procforge::ldso
