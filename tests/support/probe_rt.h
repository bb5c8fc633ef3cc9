// The run time the no-libc probes share (probe_args.c, probe_state.c,
// probe_regs.c): raw x86_64 system calls, the two functions the compiler may
// call on its own, and a buffered stdout with number and escaped-string
// printers. Each probe includes it once; everything but memset/memcpy is
// static, and unused, so each probe keeps only what it calls.
#pragma once

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned short u16;

#define PROBE_RT __attribute__((unused)) static

#define SYS_write 1
#define SYS_exit_group 231

// The entry of a probe that needs nothing saved before C runs: clear the
// frame pointer, pass the initial stack pointer (argc, argv, envp, auxv) to
// probe_main(u64* sp), align the stack as the ABI wants at a call.
#define PROBE_START              \
  __asm__(                       \
      ".text\n"                  \
      ".global _start\n"         \
      ".type _start,@function\n" \
      "_start:\n"                \
      "  xor %ebp, %ebp\n"       \
      "  mov %rsp, %rdi\n"       \
      "  and $-16, %rsp\n"       \
      "  call probe_main\n"      \
      "  hlt\n")

PROBE_RT i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  i64 r;
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return r;
}
PROBE_RT i64 sys0(i64 n) { return sys6(n, 0, 0, 0, 0, 0, 0); }
PROBE_RT i64 sys1(i64 n, i64 a) { return sys6(n, a, 0, 0, 0, 0, 0); }
PROBE_RT i64 sys2(i64 n, i64 a, i64 b) { return sys6(n, a, b, 0, 0, 0, 0); }
PROBE_RT i64 sys3(i64 n, i64 a, i64 b, i64 c) { return sys6(n, a, b, c, 0, 0, 0); }
PROBE_RT i64 sys4(i64 n, i64 a, i64 b, i64 c, i64 d) { return sys6(n, a, b, c, d, 0, 0); }

__attribute__((noreturn)) PROBE_RT void sys_exit(int code) {
  for (;;) sys1(SYS_exit_group, code);
}

// The compiler may emit calls to these for loops and aggregate copies.
__attribute__((visibility("hidden"))) void* memset(void* d, int c, u64 n) {
  unsigned char* p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
__attribute__((visibility("hidden"))) void* memcpy(void* d, const void* s, u64 n) {
  unsigned char* p = d;
  const unsigned char* q = s;
  while (n--) *p++ = *q++;
  return d;
}

// ---- output: one buffer, written to fd 1 by flush() ------------------------

static char out[1 << 16];
static u64 out_len;

PROBE_RT void flush(void) {
  u64 off = 0;
  while (off < out_len) {
    i64 r = sys3(SYS_write, 1, (i64)(out + off), (i64)(out_len - off));
    if (r == -4) continue;  // EINTR
    if (r <= 0) sys_exit(3);
    off += (u64)r;
  }
  out_len = 0;
}

PROBE_RT void put_c(char c) {
  if (out_len == sizeof out) flush();
  out[out_len++] = c;
}

PROBE_RT void put_s(const char* s) {
  while (*s) put_c(*s++);
}

// Digits of v in the given base, most significant first, at least one.
PROBE_RT void put_base(u64 v, unsigned base) {
  char tmp[64];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n) put_c(tmp[--n]);
}

PROBE_RT void put_hex(u64 v) {
  put_s("0x");
  put_base(v, 16);
}

PROBE_RT void put_oct(u64 v) {
  put_c('0');
  put_base(v, 8);
}

PROBE_RT void put_dec(u64 v) { put_base(v, 10); }

PROBE_RT void put_sdec(i64 v) {
  if (v < 0) {
    put_c('-');
    put_dec((u64)0 - (u64)v);
  } else {
    put_dec((u64)v);
  }
}

// A failed call shows as "!<errno>".
PROBE_RT void put_err(i64 r) {
  put_c('!');
  put_dec((u64)-r);
}

// n bytes of s, NULs included: "\n" -> "\\n", "\\" -> "\\\\", other
// non-printable bytes (NUL too) -> "\xNN".
PROBE_RT void put_escaped_bytes(const char* s, u64 n) {
  for (u64 i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      put_s("\\n");
    } else if (c == '\\') {
      put_s("\\\\");
    } else if (c < 0x20 || c >= 0x7f) {
      put_s("\\x");
      put_c("0123456789abcdef"[c >> 4]);
      put_c("0123456789abcdef"[c & 15]);
    } else {
      put_c((char)c);
    }
  }
}

// At most n bytes of s, stopping at NUL, escaped as put_escaped_bytes().
PROBE_RT void put_escaped_n(const char* s, u64 n) {
  u64 len = 0;
  while (len < n && s[len]) ++len;
  put_escaped_bytes(s, len);
}
PROBE_RT void put_escaped(const char* s) { put_escaped_n(s, (u64)-1); }
