// Terminal rendering of a prediction: verdict first, then the chain and the
// argv; with -v the checks in the kernel's order, the ELF headers and the
// exec plan; with -vv the initial stack and auxv too.
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "cli/cli.hpp"
#include "common/ansi.hpp"
#include "procforge/format.hpp"

namespace procforge::cli {

namespace {

// Offsets from a base that lies above the object are negative.
std::string signed_hex(std::uint64_t v) {
  const auto s = static_cast<std::int64_t>(v);
  return s < 0 ? "-" + hex(static_cast<std::uint64_t>(-s)) : "+" + hex(v);
}

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c == '\r') o += "\\r";
    else if (c == '\t') o += "\\t";
    else if (c == '\n') o += "\\n";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else o += static_cast<char>(c);
  }
  return o + "\"";
}

std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string verdict(const exec::Prediction& p) {
  switch (p.outcome) {
    case exec::Outcome::ok: return "runs: execve succeeds and the new image starts";
    case exec::Outcome::error: return "execve fails with " + errno_name(p.err) + " (" + strerror(p.err) + ")";
    case exec::Outcome::killed:
      return std::string("execve succeeds but the process is killed by SIG") +
             (sigabbrev_np(p.signal) ? sigabbrev_np(p.signal) : "?") +
             (p.killed_at_first_instruction ? " at its first instruction"
                                            : " during exec (after the point of no return)");
  }
  return "";
}

}  // namespace

Verdict start_verdict(const exec::Prediction& p, const ldso::Prediction* loader) {
  Verdict v;
  v.text = verdict(p);
  v.why = p.diagnosis;
  v.fix = p.fix;
  switch (p.outcome) {
    case exec::Outcome::ok: v.outcome = "runs"; break;
    case exec::Outcome::error:
      v.outcome = "execve_fails";
      v.detail = errno_name(p.err);
      return v;
    case exec::Outcome::killed:
      v.outcome = "killed";
      v.detail = std::string("SIG") + (sigabbrev_np(p.signal) ? sigabbrev_np(p.signal) : "?");
      return v;
  }
  // ld.so run as a command that loads nothing: its exit is the outcome.
  if (loader && loader->command_exit) {
    const int status = *loader->command_exit;
    v.text = std::string(status ? "fails in ld.so" : "runs") + ": ld.so " +
             ldso::loader_mode_name(loader->command->mode) + " exits with status " + std::to_string(status) +
             " before loading anything";
    if (status) {
      v.outcome = "ldso_fails";
      v.detail = "exit " + std::to_string(status);
    }
    return v;
  }
  if (loader && !loader->error && loader->command && loader->command->mode == ldso::LoaderCommand::Mode::list)
    v.text = "runs: ld.so --list lists the objects of " + loader->command->program +
             " and exits with status 0 (the program itself does not run)";
  // A lazy PLT slot nothing defines: the start succeeds, the first call
  // through it does not.
  if (loader && !loader->error && !loader->first_call_errors.empty()) {
    const auto& f = loader->first_call_errors;
    const auto d = ldso::diagnose(*loader, loader_system());
    v.text += "; the first call to " + f.front().symbol +
              (f.size() > 1 ? " (or to " + std::to_string(f.size() - 1) + " more undefined symbols)" : "") +
              " stops it: symbol lookup error (exit " + std::to_string(ldso::exit_status(f.front().error)) + ")";
    v.why = d.why;
    v.fix = d.fix;
  }
  if (!loader || !loader->error) return v;
  const ldso::LoaderError& e = *loader->error;
  const auto d = ldso::diagnose(*loader, loader_system());
  v.outcome = "ldso_fails";
  v.detail = "exit " + std::to_string(ldso::exit_status(e));
  v.text = "fails in ld.so: " + e.object + ": " + e.message + " (exit " + std::to_string(ldso::exit_status(e)) + ")";
  v.why = d.why;
  v.fix = d.fix;
  return v;
}

nlohmann::json verdict_json(const Verdict& v) {
  auto opt = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"outcome", v.outcome}, {"text", v.text}, {"why", opt(v.why)}, {"fix", opt(v.fix)}};
}

nlohmann::json path_search_json(const exec::PathSearch& search) {
  if (search.path_value.empty()) return nullptr;
  return {{"name", search.name},
          {"path", search.path_value},
          {"element", search.chosen >= 0 ? nlohmann::json(search.entry) : nlohmann::json(nullptr)},
          {"found", search.chosen >= 0 ? nlohmann::json(search.candidates[static_cast<std::size_t>(search.chosen)])
                                       : nlohmann::json(nullptr)},
          {"via_shell", !search.shell_argv.empty()}};
}

Detail detail_from_count(int verbose) { return static_cast<Detail>(std::clamp(verbose, 0, 2)); }

std::string render_text(const exec::Request& req, const exec::Prediction& p, const Verdict& v,
                        const exec::PathSearch& search, bool color, Detail detail) {
  const Style st(color);
  std::ostringstream o;
  o << st.bold("procforge explain " + req.path) << "\n";
  o << "  result  " << (v.fails() ? st.red(v.text) : st.green(v.text)) << "\n";
  if (!v.why.empty()) o << "  why     " << v.why << "\n";
  if (!v.fix.empty()) o << "  fix     " << v.fix << "\n";
  if (!search.path_value.empty() && search.chosen >= 0)
    o << "  found   " << search.name << " in PATH element "
      << (search.entry.empty() ? "\"\" (the working directory)" : search.entry) << " (" << search.chosen + 1 << " of "
      << search.candidates.size() << ")"
      << (search.shell_argv.empty() ? "" : "; it has no format the kernel runs, so execvp runs it with /bin/sh")
      << "\n";
  if (!p.chain.empty()) {
    o << "  chain   ";
    for (std::size_t i = 0; i < p.chain.size(); ++i) {
      const auto& c = p.chain[i];
      if (i) o << "\n          -> ";
      switch (c.kind) {
        case exec::LinkKind::script:
          o << c.path << "  #! " << quote(c.interpreter.value_or("")) << (c.arg ? " arg " + quote(*c.arg) : "");
          break;
        case exec::LinkKind::misc: o << c.path << "  binfmt_misc '" << c.misc_entry << "' -> " << *c.interpreter; break;
        case exec::LinkKind::elf:
          o << c.path << "  ELF" << (c.interpreter ? ", interpreter " + *c.interpreter : ", no interpreter");
          break;
      }
    }
    o << "\n";
  }
  o << "  argv    [";
  for (std::size_t i = 0; i < p.argv.size(); ++i) o << (i ? ", " : "") << quote(p.argv[i]);
  o << "]\n";
  for (const auto& r : p.rules_applied) o << "  note    " << r << "\n";
  if (detail < Detail::plan) return o.str();

  o << "\n" << st.bold("checks, in the kernel's order") << "\n";
  for (const auto& c : p.checks)
    o << "  " << (c.passed ? st.green("ok  ") : st.red("FAIL")) << " " << pad(c.step, 28) << " " << c.detail
      << (c.object != req.path && !c.object.empty() ? st.dim("  [" + c.object + "]") : "") << "  " << st.dim(c.rule)
      << "\n";

  if (p.elf_header) {
    const auto& h = *p.elf_header;
    o << "\n"
      << st.bold("ELF") << "  " << (h.is64 ? "ELF64 " : "ELF32 ") << elf::type_name(h.type) << " "
      << elf::machine_name(h.machine) << ", entry " << hex(h.entry) << ", " << h.phnum << " program headers\n";
    for (const auto& s : p.elf_phdrs)
      o << "  " << pad(elf::segment_type_name(s.type), 16) << " " << elf::segment_flags_string(s.flags) << "  off "
        << pad(hex(s.offset), 10) << " vaddr " << pad(hex(s.vaddr), 12) << " filesz " << pad(hex(s.filesz), 10)
        << " memsz " << hex(s.memsz) << "\n";
  }
  if (p.plan) {
    const auto& pl = *p.plan;
    o << "\n"
      << st.bold("exec plan")
      << (pl.stack_randomized ? st.dim("  (ASLR on: moving regions shown relative to their base)")
                              : st.dim("  (ASLR off: exact addresses)"))
      << "\n";
    for (const auto& m : pl.mappings) {
      std::string range = m.address_known ? hex(m.start) + "-" + hex(m.end)
                                          : m.base_symbol + signed_hex(m.start) + ".." + signed_hex(m.end);
      o << "  " << pad(range, 40) << " " << prot_string(m.prot) << "  " << m.object
        << (m.file_backed ? " @" + hex(m.file_offset) : "") << (m.note.empty() ? "" : st.dim("  " + m.note)) << "\n";
    }
    o << "  entry   "
      << (pl.entry ? hex(*pl.entry)
                   : std::string(pl.entry_in_interp ? "interp_base" : "exec_base") + "+" + hex(pl.entry_offset))
      << (pl.entry_in_interp ? " (the interpreter's entry)" : " (the program's entry)") << "\n";
    o << "  brk     " << (pl.brk ? hex(*pl.brk) : "random") << st.dim("  " + pl.brk_rule) << "\n";
    if (detail < Detail::full) return o.str();
    o << "\n" << st.bold("initial stack") << "\n";
    for (const auto& l : pl.stack_layout) o << "  " << l << "\n";
    o << "\n" << st.bold("auxv, in the kernel's order") << "\n";
    for (const auto& a : pl.auxv)
      o << "  " << pad(a.name, 22) << " " << pad(a.value ? hex(*a.value) : "random", 16) << st.dim(a.describe) << "\n";
  }
  return o.str();
}

std::string render_detail_hint(const exec::Prediction& p, const ldso::Prediction* loader, Detail detail, bool color) {
  // Only what this start has: no plan and no stack when execve fails, no
  // relocation work without ld.so.
  std::string more;
  if (detail == Detail::summary) {
    more = "-v adds the checks";
    if (p.plan) more += loader && has_relocations(*loader) ? ", the exec plan and relocations" : " and the exec plan";
  }
  if (detail < Detail::full && p.plan)
    more += more.empty() ? "-vv adds the stack and auxv" : "; -vv the stack and auxv";
  return more.empty() ? "" : "\n" + Style(color).dim("  " + more) + "\n";
}

std::string render_line(const std::string& path, const exec::Prediction& p, const Verdict& v) {
  const char* outcome = v.outcome == "runs"           ? "ok"
                        : v.outcome == "execve_fails" ? "errno"
                        : v.outcome == "killed"       ? "killed"
                                                      : "ldso";
  std::string r = path + "\t" + outcome + "\t" + v.detail;
  r += "\t";
  for (std::size_t i = 0; i < p.chain.size(); ++i) {
    r += (i ? " -> " : "") + p.chain[i].path;
    if (p.chain[i].kind == exec::LinkKind::elf && p.chain[i].interpreter) r += " -> " + *p.chain[i].interpreter;
  }
  return r;
}

}  // namespace procforge::cli
