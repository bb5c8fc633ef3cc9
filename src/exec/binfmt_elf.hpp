// fs/binfmt_elf.c load_elf_binary() up to the point of no return (6.12 lines
// 819-997), for the native x86_64 handler and for compat_binfmt_elf (the same
// code built for Elf32, used when IA32 emulation is on). Everything checked
// here is returned to execve's caller as an errno.
#pragma once

#include <optional>
#include <vector>

#include "exec/bprm.hpp"
#include "procforge/elf.hpp"

namespace procforge::exec {

enum class HandlerResult { declined, failed, loaded, next_interpreter };

// An ELF file as the kernel has read it: the header from bprm->buf, the
// program header table as load_elf_phdrs() read it.
struct ElfImage {
  const ExecFile* file = nullptr;
  elf::Header h;
  std::vector<elf::ProgramHeader> ph;
  bool ia32 = false;
};

HandlerResult load_elf_binary(Context& ctx, Bprm& b, const BinprmBuf& buf, bool compat);

}  // namespace procforge::exec
