// fs/binfmt_elf.c after the point of no return: where the kernel maps the
// program and its interpreter, the bss, brk, the vDSO, and the initial stack
// with argv, envp and the auxiliary vector (load_elf_binary() 6.12 lines
// 1000-1370, elf_load(), load_elf_interp(), create_elf_tables();
// arch/x86/mm/mmap.c for the mmap base). A failure here is a SIGSEGV.
#pragma once

#include "exec/binfmt_elf.hpp"

namespace procforge::exec {

void build_layout(Context& ctx, Bprm& b, const ElfImage& main, const ElfImage* interp, bool exec_stack);

}  // namespace procforge::exec
