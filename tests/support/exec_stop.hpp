// The real kernel's execve() observed at the instant it finishes, before the
// new image runs a single instruction: a forked child asks to be traced
// (PTRACE_TRACEME), stops itself, and execs; with PTRACE_O_TRACEEXEC the
// tracer regains control at PTRACE_EVENT_EXEC (fs/exec.c exec_binprm() ->
// ptrace_event()), where the image is fully mapped and its stack and auxv are
// built. There we read /proc/PID/maps, /proc/PID/auxv and the registers, and
// kill the child. Nothing of the new program runs, so arbitrary system files
// can be exec'd safely. Optionally one instruction is single-stepped to see
// whether the entry point faults.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace procforge::testsupport {

struct ExecStopRequest {
  std::string path;               // passed to execve as is
  std::vector<std::string> argv;  // passed exactly (the stack layout depends on every byte)
  std::vector<std::string> envp;
  bool addr_no_randomize = true;  // personality(ADDR_NO_RANDOMIZE) in the child
  // Single-step the first instruction after the exec stop (only for images
  // expected to fault there: it is the one instruction of the new program that
  // may run).
  bool step_first_instruction = false;
  int timeout_ms = 5000;
};

enum class ExecStopOutcome {
  exec_failed,        // execve returned an error (err)
  stopped_after_exec, // PTRACE_EVENT_EXEC seen: maps, auxv, registers valid
  killed_during_exec, // the child died or got a fatal signal before the exec event (signal)
  harness_error,      // fork, pipe, ptrace, timeout ... (setup_error)
};

// A line of /proc/PID/maps.
struct MapsEntry {
  std::uint64_t start = 0, end = 0;
  int prot = 0;  // PROT_READ | PROT_WRITE | PROT_EXEC
  std::uint64_t offset = 0;
  std::uint64_t inode = 0;
  std::string name;  // path, "[stack]", "[vdso]", ... or empty
};

struct ExecStopResult {
  ExecStopOutcome outcome = ExecStopOutcome::harness_error;
  int err = 0;     // exec_failed
  int signal = 0;  // killed_during_exec
  std::vector<MapsEntry> maps;                                  // stopped_after_exec
  std::vector<std::pair<std::uint64_t, std::uint64_t>> auxv;    // up to and including AT_NULL
  std::uint64_t rip = 0, rsp = 0;
  bool compat = false;  // the new image runs in 32-bit mode (ia32)
  // step_first_instruction: the signal the first instruction stopped with:
  // SIGTRAP = it executed, SIGSEGV/SIGBUS = it faulted; 0 = not stepped.
  int first_step_signal = 0;
  std::string setup_error;
};

ExecStopResult exec_and_stop(const ExecStopRequest& req);

std::vector<MapsEntry> parse_maps(const std::string& text);

}  // namespace procforge::testsupport
