// Reading the kernel's tunables: the one reader of a number from a /proc or
// /sys file (sysctls such as fs.protected_symlinks, vm.mmap_rnd_bits), shared
// by the facts probe and the rules that consult a sysctl themselves.
#pragma once

namespace procforge::exec {

// The number at the start of the file at PATH; FALLBACK when it cannot be read.
long read_number(const char* path, long fallback);

}  // namespace procforge::exec
