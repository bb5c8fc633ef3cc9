// The running kernel's release as uname(2) gives it ("6.1.0-18-amd64"), and
// its leading numbers, for rules that changed at a version (e.g. a core dump
// spares the mm's other thread groups since 5.16). Read once per process:
// the release cannot change under a running process.
#pragma once

#include <string>

namespace procforge {

struct KernelRelease {
  std::string text;  // utsname.release; empty when uname() failed
  int major = 0, minor = 0, patch = 0;
  bool parsed = false;  // text starts with MAJOR.MINOR

  [[nodiscard]] bool at_least(int maj, int min) const {
    return parsed && (major > maj || (major == maj && minor >= min));
  }
};

// Thread-safe (a function-local static).
const KernelRelease& kernel_release();

}  // namespace procforge
