// The real `procforge profile` binary: the phases table it prints, --compare,
// --no-audit, the --json contract, its error messages, and the --html report,
// rendered in headless Chromium with a screenshot kept in the build directory
// (profile-report.png) for the docs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/ldso_fixtures.hpp"
#include "support/screenshot.hpp"

namespace {

namespace fs = std::filesystem;
using procforge::testsupport::CommandResult;

const char* const kPhaseNames[] = {"spawn",     "exec", "ld.so start",   "load+relocate", "constructors",
                                   "libc init", "main", "exit handlers", "teardown+reap"};

CommandResult profile_cli(std::vector<std::string> args) {
  args.insert(args.begin(), {PROCFORGE_BINARY, "profile"});
  procforge::testsupport::CommandOptions o;
  o.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  o.timeout_ms = 120000;
  return procforge::testsupport::run_command(args, o);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line_starting(const std::string& text, const std::string& prefix) {
  for (const auto& l : lines_of(text))
    if (l.rfind(prefix, 0) == 0) return true;
  return false;
}

// A time cell as render_profile_text writes it: "123.4", or "12.34 ms" from
// 10 ms on. Consumes the unit when there is one.
double read_time(std::istringstream& in) {
  double v = 0;
  in >> v;
  const auto at = in.tellg();
  std::string unit;
  if (in >> unit && unit == "ms") return v * 1000;
  in.clear();
  in.seekg(at);
  return v;
}

// Half the last printed digit of a time cell: 0.05 us, or 5 us from 10 ms on.
double half_step(double us) { return us >= 10000 ? 5 : 0.05; }

struct TableRow {
  std::string name;
  std::string rest;  // what follows the name column
};

// The rows of the phases table: from the header line starting with "phase"
// to "sum of phases" (included), the name column 15 characters wide.
std::vector<TableRow> phases_table(const std::string& text) {
  std::vector<TableRow> rows;
  bool in = false;
  for (const auto& l : lines_of(text)) {
    if (l.rfind("phase ", 0) == 0) {
      in = true;
      continue;
    }
    if (!in) continue;
    std::string name = l.substr(0, 15);
    name.erase(name.find_last_not_of(' ') + 1);
    rows.push_back({name, l.size() > 15 ? l.substr(15) : ""});
    if (name == "sum of phases") break;
  }
  return rows;
}

TEST(ProfileCli, text_table_prints_every_phase_in_pipeline_order_and_their_sum) {
  CommandResult o = profile_cli({"-n", "3", "--no-untraced", "/bin/ls", "/"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_TRUE(has_line_starting(o.out, "procforge profile: /bin/ls /")) << o.out;
  EXPECT_NE(o.out.find("3 traced runs;"), std::string::npos) << o.out;
  const auto rows = phases_table(o.out);
  ASSERT_EQ(rows.size(), 10u) << o.out;
  double sum = 0, rounding = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(rows[i].name, kPhaseNames[i]) << o.out;
    // median, min, max: min <= median <= max, as measured.
    std::istringstream cells(rows[i].rest);
    const double median = read_time(cells), min = read_time(cells), max = read_time(cells);
    EXPECT_GT(median, 0) << rows[i].name;
    EXPECT_LE(min, median) << rows[i].name;
    EXPECT_LE(median, max) << rows[i].name;
    sum += median;
    rounding += half_step(median);
  }
  std::istringstream total(rows[9].rest);
  const double printed_sum = read_time(total);
  // Within what the rounding of the printed cells allows.
  EXPECT_NEAR(printed_sum, sum, rounding + half_step(printed_sum) + 1e-9) << o.out;
  // Every phase says which stop ends it.
  for (const char* b : {"ends at PTRACE_EVENT_EXEC", "ends at breakpoint AT_ENTRY", "ends at breakpoint main",
                        "ends at breakpoint libc exit()", "ends at PTRACE_EVENT_EXIT"})
    EXPECT_NE(o.out.find(b), std::string::npos) << b << "\n" << o.out;
}

TEST(ProfileCli, text_table_names_the_phase_a_missing_boundary_merges_into) {
  // A static program without libc: no ld.so, no main, no exit().
  const std::string probe = std::string(PROCFORGE_PROBE_DIR) + "/probe_state";
  CommandResult o = profile_cli({"-n", "3", "--no-untraced", probe});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto rows = phases_table(o.out);
  ASSERT_EQ(rows.size(), 10u) << o.out;
  for (std::size_t i : {2, 3, 4, 5, 7}) {
    EXPECT_EQ(rows[i].name, kPhaseNames[i]);
    EXPECT_NE(rows[i].rest.find("(no boundary: in main)"), std::string::npos) << rows[i].name << "\n" << o.out;
  }
  EXPECT_EQ(rows[6].rest.find("no boundary"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("main could not be found"), std::string::npos) << o.out;
}

TEST(ProfileCli, compare_prints_each_command_side_by_side_with_ratios) {
  CommandResult o = profile_cli({"-n", "3", "--no-untraced", "--compare", "/bin/true", "/bin/ls -d '/tmp'"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_TRUE(has_line_starting(o.out, "  A = /bin/true  (dynamic (glibc))")) << o.out;
  EXPECT_TRUE(has_line_starting(o.out, "  B = /bin/ls -d '/tmp'  (dynamic (glibc))")) << o.out;
  const auto lines = lines_of(o.out);
  std::size_t found = 0;
  for (const auto& l : lines)
    for (const char* name : kPhaseNames) {
      if (l.rfind(std::string(name) + " ", 0) != 0) continue;
      // A, B, then B/A as "1.23x", computed from the medians printed.
      std::istringstream cells(l.substr(15));
      const double a = read_time(cells), b = read_time(cells);
      std::string ratio;
      cells >> ratio;
      ASSERT_FALSE(ratio.empty()) << l;
      ASSERT_EQ(ratio.back(), 'x') << l;
      // Within what the rounding of the three printed cells allows.
      const double r = b / a;
      EXPECT_NEAR(std::stod(ratio), r, r * (half_step(a) / a + half_step(b) / b) + 0.005 + 1e-9) << l;
      ++found;
    }
  EXPECT_EQ(found, 9u) << o.out;
  EXPECT_TRUE(has_line_starting(o.out, "untraced wall")) << o.out;

  CommandResult j = profile_cli({"-n", "2", "--no-untraced", "--json", "--compare", "/bin/true", "/bin/ls -d '/tmp'"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["commands"].size(), 2u);
  EXPECT_EQ(doc["commands"][0]["label"], "/bin/true");
  // The command is split into words without a shell: quotes group, nothing expands.
  EXPECT_EQ(doc["commands"][1]["command"], (std::vector<std::string>{"/bin/ls", "-d", "/tmp"}));
  EXPECT_EQ(doc["commands"][1]["runs"], 2);
}

TEST(ProfileCli, compare_with_one_command_says_it_needs_two) {
  CommandResult o = profile_cli({"--compare", "/bin/true"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "procforge profile: --compare takes two or more quoted commands, e.g. --compare 'ls' 'ls -l'\n");
}

TEST(ProfileCli, no_audit_drops_the_per_library_times_and_the_ld_audit_cross_check) {
  CommandResult audited = profile_cli({"-n", "3", "--no-untraced", "/bin/ls", "/"});
  ASSERT_EQ(audited.exit_code, 0) << audited.err;
  EXPECT_TRUE(has_line_starting(audited.out, "load+relocate cross-check: LD_AUDIT la_activity ADD->CONSISTENT"))
      << audited.out;
  EXPECT_NE(audited.out.find("load = la_objopen gap (LD_AUDIT)"), std::string::npos) << audited.out;

  CommandResult plain = profile_cli({"-n", "3", "--no-untraced", "--no-audit", "/bin/ls", "/"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(has_line_starting(plain.out, "load+relocate cross-check")) << plain.out;
  EXPECT_NE(plain.out.find("from the r_debug link map; no times without the LD_AUDIT module"), std::string::npos)
      << plain.out;
  // The link map still lists the objects, libc among them, with no load time.
  bool libc = false;
  for (const auto& l : lines_of(plain.out))
    if (l.find("libc.so.6") != std::string::npos) {
      libc = true;
      std::istringstream cells(l.substr(44));
      std::string at, load;
      cells >> at >> load;
      EXPECT_EQ(at, "-") << l;
      EXPECT_EQ(load, "-") << l;
    }
  EXPECT_TRUE(libc) << plain.out;
  EXPECT_EQ(plain.err, "");
}

TEST(ProfileCli, json_phases_in_pipeline_order_with_the_contract_fields) {
  CommandResult o = profile_cli({"-n", "3", "--json", "/bin/ls", "/"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["phases"].size(), 9u);
  for (std::size_t i = 0; i < 9; ++i) {
    const auto& p = j["phases"][i];
    EXPECT_EQ(p["name"], kPhaseNames[i]);
    for (const char* k : {"median_us", "min_us", "max_us", "minflt", "majflt"})
      EXPECT_TRUE(p.contains(k) && p[k].is_number()) << kPhaseNames[i] << " lacks " << k;
    EXPECT_LE(p["min_us"].get<double>(), p["median_us"].get<double>());
    EXPECT_LE(p["median_us"].get<double>(), p["max_us"].get<double>());
  }
  EXPECT_GT(j["wall_median_us"].get<double>(), 0);
  EXPECT_EQ(j["runs"], 3);
}

TEST(ProfileCli, missing_program_exits_nonzero_with_a_message) {
  CommandResult o = profile_cli({"-n", "1", "/nonexistent/x"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err.substr(0, o.err.find('\n')), "procforge profile: execve /nonexistent/x: ENOENT");
  EXPECT_NE(o.err.find("\n  why  the program /nonexistent/x does not exist"), std::string::npos) << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(ProfileCli, run_counts_out_of_range_get_a_plain_message) {
  for (const char* bad : {"0", "5x", "-3", "100001"}) {
    CommandResult o = profile_cli({"-n", bad, "/bin/true"});
    EXPECT_EQ(o.exit_code, 2) << bad;
    EXPECT_NE(o.err.find("--runs: a whole number from 1 to 100000 (got '" + std::string(bad) + "')"), std::string::npos)
        << o.err;
    EXPECT_LT(o.err.size(), 200u) << o.err;
  }
}

TEST(ProfileCli, html_report_renders_in_headless_chromium) {
  const fs::path dir = PROCFORGE_PROBE_DIR;
  const fs::path html = dir / "profile-report.html", png = dir / "profile-report.png";
  fs::remove(png);
  CommandResult o = profile_cli({"-n", "3", "--html", html.string(), "/bin/ls", "/"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::ifstream in(html);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("load+relocate"), std::string::npos);
  EXPECT_NE(page.find("libc.so.6"), std::string::npos);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "the report must be self-contained";

  const std::string chromium = procforge::testsupport::find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/bootstrap installs it): not rendered";
  CommandResult shot = procforge::testsupport::chromium_screenshot(chromium, html.string(), png.string(), 1000, 1400);
  ASSERT_EQ(shot.exit_code, 0) << "chromium failed: " << shot.err;
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 10000u) << "a blank page";
  std::printf("screenshot: %s\n", png.c_str());
}

}  // namespace
