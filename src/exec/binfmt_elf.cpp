// fs/binfmt_elf.c load_elf_binary() up to the point of no return, one stage
// per check the kernel makes, in its order (sources in binfmt_elf.hpp): the
// header, the program headers, PT_INTERP and the interpreter's own checks.
// The header bytes are decoded by the ELF reader (elf::decode_header()); the
// checks and their errnos are the kernel's and stay here.
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
// non-empty and within the limit; a short or failed read fails (a negative
// file position too: fs/binfmt_elf.c elf_read(), fs/read_write.c). NULL -> the caller's
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
  // elf_read() -> kernel_read() -> rw_verify_area(): a position that is
  // negative as a loff_t (e_phoff >= 2^63), or whose end would be, is
  // -EINVAL, which load_elf_phdrs() turns into NULL like any failed read.
  constexpr std::uint64_t kMaxPos = 0x7fffffffffffffffull;
  if (h.phoff > kMaxPos || size > kMaxPos - h.phoff)
    return "e_phoff " + hex(h.phoff) + " is past the largest file position (2^63 - 1" +
           std::string(h.phoff > kMaxPos ? "" : " with the table's " + std::to_string(size) + " bytes") +
           "): the kernel's read of the program headers fails (EINVAL, as any failed read: no headers)";
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

// PT_GNU_STACK's PF_X, the last one winning (load_elf_binary()'s
// executable_stack loop).
bool wants_exec_stack(const std::vector<elf::ProgramHeader>& ph) {
  bool exec_stack = false;
  for (const auto& p : ph)
    if (p.type == PT_GNU_STACK) exec_stack = p.flags & PF_X;
  return exec_stack;
}

// One load_elf_binary() call up to the point of no return: the program's
// image, its interpreter's, and the stages that fill them in. A stage returns
// the handler's result when it ends the call, nullopt to go on.
struct ElfBinary {
  using Stop = std::optional<HandlerResult>;

  Context& ctx;
  Bprm& b;
  const bool compat;
  const std::string& name;
  const std::string handler;
  const std::string rule;
  ElfImage img;
  std::optional<ExecFile> interp_file;
  ElfImage interp;
  std::array<std::uint8_t, 64> interp_ehdr{};
  std::string interp_name;

  ElfBinary(Context& c, Bprm& bprm, bool is_compat)
      : ctx(c),
        b(bprm),
        compat(is_compat),
        name(bprm.file.path),
        handler(is_compat ? "compat_binfmt_elf" : "binfmt_elf"),
        rule(is_compat ? "fs/compat_binfmt_elf.c -> fs/binfmt_elf.c load_elf_binary()"
                       : "fs/binfmt_elf.c load_elf_binary()") {}

  // -ENOEXEC before the point of no return: the next handler gets a try, and
  // the most specific reason is kept for the final ENOEXEC.
  HandlerResult decline(const std::string& step, const std::string& why) {
    ctx.check(handler + ": " + step, name, false, why, rule);
    if (!b.enoexec_reason) b.enoexec_reason = why;
    return HandlerResult::declined;
  }

  HandlerResult fail(const Error& e, const std::string& object) {
    ctx.fail(e.err, "read", object, e.message, "");
    return HandlerResult::failed;
  }

  // The header from bprm->buf, in the handler's class (the kernel checks
  // neither EI_CLASS nor EI_DATA; x86 reads it little endian), then e_type
  // and elf_check_arch().
  Stop check_header(const BinprmBuf& buf) {
    img.file = &b.file;
    img.ia32 = compat;
    img.h = elf::decode_header(buf, !compat, false);
    const elf::Header& h = img.h;
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
    return std::nullopt;
  }

  // load_elf_phdrs() of the program: a bad table is ENOEXEC.
  Stop read_program_headers() {
    const elf::Header& h = img.h;
    Error io;
    if (auto why = load_elf_phdrs(b.file, h, ctx.facts.phdr_table_max, img.ph, &io)) {
      if (io.err) return fail(io, name);
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
    return std::nullopt;
  }

  // The PT_INTERP segment's path: 2 to PATH_MAX bytes, read whole, ending in
  // NUL (an embedded NUL ends it early).
  Stop read_interp_path(const elf::ProgramHeader& p) {
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
    if (!n) return fail(n.error(), name);
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
    interp_name.assign(path.c_str());
    ctx.check("PT_INTERP", name, true, "interpreter " + interp_name, rule);
    return std::nullopt;
  }

  // open_exec() of the interpreter, then elf_read() of its header
  // (sizeof(struct elfhdr) of the handler's class; a short file is EIO).
  Stop open_interp() {
    auto f = open_exec(ctx, interp_name, "ELF interpreter");
    if (!f || !*f) {
      ctx.out.chain.push_back({name, LinkKind::elf, interp_name, std::nullopt, ""});
      if (!f) ctx.fail(f.error().err, "open interpreter", interp_name, f.error().message, "");
      return HandlerResult::failed;
    }
    interp_file = std::move(**f);
    const std::size_t want = compat ? 52 : 64;
    auto got = interp_file->read_at(interp_ehdr.data(), want, 0);
    if (!got) return fail(got.error(), interp_name);
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
    interp.h = elf::decode_header(interp_ehdr, !compat, false);
    return std::nullopt;
  }

  // The program header loop's PT_INTERP case: only the first one counts (the
  // loop breaks after it). Then the handler chain gains this link.
  Stop find_interp() {
    for (const auto& p : img.ph) {
      if (p.type != PT_INTERP) continue;
      if (auto stop = read_interp_path(p)) return stop;
      if (auto stop = open_interp()) return stop;
      break;
    }
    ctx.out.chain.push_back(
        {name, LinkKind::elf, interp_file ? std::optional<std::string>(interp_name) : std::nullopt, std::nullopt, ""});
    return std::nullopt;
  }

  // The interpreter checks before the point of no return: the magic,
  // elf_check_arch(), load_elf_phdrs(); each failure is ELIBBAD.
  Stop check_interp() {
    if (!interp_file) return std::nullopt;
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
    Error io;
    if (auto why = load_elf_phdrs(*interp_file, interp.h, ctx.facts.phdr_table_max, interp.ph, &io)) {
      if (io.err) return fail(io, interp_name);
      return bad("interpreter program headers", *why);
    }
    ctx.check("interpreter checks", interp_name, true,
              elf::type_name(interp.h.type) + " " + elf::machine_name(interp.h.machine), irule);
    return std::nullopt;
  }
};

}  // namespace

HandlerResult load_elf_binary(Context& ctx, Bprm& b, const BinprmBuf& buf, bool compat) {
  if (std::memcmp(buf.data(), ELFMAG, SELFMAG) != 0) return HandlerResult::declined;
  ElfBinary elf(ctx, b, compat);
  if (auto stop = elf.check_header(buf)) return *stop;
  if (auto stop = elf.read_program_headers()) return *stop;
  if (auto stop = elf.find_interp()) return *stop;
  const bool exec_stack = wants_exec_stack(elf.img.ph);
  if (auto stop = elf.check_interp()) return *stop;
  // parse_elf_properties() returns at once: x86 does not select
  // CONFIG_ARCH_USE_GNU_PROPERTY, so PT_GNU_PROPERTY is not read here.

  // begin_new_exec(): the point of no return. Whatever fails from here on
  // kills the task with SIGSEGV instead of returning to the caller.
  ctx.check("point of no return", elf.name, true, "begin_new_exec(): the old image is gone from here on",
            "fs/exec.c begin_new_exec()");
  build_layout(ctx, b, elf.img, elf.interp_file ? &elf.interp : nullptr, exec_stack);
  return HandlerResult::loaded;
}

}  // namespace procforge::exec
