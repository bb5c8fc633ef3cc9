// The real kernel as the expected side of exec differential tests: run one
// execve() in a forked child under chosen credentials, cwd, personality and
// RLIMIT_STACK, and report what happened: execve's errno, a signal, or a
// normal exit with the child's stdout. The child is traced (PTRACE_TRACEME +
// PTRACE_O_TRACEEXEC) so a SIGSEGV can be placed before the point of no
// return's success (killed while loading, fs/exec.c bprm_execve() ->
// force_fatal_sig) or after it (the new image faulted).
//
// When the new image is probe_args, its report (argv, auxv, rsp) is parsed.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exec_stop.hpp"

namespace procforge::testsupport {

struct OracleRequest {
  std::string path;
  std::vector<std::string> argv;
  bool argv_null = false;
  std::vector<std::string> envp;
  std::string cwd;                // empty: inherit
  bool keep_credentials = false;  // true: exec as the caller (root); false: as uid/gid below
  uid_t uid = 65534;
  gid_t gid = 65534;
  std::vector<gid_t> groups;  // supplementary groups after setgroups()
  bool addr_no_randomize = false;
  rlim_t rlimit_stack = 8ull << 20;  // soft limit set in the child (RLIM_INFINITY allowed)
  int timeout_ms = 5000;
  bool trace = true;            // use ptrace to see the exec event
  bool capture_stderr = false;  // stderr to a pipe (OracleResult::err_out) instead of /dev/null
  bool capture_image = false;   // read the new image at the exec stop (OracleResult::image; needs trace)
};

enum class OracleOutcome { ok, error, killed };

struct ProbeReport {
  bool ran = false;  // the "probe_args v1 ... end" report was complete
  std::vector<std::string> argv;
  std::size_t envc = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> auxv;
  std::uint64_t rsp = 0;
};

struct OracleResult {
  OracleOutcome outcome = OracleOutcome::error;
  int err = 0;          // execve's errno (outcome error)
  int signal = 0;       // terminating signal (outcome killed)
  int exit_status = 0;  // outcome ok
  // Whether execve() itself succeeded (PTRACE_EVENT_EXEC seen); only
  // meaningful when exec_known.
  bool exec_known = false;
  bool exec_succeeded = false;
  bool timed_out = false;
  std::string setup_error;  // the harness itself failed (fork, pipe, setresuid...)
  std::string out;          // child's stdout
  std::string err_out;      // child's stderr when OracleRequest::capture_stderr
  ProbeReport probe;
  // capture_image: the image as the exec stop showed it, before it ran; or
  // why the kernel would not show it to us (not root: kImageNotDumpable).
  std::optional<ExecImage> image;
  std::string image_hidden;
};

OracleResult run_exec(const OracleRequest& req);

// The harness of run_exec() with another last step in the child: after the
// child is set up (fds, rlimit, personality, cwd, credentials) it calls
// replace(ctx) instead of execve(). replace runs between fork and exec: raw
// system calls only; it returns only on failure, with an errno (reported as
// outcome error). The user-space loader (user_exec.hpp) runs through this.
using ReplaceImage = int (*)(const void* ctx);
OracleResult run_child(const OracleRequest& req, ReplaceImage replace, const void* ctx);

ProbeReport parse_probe_report(const std::string& out);

// "ok exit 0", "error ENOENT", "killed SIGSEGV (after exec)".
std::string describe(const OracleResult& r);

}  // namespace procforge::testsupport
