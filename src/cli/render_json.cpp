// JSON rendering of a prediction. The fields under "execve" (result, errno,
// argv, chain) and the presence of "elf", "mappings" and "auxv" are a stable
// contract; the rest may grow.
#include <elf.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstring>

#include "cli/cli.hpp"
#include "procforge/format.hpp"

namespace procforge::cli {

namespace {

using nlohmann::json;

const char* kind_name(exec::LinkKind k) {
  switch (k) {
    case exec::LinkKind::script: return "script";
    case exec::LinkKind::elf: return "elf";
    case exec::LinkKind::misc: return "misc";
  }
  return "elf";
}

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json opt_hex(const std::optional<std::uint64_t>& v) { return v ? json(hex(*v)) : json(nullptr); }

}  // namespace

json render_json(const exec::Request& req, const exec::Prediction& p, bool show_env) {
  json envp = json::array();
  for (const auto& kv : req.envp) envp.push_back(show_env ? kv : kv.substr(0, kv.find('=')));
  json j;
  const char* result = p.outcome == exec::Outcome::ok ? "ok" : p.outcome == exec::Outcome::error ? "errno" : "killed";
  json chain = json::array();
  for (const auto& c : p.chain)
    chain.push_back({{"path", c.path},
                     {"kind", kind_name(c.kind)},
                     {"interpreter", opt(c.interpreter)},
                     {"arg", opt(c.arg)},
                     {"misc_entry", c.misc_entry.empty() ? json(nullptr) : json(c.misc_entry)}});
  json checks = json::array();
  for (const auto& c : p.checks)
    checks.push_back(
        {{"step", c.step}, {"object", c.object}, {"passed", c.passed}, {"detail", c.detail}, {"rule", c.rule}});
  j["execve"] = {
      {"path", req.path},
      {"result", result},
      {"errno", p.outcome == exec::Outcome::error ? json(errno_name(p.err)) : json(nullptr)},
      {"signal",
       p.outcome == exec::Outcome::killed
           ? json(sigabbrev_np(p.signal) ? std::string("SIG") + sigabbrev_np(p.signal) : std::to_string(p.signal))
           : json(nullptr)},
      {"killed_at_first_instruction", p.killed_at_first_instruction},
      {"argv", p.argv},
      {"envp", envp},  // keys only unless show_env
      {"chain", chain},
      {"checks", checks},
      {"failed_step", p.failed_step.empty() ? json(nullptr) : json(p.failed_step)},
      {"failed_object", p.failed_object.empty() ? json(nullptr) : json(p.failed_object)},
      {"diagnosis", p.diagnosis.empty() ? json(nullptr) : json(p.diagnosis)},
      {"fix", p.fix.empty() ? json(nullptr) : json(p.fix)},
      {"rules_applied", p.rules_applied},
  };
  if (p.elf_header) {
    const auto& h = *p.elf_header;
    json ph = json::array();
    for (const auto& s : p.elf_phdrs)
      ph.push_back({{"type", elf::segment_type_name(s.type)},
                    {"flags", elf::segment_flags_string(s.flags)},
                    {"offset", hex(s.offset)},
                    {"vaddr", hex(s.vaddr)},
                    {"filesz", hex(s.filesz)},
                    {"memsz", hex(s.memsz)},
                    {"align", hex(s.align)}});
    j["elf"] = {{"class", h.is64 ? 64 : 32},
                {"ei_class", h.ei_class},
                {"ei_data", h.ei_data},
                {"type", elf::type_name(h.type)},
                {"machine", elf::machine_name(h.machine)},
                {"entry", hex(h.entry)},
                {"phoff", hex(h.phoff)},
                {"phnum", h.phnum},
                {"phentsize", h.phentsize},
                {"program_headers", ph}};
  } else {
    j["elf"] = nullptr;
  }
  json maps = json::array(), auxv = json::array();
  if (p.plan) {
    const auto& pl = *p.plan;
    for (const auto& m : pl.mappings)
      maps.push_back({{"object", m.object},
                      {"start", m.address_known ? json(hex(m.start)) : json(static_cast<std::int64_t>(m.start))},
                      {"end", m.address_known ? json(hex(m.end)) : json(static_cast<std::int64_t>(m.end))},
                      {"prot", prot_string(m.prot)},
                      {"file_offset", m.file_backed ? json(hex(m.file_offset)) : json(nullptr)},
                      {"address_known", m.address_known},
                      {"relative_to", m.base_symbol.empty() ? json(nullptr) : json(m.base_symbol)},
                      {"note", m.note}});
    for (const auto& a : pl.auxv)
      auxv.push_back({{"type", a.type}, {"name", a.name}, {"value", opt_hex(a.value)}, {"describe", a.describe}});
    j["plan"] = {{"exe", pl.exe},
                 {"interpreter", opt(pl.interp)},
                 {"exe_base", opt_hex(pl.exe_base)},
                 {"exe_randomized", pl.exe_randomized},
                 {"interp_base", opt_hex(pl.interp_base)},
                 {"interp_randomized", pl.interp_randomized},
                 {"entry", opt_hex(pl.entry)},
                 {"entry_in_interpreter", pl.entry_in_interp},
                 {"brk", opt_hex(pl.brk)},
                 {"brk_rule", pl.brk_rule},
                 {"executable_stack", pl.executable_stack},
                 {"stack_top", hex(pl.stack_top)},
                 {"stack_randomized", pl.stack_randomized},
                 {"stack", pl.stack_layout}};
  } else {
    j["plan"] = nullptr;
  }
  j["mappings"] = maps;
  j["auxv"] = auxv;
  return j;
}

}  // namespace procforge::cli
