// `procforge profile` through exec chains: a `#!/usr/bin/env PROG` script is
// one process that runs /usr/bin/env and then PROG. What ran is never written
// here: the real run decides. The same script runs with LD_DEBUG=files, and
// ld.so itself says which objects each program had ("calling init: PATH",
// then "transferring control: PROG" when the program starts); the profile
// must give each program its own segment with exactly those objects.
// Also pinned: the program's exit status as the real run ends it, a note that
// every run gives said once, one unit per column of the table, the LD_AUDIT
// module's cost named where "ld.so start" holds it, and forked children that
// survive the tracer's exit() breakpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "procforge/profile.hpp"
#include "support/ldso_fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using procforge::testsupport::CommandOptions;
using procforge::testsupport::CommandResult;
using procforge::testsupport::FixtureDir;
using procforge::testsupport::run_command;

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LC_ALL=C"};

CommandResult procforge_profile(std::vector<std::string> args) {
  args.insert(args.begin(), {PROCFORGE_BINARY, "profile"});
  CommandOptions o;
  o.env = kEnv;
  o.timeout_ms = 120000;
  return run_command(args, o);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// What ld.so reported for each program the process ran, in exec order: the
// objects it called an initializer for (every one it loaded but the program
// and the vDSO; ld.so included).
std::vector<std::set<std::string>> ld_debug_objects(const std::string& script) {
  CommandOptions o;
  o.env = kEnv;
  o.env.push_back("LD_DEBUG=files");
  CommandResult r = run_command({script}, o);
  EXPECT_TRUE(r.started) << r.err;
  std::vector<std::set<std::string>> programs(1);
  for (const auto& l : lines_of(r.err)) {
    if (auto at = l.find("calling init: "); at != std::string::npos) programs.back().insert(l.substr(at + 14));
    if (l.find("transferring control: ") != std::string::npos) programs.emplace_back();
  }
  programs.pop_back();  // nothing follows the last program's start
  return programs;
}

// The same set from a profile segment: its link map without the program
// itself and the vDSO.
std::set<std::string> profiled_objects(const nlohmann::json& segment) {
  std::set<std::string> out;
  for (const auto& l : segment["libraries"]) {
    const std::string path = l["path"];
    if (path != segment["image"] && path.find("linux-vdso") == std::string::npos) out.insert(path);
  }
  return out;
}

TEST(ProfileChain, env_script_gives_env_and_the_final_program_each_their_own_objects) {
  FixtureDir dir;
  // ls links libselinux and libpcre2, which env does not: a mix-up shows.
  const std::string script = dir.write("list", "#!/usr/bin/env ls\n", 0755);
  const auto truth = ld_debug_objects(script);
  ASSERT_EQ(truth.size(), 2u) << "the real run did not start two programs";

  CommandResult o = procforge_profile({"-n", "3", "--no-untraced", "--json", script});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  const auto& segs = j["segments"];
  ASSERT_EQ(segs.size(), truth.size()) << j.dump(1).substr(0, 3000);
  EXPECT_EQ(segs[0]["image"], fs::canonical("/usr/bin/env").string());
  EXPECT_EQ(segs[1]["image"], fs::canonical("/usr/bin/ls").string());
  EXPECT_FALSE(segs[0]["final"]);
  EXPECT_TRUE(segs[1]["final"]);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    EXPECT_EQ(profiled_objects(segs[i]), truth[i]) << "program " << i + 1 << " " << segs[i]["image"];
    EXPECT_EQ(segs[i]["kind"], "dynamic (glibc)") << segs[i]["image"];
  }
  // The top level describes the final program: its name and its own objects.
  EXPECT_EQ(j["image"], segs[1]["image"]);
  EXPECT_EQ(profiled_objects({{"image", j["image"]}, {"libraries", j["libraries"]}}), truth[1]);
  for (const auto& ph : j["phases"]) {
    if (ph["name"] == "spawn") continue;
    EXPECT_EQ(ph["program"], segs[1]["image"]) << ph["name"];
  }
  // env's ld.so phases are its own and were reached; ls's exec is in env's main,
  // which called execve().
  for (const char* name : {"exec", "ld.so start", "load+relocate", "main"})
    for (const auto& ph : segs[0]["phases"]) {
      if (ph["name"] == name) {
        EXPECT_TRUE(ph["present"]) << "env " << name;
      }
    }
  EXPECT_EQ(segs[1]["phases"][1]["merged_into"], "main of " + segs[0]["image"].get<std::string>());

  CommandResult text = procforge_profile({"-n", "2", "--no-untraced", script});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("exec chain: 2 programs"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n  1. " + segs[0]["image"].get<std::string>() + ": dynamic (glibc)"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("\nobjects of " + segs[1]["image"].get<std::string>()), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n1. env "), std::string::npos) << "env's row in the phases table\n" << text.out;
}

TEST(ProfileChain, the_programs_phases_add_up_to_the_run_without_a_gap_or_an_overlap) {
  namespace pp = procforge::profile;
  FixtureDir dir;
  // env, then dash, then ls: three programs in one process.
  const std::string script = dir.write("chain", "#!/usr/bin/env sh\nexec /bin/ls / >/dev/null\n", 0755);
  pp::Options o;
  o.argv = {script};
  o.envp = kEnv;
  o.runs = 3;
  o.untraced = false;
  o.audit_module = pp::find_audit_module(PROCFORGE_BUILD_DIR);
  auto r = pp::profile(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->segments.size(), 3u);
  for (const auto& run : r->traced) {
    ASSERT_EQ(run.segments.size(), 3u);
    double sum = 0;
    for (const auto& seg : run.segments)
      for (const auto& ph : seg.phases)
        if (ph.present) sum += ph.wall_us;
    // Each stop ends one phase and starts the next, across programs too.
    EXPECT_NEAR(sum, run.tracee_wall_us, 0.01 * run.tracee_wall_us + 1) << "wall " << run.wall_us << " us";
    // The final program's phases are the run's, with the process's spawn.
    for (int k = 1; k < pp::kPhaseCount; ++k)
      EXPECT_EQ(run.phases[k].wall_us, run.segments.back().phases[k].wall_us) << pp::phase_name(run.phases[k].phase);
    EXPECT_EQ(run.phases[0].wall_us, run.segments.front().phases[0].wall_us);
  }
}

TEST(ProfileChain, the_exit_status_is_the_one_the_real_run_ends_with) {
  FixtureDir dir;
  const std::string three = dir.write("three", "#!/bin/sh\nexit 3\n", 0755);
  CommandOptions co;
  co.env = kEnv;
  ASSERT_EQ(run_command({three}, co).exit_code, 3);
  CommandResult o = procforge_profile({"-n", "2", three});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("\n  exit status 3 (all 4 runs)\n"), std::string::npos) << o.out;
  CommandResult j = procforge_profile({"-n", "2", "--json", three});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["exit"].size(), 1u) << doc["exit"];
  EXPECT_EQ(doc["exit"][0]["end"], "exited");
  EXPECT_EQ(doc["exit"][0]["status"], 3);
  EXPECT_EQ(doc["exit"][0]["runs"], 4);

  const std::string segv = dir.write("segv", "#!/bin/sh\nkill -SEGV $$\n", 0755);
  CommandResult real = run_command({segv}, co);
  ASSERT_EQ(real.signal, SIGSEGV);
  CommandResult k = procforge_profile({"-n", "2", "--no-untraced", segv});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_NE(k.out.find("\n  killed by SIGSEGV (all 2 runs)\n"), std::string::npos) << k.out;
}

TEST(ProfileChain, a_note_every_run_gives_is_said_once) {
  // A static program without libc: every run notes that main cannot be found.
  const std::string probe = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
  CommandResult o = procforge_profile({"-n", "3", "--no-untraced", probe});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  int said = 0;
  for (const auto& l : lines_of(o.out))
    if (l.find("main could not be found") != std::string::npos) {
      ++said;
      EXPECT_NE(l.find("(all 3 runs)"), std::string::npos) << l;
    }
  EXPECT_EQ(said, 1) << o.out;
}

TEST(ProfileChain, each_column_of_the_phases_table_has_one_unit) {
  // main sleeps 20 ms, the other phases last microseconds: a column holds both.
  CommandResult o = procforge_profile({"-n", "3", "--no-untraced", "/bin/sleep", "0.02"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  bool in = false, header_ms = false;
  int rows = 0;
  for (const auto& l : lines_of(o.out)) {
    if (l.rfind("phase ", 0) == 0) {
      in = true;
      header_ms = l.find("median ms") != std::string::npos;
      continue;
    }
    if (!in) continue;
    // Cells are bare numbers: the unit is in the header, once per column.
    std::istringstream cells(l.substr(15));
    for (std::string cell; cells >> cell;) {
      if (cell.find('%') != std::string::npos) break;  // the share bar
      EXPECT_TRUE(cell != "ms" && cell != "us") << "a unit inside a cell: " << l;
    }
    ++rows;
    if (l.rfind("sum of phases", 0) == 0) break;
  }
  EXPECT_EQ(rows, 10) << o.out;
  EXPECT_TRUE(header_ms) << "20 ms of main in a microseconds column\n" << o.out;
}

TEST(ProfileChain, the_text_says_when_ld_so_start_holds_the_audit_module) {
  CommandResult audited = procforge_profile({"-n", "2", "--no-untraced", "/bin/true"});
  ASSERT_EQ(audited.exit_code, 0) << audited.err;
  const bool module = audited.out.find("load = la_objopen gap (LD_AUDIT)") != std::string::npos;
  if (!module) GTEST_SKIP() << "procforge_audit.so was not found (x86_64 only): nothing to say";
  const std::string words = "ld.so start includes loading the LD_AUDIT module";
  EXPECT_NE(audited.out.find(words), std::string::npos) << audited.out;
  CommandResult plain = procforge_profile({"-n", "2", "--no-untraced", "--no-audit", "/bin/true"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.find(words), std::string::npos) << plain.out;
}

TEST(ProfileChain, a_forked_child_calling_exit_survives_the_exit_breakpoint) {
  if (access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "bash is not installed";
  FixtureDir dir;
  // The ( ) subshell is a fork of bash that calls exit() with libc's exit()
  // breakpoint still in its copy of memory.
  const std::string script = dir.write("sub", "#!/bin/bash\n(exit 4)\nexit $?\n", 0755);
  CommandOptions co;
  co.env = kEnv;
  ASSERT_EQ(run_command({script}, co).exit_code, 4);
  CommandResult o = procforge_profile({"-n", "2", "--json", script});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto doc = nlohmann::json::parse(o.out);
  EXPECT_EQ(doc["exit_status"], "exit status 4 (all 4 runs)") << doc["exit"];
}

}  // namespace
