// The root-only tracepoint mode against ptrace and /proc: the kernel's
// sched_process_exec fires just before the ptrace exec stop, and every
// user-mode fault (page_fault_user) of a phase is among the faults /proc
// counts for it (which also counts faults taken in kernel mode).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "procforge/profile.hpp"

namespace {

using namespace procforge::profile;

TEST(ProfileTracepoints, kernel_exec_and_faults_agree_with_ptrace_and_proc) {
  if (geteuid() != 0) GTEST_SKIP() << "the tracepoint mode needs root (perf_event_open on tracepoints)";
  Options o;
  o.argv = {"/bin/ls", "/"};
  o.runs = 5;
  o.warmup = 1;
  o.untraced = false;
  o.audit_module = find_audit_module("");
  o.tracepoints = true;
  auto r = profile(o);
  if (!r && (r.error().err == EACCES || r.error().err == EPERM || r.error().err == ENOENT))
    GTEST_SKIP() << "tracepoints unavailable here: " << r.error().message;
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::int64_t total = 0;
  for (const auto& run : r->traced) {
    ASSERT_TRUE(run.tp_exec_us && run.ptrace_exec_us) << "no exec tracepoint sample";
    // exec_binprm(): trace_sched_process_exec() precedes ptrace_event(PTRACE_EVENT_EXEC).
    EXPECT_LE(*run.tp_exec_us, *run.ptrace_exec_us);
    EXPECT_LT(*run.ptrace_exec_us - *run.tp_exec_us, 2000.0) << "the tracer woke more than 2 ms late";
    std::printf("exec tracepoint %.1f us, ptrace exec stop %.1f us after fork\n", *run.tp_exec_us,
                *run.ptrace_exec_us);
    ASSERT_EQ(run.tp_user_faults.size(), static_cast<std::size_t>(kPhaseCount));
    EXPECT_EQ(run.tp_lost, 0u);
    for (int k = 0; k < kPhaseCount; ++k) {
      if (!run.phases[k].present || k == static_cast<int>(Phase::teardown)) continue;
      EXPECT_LE(run.tp_user_faults[k], run.phases[k].minflt + run.phases[k].majflt)
          << phase_name(static_cast<Phase>(k));
      total += run.tp_user_faults[k];
    }
  }
  EXPECT_GT(total, 0) << "no user-mode page faults sampled";
}

}  // namespace
