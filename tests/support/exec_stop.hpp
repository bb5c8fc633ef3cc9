// The real kernel's execve() observed at the instant it finishes, before the
// new image runs a single instruction: a forked child asks to be traced
// (PTRACE_TRACEME), stops itself, and execs; with PTRACE_O_TRACEEXEC the
// tracer regains control at PTRACE_EVENT_EXEC (fs/exec.c exec_binprm() ->
// ptrace_event()), where the image is fully mapped and its stack and auxv are
// built. There we read /proc/PID/maps, /proc/PID/auxv, the registers, the mm
// fields of /proc/PID/stat and the initial stack's bytes, and kill the child. Nothing of the new program runs, so
// arbitrary system files can be exec'd safely. Optionally one instruction is single-stepped to see whether the entry
// point faults.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace procforge::testsupport {

struct ExecStopRequest {
  std::string path;               // passed to execve as is
  std::vector<std::string> argv;  // passed exactly (the stack layout depends on every byte)
  std::vector<std::string> envp;
  bool addr_no_randomize = true;  // personality(ADDR_NO_RANDOMIZE) in the child
  // Single-step the first instruction after the exec stop, to see whether the
  // entry faults. It is the one instruction of the new program that runs (an
  // entry point's first instruction sets up registers: harmless).
  bool step_first_instruction = false;
  int timeout_ms = 5000;
};

enum class ExecStopOutcome {
  exec_failed,         // execve returned an error (err)
  stopped_after_exec,  // PTRACE_EVENT_EXEC seen: maps, auxv, registers valid
  killed_during_exec,  // the child died or got a fatal signal before the exec event (signal)
  harness_error,       // fork, pipe, ptrace, timeout ... (setup_error)
};

// A line of /proc/PID/maps.
struct MapsEntry {
  std::uint64_t start = 0, end = 0;
  int prot = 0;  // PROT_READ | PROT_WRITE | PROT_EXEC
  std::uint64_t offset = 0;
  std::uint64_t inode = 0;
  std::string name;  // path, "[stack]", "[vdso]", ... or empty
};

// The mm_struct fields /proc/PID/stat shows (fs/proc/array.c do_task_stat(),
// fields 26-28 and 45-51), as load_elf_binary() and create_elf_tables() set
// them.
struct MmFields {
  std::uint64_t start_code = 0, end_code = 0, start_stack = 0;
  std::uint64_t start_data = 0, end_data = 0, start_brk = 0;
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};

// The new image as the kernel left it at the exec stop.
struct ExecImage {
  std::vector<MapsEntry> maps;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> auxv;  // up to and including AT_NULL
  std::uint64_t rip = 0, rsp = 0;
  bool compat = false;  // the new image runs in 32-bit mode (ia32)
  MmFields mm;
  // The stack's bytes from rsp to the end of the [stack] mapping (stack_end).
  std::vector<std::uint8_t> stack;
  std::uint64_t stack_end = 0;
};

// Reads the image of a traced child stopped at PTRACE_EVENT_EXEC. Returns
// what failed (the child is left as it is), or an empty string. A reason that
// starts with kImageNotDumpable is no harness failure: without
// CAP_SYS_PTRACE the kernel hides a non-dumpable image even from its tracer.
inline constexpr const char* kImageNotDumpable = "image not dumpable and no CAP_SYS_PTRACE: ";
std::string read_exec_image(pid_t pid, ExecImage* out);

struct ExecStopResult : ExecImage {  // the image: when stopped_after_exec
  ExecStopOutcome outcome = ExecStopOutcome::harness_error;
  int err = 0;     // exec_failed
  int signal = 0;  // killed_during_exec
  // step_first_instruction: the signal the first instruction stopped with:
  // SIGTRAP = it executed, SIGSEGV/SIGBUS = it faulted; 0 = not stepped.
  int first_step_signal = 0;
  std::string setup_error;
};

ExecStopResult exec_and_stop(const ExecStopRequest& req);

std::vector<MapsEntry> parse_maps(const std::string& text);
// The mm fields of a /proc/PID/stat line; empty when it has too few fields.
std::optional<MmFields> parse_stat_mm(const std::string& text);

}  // namespace procforge::testsupport
