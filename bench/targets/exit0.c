/* The "static" spawn-benchmark target: the least a program can be. No libc,
 * no dynamic loader, no relocations: the kernel maps it, jumps to _start, and
 * it calls exit_group(0). Spawning it measures the spawn mechanism plus the
 * kernel's execve and exit, with no user-space startup on top
 * (`procforge bench spawn`, target "static"). Built -nostdlib -static. */
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "exit0.c: add the exit_group system call for this architecture"
#endif

void _start(void) __attribute__((noreturn, used));

void _start(void) {
#if defined(__x86_64__)
  __asm__ volatile("syscall" : : "a"(231), "D"(0) : "rcx", "r11", "memory");
#else
  register long x8 __asm__("x8") = 94;
  register long x0 __asm__("x0") = 0;
  __asm__ volatile("svc #0" : : "r"(x8), "r"(x0) : "memory");
#endif
  for (;;) {
  }
}
