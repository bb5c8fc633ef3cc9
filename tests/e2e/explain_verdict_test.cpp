// End-to-end tests of explain's one verdict: the headline is the outcome of
// the whole start (the kernel's half, then ld.so's), in text, JSON and batch
// mode, with why and fix for ld.so's failures too. Programs are built here;
// what ld.so prints for them comes from running them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"
#include "support/temp_dir_test.hpp"

namespace {

using procforge::testsupport::CommandOptions;
using procforge::testsupport::CommandResult;
using procforge::testsupport::run_command;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ExplainVerdict : public procforge::testing::TempDirTest {
 protected:
  // A command the test needs to succeed (a toolchain step): failing it fails the test.
  static CommandOptions options_in(const std::string& cwd) {
    CommandOptions o;
    o.cwd = cwd;
    o.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
    return o;
  }
  void must(std::vector<std::string> argv) {
    if (argv[0] == "gcc") argv[0] = "/usr/bin/gcc";
    const CommandResult r = run_command(argv, options_in(dir));
    ASSERT_EQ(r.exit_code, 0) << argv[0] << " failed: " << r.err;
  }
  CommandResult procforge(const std::vector<std::string>& args) {
    std::vector<std::string> argv{PROCFORGE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, options_in(dir));
  }
  // The program run for real: what ld.so prints when it stops.
  CommandResult real_run(const std::string& program) { return run_command({program}, options_in(dir)); }
  // main() calling foo() from libfoo.so, linked against DEFINITION's libfoo.
  void build_program_using_foo(const std::string& name, const std::string& libfoo_source,
                               const std::string& version_script = "") {
    write("foo.c", libfoo_source, 0644);
    write("main.c", "int foo(void);\nint main(void) { return foo(); }\n", 0644);
    std::vector<std::string> lib{"gcc", "-shared", "-fPIC", "-o", "libfoo.so", "foo.c"};
    if (!version_script.empty()) {
      write("foo.map", version_script, 0644);
      lib.push_back("-Wl,--version-script=foo.map");
    }
    must(lib);
    must({"gcc", "-o", name, "main.c", "-L.", "-lfoo", "-Wl,-rpath," + dir});
  }
};

TEST_F(ExplainVerdict, a_missing_library_is_the_headline_with_why_and_fix) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  build_program_using_foo("prog", "int foo(void) { return 0; }\n");
  ASSERT_EQ(unlink((dir + "/libfoo.so").c_str()), 0);
  const std::string prog = dir + "/prog";
  const CommandResult real = real_run(prog);
  ASSERT_EQ(real.exit_code, 127) << real.err;

  const CommandResult text = procforge({"explain", prog});
  EXPECT_EQ(text.exit_code, 1);
  const std::string head = text.out.substr(0, text.out.find("\n  chain"));
  EXPECT_NE(head.find("  result  fails in ld.so: libfoo.so: cannot open shared object file: No such file or directory "
                      "(exit 127)"),
            std::string::npos)
      << head;
  EXPECT_NE(head.find("  why     ld.so cannot find libfoo.so, which " + prog + " needs; it looked in " + dir),
            std::string::npos)
      << head;
  EXPECT_NE(head.find("  fix     make libfoo.so findable"), std::string::npos) << head;
  // The tree shows the failure; the places tried are counted (the why names their directories), -v lists them.
  EXPECT_NE(text.out.find("    libfoo.so => not found\n"), std::string::npos) << text.out;
  const CommandResult verbose = procforge({"explain", "-v", prog});
  EXPECT_EQ(verbose.exit_code, 1);
  EXPECT_NE(verbose.out.find("        tried, in order:\n          " + dir + "/"), std::string::npos) << verbose.out;
  EXPECT_EQ(text.out.find("tried, in order"), std::string::npos) << text.out;

  const CommandResult json = procforge({"explain", "--json", prog});
  EXPECT_EQ(json.exit_code, 1);
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["result"]["outcome"], "ldso_fails");
  EXPECT_EQ(j["execve"]["result"], "ok");
  EXPECT_EQ(j["loader"]["error"]["stderr"].get<std::string>() + "\n", real.err);
  EXPECT_EQ(j["loader"]["error"]["exit_status"], real.exit_code);
  EXPECT_EQ(j["loader"]["error"]["fix"], j["result"]["fix"]);
  EXPECT_NE(j["result"]["why"].get<std::string>().find("cannot find libfoo.so"), std::string::npos);
  const auto& missing = j["loader"]["objects"][0];
  ASSERT_EQ(missing["name"], "libfoo.so") << j["loader"];
  EXPECT_NE(text.out.find("        tried " + std::to_string(missing["tried"].size()) + " places (-v lists them)\n"),
            std::string::npos)
      << text.out;
}

TEST_F(ExplainVerdict, a_missing_symbol_version_names_what_provides_it) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  build_program_using_foo("prog", "int foo(void) { return 0; }\n", "FOO_2 { global: foo; local: *; };\n");
  // The library replaced by an older one that defines only FOO_1.
  write("foo.map", "FOO_1 { global: foo; local: *; };\n", 0644);
  must({"gcc", "-shared", "-fPIC", "-o", "libfoo.so", "foo.c", "-Wl,--version-script=foo.map"});
  const std::string prog = dir + "/prog";
  const CommandResult real = real_run(prog);
  ASSERT_EQ(real.exit_code, 1) << real.err;

  const auto j = nlohmann::json::parse(procforge({"explain", "--json", prog}).out);
  EXPECT_EQ(j["result"]["outcome"], "ldso_fails");
  EXPECT_EQ(j["loader"]["error"]["stderr"].get<std::string>() + "\n", real.err);
  // ld.so names the library by its path.
  EXPECT_EQ(j["result"]["text"],
            "fails in ld.so: " + dir + "/libfoo.so: version `FOO_2' not found (required by " + prog + ") (exit 1)");
  EXPECT_NE(
      j["result"]["why"].get<std::string>().find("needs symbol version FOO_2 of libfoo.so, which the libfoo.so found "
                                                 "here (" +
                                                 dir + "/libfoo.so) does not define"),
      std::string::npos)
      << j["result"];
  EXPECT_NE(j["result"]["fix"].get<std::string>().find("install the newer libfoo.so"), std::string::npos);
}

TEST_F(ExplainVerdict, a_glibc_version_newer_than_the_systems_says_which_glibc) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  write("main.c", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n", 0644);
  must({"gcc", "-o", "prog", "main.c"});
  // The version this program needs from libc (__libc_start_main@GLIBC_2.34),
  // renamed in .dynstr to one no glibc defines; the hash no longer matches
  // either, so ld.so finds no definition (elf/dl-version.c match_symbol()).
  std::string bytes = slurp(dir + "/prog");
  const auto at = bytes.find("GLIBC_2.34");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 10, "GLIBC_9.99");
  write("prog", bytes, 0755);
  const std::string prog = dir + "/prog";
  const CommandResult real = real_run(prog);
  ASSERT_EQ(real.exit_code, 1) << real.err;

  const CommandResult text = procforge({"explain", prog});
  EXPECT_EQ(text.exit_code, 1);
  const auto j = nlohmann::json::parse(procforge({"explain", "--json", prog}).out);
  EXPECT_EQ(j["loader"]["error"]["stderr"].get<std::string>() + "\n", real.err);
  EXPECT_NE(text.out.find("libc.so.6: version `GLIBC_9.99' not found (required by " + prog + ") (exit 1)\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  result  fails in ld.so: /"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("  why     " + prog +
                          " needs glibc 9.99 or newer (symbol version GLIBC_9.99 of libc.so.6), "
                          "and this system has glibc "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  fix     run it where glibc 9.99 or newer is installed"), std::string::npos) << text.out;
}

TEST_F(ExplainVerdict, a_missing_elf_interpreter_fails_in_execve) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  write("main.c", "int main(void) { return 0; }\n", 0644);
  must({"gcc", "-o", "prog", "main.c", "-Wl,--dynamic-linker=/nonexistent/ld.so"});
  const std::string prog = dir + "/prog";
  const CommandResult real = real_run(prog);
  EXPECT_EQ(real.exit_code, 127);  // run_command's child: execve failed with ENOENT

  const CommandResult text = procforge({"explain", prog});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("  result  execve fails with ENOENT"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("  why     "), std::string::npos) << text.out;
  const auto j = nlohmann::json::parse(procforge({"explain", "--json", prog}).out);
  EXPECT_EQ(j["result"]["outcome"], "execve_fails");
  EXPECT_EQ(j["execve"]["errno"], "ENOENT");
  EXPECT_TRUE(j["loader"].is_null());
}

TEST_F(ExplainVerdict, the_rule_that_found_a_library_is_named_once) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  build_program_using_foo("prog", "int foo(void) { return 0; }\n");
  must({"/usr/bin/mkdir", "lib"});
  must({"/usr/bin/mv", "libfoo.so", "lib/"});
  must({"/usr/bin/gcc", "-o", "prog", "main.c", "-Llib", "-lfoo"});  // no RPATH: found through LD_LIBRARY_PATH
  const CommandResult text = procforge({"explain", "--env", "LD_LIBRARY_PATH=" + dir + "/lib", dir + "/prog"});
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("libfoo.so => " + dir + "/lib/libfoo.so  [LD_LIBRARY_PATH: " + dir + "/lib/]\n"),
            std::string::npos)
      << text.out;
  // A cache hit: the line already says NAME => PATH, so by default the rule is the cache alone.
  EXPECT_NE(text.out.find("libc.so.6 => "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("  [/etc/ld.so.cache]\n"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("  [/etc/ld.so.cache: libc.so.6 => "), std::string::npos) << text.out;
  const CommandResult verbose = procforge({"explain", "-v", "--env", "LD_LIBRARY_PATH=" + dir + "/lib", dir + "/prog"});
  EXPECT_NE(verbose.out.find("  [/etc/ld.so.cache: libc.so.6 => "), std::string::npos) << verbose.out;
}

TEST_F(ExplainVerdict, a_program_that_starts_runs) {
  const CommandResult text = procforge({"explain", "/bin/true"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("  result  runs: execve succeeds and the new image starts\n"), std::string::npos);
  const auto j = nlohmann::json::parse(procforge({"explain", "--json", "/bin/true"}).out);
  EXPECT_EQ(j["result"]["outcome"], "runs");
  EXPECT_TRUE(j["result"]["why"].is_null());
  EXPECT_TRUE(j["loader"]["error"].is_null());
}

TEST_F(ExplainVerdict, batch_lines_carry_the_same_verdict_and_loader_shape) {
  SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
  build_program_using_foo("prog", "int foo(void) { return 0; }\n");
  ASSERT_EQ(unlink((dir + "/libfoo.so").c_str()), 0);
  const std::string prog = dir + "/prog";
  const std::string list = write("list", prog + "\n/bin/true\n" + dir + "/none\n", 0644);

  const CommandResult text = procforge({"explain", "--batch", list});
  EXPECT_EQ(text.exit_code, 1) << "two of three do not start";
  std::istringstream lines(text.out);
  std::string header, l1, l2, l3;
  std::getline(lines, header), std::getline(lines, l1), std::getline(lines, l2), std::getline(lines, l3);
  EXPECT_EQ(header, "# path\tresult\tdetail\tchain\tobjects\tloader");
  EXPECT_EQ(l1.rfind(prog + "\tldso\texit 127\t", 0), 0u) << l1;
  EXPECT_EQ(l2.rfind("/bin/true\tok\t-\t", 0), 0u) << l2;
  EXPECT_EQ(l3.rfind(dir + "/none\terrno\tENOENT\t", 0), 0u) << l3;

  const CommandResult json = procforge({"explain", "--batch", list, "--json"});
  EXPECT_EQ(json.exit_code, 1);
  std::istringstream jl(json.out);
  std::string first;
  std::getline(jl, first);
  const auto row = nlohmann::json::parse(first);
  const auto single = nlohmann::json::parse(procforge({"explain", "--json", prog}).out);
  EXPECT_EQ(row["result"], single["result"]);
  ASSERT_TRUE(row["loader"]["objects"].is_array()) << row.dump();
  ASSERT_EQ(row["loader"]["objects"].size(), single["loader"]["objects"].size());
  for (std::size_t i = 0; i < single["loader"]["objects"].size(); ++i)
    EXPECT_EQ(row["loader"]["objects"][i]["path"], single["loader"]["objects"][i]["path"]);
  EXPECT_EQ(row["loader"]["error"]["stderr"], single["loader"]["error"]["stderr"]);
}

}  // namespace
