#include "exec/binfmt_elf.hpp"
#include "procforge/format.hpp"

#include <elf.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "exec/layout.hpp"
#include "exec/path_lookup.hpp"

namespace procforge::exec {

namespace {

constexpr std::uint64_t kPathMax = 4096;

// elf_check_arch(): EM_X86_64 for the native handler; EM_386 for compat
// (compat_elf_check_arch() with ia32 emulation on, no x32).
bool check_arch(const elf::Header& h, bool compat) { return compat ? h.machine == EM_386 : h.machine == EM_X86_64; }

// load_elf_phdrs(): e_phentsize must be the struct size; the table must be
// non-empty and within the limit; a short read fails. NULL -> the caller's
// errno (ENOEXEC for the program, ELIBBAD for the interpreter).
std::optional<std::string> load_elf_phdrs(const ExecFile& f, const elf::Header& h, std::uint64_t table_max,
                                          std::vector<elf::ProgramHeader>& out, Error* io_error) {
  const std::uint64_t entsize = h.is64 ? 56 : 32;
  if (h.phentsize != entsize)
    return "e_phentsize is " + std::to_string(h.phentsize) + ", the kernel requires " + std::to_string(entsize);
  const std::uint64_t size = entsize * h.phnum;
  if (size == 0) return "e_phnum is 0: no program headers";
  if (size > 65536 || size > table_max)
    return "program header table is " + std::to_string(size) + " bytes (" + std::to_string(h.phnum) +
           " entries); this kernel accepts at most " + std::to_string(table_max);
  std::vector<std::uint8_t> table(size);
  auto n = f.read_at(table.data(), size, h.phoff);
  if (!n) {
    *io_error = n.error();
    return "read error";
  }
  if (*n != size)
    return "program header table at e_phoff " + hex(h.phoff) + " (" + std::to_string(size) +
           " bytes) runs past the end of the file (" + std::to_string(f.st.st_size) + " bytes)";
  auto ph = elf::parse_program_headers(table, h, h.phoff);
  if (!ph) return ph.error().message;
  out = std::move(*ph);
  return std::nullopt;
}

}  // namespace

elf::Header kernel_header(std::span<const std::uint8_t> buf, bool is64) {
  elf::ByteView v(buf, false);
  elf::Header h;
  h.ei_class = v.u8(EI_CLASS).value_or(0);
  h.ei_data = v.u8(EI_DATA).value_or(0);
  h.ei_version = v.u8(EI_VERSION).value_or(0);
  h.ei_osabi = v.u8(EI_OSABI).value_or(0);
  h.ei_abiversion = v.u8(EI_ABIVERSION).value_or(0);
  h.is64 = is64;
  h.big_endian = false;  // x86 reads every field little-endian
  h.type = v.u16(16).value_or(0);
  h.machine = v.u16(18).value_or(0);
  h.version = v.u32(20).value_or(0);
  if (is64) {
    h.entry = v.u64(24).value_or(0);
    h.phoff = v.u64(32).value_or(0);
    h.shoff = v.u64(40).value_or(0);
    h.flags = v.u32(48).value_or(0);
    h.ehsize = v.u16(52).value_or(0);
    h.phentsize = v.u16(54).value_or(0);
    h.phnum = v.u16(56).value_or(0);
    h.shentsize = v.u16(58).value_or(0);
    h.shnum = v.u16(60).value_or(0);
    h.shstrndx = v.u16(62).value_or(0);
  } else {
    h.entry = v.u32(24).value_or(0);
    h.phoff = v.u32(28).value_or(0);
    h.shoff = v.u32(32).value_or(0);
    h.flags = v.u32(36).value_or(0);
    h.ehsize = v.u16(40).value_or(0);
    h.phentsize = v.u16(42).value_or(0);
    h.phnum = v.u16(44).value_or(0);
    h.shentsize = v.u16(46).value_or(0);
    h.shnum = v.u16(48).value_or(0);
    h.shstrndx = v.u16(50).value_or(0);
  }
  return h;
}

HandlerResult load_elf_binary(Context& ctx, Bprm& b, const BinprmBuf& buf, bool compat) {
  const std::string& name = b.file.path;
  const std::string handler = compat ? "compat_binfmt_elf" : "binfmt_elf";
  const std::string rule =
      compat ? "fs/compat_binfmt_elf.c -> fs/binfmt_elf.c load_elf_binary()" : "fs/binfmt_elf.c load_elf_binary()";
  if (std::memcmp(buf.data(), ELFMAG, SELFMAG) != 0) return HandlerResult::declined;

  ElfImage img;
  img.file = &b.file;
  img.ia32 = compat;
  img.h = kernel_header(buf, !compat);
  const elf::Header& h = img.h;
  auto decline = [&](const std::string& step, const std::string& why) {
    ctx.check(handler + ": " + step, name, false, why, rule);
    if (!b.enoexec_reason) b.enoexec_reason = why;
    return HandlerResult::declined;
  };
  if (h.type != ET_EXEC && h.type != ET_DYN)
    return decline("e_type", "e_type is " + elf::type_name(h.type) +
                                 (h.type == ET_REL    ? " (an object file: link it first)"
                                  : h.type == ET_CORE ? " (a core dump)"
                                                      : "") +
                                 "; only ET_EXEC and ET_DYN can be executed");
  if (!check_arch(h, compat))
    return decline("e_machine",
                   "e_machine is " + elf::machine_name(h.machine) + ", not " + (compat ? "EM_386" : "EM_X86_64"));
  ctx.check(handler + ": header", name, true,
            elf::type_name(h.type) + " " + elf::machine_name(h.machine) +
                " (e_ident class, data, version and OS ABI are not checked)",
            rule);

  Error io;
  if (auto why = load_elf_phdrs(b.file, h, ctx.facts.phdr_table_max, img.ph, &io)) {
    if (io.err) return ctx.fail(io.err, "read", name, io.message, ""), HandlerResult::failed;
    return decline("program headers", *why);
  }
  ctx.out.elf_header = h;
  ctx.out.elf_phdrs = img.ph;
  ctx.check(handler + ": program headers", name, true, std::to_string(h.phnum) + " entries at " + hex(h.phoff),
            "fs/binfmt_elf.c load_elf_phdrs()");
  if (h.phnum * (h.is64 ? 56u : 32u) > 4096u)
    ctx.out.rules_applied.push_back(
        "program header table over 4096 bytes accepted (limit 65536 since ~6.13; "
        "6.12 and older refuse it with ENOEXEC)");

  // PT_INTERP: only the first one counts (the loop breaks after it).
  std::optional<ExecFile> interp_file;
  ElfImage interp;
  std::array<std::uint8_t, 64> interp_ehdr{};
  std::string interp_name;
  for (const auto& p : img.ph) {
    if (p.type != PT_INTERP) continue;
    if (p.filesz > kPathMax || p.filesz < 2) {
      ctx.check("PT_INTERP size", name, false, "p_filesz " + std::to_string(p.filesz), rule);
      ctx.fail(ENOEXEC, "PT_INTERP size", name,
               "the PT_INTERP segment of " + name + " is " + std::to_string(p.filesz) +
                   " bytes; the kernel accepts 2 to 4096",
               "relink the program (its interpreter path is corrupt)");
      return HandlerResult::failed;
    }
    std::string path(p.filesz, '\0');
    auto n = b.file.read_at(path.data(), p.filesz, p.offset);
    if (!n) return ctx.fail(n.error().err, "read", name, n.error().message, ""), HandlerResult::failed;
    if (*n != p.filesz) {
      ctx.check("PT_INTERP read", name, false, "short read at " + hex(p.offset), "fs/binfmt_elf.c elf_read()");
      ctx.fail(EIO, "PT_INTERP read", name,
               "PT_INTERP of " + name + " points past the end of the file (offset " + hex(p.offset) + ", " +
                   std::to_string(p.filesz) + " bytes; file is " + std::to_string(b.file.st.st_size) +
                   " bytes): the file is truncated",
               "the file is incomplete; copy or download it again");
      return HandlerResult::failed;
    }
    if (path.back() != '\0') {
      ctx.check("PT_INTERP NUL", name, false, "not NUL-terminated", rule);
      ctx.fail(ENOEXEC, "PT_INTERP NUL", name, "the interpreter path in PT_INTERP of " + name + " does not end in NUL",
               "relink the program");
      return HandlerResult::failed;
    }
    interp_name.assign(path.c_str());  // an embedded NUL ends the path
    ctx.check("PT_INTERP", name, true, "interpreter " + interp_name, rule);
    auto f = open_exec(ctx, interp_name, "ELF interpreter");
    if (!f) {
      ctx.out.chain.push_back({name, LinkKind::elf, interp_name, std::nullopt, ""});
      return ctx.fail(f.error().err, "open interpreter", interp_name, f.error().message, ""), HandlerResult::failed;
    }
    if (!*f) {
      ctx.out.chain.push_back({name, LinkKind::elf, interp_name, std::nullopt, ""});
      return HandlerResult::failed;
    }
    interp_file = std::move(**f);
    auto& ehdr = interp_ehdr;
    const std::size_t want = compat ? 52 : 64;  // sizeof(struct elfhdr)
    auto got = interp_file->read_at(ehdr.data(), want, 0);
    if (!got) return ctx.fail(got.error().err, "read", interp_name, got.error().message, ""), HandlerResult::failed;
    if (*got != want) {
      ctx.check("interpreter header read", interp_name, false, "file is " + std::to_string(*got) + " bytes",
                "fs/binfmt_elf.c elf_read()");
      ctx.fail(EIO, "interpreter header read", interp_name,
               "the ELF interpreter " + interp_name + " is only " + std::to_string(*got) +
                   " bytes, shorter than an ELF header",
               "point PT_INTERP at a real dynamic linker (" +
                   std::string(compat ? "/lib/ld-linux.so.2" : "/lib64/ld-linux-x86-64.so.2") + ")");
      return HandlerResult::failed;
    }
    interp.file = &*interp_file;
    interp.ia32 = compat;
    interp.h = kernel_header(ehdr, !compat);
    break;
  }

  ctx.out.chain.push_back(
      {name, LinkKind::elf, interp_file ? std::optional<std::string>(interp_name) : std::nullopt, std::nullopt, ""});

  bool exec_stack = false;
  for (const auto& p : img.ph)
    if (p.type == PT_GNU_STACK) exec_stack = p.flags & PF_X;

  if (interp_file) {
    const std::string irule = "fs/binfmt_elf.c load_elf_binary() interpreter checks";
    auto bad = [&](const std::string& step, const std::string& why) {
      ctx.check(step, interp_name, false, why, irule);
      ctx.fail(ELIBBAD, step, interp_name,
               "the ELF interpreter " + interp_name + " named by " + name + " is unusable: " + why,
               "point PT_INTERP at the system's dynamic linker, or install the one the program needs");
      return HandlerResult::failed;
    };
    if (std::memcmp(interp_ehdr.data(), ELFMAG, SELFMAG) != 0) return bad("interpreter magic", "it is not an ELF file");
    if (!check_arch(interp.h, compat))
      return bad("interpreter e_machine", "its e_machine is " + elf::machine_name(interp.h.machine) +
                                              (compat ? ", not EM_386" : ", not EM_X86_64"));
    Error iio;
    if (auto why = load_elf_phdrs(*interp_file, interp.h, ctx.facts.phdr_table_max, interp.ph, &iio)) {
      if (iio.err) return ctx.fail(iio.err, "read", interp_name, iio.message, ""), HandlerResult::failed;
      return bad("interpreter program headers", *why);
    }
    ctx.check("interpreter checks", interp_name, true,
              elf::type_name(interp.h.type) + " " + elf::machine_name(interp.h.machine), irule);
  }
  // parse_elf_properties() returns at once: x86 does not select
  // CONFIG_ARCH_USE_GNU_PROPERTY, so PT_GNU_PROPERTY is not read here.

  // begin_new_exec(): the point of no return. Whatever fails from here on
  // kills the task with SIGSEGV instead of returning to the caller.
  ctx.check("point of no return", name, true, "begin_new_exec(): the old image is gone from here on",
            "fs/exec.c begin_new_exec()");
  build_layout(ctx, b, img, interp_file ? &interp : nullptr, exec_stack);
  return HandlerResult::loaded;
}

}  // namespace procforge::exec
