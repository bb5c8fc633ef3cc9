// The trampoline that performs the point of no return of a user-space exec:
// a position-independent blob copied into a page of its own, driven by a
// table of operations, using no stack and no memory but the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace procforge::user_exec {

// One operation: 8 words. kind 1: system call nr(a0..a5) that must succeed
// (else the process dies with SIGSEGV, as after the kernel's point of no
// return); kind 2: system call whose result is ignored; kind 3: zero a1
// bytes at a0; kind 4: copy a2 bytes from a1 to a0; kind 6: install the
// signal mask run_stub() was given; kind 5: unmap the table's pages and
// jump; kind 0: the end.
struct Op {
  std::uint64_t kind = 0, nr = 0, a[6] = {};
};
inline constexpr std::uint64_t kOpEnd = 0, kOpSyscall = 1, kOpSyscallIgnore = 2, kOpZero = 3, kOpCopy = 4,
                               kOpEndUnmap = 5, kOpRestoreMask = 6;

// The stub's machine code and where its two patchable slots sit in it.
std::span<const std::uint8_t> stub_code();
std::size_t stub_entry_slot();  // 8 bytes: the address to jump to
std::size_t stub_rsp_slot();    // 8 bytes: the stack pointer at entry

// Runs the stub copied at `code`: never returns. `mask`: the signal mask
// kind 6 installs (passed in a register, so that the caller need not write
// it into the table's pages, which a fork() shares copy-on-write).
[[noreturn]] void run_stub(const void* code, const Op* ops, const std::uint64_t* zero_word, const void* xsave_area,
                           const std::uint64_t* mask);

}  // namespace procforge::user_exec
