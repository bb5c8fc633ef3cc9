// probe_args: prints what the kernel put on the initial stack, then exits 0.
//
// Output (stdout), one fact per line, in this order:
//   probe_args v1
//   argc <decimal>
//   argv[<i>]=<escaped>      \n -> "\n", \\ -> "\\", other non-printable -> \xNN
//   envc <decimal>
//   auxv <type-decimal> <value-hex>   every entry in stack order, AT_NULL excluded
//   rsp <hex> <rsp % 16>
//   end
//
// The initial stack layout follows fs/binfmt_elf.c create_elf_tables(): argc
// at rsp, argv pointers, NULL, envp pointers, NULL, auxv pairs, AT_NULL.
// No libc, raw syscalls only, and no data that needs relocating, so the same
// static-PIE binary works run directly, as the PT_INTERP of another ELF (it
// then only reports, it never starts the main program), as a #! interpreter
// and as a binfmt_misc interpreter.

typedef unsigned long u64;
typedef long i64;

#define SYS_write 1
#define SYS_exit_group 231

__asm__(
    ".text\n"
    ".global _start\n"
    ".type _start,@function\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call probe_main\n"
    "  hlt\n");

static i64 sys3(i64 n, i64 a, i64 b, i64 c) {
  i64 r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

__attribute__((noreturn)) static void sys_exit(int code) {
  for (;;) sys3(SYS_exit_group, code, 0, 0);
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

static char out[1 << 16];
static u64 out_len;

static void flush(void) {
  u64 off = 0;
  while (off < out_len) {
    i64 r = sys3(SYS_write, 1, (i64)(out + off), (i64)(out_len - off));
    if (r == -4) continue;  // EINTR
    if (r <= 0) sys_exit(3);
    off += (u64)r;
  }
  out_len = 0;
}

static void put_c(char c) {
  if (out_len == sizeof out) flush();
  out[out_len++] = c;
}

static void put_s(const char* s) {
  while (*s) put_c(*s++);
}

static void put_hex(u64 v) {
  char tmp[16];
  int n = 0;
  put_s("0x");
  do {
    unsigned d = (unsigned)(v & 15);
    tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v >>= 4;
  } while (v);
  while (n) put_c(tmp[--n]);
}

static void put_dec(u64 v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put_c(tmp[--n]);
}

static void put_escaped(const char* s) {
  for (; *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n') {
      put_s("\\n");
    } else if (c == '\\') {
      put_s("\\\\");
    } else if (c < 0x20 || c >= 0x7f) {
      unsigned hi = c >> 4, lo = c & 15;
      put_s("\\x");
      put_c((char)(hi < 10 ? '0' + hi : 'a' + hi - 10));
      put_c((char)(lo < 10 ? '0' + lo : 'a' + lo - 10));
    } else {
      put_c((char)c);
    }
  }
}

__attribute__((visibility("hidden"), used, noreturn)) void probe_main(u64* sp) {
  u64 argc = sp[0];
  char** argv = (char**)(sp + 1);
  char** envp = argv + argc + 1;
  put_s("probe_args v1\nargc ");
  put_dec(argc);
  put_c('\n');
  for (u64 i = 0; i < argc; ++i) {
    put_s("argv[");
    put_dec(i);
    put_s("]=");
    put_escaped(argv[i] ? argv[i] : "");
    put_c('\n');
  }
  u64 envc = 0;
  while (envp[envc]) ++envc;
  put_s("envc ");
  put_dec(envc);
  put_c('\n');
  u64* auxv = (u64*)(envp + envc + 1);
  for (; auxv[0] != 0; auxv += 2) {
    put_s("auxv ");
    put_dec(auxv[0]);
    put_c(' ');
    put_hex(auxv[1]);
    put_c('\n');
  }
  put_s("rsp ");
  put_hex((u64)sp);
  put_c(' ');
  put_dec((u64)sp & 15);
  put_s("\nend\n");
  flush();
  sys_exit(0);
}
