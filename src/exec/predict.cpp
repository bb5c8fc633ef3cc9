// execve() from the system call to the first instruction, replayed without
// executing anything. Reads like fs/exec.c: do_execveat_common() opens the
// file, copies the strings, then exec_binprm() lets the handlers (binfmt_misc,
// #!, ELF, compat ELF) rewrite the request until one loads an image; at most
// five interpreter rewrites.
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "exec/binfmt_elf.hpp"
#include "exec/binfmt_misc.hpp"
#include "exec/bprm.hpp"
#include "exec/execveat.hpp"
#include "exec/path_lookup.hpp"
#include "exec/shebang.hpp"
#include "procforge/exec.hpp"

namespace procforge::exec {

namespace {

constexpr int kMaxRewrites = 5;  // exec_binprm(): depth > 5 -> ELOOP

// bprm_stack_limits(): the bytes the strings may use.
std::uint64_t string_limit(std::uint64_t rlim_stack, std::uint64_t argc, std::uint64_t envc, bool* e2big) {
  std::uint64_t limit = std::min<std::uint64_t>((8ull << 20) / 4 * 3, rlim_stack / 4);
  limit = std::max<std::uint64_t>(limit, 32 * 4096);  // ARG_MAX
  const std::uint64_t ptrs = (std::max<std::uint64_t>(argc, 1) + envc) * 8;
  *e2big = limit <= ptrs;
  return *e2big ? 0 : limit - ptrs;
}

void e2big(Context& ctx, const Bprm& b, const std::string& what) {
  ctx.check("argument size", b.filename, false, what, "fs/exec.c copy_strings() / bprm_stack_limits()");
  ctx.fail(E2BIG, "argument size", b.filename, what,
           "pass fewer or shorter arguments or environment variables (xargs splits long lists), or raise "
           "RLIMIT_STACK: the limit is a quarter of it, at most 6 MiB, at least 128 KiB");
}

// do_execveat_common(): filename, then envp, then argv onto the new stack.
bool copy_strings(Context& ctx, Bprm& b, const Request& req) {
  const auto& argv = req.argv_null ? std::vector<std::string>{} : req.argv;
  bool bad = false;
  b.limit = string_limit(req.rlimit_stack, argv.size(), req.envp.size(), &bad);
  b.rlimit_stack = req.rlimit_stack;
  if (bad) return e2big(ctx, b, "too many argument and environment pointers for the stack limit"), false;
  auto push = [&](const std::string& s, const char* kind) {
    if (!b.push_front(s)) {
      const bool one = s.size() + 1 > kMaxArgStrlen;
      e2big(ctx, b,
            one ? std::string("one ") + kind + " string is " + std::to_string(s.size()) +
                      " bytes; the kernel's limit for a single string is 131071 bytes (MAX_ARG_STRLEN)"
            : b.used > b.limit
                ? "the argument and environment strings (" + std::to_string(b.used) +
                      " bytes so far) exceed the limit of " + std::to_string(b.limit) + " bytes for this RLIMIT_STACK"
                : "the argument and environment strings (" + std::to_string(b.used) +
                      " bytes so far) need more stack pages than RLIMIT_STACK (" + std::to_string(b.rlimit_stack) +
                      " bytes) allows");
      return false;
    }
    return true;
  };
  if (!push(b.filename, "file name")) return false;
  b.argv.clear();
  for (auto it = req.envp.rbegin(); it != req.envp.rend(); ++it)
    if (!push(*it, "environment")) return false;
  // The environment sits above argv: move it out of the argv list.
  b.envp.assign(b.argv.begin(), b.argv.end());
  b.argv.clear();
  for (auto it = argv.rbegin(); it != argv.rend(); ++it)
    if (!push(*it, "argument")) return false;
  if (b.argv.empty() && ctx.facts.argc_zero_fixup) {
    if (!push("", "argument")) return false;
    ctx.out.rules_applied.push_back("argc was 0: the kernel adds \"\" as argv[0] (5.18+)");
  }
  return true;
}

enum class Step { loaded, failed, next };

// BINPRM_FLAGS_PATH_INACCESSIBLE (execveat.cpp): an interpreter would get a
// /dev/fd/N name that is gone after the exec, so the handler gives ENOENT.
Step path_gone(Context& ctx, const Bprm& b, const std::string& rule) {
  ctx.check("interpreter's file name", b.filename, false,
            b.filename + " is gone after the exec (close-on-exec descriptor)",
            rule + " BINPRM_FLAGS_PATH_INACCESSIBLE");
  ctx.fail(ENOENT, "interpreter's file name", b.filename,
           "the file was named through a close-on-exec descriptor (" + b.filename +
               "), which its interpreter could not open after the exec",
           "clear FD_CLOEXEC on the descriptor before execveat()/fexecve(), or execute the file by its path");
  return Step::failed;
}

// load_script(), fs/binfmt_script.c.
Step load_script(Context& ctx, Bprm& b, const Shebang& sh) {
  const std::string script = b.file.path;
  ctx.check("#! line", script, true,
            "interpreter \"" + sh.interpreter + "\"" + (sh.arg ? ", argument \"" + *sh.arg + "\"" : ", no argument"),
            "fs/binfmt_script.c load_script()");
  if (sh.line_truncated)
    ctx.out.rules_applied.push_back("#! line of " + script +
                                    " has no newline within 256 bytes: bytes past 255 ignored");
  ctx.out.chain.push_back({script, LinkKind::script, sh.interpreter, sh.arg, ""});
  // The script's name is /dev/fd/N... of a close-on-exec descriptor: the
  // interpreter could not open it (after the #! parse).
  if (b.path_inaccessible) return path_gone(ctx, b, "fs/binfmt_script.c load_script()");
  // Argv rewrite: drop argv[0], then push script path, argument, interpreter.
  b.remove_arg_zero();
  bool ok = b.push_front(b.interp);
  if (ok && sh.arg) ok = b.push_front(*sh.arg);
  if (ok) ok = b.push_front(sh.interpreter);
  if (!ok)
    return e2big(ctx, b, "the strings added for the #! interpreter push the arguments over the limit"), Step::failed;
  b.interp = sh.interpreter;  // bprm_change_interp()
  auto f = open_exec(ctx, sh.interpreter, "#! interpreter");
  if (!f) return ctx.fail(f.error().err, "open interpreter", sh.interpreter, f.error().message, ""), Step::failed;
  if (!*f) return Step::failed;
  b.file = std::move(**f);
  return Step::next;
}

// load_misc_binary(), fs/binfmt_misc.c.
Step load_misc(Context& ctx, Bprm& b, const MiscEntry& e) {
  ctx.check("binfmt_misc", b.file.path, true, "entry " + e.name + " matches: interpreter " + e.interpreter,
            "fs/binfmt_misc.c load_misc_binary()");
  ctx.out.chain.push_back({b.file.path, LinkKind::misc, e.interpreter, std::nullopt, e.name});
  if (b.path_inaccessible) return path_gone(ctx, b, "fs/binfmt_misc.c load_misc_binary()");
  if (e.flags.find('P') != std::string::npos) b.preserve_argv0 = true;
  else b.remove_arg_zero();
  bool ok = b.push_front(b.interp) && b.push_front(e.interpreter);
  if (!ok) return e2big(ctx, b, "the strings added by binfmt_misc push the arguments over the limit"), Step::failed;
  b.interp = e.interpreter;
  if (e.flags.find('O') != std::string::npos) b.execfd = true;
  auto f = open_exec(ctx, e.interpreter, "binfmt_misc interpreter");
  if (!f) return ctx.fail(f.error().err, "open interpreter", e.interpreter, f.error().message, ""), Step::failed;
  if (!*f) return Step::failed;
  b.file = std::move(**f);
  return Step::next;
}

// search_binary_handler(): re-read the first 256 bytes, try each format.
Step search_binary_handler(Context& ctx, Bprm& b, const MiscRegistry& misc) {
  std::array<std::uint8_t, kBinprmBufSize> raw{};
  auto n = b.file.read_at(raw.data(), raw.size(), 0);
  if (!n) return ctx.fail(n.error().err, "read", b.file.path, n.error().message, ""), Step::failed;
  const BinprmBuf buf = make_binprm_buf(std::span(raw.data(), *n));

  if (const MiscEntry* e = match_misc(misc, buf, b.interp)) return load_misc(ctx, b, *e);

  const Shebang sh = parse_shebang(buf);
  if (sh.is_script && !sh.enoexec_reason) return load_script(ctx, b, sh);
  if (sh.is_script) {
    ctx.check("#! line", b.file.path, false, *sh.enoexec_reason, "fs/binfmt_script.c load_script()");
    b.enoexec_reason = *sh.enoexec_reason;
  }

  for (bool compat : {false, true}) {
    if (compat && !ctx.facts.ia32_emulation) break;
    switch (load_elf_binary(ctx, b, buf, compat)) {
      case HandlerResult::loaded: return Step::loaded;
      case HandlerResult::failed: return Step::failed;
      default: break;
    }
  }

  // No handler accepted the file.
  std::string why =
      b.enoexec_reason.value_or(*n == 0 ? "the file is empty" : "it is neither an ELF file nor a #! script");
  const bool text =
      *n > 0 && !sh.is_script && std::all_of(buf.begin(), buf.begin() + static_cast<long>(*n), [](std::uint8_t c) {
        return c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f) || c >= 0x80;
      });
  std::string fix = text ? "add a #! line (e.g. #!/bin/sh) as the first line; shells run such files themselves, "
                           "but execve() does not"
                    : sh.is_script ? "fix the #! line: #!/path/to/interpreter [one argument]"
                                   : "check that the file is a program for x86_64 Linux";
  ctx.check("format", b.file.path, false, why, "fs/exec.c search_binary_handler()");
  ctx.fail(ENOEXEC, "format", b.file.path, b.file.path + ": the kernel cannot execute it: " + why, fix);
  return Step::failed;
}

std::string absolute_cwd(const std::string& cwd) {
  if (!cwd.empty() && cwd[0] == '/') return cwd;
  // getcwd(NULL, 0) allocates: no page-sized buffer on the stack, under
  // every frame the model goes on to use.
  std::unique_ptr<char, decltype(&free)> buf(getcwd(nullptr, 0), &free);
  std::string here = buf ? buf.get() : "/";
  if (cwd.empty()) return here;
  return here == "/" ? "/" + cwd : here + "/" + cwd;
}

}  // namespace

Result<Prediction> predict(const Request& req, const SystemFacts& facts) {
  Prediction out;
  Context ctx{req, facts, out, absolute_cwd(req.cwd), nullptr};
  Bprm b;
  b.filename = req.path;
  b.interp = req.path;

  // execveat()/fexecve(): the flags, the /dev/fd/N name, where the lookup
  // starts (execveat.cpp).
  std::string lookup = req.path;
  if (!execveat_start(ctx, b, lookup)) {
    out.argv = req.argv;
    return out;
  }

  // alloc_bprm() -> do_open_execat(): the file is opened before anything else.
  auto f = open_exec(ctx, lookup, "program");
  if (!f) return f.error();
  if (!*f) {
    out.argv = req.argv;
    return out;
  }
  b.file = std::move(**f);

  // count(), bprm_stack_limits(), copy_strings().
  if (!copy_strings(ctx, b, req)) {
    out.argv = req.argv;
    return out;
  }

  // exec_binprm(): handlers until an image is loaded, at most 5 rewrites.
  const MiscRegistry misc = facts.binfmt_misc_mounted ? read_binfmt_misc(facts.binfmt_misc_dir) : MiscRegistry{};
  for (int depth = 0;; ++depth) {
    if (depth > kMaxRewrites) {
      ctx.check("interpreter depth", b.file.path, false, "more than 5 interpreter rewrites", "fs/exec.c exec_binprm()");
      ctx.fail(ELOOP, "interpreter depth", b.file.path,
               "more than 5 levels of #! / binfmt_misc interpreters (a script whose interpreter is a script ...), or a "
               "loop",
               "let the chain end in a binary within 5 levels");
      break;
    }
    const Step s = search_binary_handler(ctx, b, misc);
    if (s != Step::next) break;
  }
  out.argv.assign(b.argv.begin(), b.argv.end());
  return out;
}

std::string auxv_name(std::uint64_t type) {
  switch (type) {
    case 0: return "AT_NULL";
    case 1: return "AT_IGNORE";
    case 2: return "AT_EXECFD";
    case 3: return "AT_PHDR";
    case 4: return "AT_PHENT";
    case 5: return "AT_PHNUM";
    case 6: return "AT_PAGESZ";
    case 7: return "AT_BASE";
    case 8: return "AT_FLAGS";
    case 9: return "AT_ENTRY";
    case 10: return "AT_NOTELF";
    case 11: return "AT_UID";
    case 12: return "AT_EUID";
    case 13: return "AT_GID";
    case 14: return "AT_EGID";
    case 15: return "AT_PLATFORM";
    case 16: return "AT_HWCAP";
    case 17: return "AT_CLKTCK";
    case 23: return "AT_SECURE";
    case 24: return "AT_BASE_PLATFORM";
    case 25: return "AT_RANDOM";
    case 26: return "AT_HWCAP2";
    case 27: return "AT_RSEQ_FEATURE_SIZE";
    case 28: return "AT_RSEQ_ALIGN";
    case 31: return "AT_EXECFN";
    case 32: return "AT_SYSINFO";
    case 33: return "AT_SYSINFO_EHDR";
    case 51: return "AT_MINSIGSTKSZ";
    default: return "AT_" + std::to_string(type);
  }
}

}  // namespace procforge::exec
