// The hand-off from the kernel's half of a start to ld.so's: the exec model
// says whether the program starts through its PT_INTERP and with which
// environment and AT_SECURE; ld.so's request is made from that. What
// `procforge explain` does is exec::predict() followed by predict_after_exec().
// When the program the kernel runs is ld.so itself, ld.so's request comes
// from its command line (command_line.cpp).
#include <elf.h>

#include "procforge/exec.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

std::optional<Request> request_after_exec(const exec::Request& req, const exec::Prediction& p, bool relocations,
                                          bool bindings) {
  if (p.outcome != exec::Outcome::ok || !p.plan) return std::nullopt;
  Request lr;
  if (!p.plan->interp) {
    // The kernel ran ld.so itself: it reads its own command line (rtld.c
    // dl_main, rtld_is_main) and loads the FILE named there; the FILE's own
    // PT_INTERP plays no part. Anything else without PT_INTERP runs alone.
    if (!is_glibc_loader_file(p.plan->exe, req.cwd)) return std::nullopt;
    lr.command = parse_loader_command(p.argv);
    lr.program = lr.command->program;
    // ld.so's l_name is the name it was run by (rtld_progname).
    lr.explicit_loader = lr.command->ld_so_name.empty() ? p.plan->exe : lr.command->ld_so_name;
    lr.trace = lr.command->mode == LoaderCommand::Mode::list;
  } else {
    lr.program = p.plan->exe;
  }
  lr.envp = req.envp;
  lr.cwd = req.cwd;
  lr.relocations = relocations;
  lr.bindings = bindings;
  // ld.so learns about a secure exec from the auxv alone (elf/dl-sysdep.c
  // _dl_sysdep_start() -> __libc_enable_secure = AT_SECURE).
  for (const auto& a : p.plan->auxv)
    if (a.type == AT_SECURE && a.value) lr.secure = *a.value != 0;
  return lr;
}

std::optional<Prediction> predict_after_exec(const exec::Request& req, const exec::Prediction& p, const SystemInfo& sys,
                                             bool relocations, bool bindings) {
  auto lr = request_after_exec(req, p, relocations, bindings);
  if (!lr) return std::nullopt;
  auto r = resolve(*lr, sys);
  if (!r) {
    Prediction failed;
    failed.warnings.push_back("the dynamic linker's part could not be predicted: " + r.error().message);
    return failed;
  }
  return std::move(*r);
}

}  // namespace procforge::ldso
