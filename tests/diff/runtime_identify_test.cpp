// runtime::identify() on programs built here with each toolchain: the
// toolchain that built a program is the truth for its language and libc
// (nothing is assumed of the file beyond how it was made), and `go version
// FILE` (Go's own reader of .go.buildinfo) is the oracle for the Go version.
// Also `procforge explain --json` carries the same answer in "runtime".
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "procforge/runtime.hpp"
#include "support/procforge_cli.hpp"
#include "support/run_command.hpp"
#include "support/runtime_programs.hpp"

namespace procforge::testsupport {
namespace {

struct Expected {
  const char* language;
  const char* libc;
  bool is_static;
  bool cgo;
};

const std::map<std::string, Expected>& built_as() {
  static const std::map<std::string, Expected> m = {
      {"c_glibc", {"C", "glibc", false, false}},
      {"c_glibc_static", {"C", "glibc", true, false}},
      {"c_musl", {"C", "musl", false, false}},
      {"c_musl_static", {"C", "musl", true, false}},
      {"go_static", {"Go", "none", true, false}},
      {"go_stripped", {"Go", "none", true, false}},
      {"go_cgo", {"Go", "glibc", false, true}},
      {"rust", {"Rust", "glibc", false, false}},
      {"rust_stripped", {"Rust", "glibc", false, false}},
      {"nolibc", {"C", "none", true, false}},
  };
  return m;
}

class RuntimeIdentify : public ::testing::TestWithParam<std::string> {};

TEST_P(RuntimeIdentify, NamesTheToolchainThatBuiltIt) {
  const auto& rp = runtime_programs();
  if (!rp.missing.empty()) GTEST_SKIP() << rp.missing;
  ASSERT_EQ(rp.error, "");
  const std::string file = rp.at(GetParam());
  const Expected& e = built_as().at(GetParam());
  auto r = runtime::identify_file(file);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_STREQ(runtime::language_name(r->language), e.language);
  EXPECT_STREQ(runtime::libc_name(r->libc), e.libc);
  EXPECT_EQ(r->is_static, e.is_static);
  EXPECT_EQ(r->cgo, e.cgo);
  EXPECT_FALSE(r->start.empty());
  if (r->language == runtime::Language::go) {
    CommandOptions o;
    o.inherit_env = true;
    o.env = {"GOCACHE=" + rp.dir + "/gocache", "HOME=" + rp.dir};
    const auto v = run_command({"/usr/bin/go", "version", file}, o);
    ASSERT_EQ(v.exit_code, 0) << v.err;
    EXPECT_EQ(v.out, file + ": " + r->version + "\n");
  }
}

INSTANTIATE_TEST_SUITE_P(Programs, RuntimeIdentify, ::testing::ValuesIn(runtime_program_names()),
                         [](const auto& param_info) { return param_info.param; });

TEST(RuntimeIdentifyCli, ExplainJsonNamesTheRuntime) {
  const auto& rp = runtime_programs();
  if (!rp.missing.empty()) GTEST_SKIP() << rp.missing;
  ASSERT_EQ(rp.error, "");
  for (const char* name : {"c_musl", "go_static", "rust"}) {
    const auto r = run_command({PROCFORGE_BINARY, "explain", "--json", rp.at(name)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    auto id = runtime::identify_file(rp.at(name));
    ASSERT_TRUE(id);
    EXPECT_EQ(j["runtime"]["name"], id->name) << name;
    EXPECT_EQ(j["runtime"]["libc"], runtime::libc_name(id->libc)) << name;
    // The loader modelled follows PT_INTERP; a static Go program has none.
    if (std::string(name) == "go_static") EXPECT_TRUE(j["loader"].is_null());
    else EXPECT_EQ(j["loader"]["kind"], std::string(name) == "c_musl" ? "musl" : "glibc") << name;
  }
}

}  // namespace
}  // namespace procforge::testsupport
