// The hand-off from the kernel's half of a start to ld.so's: the exec model
// says whether the program starts through its PT_INTERP and with which
// environment and AT_SECURE; ld.so's request is made from that. What
// `procforge explain` does is exec::predict() followed by predict_after_exec().
#include <elf.h>

#include "procforge/exec.hpp"
#include "procforge/ldso.hpp"

namespace procforge::ldso {

std::optional<Request> request_after_exec(const exec::Request& req, const exec::Prediction& p, bool relocations,
                                          bool bindings) {
  if (p.outcome != exec::Outcome::ok || !p.plan || !p.plan->interp) return std::nullopt;
  Request lr;
  lr.program = p.plan->exe;
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
