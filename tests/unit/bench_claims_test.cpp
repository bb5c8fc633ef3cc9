// The verdicts of `procforge bench`'s claims, from measurements made up here
// to sit on either side of each rule: what the suites measure is tested
// end to end (tests/e2e/bench_suites_test.cpp); this pins how a claim turns
// figures into "holds", "does not hold here" or "not measurable here".
#include <gtest/gtest.h>

#include "procforge/bench.hpp"

namespace {

using procforge::bench::Claim;
using procforge::bench::Measurement;
using procforge::bench::Verdict;

Measurement point(const std::string& series, const std::string& variable, double value, double min_us,
                  double median_us = 0) {
  Measurement m;
  m.suite = variable == "libraries" || variable == "exported_symbols" ? "link" : "create";
  m.series = series;
  m.variable = variable;
  m.value = value;
  m.min_us = min_us;
  m.median_us = median_us > 0 ? median_us : min_us;
  m.max_us = m.median_us;
  m.runs = 5;
  return m;
}

Claim claim(const std::vector<Claim>& claims, const std::string& id) {
  for (const auto& c : claims)
    if (c.id == id) return c;
  ADD_FAILURE() << "no claim " << id;
  return {};
}

TEST(BenchClaims, without_measurements_every_claim_is_not_measurable_and_says_why) {
  const auto claims = procforge::bench::evaluate_claims({});
  ASSERT_GE(claims.size(), 6u);
  for (const auto& c : claims) {
    EXPECT_EQ(c.verdict, Verdict::not_measurable) << c.id;
    EXPECT_FALSE(c.why.empty()) << c.id;
    EXPECT_TRUE(c.figures.empty()) << c.id;
  }
}

TEST(BenchClaims, fork_claim_holds_when_touched_memory_costs_and_reserved_does_not) {
  std::vector<Measurement> m = {
      point("fork alone", "touched_mib", 0, 150), point("fork alone", "touched_mib", 8192, 60000),
      point("fork alone", "reserved_mib", 0, 150), point("fork alone", "reserved_mib", 65536, 160)};
  const auto claims = procforge::bench::evaluate_claims(m);
  const Claim c = claim(claims, "fork-grows-with-touched-not-reserved");
  EXPECT_EQ(c.verdict, Verdict::holds);
  EXPECT_NE(c.figures.find("fork alone at 8 GiB touched / at 0 MiB = 400x fastest runs"), std::string::npos)
      << c.figures;
  m.back().min_us = 600;  // reserved address space now costs 4x
  EXPECT_EQ(claim(procforge::bench::evaluate_claims(m), "fork-grows-with-touched-not-reserved").verdict,
            Verdict::does_not_hold);
  m.pop_back();  // the reserved curve was skipped
  EXPECT_EQ(claim(procforge::bench::evaluate_claims(m), "fork-grows-with-touched-not-reserved").verdict,
            Verdict::not_measurable);
}

TEST(BenchClaims, verdicts_go_by_the_fastest_runs_not_the_medians) {
  // Scheduler delays made the 8 GiB median of posix_spawn 6x; its fastest run did not move.
  std::vector<Measurement> m;
  for (const char* s : {"vfork+exec", "posix_spawn", "clone3 (procforge)"}) {
    m.push_back(point(s, "touched_mib", 0, 500, 550));
    m.push_back(point(s, "touched_mib", 8192, 510, std::string(s) == "posix_spawn" ? 3300 : 560));
  }
  const auto claims = procforge::bench::evaluate_claims(m);
  const Claim c = claim(claims, "vfork-style-flat");
  EXPECT_EQ(c.verdict, Verdict::holds) << c.figures;
  EXPECT_NE(c.figures.find("medians"), std::string::npos) << "the medians are shown beside the deciding ratio";
  m[3].min_us = 900;  // posix_spawn's fastest run at 8 GiB 1.8x its fastest at 0
  EXPECT_EQ(claim(procforge::bench::evaluate_claims(m), "vfork-style-flat").verdict, Verdict::does_not_hold);
}

TEST(BenchClaims, bind_now_and_library_claims_compare_at_the_largest_point) {
  const std::vector<Measurement> m = {point("lazy binding", "libraries", 1, 700),
                                      point("lazy binding", "libraries", 200, 9000),
                                      point("BIND_NOW", "libraries", 200, 9100),
                                      point("lazy binding", "exported_symbols", 10, 700),
                                      point("lazy binding", "exported_symbols", 10000, 720),
                                      point("BIND_NOW", "exported_symbols", 10, 710),
                                      point("BIND_NOW", "exported_symbols", 10000, 1900)};
  const auto claims = procforge::bench::evaluate_claims(m);
  EXPECT_EQ(claim(claims, "grows-with-libraries").verdict, Verdict::holds);
  const Claim now = claim(claims, "bind-now-costs-more");
  EXPECT_EQ(now.verdict, Verdict::holds);
  EXPECT_NE(now.figures.find("BIND_NOW with 10000 PLT slots / lazy"), std::string::npos) << now.figures;
  EXPECT_NE(now.figures.find("for contrast: BIND_NOW with 200 libraries"), std::string::npos) << now.figures;
}

}  // namespace
