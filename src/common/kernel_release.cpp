// See kernel_release.hpp.
#include "common/kernel_release.hpp"

#include <sys/utsname.h>

#include <cstdio>

namespace procforge {

const KernelRelease& kernel_release() {
  static const KernelRelease r = [] {
    KernelRelease k;
    struct utsname u {};
    if (uname(&u) != 0) return k;
    k.text = u.release;
    k.parsed = std::sscanf(u.release, "%d.%d.%d", &k.major, &k.minor, &k.patch) >= 2;
    return k;
  }();
  return r;
}

}  // namespace procforge
