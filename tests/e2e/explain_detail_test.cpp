// End-to-end tests of how much explain's text shows: by default a screen
// (the verdict, the chain, argv and the libraries, each with the rule that
// found it); -v adds the kernel's checks in order, the ELF headers, the exec
// plan and the relocation work; -vv the initial stack and auxv. Which
// libraries the default must name is not written here: the real ld.so lists
// them (LD_TRACE_LOADED_OBJECTS=1, what ldd runs).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/run_command.hpp"

namespace {

using procforge::testsupport::CommandOptions;
using procforge::testsupport::CommandResult;
using procforge::testsupport::run_command;

const char* const kProgram = "/usr/bin/ls";

CommandOptions fixed_environment() {
  CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  return o;
}

CommandResult explain(std::vector<std::string> flags) {
  std::vector<std::string> argv{PROCFORGE_BINARY, "explain"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.emplace_back(kProgram);
  return run_command(argv, fixed_environment());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

struct Loaded {
  std::string name, path;  // path empty when ld.so prints the name only (the interpreter)
};

// What ld.so itself loads for PROGRAM, from its trace mode: "\tNAME => PATH (0x...)"
// or "\tPATH (0x...)"; the vDSO is no file and is left out.
std::vector<Loaded> loaded_by_ldso(const std::string& program) {
  CommandOptions o = fixed_environment();
  o.env.emplace_back("LD_TRACE_LOADED_OBJECTS=1");
  const CommandResult r = run_command({program}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<Loaded> objects;
  for (std::string l : lines_of(r.out)) {
    l.erase(0, l.find_first_not_of(" \t"));
    l.erase(l.rfind(" ("));
    const auto arrow = l.find(" => ");
    if (arrow != std::string::npos) objects.push_back({l.substr(0, arrow), l.substr(arrow + 4)});
    else if (l.find('/') != std::string::npos) objects.push_back({l, ""});
  }
  return objects;
}

TEST(ExplainDetail, default_fits_a_screen_with_the_verdict_and_every_library_ldso_loads) {
  const CommandResult r = explain({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  EXPECT_LT(lines.size(), 45u) << r.out;
  EXPECT_NE(r.out.find("\n  result  runs: execve succeeds and the new image starts\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  chain   " + std::string(kProgram) + "  ELF, interpreter "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  argv    [\"" + std::string(kProgram) + "\"]\n"), std::string::npos) << r.out;

  const auto loaded = loaded_by_ldso(kProgram);
  ASSERT_GE(loaded.size(), 2u) << "libc and the interpreter at least";
  for (const auto& ob : loaded) {
    SCOPED_TRACE(ob.name);
    // One line of the tree names the object, where it is, and (in brackets) the rule that found it.
    const std::string shown = ob.path.empty() ? ob.name + "  [" : ob.name + " => " + ob.path + "  [";
    const bool found = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      const auto at = l.find(shown);
      return at != std::string::npos && at == l.find_first_not_of(' ') && l.back() == ']';
    });
    EXPECT_TRUE(found) << "no line '" << shown << "...]' in\n" << r.out;
  }
}

TEST(ExplainDetail, default_shows_neither_the_checks_nor_the_plan_nor_the_stack) {
  const CommandResult r = explain({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section : {"checks, in the kernel's order", "binfmt_elf: header", "\nELF  ", "exec plan  (",
                              "relocations at start-up", "initial stack", "auxv, in the kernel's order", "AT_RANDOM"})
    EXPECT_EQ(r.out.find(section), std::string::npos) << section << " in\n" << r.out;
  // The last line says where the rest is.
  EXPECT_NE(r.out.find("\n  -v adds the checks, the exec plan and relocations; -vv the stack and auxv\n"),
            std::string::npos)
      << r.out;
}

TEST(ExplainDetail, v_adds_the_checks_in_the_kernels_order_and_the_plan) {
  const CommandResult r = explain({"-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section : {"\nchecks, in the kernel's order\n", "\nELF  ELF64 ", "\nexec plan  (",
                              "  relocations at start-up", "estimated ld.so start-up", "\n  entry   "})
    EXPECT_NE(r.out.find(section), std::string::npos) << section << " not in\n" << r.out;
  // The kernel's order: the file is found before its header is read, the point of no return last.
  const auto lookup = r.out.find("  ok   path lookup"), header = r.out.find("  ok   binfmt_elf: header"),
             point = r.out.find("  ok   point of no return");
  EXPECT_LT(lookup, header) << r.out;
  EXPECT_LT(header, point) << r.out;
  EXPECT_NE(point, std::string::npos) << r.out;
  for (const char* section : {"initial stack", "auxv, in the kernel's order", "AT_RANDOM"})
    EXPECT_EQ(r.out.find(section), std::string::npos) << section << " in\n" << r.out;
  EXPECT_NE(r.out.find("\n  -vv adds the stack and auxv\n"), std::string::npos) << r.out;
}

TEST(ExplainDetail, vv_adds_the_initial_stack_and_every_auxv_entry) {
  const CommandResult r = explain({"-vv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section : {"\nchecks, in the kernel's order\n", "\nexec plan  (", "\ninitial stack\n",
                              "argc = 1   <- rsp at entry", "\nauxv, in the kernel's order\n"})
    EXPECT_NE(r.out.find(section), std::string::npos) << section << " not in\n" << r.out;
  // Every entry the JSON lists (AT_RANDOM, AT_ENTRY, ...), none of them in the default text.
  const CommandResult json = explain({"--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto auxv = nlohmann::json::parse(json.out)["auxv"];
  ASSERT_GE(auxv.size(), 10u) << json.out;
  const CommandResult summary = explain({});
  for (const auto& a : auxv) {
    const std::string name = a["name"].get<std::string>();
    EXPECT_NE(r.out.find("\n  " + name + " "), std::string::npos) << name << " not in\n" << r.out;
    EXPECT_EQ(summary.out.find(name), std::string::npos) << name << " in\n" << summary.out;
  }
  EXPECT_NE(r.out.find("  AT_RANDOM "), std::string::npos);
  EXPECT_EQ(r.out.find("-vv adds"), std::string::npos) << "nothing is left out at -vv";
}

TEST(ExplainDetail, v_counts_however_it_is_spelled) {
  const CommandResult vv = explain({"-vv"});
  ASSERT_EQ(vv.exit_code, 0) << vv.err;
  EXPECT_EQ(explain({"-v", "-v"}).out, vv.out);
  EXPECT_EQ(explain({"--verbose", "--verbose"}).out, vv.out);
  EXPECT_EQ(explain({"-vvv"}).out, vv.out) << "-vv is all there is";
  EXPECT_EQ(explain({"--verbose"}).out, explain({"-v"}).out);
}

// --json has no levels: -v changes nothing in it.
TEST(ExplainDetail, json_is_the_same_at_every_level) {
  const CommandResult json = explain({"--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(explain({"--json", "-vv"}).out), nlohmann::json::parse(json.out));
}

}  // namespace
