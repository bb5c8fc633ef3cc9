// profile's statistics and phase vocabulary: pure functions, no process runs.
#include <gtest/gtest.h>

#include "procforge/profile.hpp"

namespace {

using namespace procforge::profile;

TEST(ProfileStats, median_of_odd_and_even_counts) {
  EXPECT_DOUBLE_EQ(stats_of({3, 1, 2}).median, 2);
  EXPECT_DOUBLE_EQ(stats_of({4, 1, 3, 2}).median, 2.5);
}

TEST(ProfileStats, min_max_and_interquartile_spread) {
  Stats s = stats_of({1, 2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 5);
  EXPECT_DOUBLE_EQ(s.spread, 2);  // Q3 4 - Q1 2
  EXPECT_EQ(s.n, 5);
}

TEST(ProfileStats, tukey_outlier_is_counted) {
  Stats s = stats_of({10, 11, 10, 12, 11, 10, 100});
  EXPECT_EQ(s.outliers, 1);
  EXPECT_DOUBLE_EQ(s.median, 11);
}

TEST(ProfileStats, empty_gives_zeroes) {
  Stats s = stats_of({});
  EXPECT_EQ(s.n, 0);
  EXPECT_EQ(s.median, 0);
}

TEST(ProfilePhases, names_are_in_pipeline_order) {
  const char* want[] = {"spawn",     "exec", "ld.so start",   "load+relocate", "constructors",
                        "libc init", "main", "exit handlers", "teardown+reap"};
  for (int i = 0; i < kPhaseCount; ++i) EXPECT_STREQ(phase_name(static_cast<Phase>(i)), want[i]);
  EXPECT_STREQ(phase_boundary(Phase::exec), "PTRACE_EVENT_EXEC");
}

}  // namespace
