// The kernel's own view of a traced run, for the root-only cross-check:
// tracepoints sched:sched_process_exec (fs/exec.c exec_binprm(), just before
// the ptrace exec event) and exceptions:page_fault_user (arch/x86/mm/fault.c),
// sampled on the tracee with CLOCK_MONOTONIC timestamps via perf_event_open.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "procforge/result.hpp"

namespace procforge::profile::detail {

struct TracepointSession {
  int fd[2] = {-1, -1};
  void* ring[2] = {nullptr, nullptr};
  std::size_t ring_bytes = 0;
};

struct TracepointSamples {
  std::optional<std::int64_t> exec_ns;      // sched_process_exec
  std::vector<std::int64_t> user_fault_ns;  // page_fault_user, in time order
  std::uint64_t lost = 0;                   // samples the ring buffer dropped
};

// Opens both events on `pid` (before it execs). EACCES/EPERM without root.
Result<TracepointSession> open_tracepoints(pid_t pid);
// Reads every sample and closes the session.
TracepointSamples read_tracepoints(TracepointSession& s);

}  // namespace procforge::profile::detail
