// The static probes (and other programs of the build) for a child that is not
// root when it calls execve().
//
// The build tree may lie below a directory only its owner can enter
// (mktemp -d makes them 0700). Path lookup needs search (x) permission on
// every directory on the way (fs/namei.c may_lookup() ->
// inode_permission(MAY_EXEC)), so a child that dropped to nobody, or became
// root of a user namespace mapped to another uid, gets EACCES from execve()
// there. These give a copy in a directory of its own that every user may
// search (0755), made once per test program and removed when it exits.
#pragma once

#include <string>

namespace procforge::testsupport {

// The path of a copy of the file at `path` that any user can execute, the
// same for every call in this process. Empty, with the reason in *why, when
// the copy could not be made: a harness failure, which the caller reports as
// one.
std::string executable_for_anyone(const std::string& path, std::string* why = nullptr);

// executable_for_anyone() of the probe `name` (e.g. "probe_state").
std::string probe_for_anyone(const std::string& name, std::string* why = nullptr);

}  // namespace procforge::testsupport
