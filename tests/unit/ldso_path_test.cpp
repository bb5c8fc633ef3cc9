// Dynamic string tokens and search-path lists as glibc 2.36 elf/dl-load.c
// treats them: is_dst()'s greedy identifier rule, _dl_dst_substitute()
// (unknown values empty the element, secure-mode $ORIGIN rules) and
// fillin_rpath() / _dl_init_paths() for DT_RPATH, DT_RUNPATH and
// LD_LIBRARY_PATH.
#include <gtest/gtest.h>

#include "procforge/ldso.hpp"

namespace {

using namespace procforge::ldso;

DstContext ctx(std::optional<std::string> origin = "/opt/app/bin") {
  DstContext c;
  c.origin = std::move(origin);
  c.lib = "lib/x86_64-linux-gnu";
  c.platform = "haswell";
  c.trusted_dirs = {"/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib/", "/usr/lib/"};
  return c;
}

std::vector<std::string> dirs(const std::vector<SearchDir>& v) {
  std::vector<std::string> out;
  for (const auto& d : v) out.push_back(d.dir);
  return out;
}

TEST(LdsoDst, count_follows_the_greedy_identifier_rule) {
  EXPECT_EQ(dst_count("$ORIGIN/../lib"), 1u);
  EXPECT_EQ(dst_count("${ORIGIN}/lib"), 1u);
  EXPECT_EQ(dst_count("$ORIGINX/lib"), 0u);
  EXPECT_EQ(dst_count("$ORIGIN_/lib"), 0u);
  EXPECT_EQ(dst_count("/usr/$LIB/$PLATFORM"), 2u);
  EXPECT_EQ(dst_count("$FOO/$"), 0u);
  EXPECT_EQ(dst_count("${LIB"), 0u);
}

TEST(LdsoDst, substitute_replaces_origin_lib_and_platform) {
  EXPECT_EQ(dst_substitute("$ORIGIN/../lib", ctx()), "/opt/app/bin/../lib");
  EXPECT_EQ(dst_substitute("${ORIGIN}/x:$LIB", ctx()), "/opt/app/bin/x:lib/x86_64-linux-gnu");
  EXPECT_EQ(dst_substitute("/p/$PLATFORM/$FOO", ctx()), "/p/haswell/$FOO");
  EXPECT_EQ(dst_substitute("$ORIGINX", ctx()), "$ORIGINX");
  EXPECT_EQ(dst_substitute("/a/$", ctx()), "/a/$");
}

TEST(LdsoDst, unknown_origin_empties_the_whole_string) {
  EXPECT_EQ(dst_substitute("/x:$ORIGIN/lib", ctx(std::nullopt)), "");
}

// What the real ld.so does with these rules in a set-uid run: the
// secure_mode_*origin* fixture cases (tests/diff/ldso_fixture_test.cpp).
TEST(LdsoDst, secure_mode_allows_origin_only_first_and_in_trusted_dirs_for_the_executable) {
  DstContext c = ctx("/usr/lib/x86_64-linux-gnu/app");
  c.secure = true;
  c.is_executable = true;
  EXPECT_EQ(dst_substitute("$ORIGIN/plugins", c), "/usr/lib/x86_64-linux-gnu/app/plugins");
  EXPECT_EQ(dst_substitute("$ORIGIN/../../../../tmp", c), "");  // normalises outside the trusted dirs
  EXPECT_EQ(dst_substitute("/x/$ORIGIN", c), "");               // not the first component
  c.origin = "/home/user/bin";
  EXPECT_EQ(dst_substitute("$ORIGIN/lib", c), "");
  EXPECT_EQ(dst_substitute("/usr/$LIB", c), "/usr/lib/x86_64-linux-gnu");  // $LIB is always fine
  c.is_executable = false;  // a library's $ORIGIN is not checked against trusted dirs
  EXPECT_EQ(dst_substitute("$ORIGIN/lib", c), "/home/user/bin/lib");
}

TEST(LdsoSearchPath, rpath_elements_are_normalised_and_deduplicated) {
  EXPECT_EQ(dirs(split_search_path("/a:/b///:/a/:/", ":", ctx())), (std::vector<std::string>{"/a/", "/b/", "/"}));
  EXPECT_EQ(dirs(split_search_path("$ORIGIN/../lib", ":", ctx())), (std::vector<std::string>{"/opt/app/bin/../lib/"}));
  // An element whose DST has no value disappears; an empty one is the cwd.
  EXPECT_EQ(dirs(split_search_path("$ORIGIN/lib::/c", ":", ctx(std::nullopt))), (std::vector<std::string>{"", "/c/"}));
  EXPECT_EQ(dirs(split_search_path("rel/dir", ":", ctx())), (std::vector<std::string>{"rel/dir/"}));
}

TEST(LdsoLibraryPath, colon_and_semicolon_separate_and_empty_means_cwd) {
  EXPECT_EQ(dirs(parse_library_path("/a;/b:/c", ctx())), (std::vector<std::string>{"/a/", "/b/", "/c/"}));
  EXPECT_EQ(dirs(parse_library_path("/a::/b", ctx())), (std::vector<std::string>{"/a/", "", "/b/"}));
  EXPECT_EQ(dirs(parse_library_path(":/a", ctx())), (std::vector<std::string>{"", "/a/"}));
  EXPECT_EQ(dirs(parse_library_path("/a:", ctx())), (std::vector<std::string>{"/a/", ""}));
  EXPECT_TRUE(parse_library_path("", ctx()).empty());
  EXPECT_EQ(dirs(parse_library_path("$ORIGIN/lib", ctx())), (std::vector<std::string>{"/opt/app/bin/lib/"}));
}

TEST(LdsoSystemInfo, subdirs_are_hwcaps_then_the_legacy_power_set_then_the_dir) {
  SystemInfo s = SystemInfo::fallback();
  s.hwcaps_subdirs = {"x86-64-v4", "x86-64-v3", "x86-64-v2"};
  s.hwcap = 2;
  s.hwcap_mask = 6;
  s.platform = "x86_64";
  // Observed with LD_DEBUG=libs on glibc 2.36 (reference notes section 1.2);
  // the fixture case legacy_hwcap_subdirectories compares this machine's
  // order with LD_DEBUG=libs on every run.
  EXPECT_EQ(s.subdirs(), (std::vector<std::string>{"glibc-hwcaps/x86-64-v4/", "glibc-hwcaps/x86-64-v3/",
                                                   "glibc-hwcaps/x86-64-v2/", "tls/x86_64/x86_64/", "tls/x86_64/",
                                                   "tls/x86_64/", "tls/", "x86_64/x86_64/", "x86_64/", "x86_64/", ""}));
  s.glibc_minor = 37;  // legacy subdirectories are gone in 2.37
  EXPECT_EQ(s.subdirs(), (std::vector<std::string>{"glibc-hwcaps/x86-64-v4/", "glibc-hwcaps/x86-64-v3/",
                                                   "glibc-hwcaps/x86-64-v2/", ""}));
}

}  // namespace
