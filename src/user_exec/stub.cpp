// The stub in assembly. Kind 5 ends the table: it loads the initial FPU
// state, unmaps the table's own pages (a0, a1) and jumps, reading nothing but
// the code page afterwards. Register use: r12 = current op, r13 = an 8-byte zero
// (an empty signal mask for the death path), r14 = a zeroed XSAVE area whose
// header marks every component "initial" and whose MXCSR is 0x1f80, r15 =
// the signal mask kind 6 installs.
//
// The entry state is the kernel's (arch/x86/include/asm/elf.h
// ELF_PLAT_INIT, arch/x86/kernel/process_64.c start_thread_common()): every
// general register 0 except rsp, rflags 0x202, FPU/SSE/AVX in their initial
// state (fpu_flush_thread()).
#include "user_exec/stub.hpp"

#include <sys/syscall.h>

extern "C" {
extern const std::uint8_t procforge_stub_begin[];
extern const std::uint8_t procforge_stub_end[];
extern const std::uint8_t procforge_stub_entry_slot[];
extern const std::uint8_t procforge_stub_rsp_slot[];
}

asm(R"(
    .pushsection .text.procforge_stub, "ax", @progbits
    .globl procforge_stub_begin, procforge_stub_end, procforge_stub_entry_slot, procforge_stub_rsp_slot
    .hidden procforge_stub_begin, procforge_stub_end, procforge_stub_entry_slot, procforge_stub_rsp_slot
    .p2align 4
procforge_stub_begin:
    mov %rsi, %r12
    mov %rdx, %r13
    mov %rcx, %r14
    mov %rdi, %r15
1:  mov (%r12), %rax
    test %rax, %rax
    jz 9f
    cmp $3, %rax
    je 3f
    cmp $4, %rax
    je 4f
    cmp $5, %rax
    je 5f
    cmp $6, %rax
    je 6f
    mov 8(%r12), %rax
    mov 16(%r12), %rdi
    mov 24(%r12), %rsi
    mov 32(%r12), %rdx
    mov 40(%r12), %r10
    mov 48(%r12), %r8
    mov 56(%r12), %r9
    syscall
    cmpq $1, (%r12)
    jne 2f
    cmp $-4095, %rax
    jae 8f
2:  add $64, %r12
    jmp 1b
3:  mov 16(%r12), %rdi
    mov 24(%r12), %rcx
    xor %eax, %eax
    cld
    rep stosb
    jmp 2b
4:  mov 16(%r12), %rdi
    mov 24(%r12), %rsi
    mov 32(%r12), %rcx
    cld
    rep movsb
    jmp 2b
6:  mov $14, %eax
    mov $2, %edi
    mov %r15, %rsi
    xor %edx, %edx
    mov $8, %r10d
    syscall
    jmp 2b
8:  mov $14, %eax
    mov $2, %edi
    mov %r13, %rsi
    xor %edx, %edx
    mov $8, %r10d
    syscall
    mov $39, %eax
    syscall
    mov %rax, %rdi
    mov $11, %esi
    mov $62, %eax
    syscall
    mov $231, %eax
    mov $139, %edi
    syscall
    hlt
5:  mov 16(%r12), %rdi
    mov 24(%r12), %rsi
    mov $-1, %eax
    mov $-1, %edx
    xrstor64 (%r14)
    mov $11, %eax
    syscall
    jmp 10f
9:  mov $-1, %eax
    mov $-1, %edx
    xrstor64 (%r14)
10: mov procforge_stub_rsp_slot(%rip), %rsp
    cld
    mov $1, %eax
    add $0, %eax
    mov $0, %eax
    mov $0, %ebx
    mov $0, %ecx
    mov $0, %edx
    mov $0, %esi
    mov $0, %edi
    mov $0, %ebp
    mov $0, %r8d
    mov $0, %r9d
    mov $0, %r10d
    mov $0, %r11d
    mov $0, %r12d
    mov $0, %r13d
    mov $0, %r14d
    mov $0, %r15d
    jmp *procforge_stub_entry_slot(%rip)
    .p2align 3
procforge_stub_entry_slot:
    .quad 0
procforge_stub_rsp_slot:
    .quad 0
procforge_stub_end:
    .popsection
)");

namespace procforge::user_exec {

std::span<const std::uint8_t> stub_code() {
  return {procforge_stub_begin, static_cast<std::size_t>(procforge_stub_end - procforge_stub_begin)};
}
std::size_t stub_entry_slot() { return static_cast<std::size_t>(procforge_stub_entry_slot - procforge_stub_begin); }
std::size_t stub_rsp_slot() { return static_cast<std::size_t>(procforge_stub_rsp_slot - procforge_stub_begin); }

void run_stub(const void* code, const Op* ops, const std::uint64_t* zero_word, const void* xsave_area,
              const std::uint64_t* mask) {
  // rdi = mask, rsi = ops, rdx = zero word, rcx = xsave area.
  asm volatile("jmp *%0" : : "r"(code), "D"(mask), "S"(ops), "d"(zero_word), "c"(xsave_area) : "memory");
  __builtin_unreachable();
}

}  // namespace procforge::user_exec
