// execveat() and fexecve(): what a descriptor changes at the start of an
// exec (fs/exec.c do_execveat_common(), alloc_bprm(), do_open_execat()).
#pragma once

#include <string>

#include "exec/bprm.hpp"

namespace procforge::exec {

// Before the file is opened: the flags, the name the kernel gives the file
// (bprm->filename, which a #! interpreter receives as the script's path) and
// whether that name dies with a close-on-exec descriptor. LOOKUP becomes the
// path to look up from CTX's cwd (which may be set to the descriptor's
// directory). False: the exec fails here (recorded in CTX).
bool execveat_start(Context& ctx, Bprm& b, std::string& lookup);

}  // namespace procforge::exec
