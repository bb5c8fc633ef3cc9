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

#include "probe_rt.h"

PROBE_START;

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
