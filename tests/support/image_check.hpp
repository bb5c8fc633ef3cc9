// The plan's numbers against the image the kernel built, read at the exec
// stop (exec_stop.hpp): the stack pointer, the mm fields /proc/PID/stat shows
// and the initial stack byte for byte. Only what the plan claims to know is
// compared: with ASLR off (or with dice) that is every address; bytes that are
// random by design (AT_RANDOM's 16) or that the plan leaves open (an auxv
// value it does not know) are skipped. Each function returns one line per
// difference; empty = agreement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "exec_stop.hpp"
#include "procforge/exec.hpp"

namespace procforge::testsupport {

// rsp and mm->start_stack (create_elf_tables(): both are bprm->p), arg_start,
// arg_end, env_start, env_end: when the plan's stack addresses are exact
// (Plan::rsp). start_code, end_code, start_data, end_data: when the plan
// places the program's mappings, or rebased on kernel_exe_base (the kernel's
// load bias) when it places them only relative to the program's base.
// start_brk: when the plan knows it (Plan::brk; not when brk is randomised).
std::vector<std::string> compare_rsp_and_mm(const exec::Plan& plan, const ExecImage& k,
                                            std::optional<std::uint64_t> kernel_exe_base = std::nullopt);

// The bytes from rsp to the top of the stack against Plan::stack_tables and
// Plan::stack_strings (Request::want_stack_image), the gap between them zero.
std::vector<std::string> compare_stack_bytes(const exec::Plan& plan, const ExecImage& k);

// Whether the plan has a stack image to compare (exact addresses, a 64-bit
// image, Request::want_stack_image).
bool has_stack_image(const exec::Plan& plan);

}  // namespace procforge::testsupport
