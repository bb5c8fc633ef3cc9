// Raw system calls for the code that runs between clone and execve.
//
// With CLONE_VM the child shares the parent's memory and its thread pointer,
// so glibc's errno in the child is the parent thread's errno, and glibc's
// set*id wrappers would broadcast SIGSETXID to the parent's threads
// (nptl/nptl_setxid.c). The child therefore calls the kernel directly and
// gets -errno back, as the kernel returns it (arch/x86/entry/entry_64.S: the
// result in rax, rcx and r11 clobbered). Code that runs in the child carries
// PF_CHILD_CODE: no sanitizer instrumentation, since it runs on a stack the
// sanitizer runtime does not know about.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>

#define PF_CHILD_CODE __attribute__((no_sanitize("address", "undefined")))
#define PF_CHILD_INLINE __attribute__((no_sanitize("address", "undefined"), always_inline)) inline

namespace procforge::spawn::sys {

template <class T>
PF_CHILD_INLINE long word(T v) {
  if constexpr (std::is_null_pointer_v<T>) return 0;
  else if constexpr (std::is_pointer_v<T>) return reinterpret_cast<long>(v);
  else return static_cast<long>(v);
}

#if defined(__x86_64__)
PF_CHILD_INLINE long raw6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
// Other architectures: glibc's syscall() is a thin assembly stub; its errno
// write lands in the (suspended) parent thread's errno, which it does not read.
PF_CHILD_INLINE long raw6(long n, long a, long b, long c, long d, long e, long f) {
  long r = ::syscall(n, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}
#endif

// call(SYS_x, args...) -> result, or -errno.
template <class... A>
PF_CHILD_INLINE long call(long n, A... a) {
  static_assert(sizeof...(A) <= 6);
  long w[6] = {word(a)...};
  return raw6(n, w[0], w[1], w[2], w[3], w[4], w[5]);
}

}  // namespace procforge::spawn::sys
