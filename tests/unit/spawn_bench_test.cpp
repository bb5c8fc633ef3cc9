// The spawn benchmark's bookkeeping (include/procforge/bench.hpp): ratios of
// medians with the issue's goals, fork+exec's reduced run count at big
// parents, and a real run of every method on a tiny budget (each sample a
// real spawn and reap, so a method that fails to exit 0 fails the run).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "procforge/bench.hpp"

namespace procforge::bench {
namespace {

SpawnSample sample(SpawnMethod m, const std::string& target, std::uint64_t rss, double median) {
  SpawnSample s;
  s.method = m;
  s.target = target;
  s.parent_rss_mib = rss;
  s.median_us = s.min_us = s.max_us = median;
  s.runs = 11;
  return s;
}

const SpawnRatio* find(const std::vector<SpawnRatio>& rs, const std::string& name) {
  for (const auto& r : rs)
    if (r.name == name) return &r;
  return nullptr;
}

TEST(SpawnBench, ratios_are_medians_divided_with_the_goals_of_the_issue) {
  using M = SpawnMethod;
  std::vector<SpawnSample> in{
      sample(M::procforge, "static", 0, 90),        sample(M::posix_spawn, "static", 0, 100),
      sample(M::clone_baseline, "static", 0, 80),   sample(M::procforge_keep_ignored, "static", 0, 84),
      sample(M::procforge, "static", 8192, 117),    sample(M::fork_exec, "static", 0, 200),
      sample(M::fork_exec, "static", 8192, 300000), sample(M::clone_pidfd_baseline, "static", 0, 82),
  };
  auto out = spawn_bench_ratios(in);

  const auto* posix = find(out, "procforge / posix_spawn (static, 0 MiB)");
  ASSERT_NE(posix, nullptr);
  EXPECT_DOUBLE_EQ(posix->value, 0.9);
  EXPECT_DOUBLE_EQ(posix->goal, 0.9);
  EXPECT_TRUE(posix->met) << "a ratio equal to its goal meets it";

  const auto* clone = find(out, "procforge / clone-baseline (static, 0 MiB)");
  ASSERT_NE(clone, nullptr);
  EXPECT_DOUBLE_EQ(clone->value, 90.0 / 80.0);
  EXPECT_FALSE(clone->met);

  const auto* keep = find(out, "procforge-keep-ign / clone-baseline (static, 0 MiB)");
  ASSERT_NE(keep, nullptr);
  EXPECT_DOUBLE_EQ(keep->value, 84.0 / 80.0);
  EXPECT_EQ(keep->goal, 0) << "shown for contrast, not held to a goal";

  const auto* pidfd = find(out, "procforge-keep-ign / clone+pidfd (static, 0 MiB)");
  ASSERT_NE(pidfd, nullptr);
  EXPECT_DOUBLE_EQ(pidfd->value, 84.0 / 82.0);

  const auto* big = find(out, "procforge 8192 MiB / 0 MiB (static)");
  ASSERT_NE(big, nullptr);
  EXPECT_DOUBLE_EQ(big->value, 1.3);
  EXPECT_FALSE(big->met);
  const auto* fork = find(out, "fork+exec 8192 MiB / 0 MiB (static)");
  ASSERT_NE(fork, nullptr);
  EXPECT_DOUBLE_EQ(fork->value, 1500.0);

  EXPECT_EQ(find(out, "procforge / posix_spawn (dynamic, 0 MiB)"), nullptr) << "no dynamic samples were given";
}

TEST(SpawnBench, fork_gets_fewer_runs_at_big_parents_but_at_least_seven) {
  SpawnBenchConfig c;
  c.runs = 101;
  EXPECT_EQ(fork_runs(c, 0), 101);
  EXPECT_EQ(fork_runs(c, 64), 101);
  EXPECT_EQ(fork_runs(c, 1024), 101 * 128 / 1024);
  EXPECT_EQ(fork_runs(c, 8192), 7);
}

TEST(SpawnBench, every_method_spawns_and_reaps_for_real) {
  SpawnBenchConfig c;
  c.runs = 3;
  c.warmup = 1;
  c.parent_rss_mib = {0};
  c.targets = {{"static", "/bin/true"}, {"dynamic", "/bin/true"}};
  auto r = run_spawn_bench(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->results.size(), c.methods.size() * c.targets.size());
  for (const auto& s : r->results) {
    EXPECT_EQ(s.runs, 3) << method_name(s.method);
    EXPECT_GT(s.median_us, 0) << method_name(s.method);
    EXPECT_LE(s.min_us, s.median_us);
    EXPECT_LE(s.median_us, s.max_us);
  }
  EXPECT_FALSE(r->procforge_strategy.empty());
}

TEST(SpawnBench, a_target_that_fails_fails_the_run_with_its_status) {
  SpawnBenchConfig c;
  c.runs = 1;
  c.warmup = 0;
  c.parent_rss_mib = {0};
  c.methods = {SpawnMethod::posix_spawn};
  c.targets = {{"static", "/bin/false"}};
  auto r = run_spawn_bench(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exit status 1"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace procforge::bench
