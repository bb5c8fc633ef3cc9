// profile's numbers against independent measurements of the same runs:
//   - the phases of a traced run add up to its wall time (fork to reap, minus
//     the tracer's pauses measured separately) within 5%;
//   - load+relocate (ptrace, _dl_debug_state RT_ADD -> RT_CONSISTENT) agrees
//     with the LD_AUDIT module's la_activity(ADD) -> la_activity(CONSISTENT),
//     stamped inside the process, within 10% (medians);
//   - per-phase page faults read from /proc at each stop add up to what
//     wait4()'s rusage reports for the run;
//   - the tracer's overhead against interleaved untraced runs is reported
//     (RecordProperty), not gated: absolute times depend on the machine.
// The sums hold wherever the boundaries lie; where they lie is pinned by
// profile_phase_costs_test.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "procforge/profile.hpp"
#include "support/cpu_contention.hpp"

namespace {

using namespace procforge::profile;

std::string python3() {
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"})
    if (access(p, X_OK) == 0) return p;
  return {};
}

Options opts(std::vector<std::string> argv, int runs) {
  Options o;
  o.argv = std::move(argv);
  o.runs = runs;
  o.warmup = 1;
  o.audit_module = find_audit_module(PROCFORGE_BUILD_DIR);
  return o;
}

double phase_sum(const Run& r) {
  double t = 0;
  for (const auto& p : r.phases)
    if (p.present) t += p.wall_us;
  return t;
}

TEST(ProfileConsistency, phases_add_up_to_the_traced_wall_time) {
  auto r = profile(opts({"/bin/ls", "/"}, 5));
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const auto& run : r->traced) {
    EXPECT_NEAR(phase_sum(run), run.tracee_wall_us, 0.05 * run.tracee_wall_us)
        << "wall " << run.wall_us << " us, tracer pauses " << run.paused_us << " us";
    for (const auto& p : run.phases) EXPECT_GE(p.wall_us, 0) << phase_name(p.phase);
  }
}

TEST(ProfileConsistency, load_relocate_agrees_with_ld_audit) {
  if (find_audit_module(PROCFORGE_BUILD_DIR).empty()) GTEST_SKIP() << "procforge_audit.so not built (x86_64 only)";
  const std::string py = python3();
  if (py.empty()) GTEST_SKIP() << "python3 not installed";
  // Both clocks see the same interval. Only other work competing for the
  // CPUs (which delays the tracer's wake-ups) may excuse a disagreement: the
  // measurement is then repeated, up to five times, each attempt printed with
  // what the machine's CPU pressure was. The pressure excuses a disagreement
  // when the window was disturbed as a whole, or when tasks waited for a CPU
  // at least as long as the medians differ (PSI's total: contention that
  // large can shift a median of sub-millisecond phases by that much). On a
  // machine quieter than that a disagreement fails at once.
  procforge::Result<procforge::profile::Profile> r = procforge::Error{};
  for (int attempt = 1; attempt <= 5; ++attempt) {
    const procforge::testsupport::CpuContention window;
    r = profile(opts({py, "-c", "pass"}, 7));
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto machine = window.read();
    const auto& lr = r->phases[static_cast<int>(Phase::load_relocate)];
    ASSERT_TRUE(lr.present);
    ASSERT_GT(r->audit_load_relocate_us, 0) << "no LD_AUDIT records";
    const bool agree = std::abs(lr.wall_us.median - r->audit_load_relocate_us) <= 0.10 * r->audit_load_relocate_us;
    std::printf("attempt %d: load+relocate ptrace %.1f us, LD_AUDIT %.1f us (%s); %s\n", attempt, lr.wall_us.median,
                r->audit_load_relocate_us, agree ? "agree" : "disagree", machine.what.c_str());
    if (agree) break;
    const double difference = std::abs(lr.wall_us.median - r->audit_load_relocate_us);
    if (!machine.disturbed && machine.stall_us < difference) {
      std::printf(
          "the machine was quiet (tasks waited %.0f us for a CPU in all, less than the %.1f us difference): "
          "the disagreement stands\n",
          machine.stall_us, difference);
      break;
    }
    if (attempt < 5)
      std::printf(
          "the machine was busy (tasks waited %.0f us for a CPU, the medians differ by %.1f us): measuring again\n",
          machine.stall_us, difference);
  }
  const auto& lr = r->phases[static_cast<int>(Phase::load_relocate)];
  RecordProperty("ptrace_load_relocate_us", std::to_string(lr.wall_us.median));
  RecordProperty("audit_load_relocate_us", std::to_string(r->audit_load_relocate_us));
  EXPECT_NEAR(lr.wall_us.median, r->audit_load_relocate_us, 0.10 * r->audit_load_relocate_us);
  for (const auto& run : r->traced) EXPECT_TRUE(run.r_brk_matches) << "r_debug.r_brk names another address";
  // Every object of the link map was seen by la_objopen.
  bool libc = false;
  for (const auto& l : r->libraries) libc |= l.path.find("libc.so.6") != std::string::npos && l.load_us;
  EXPECT_TRUE(libc);
}

TEST(ProfileConsistency, page_faults_agree_with_wait4_rusage) {
  auto r = profile(opts({"/bin/ls", "-l", "/"}, 3));
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const auto& run : r->traced) {
    std::int64_t minflt = 0, majflt = 0;
    for (const auto& p : run.phases)
      if (p.present && p.phase != Phase::teardown) minflt += p.minflt, majflt += p.majflt;
    const double tolerance = std::max(3.0, 0.02 * static_cast<double>(run.rusage_minflt));
    EXPECT_NEAR(static_cast<double>(minflt), static_cast<double>(run.rusage_minflt), tolerance);
    EXPECT_EQ(majflt, run.rusage_majflt);
  }
}

TEST(ProfileConsistency, tracer_overhead_is_reported) {
  const std::string py = python3();
  if (py.empty()) GTEST_SKIP() << "python3 not installed";
  const procforge::testsupport::CpuContention window;
  auto r = profile(opts({py, "-c", "pass"}, 9));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto machine = window.read();
  ASSERT_GT(r->untraced_wall_us.n, 0);
  RecordProperty("untraced_median_us", std::to_string(r->untraced_wall_us.median));
  RecordProperty("overhead_net", std::to_string(r->overhead_net));
  RecordProperty("overhead_raw", std::to_string(r->overhead_raw));
  std::printf("python3 -c pass: untraced %.0f us, traced %.0f us raw; overhead %.3fx net, %.3fx raw\n",
              r->untraced_wall_us.median, r->wall_us.median, r->overhead_net, r->overhead_raw);
  std::printf("while profiling, %s\n", machine.what.c_str());
  EXPECT_TRUE(std::isfinite(r->overhead_net) && r->overhead_net > 0);
  // Tracing cannot halve a start-up; on a busy machine the untraced runs
  // (medians of their own) can be the ones that were preempted.
  if (!machine.disturbed) {
    EXPECT_GT(r->overhead_net, 0.5);
  }
  // The 1.2x goal holds for programs that start in 5 ms or more; gated only
  // where asked (a quiet machine), never in CI.
  if (getenv("PROCFORGE_GATE_OVERHEAD") && r->untraced_wall_us.median >= 5000) {
    EXPECT_LE(r->overhead_net, 1.2);
  }
}

TEST(ProfileConsistency, compare_interleaves_and_profiles_each_command) {
  Options a = opts({"/bin/true"}, 3), b = opts({"/bin/ls", "/"}, 3);
  a.untraced = b.untraced = false;
  auto r = compare({a, b});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].traced.size(), 3u);
  EXPECT_EQ((*r)[1].traced.size(), 3u);
  EXPECT_GT((*r)[1].libraries.size(), (*r)[0].libraries.size());  // ls links libselinux, libpcre2
}

}  // namespace
