// struct linux_binprm, as far as the model needs it: the file being loaded,
// the argv being rewritten by interpreters, and the string space used on the
// new stack (fs/exec.c bprm_stack_limits(), copy_strings()).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "exec/context.hpp"
#include "exec/shebang.hpp"

namespace procforge::exec {

inline constexpr std::uint64_t kMaxArgStrlen = 32 * 4096;  // MAX_ARG_STRLEN, counts the NUL

struct Bprm {
  ExecFile file;                 // bprm->file, then bprm->interpreter
  std::string filename;          // bprm->filename: execve's path (AT_EXECFN)
  std::string interp;            // bprm->interp: name the next #! sees as "script path"
  std::deque<std::string> argv;  // low addresses first: argv[0] is the lowest string
  std::deque<std::string> envp;
  std::uint64_t limit = 0;                  // bytes of strings allowed (bprm->argmin)
  std::uint64_t used = 0;                   // bytes of strings copied so far
  std::uint64_t rlimit_stack = UINT64_MAX;  // the caller's RLIMIT_STACK: the stack VMA may not grow past it
  bool preserve_argv0 = false;              // AT_FLAGS_PRESERVE_ARGV0 (binfmt_misc P)
  bool execfd = false;                      // AT_EXECFD (binfmt_misc O)
  // BINPRM_FLAGS_PATH_INACCESSIBLE: filename is /dev/fd/N... of a
  // close-on-exec descriptor, gone once the exec succeeds.
  bool path_inaccessible = false;
  std::optional<std::string> enoexec_reason;  // the most specific reason a handler declined

  // copy_string_kernel(): push below everything copied so far, i.e. in front
  // of argv. False (E2BIG) when the string or the total is over the limit, or
  // when the pages holding the strings outgrow RLIMIT_STACK (get_arg_page()
  // -> expand_downwards() -> acct_stack_growth() fails).
  bool push_front(const std::string& s);
  // remove_arg_zero(): drop argv[0] and give back its bytes.
  void remove_arg_zero();
};

}  // namespace procforge::exec
