// probe_regs: prints the CPU state a new image starts with, then its own
// /proc/self/maps, then exits 0.
//
// _start saves every general register, rflags, MXCSR, the x87 control and
// status words, the segment selectors and xmm0-15 into static memory before
// anything else runs (the kernel's entry state: arch/x86/include/asm/elf.h
// ELF_PLAT_INIT, arch/x86/kernel/process_64.c start_thread_common(),
// fpu_flush_thread()); the fs and gs bases are read with arch_prctl.
//
// Output (stdout):
//   probe_regs v1
//   <reg>=0x<hex>        rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rflags
//   rsp%16=<n>
//   mxcsr= fcw= fsw= cs= ss= ds= es= fs= gs= fsbase= gsbase=   (0x<hex>)
//   xmm<i>=0x<hi>:<lo>
//   maps                 then /proc/self/maps verbatim
//   end
// No libc, raw syscalls only; static, -nostdlib.

#include "probe_rt.h"

u64 saved[64] __attribute__((used));  // see the slot numbers in _start

__asm__(
    ".text\n"
    ".global _start\n"
    ".type _start,@function\n"
    "_start:\n"
    "  mov %rax, saved+0(%rip)\n"
    "  mov %rbx, saved+8(%rip)\n"
    "  mov %rcx, saved+16(%rip)\n"
    "  mov %rdx, saved+24(%rip)\n"
    "  mov %rsi, saved+32(%rip)\n"
    "  mov %rdi, saved+40(%rip)\n"
    "  mov %rbp, saved+48(%rip)\n"
    "  mov %rsp, saved+56(%rip)\n"
    "  mov %r8, saved+64(%rip)\n"
    "  mov %r9, saved+72(%rip)\n"
    "  mov %r10, saved+80(%rip)\n"
    "  mov %r11, saved+88(%rip)\n"
    "  mov %r12, saved+96(%rip)\n"
    "  mov %r13, saved+104(%rip)\n"
    "  mov %r14, saved+112(%rip)\n"
    "  mov %r15, saved+120(%rip)\n"
    "  pushfq\n"
    "  pop %rax\n"
    "  mov %rax, saved+128(%rip)\n"
    "  stmxcsr saved+136(%rip)\n"
    "  fnstcw saved+144(%rip)\n"
    "  fnstsw saved+152(%rip)\n"
    "  mov %cs, %eax\n  mov %rax, saved+160(%rip)\n"
    "  mov %ss, %eax\n  mov %rax, saved+168(%rip)\n"
    "  mov %ds, %eax\n  mov %rax, saved+176(%rip)\n"
    "  mov %es, %eax\n  mov %rax, saved+184(%rip)\n"
    "  mov %fs, %eax\n  mov %rax, saved+192(%rip)\n"
    "  mov %gs, %eax\n  mov %rax, saved+200(%rip)\n"
    "  movdqu %xmm0, saved+256(%rip)\n"
    "  movdqu %xmm1, saved+272(%rip)\n"
    "  movdqu %xmm2, saved+288(%rip)\n"
    "  movdqu %xmm3, saved+304(%rip)\n"
    "  movdqu %xmm4, saved+320(%rip)\n"
    "  movdqu %xmm5, saved+336(%rip)\n"
    "  movdqu %xmm6, saved+352(%rip)\n"
    "  movdqu %xmm7, saved+368(%rip)\n"
    "  movdqu %xmm8, saved+384(%rip)\n"
    "  movdqu %xmm9, saved+400(%rip)\n"
    "  movdqu %xmm10, saved+416(%rip)\n"
    "  movdqu %xmm11, saved+432(%rip)\n"
    "  movdqu %xmm12, saved+448(%rip)\n"
    "  movdqu %xmm13, saved+464(%rip)\n"
    "  movdqu %xmm14, saved+480(%rip)\n"
    "  movdqu %xmm15, saved+496(%rip)\n"
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n"
    "  call probe_main\n"
    "  hlt\n");

static void put_reg(const char* name, u64 v) {
  put_s(name);
  put_c('=');
  put_hex(v);
  put_c('\n');
}

__attribute__((used)) void probe_main(void) {
  static const char* const names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",   "r8",
                                      "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rflags"};
  u64 fsbase = 0, gsbase = 0;
  i64 rf = sys3(158 /* arch_prctl */, 0x1003 /* ARCH_GET_FS */, (i64)&fsbase, 0);
  i64 rg = sys3(158, 0x1004 /* ARCH_GET_GS */, (i64)&gsbase, 0);
  put_s("probe_regs v1\n");
  for (int i = 0; i < 17; ++i) put_reg(names[i], saved[i]);
  put_s("rsp%16=");
  put_c((char)('0' + saved[7] % 16 / 10));
  put_c((char)('0' + saved[7] % 16 % 10));
  put_c('\n');
  put_reg("mxcsr", saved[17] & 0xffffffff);
  put_reg("fcw", saved[18] & 0xffff);
  put_reg("fsw", saved[19] & 0xffff);
  put_reg("cs", saved[20] & 0xffff);
  put_reg("ss", saved[21] & 0xffff);
  put_reg("ds", saved[22] & 0xffff);
  put_reg("es", saved[23] & 0xffff);
  put_reg("fs", saved[24] & 0xffff);
  put_reg("gs", saved[25] & 0xffff);
  put_reg("fsbase", rf == 0 ? fsbase : (u64)rf);
  put_reg("gsbase", rg == 0 ? gsbase : (u64)rg);
  for (int i = 0; i < 16; ++i) {
    char name[8] = "xmm";
    int n = 3;
    if (i >= 10) name[n++] = '1';
    name[n++] = (char)('0' + i % 10);
    name[n] = 0;
    put_s(name);
    put_c('=');
    put_hex(saved[32 + 2 * i + 1]);
    put_c(':');
    put_hex(saved[32 + 2 * i]);
    put_c('\n');
  }
  put_s("maps\n");
  i64 fd = sys3(2 /* open */, (i64) "/proc/self/maps", 0, 0);
  if (fd >= 0) {
    for (;;) {
      if (out_len == sizeof out) flush();
      i64 n = sys3(0 /* read */, fd, (i64)(out + out_len), (i64)(sizeof out - out_len));
      if (n <= 0) break;
      out_len += (u64)n;
    }
    sys3(3, fd, 0, 0);
  }
  put_s("end\n");
  flush();
  sys3(231, 0, 0, 0);
}
