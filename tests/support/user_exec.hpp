// The user-space loader (procforge/loader.hpp) as the other side of the exec
// differential tests: run one exec of a program the way oracle.hpp runs the
// kernel's, but replace the child's image with loader::prepare() + enter()
// instead of execve(), and report the same OracleResult.
//
// prepare() runs in the parent (root) with Request::creds set to the
// identity the child will have (nobody by default), so the exec model
// decides permissions as the kernel would for that identity; a refusal before
// the point of no return is outcome error with the kernel's errno. The child
// is then set up exactly as the kernel oracle's (stdin /dev/null, stdout and
// stderr to pipes, RLIMIT_STACK, personality, cwd, then setgroups/setresgid/
// setresuid) and calls enter(). The files the loader maps were opened by
// prepare() in the parent, so the child does not need read permission on them;
// a real unprivileged user-space exec does (the loader must mmap what the
// kernel would only execute): needs_read_permission() tells the tests which
// cases that is, so they can exclude them with that reason.
#pragma once

#include <string>
#include <vector>

#include "oracle.hpp"
#include "procforge/exec.hpp"

namespace procforge::testsupport {

struct UserExecDetail {
  bool prepared = false;                  // prepare() succeeded
  std::string prepare_error;              // its message otherwise
  exec::Prediction prediction;            // what the exec model decided (when prepared)
  std::vector<std::string> differences;   // Prepared::differences()
  std::vector<std::string> mapped_files;  // files the loader maps (absolute where the plan named them so)
};

// outcome error: prepare()'s errno (before the point of no return);
// killed/ok: what the child did after enter(). exec_known is always false
// (there is no exec event to trace).
OracleResult run_user_exec(const OracleRequest& req, UserExecDetail* detail = nullptr);

// The files among `files` that uid/gid (with `groups`) could execute but not
// read: a user-space exec by that identity cannot map them. Checked by a
// child that takes the identity and opens each file read-only.
std::vector<std::string> unreadable_by(const std::vector<std::string>& files, uid_t uid, gid_t gid,
                                       const std::vector<gid_t>& groups);

}  // namespace procforge::testsupport
