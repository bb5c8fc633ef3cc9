// SystemInfo::probe_cached(): the facts of `ld.so --list-diagnostics` kept in
// a file and reused while the ld.so file and the boot are the same. What the
// facts are is the real ld.so's answer (probe()); the cache must give the
// same, must not keep the env[...] lines, and must not be believed once its
// key no longer matches.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "procforge/ldso.hpp"
#include "support/ldso_fixtures.hpp"

namespace {

using procforge::ldso::SystemInfo;

void expect_same(const SystemInfo& a, const SystemInfo& b) {
  EXPECT_EQ(a.ldso_path, b.ldso_path);
  EXPECT_EQ(a.glibc_major, b.glibc_major);
  EXPECT_EQ(a.glibc_minor, b.glibc_minor);
  EXPECT_EQ(a.system_dirs, b.system_dirs);
  EXPECT_EQ(a.lib, b.lib);
  EXPECT_EQ(a.platform, b.platform);
  EXPECT_EQ(a.hwcaps_subdirs, b.hwcaps_subdirs);
  EXPECT_EQ(a.hwcap, b.hwcap);
  EXPECT_EQ(a.hwcap_mask, b.hwcap_mask);
  EXPECT_EQ(a.cache_path, b.cache_path);
  EXPECT_EQ(a.from_ldso, b.from_ldso);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LdsoSystemInfo, probe_cached_gives_what_probe_gives_and_reuses_its_file) {
  const SystemInfo probed = SystemInfo::probe();
  if (!probed.from_ldso) GTEST_SKIP() << "ld.so --list-diagnostics did not answer";
  procforge::testsupport::FixtureDir dir;
  const std::string cache_dir = dir.at("cache");
  const SystemInfo first = SystemInfo::probe_cached(cache_dir);
  expect_same(probed, first);
  const std::string file = cache_dir + "/ldso-facts";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0) << "no cache file written";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = slurp(file);
  EXPECT_EQ(text.find("\nenv"), std::string::npos) << "the environment's lines were kept";
  // A second process would read the file: the same facts, and the file is
  // what it reads (a planted value is believed while the key matches).
  expect_same(probed, SystemInfo::probe_cached(cache_dir));
  ASSERT_NE(text.find("dl_dst_lib="), std::string::npos);
  const std::string planted = text + "dl_dst_lib=\"planted\"\n";  // the last value of a key wins
  std::ofstream(file, std::ios::trunc) << planted;
  EXPECT_EQ(SystemInfo::probe_cached(cache_dir).lib, "planted");
  // Another key (another ld.so file or boot): probed again and rewritten.
  std::ofstream(file, std::ios::trunc) << "procforge ld.so facts 1 0 0 0 0.0 boot other\n" << planted;
  expect_same(probed, SystemInfo::probe_cached(cache_dir));
  EXPECT_EQ(slurp(file).find("planted"), std::string::npos);
}

TEST(LdsoSystemInfo, probe_cached_without_a_usable_directory_still_probes) {
  const SystemInfo probed = SystemInfo::probe();
  if (!probed.from_ldso) GTEST_SKIP() << "ld.so --list-diagnostics did not answer";
  expect_same(probed, SystemInfo::probe_cached("/proc/no-such-dir/procforge"));
  expect_same(probed, SystemInfo::probe_cached(""));
}

}  // namespace
