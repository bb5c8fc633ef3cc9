// Running a program from a test and capturing what it did: its exit status
// or signal, its stdout and its stderr. Every test that runs a command (the
// real procforge binary, ld.so, gcc, readelf, ldconfig) goes through here, so
// that one place gets the details right: both pipes drained as they fill (a
// child blocked on a full pipe never exits), a deadline that kills, and a
// child that cannot be set up (chdir, the uid, a mount) reported as such
// rather than mistaken for the program's own failure. run_forked() is the
// same for a piece of the test itself run in a child.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace procforge::testsupport {

struct CommandResult {
  // fork+exec worked (exit_code 127 from a failed exec otherwise); false with
  // the step in err when the child could not be set up (a mount, the uid).
  bool started = false;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;  // killed (SIGKILL) at CommandOptions::timeout_ms
  std::string out, err;
};

struct CommandOptions {
  std::vector<std::string> env;  // the whole environment, unless inherit_env
  bool inherit_env = false;      // the test process's environment, then env
  std::string cwd;               // empty: inherit
  std::string stdin_text;        // the child's stdin (then EOF); empty: /dev/null
  std::optional<uid_t> uid;      // drop to this uid/gid before exec
  gid_t gid = 65534;
  std::optional<std::vector<gid_t>> groups;  // supplementary groups with uid; default {gid}
  int timeout_ms = 10000;
  // {source, target} bind mounts made in a private mount namespace of the
  // child (unshare(CLONE_NEWNS), / made private first, so nothing leaks out);
  // needs root.
  std::vector<std::pair<std::string, std::string>> bind_mounts;
};

// fork + execve(argv[0]) (no PATH search) with stdout/stderr captured.
CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& opts = {});

// What a forked child wrote and how it ended.
struct ForkResult {
  bool started = false;  // false: pipe or fork failed
  int exit_code = -1;    // -1 when killed by a signal
  int signal = 0;
  std::string out;
};

// Runs body(fd) in a forked child and _exit()s with what it returns; out is
// everything written to fd. For steps a test must not take itself (a seccomp
// filter, dropped credentials, a private mount namespace, an exec).
ForkResult run_forked(const std::function<int(int fd)>& body);

}  // namespace procforge::testsupport
