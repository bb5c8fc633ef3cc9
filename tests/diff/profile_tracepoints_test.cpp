// The root-only tracepoint mode against ptrace and /proc: the kernel's
// sched_process_exec fires just before the ptrace exec stop, and every
// user-mode fault (page_fault_user) of a phase is among the faults /proc
// counts for it (which also counts faults taken in kernel mode).
//
// The event ids come from tracefs. Where it is not mounted (a minimal VM or
// container), the test mounts it for itself in a mount namespace of its own,
// so that the cross-check runs rather than skips. Only what the machine
// really lacks skips: root, tracefs in the kernel, the two tracepoints, or
// perf_event_open on them; anything else that fails is a failure.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

#include "procforge/profile.hpp"
#include "profile/tracepoints.hpp"
#include "support/cpu_contention.hpp"

namespace {

using namespace procforge::profile;

constexpr const char* kTracefs = "/sys/kernel/tracing";
constexpr long kTracefsMagic = 0x74726163;  // include/uapi/linux/magic.h TRACEFS_MAGIC

bool tracefs_mounted() {
  struct statfs s {};
  return statfs(kTracefs, &s) == 0 && s.f_type == kTracefsMagic;
}

bool kernel_has_tracefs() {
  std::ifstream f("/proc/filesystems");
  for (std::string line; std::getline(f, line);)
    if (line.size() >= 7 && line.compare(line.size() - 7, 7, "tracefs") == 0) return true;
  return false;
}

// Runs FN on a thread of its own. With PRIVATE_TRACEFS, that thread first
// leaves the process's mount namespace and mounts tracefs in its copy:
// unshare(CLONE_NEWNS) implies CLONE_FS (kernel/fork.c ksys_unshare()), which
// a thread may unshare alone, so the test process's other threads keep the
// host's mounts and the tracees this thread forks inherit the private one.
// Mounts are made slaves first so that nothing propagates back to the host.
// The namespace, and the mount, go away when the thread ends.
// Returns the step that failed, or nothing.
template <class F>
std::optional<std::string> on_thread(bool private_tracefs, F fn) {
  std::optional<std::string> failed;
  std::thread t([&] {
    if (private_tracefs) {
      if (unshare(CLONE_NEWNS) != 0) {
        failed = "unshare(CLONE_NEWNS): " + procforge::errno_name(errno);
        return;
      }
      if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
        failed = "making / a recursive slave: " + procforge::errno_name(errno);
        return;
      }
      if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) {
        failed = std::string("mount -t tracefs nodev ") + kTracefs + ": " + procforge::errno_name(errno);
        return;
      }
    }
    fn();
  });
  t.join();
  return failed;
}

TEST(ProfileTracepoints, kernel_exec_and_faults_agree_with_ptrace_and_proc) {
  if (geteuid() != 0) GTEST_SKIP() << "the tracepoint mode needs root (perf_event_open on tracepoints)";
  const bool mount_it = !tracefs_mounted();
  if (mount_it && !kernel_has_tracefs())
    GTEST_SKIP() << "tracefs is not mounted and the kernel has none (no tracefs in /proc/filesystems)";
  std::printf("tracefs: %s\n", mount_it ? "not mounted; mounted in a private mount namespace" : "mounted");

  std::optional<std::string> unavailable;
  procforge::Result<Profile> r = procforge::Error{};
  const procforge::testsupport::CpuContention window;
  auto failed = on_thread(mount_it, [&] {
    // The machine's verdict first, on this thread itself: the events exist
    // and perf_event_open accepts them. Only that may skip.
    auto probe = detail::open_tracepoints(static_cast<pid_t>(gettid()));
    if (!probe) {
      const int e = probe.error().err;
      if (e == ENOENT || e == EACCES || e == EPERM || e == ENODEV || e == EOPNOTSUPP)
        unavailable = probe.error().message;
      else r = probe.error();
      return;
    }
    detail::read_tracepoints(*probe);
    Options o;
    o.argv = {"/bin/ls", "/"};
    o.runs = 5;
    o.warmup = 1;
    o.untraced = false;
    o.audit_module = find_audit_module(PROCFORGE_BUILD_DIR);
    o.tracepoints = true;
    r = profile(o);
  });
  ASSERT_FALSE(failed) << "as root: " << *failed;
  if (unavailable) GTEST_SKIP() << "tracepoints unavailable on this kernel: " << *unavailable;
  ASSERT_TRUE(r.ok()) << r.error().message;

  const auto machine = window.read();
  std::int64_t total = 0;
  std::vector<double> wake_up;
  for (const auto& run : r->traced) {
    ASSERT_TRUE(run.tp_exec_us && run.ptrace_exec_us) << "no exec tracepoint sample";
    // exec_binprm(): trace_sched_process_exec() precedes ptrace_event(PTRACE_EVENT_EXEC).
    EXPECT_LE(*run.tp_exec_us, *run.ptrace_exec_us);
    wake_up.push_back(*run.ptrace_exec_us - *run.tp_exec_us);
    std::printf("exec tracepoint %.1f us, ptrace exec stop %.1f us after fork\n", *run.tp_exec_us, *run.ptrace_exec_us);
    ASSERT_EQ(run.tp_user_faults.size(), static_cast<std::size_t>(kPhaseCount));
    EXPECT_EQ(run.tp_lost, 0u);
    for (int k = 0; k < kPhaseCount; ++k) {
      if (!run.phases[k].present || k == static_cast<int>(Phase::teardown)) continue;
      EXPECT_LE(run.tp_user_faults[k], run.phases[k].minflt + run.phases[k].majflt)
          << phase_name(static_cast<Phase>(k));
      total += run.tp_user_faults[k];
    }
  }
  // The tracer's wake-up after the event: bounded when nothing else competed
  // for the CPUs, else only printed.
  const double median_wake_up = stats_of(wake_up).median;
  std::printf("tracer woke %.1f us after the exec tracepoint (median); %s\n", median_wake_up, machine.what.c_str());
  if (!machine.disturbed) {
    EXPECT_LT(median_wake_up, 2000.0) << "the tracer woke more than 2 ms late";
  }
  EXPECT_GT(total, 0) << "no user-mode page faults sampled";
}

}  // namespace
