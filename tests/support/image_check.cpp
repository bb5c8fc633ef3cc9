#include "image_check.hpp"

#include <elf.h>

#include <algorithm>
#include <optional>

#include "procforge/format.hpp"

namespace procforge::testsupport {
namespace {

void field(std::vector<std::string>& diffs, const char* name, std::uint64_t kernel, std::uint64_t model) {
  if (kernel != model) diffs.push_back(std::string(name) + ": kernel " + hex(kernel) + ", model " + hex(model));
}

// The load bias to add to the plan's program addresses, or nothing when the
// plan does not place the program and no kernel base is given.
std::optional<std::uint64_t> program_shift(const exec::Plan& plan, std::optional<std::uint64_t> kernel_exe_base) {
  bool any = false, placed = true;
  for (const auto& m : plan.mappings) {
    if (!m.file_backed || m.object != plan.exe) continue;
    any = true;
    placed = placed && m.address_known;
  }
  if (!any) return std::nullopt;
  if (placed) return 0;
  if (kernel_exe_base && plan.exe_base) return *kernel_exe_base - *plan.exe_base;
  return std::nullopt;
}

// Which part of create_elf_tables()'s output an address is in.
std::string region_of(const exec::Plan& plan, std::uint64_t a) {
  const std::uint64_t rsp = *plan.rsp;
  if (a < rsp + 8) return "argc";
  if (a < plan.auxv_addr) return "argv[]/envp[] pointers";
  if (a < plan.auxv_addr + 16 * plan.auxv.size()) {
    const auto& e = plan.auxv[(a - plan.auxv_addr) / 16];
    return std::string("auxv ") + exec::auxv_name(e.type) + ((a - plan.auxv_addr) % 16 < 8 ? " type" : " value");
  }
  if (a < rsp + plan.stack_tables.size()) return "AT_RANDOM bytes / platform string";
  if (a < plan.stack_strings_start) return "gap below the strings";
  return "argument/environment strings";
}

}  // namespace

std::vector<std::string> compare_rsp_and_mm(const exec::Plan& plan, const ExecImage& k,
                                            std::optional<std::uint64_t> kernel_exe_base) {
  std::vector<std::string> diffs;
  if (plan.rsp) {
    field(diffs, "rsp", k.rsp, *plan.rsp);
    field(diffs, "start_stack", k.mm.start_stack, *plan.rsp);
    field(diffs, "arg_start", k.mm.arg_start, plan.arg_start);
    field(diffs, "arg_end", k.mm.arg_end, plan.arg_end);
    field(diffs, "env_start", k.mm.env_start, plan.env_start);
    field(diffs, "env_end", k.mm.env_end, plan.env_end);
  }
  if (const auto shift = program_shift(plan, kernel_exe_base)) {
    field(diffs, "start_code", k.mm.start_code, plan.start_code + *shift);
    field(diffs, "end_code", k.mm.end_code, plan.end_code + *shift);
    field(diffs, "start_data", k.mm.start_data, plan.start_data + *shift);
    field(diffs, "end_data", k.mm.end_data, plan.end_data + *shift);
  }
  if (plan.brk) field(diffs, "start_brk", k.mm.start_brk, *plan.brk);
  return diffs;
}

bool has_stack_image(const exec::Plan& plan) { return plan.rsp && !plan.stack_tables.empty(); }

std::vector<std::string> compare_stack_bytes(const exec::Plan& plan, const ExecImage& k) {
  std::vector<std::string> diffs;
  if (!has_stack_image(plan)) return diffs;
  const std::uint64_t rsp = *plan.rsp;
  const std::uint64_t top = plan.stack_strings_start + plan.stack_strings.size();
  if (k.stack_end != top) diffs.push_back("stack top: kernel " + hex(k.stack_end) + ", model " + hex(top));

  // The expected bytes of [rsp, top) and which of them the plan knows.
  std::vector<std::uint8_t> want(top - rsp, 0);
  std::vector<bool> known(want.size(), true);
  std::copy(plan.stack_tables.begin(), plan.stack_tables.end(), want.begin());
  std::copy(plan.stack_strings.begin(), plan.stack_strings.end(),
            want.begin() + static_cast<long>(plan.stack_strings_start - rsp));
  auto unknown = [&](std::uint64_t from, std::uint64_t len) {
    for (std::uint64_t a = from; a < from + len; ++a)
      if (a >= rsp && a < top) known[a - rsp] = false;
  };
  for (std::size_t i = 0; i < plan.auxv.size(); ++i) {
    const auto& e = plan.auxv[i];
    if (!e.value) unknown(plan.auxv_addr + 16 * i + 8, 8);      // written as 0 in the plan's image
    if (e.type == AT_RANDOM && e.value) unknown(*e.value, 16);  // get_random_bytes(): random by design
  }

  // Word by word from rsp, so that a difference names a pointer or an auxv slot.
  int shown = 0, more = 0;
  for (std::uint64_t w = rsp; w < top; w += 8) {
    std::uint64_t kv = 0, mv = 0;
    bool differs = false, missing = false;
    for (std::uint64_t a = w; a < std::min(w + 8, top); ++a) {
      const std::uint64_t i = a - rsp;
      if (!known[i]) continue;
      if (a < k.rsp || a >= k.stack_end) {
        missing = true;
        continue;
      }
      const std::uint8_t kb = k.stack[a - k.rsp];
      kv |= static_cast<std::uint64_t>(kb) << (8 * (a - w));
      mv |= static_cast<std::uint64_t>(want[i]) << (8 * (a - w));
      differs = differs || kb != want[i];
    }
    if (!differs && !missing) continue;
    if (shown++ >= 4) {
      ++more;
      continue;
    }
    diffs.push_back("stack " + hex(w) + " (" + region_of(plan, w) + "): " +
                    (missing ? std::string("not in the kernel's stack") : "kernel " + hex(kv) + ", model " + hex(mv)));
  }
  if (more) diffs.push_back("... " + std::to_string(more) + " more differing stack words");
  return diffs;
}

}  // namespace procforge::testsupport
