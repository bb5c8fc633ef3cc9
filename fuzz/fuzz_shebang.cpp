// libFuzzer target for the #! parser and the binfmt_misc matcher: any first
// 256 bytes of a file; and for ld.so's own command line (an interpreter may
// be ld.so), the same bytes split at NUL as its argv; and for the POSIX ACL
// xattr value the exec permission check reads, the same bytes as one.
// Checks the parsers' invariants, not only that they survive them.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "exec/acl.hpp"
#include "exec/binfmt_misc.hpp"
#include "exec/shebang.hpp"
#include "procforge/ldso.hpp"

using namespace procforge::exec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const BinprmBuf buf = make_binprm_buf(std::span(data, size));
  const Shebang s = parse_shebang(buf);
  if (s.is_script && !s.enoexec_reason) {
    // The interpreter is at most 253 bytes, without blanks or NULs. It may be
    // empty ("#!\0..."): the kernel then opens "" (the cwd).
    if (s.interpreter.size() > 253) abort();
    if (s.interpreter.find_first_of(std::string(" \t\0", 3)) != std::string::npos) abort();
    if (s.arg && (s.arg->size() > 252 || s.arg->find('\0') != std::string::npos)) abort();
  }
  if (!s.is_script && (s.enoexec_reason || !s.interpreter.empty())) abort();

  MiscRegistry reg;
  reg.enabled = true;
  MiscEntry magic;
  magic.enabled = magic.magic_mode = true;
  magic.offset = size ? data[0] % 200 : 0;
  magic.magic.assign(data, data + std::min<std::size_t>(size, 56));
  reg.entries.push_back(magic);
  MiscEntry ext;
  ext.enabled = true;
  ext.extension = "py";
  reg.entries.push_back(ext);
  (void)match_misc(reg, buf, std::string(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 64)));

  // rtld.c dl_main's reading of argv: FILE is an argument that is not an
  // option, what follows it is FILE's, a refusal names its option.
  std::vector<std::string> argv;
  const std::string all(reinterpret_cast<const char*>(data), size);
  for (std::size_t at = 0; at <= all.size();) {
    const std::size_t end = std::min(all.find('\0', at), all.size());
    argv.push_back(all.substr(at, end - at));
    at = end + 1;
  }
  using Mode = procforge::ldso::LoaderCommand::Mode;
  const auto c = procforge::ldso::parse_loader_command(argv);
  const bool loads = c.mode == Mode::run || c.mode == Mode::list || c.mode == Mode::verify;
  const bool named = !c.program_argv.empty();  // FILE was given ("" is a name too)
  if (loads != named && !(c.mode == Mode::help && named)) abort();
  if (named) {
    if (c.program.rfind("--", 0) == 0 || c.program_argv.empty() || c.program_argv.size() >= argv.size()) abort();
    if (c.program_argv.front() != c.argv0.value_or(c.program)) abort();
    if (argv[argv.size() - c.program_argv.size()] != c.program) abort();
  }
  if ((c.mode == Mode::usage) != (procforge::ldso::command_exit_status(c) == 1)) abort();
  if (c.mode == Mode::usage && procforge::ldso::usage_text(c).rfind(argv[0] + ": ", 0) != 0) abort();
  if (c.mode != Mode::usage && !c.unrecognized.empty()) abort();

  // system.posix_acl_access: version 2 and whole 8-byte entries, each field
  // read back as stored (little-endian).
  if (const auto acl = parse_acl_xattr(std::span(data, size))) {
    if (size != 4 + 8 * acl->size() || data[0] != 2 || data[1] || data[2] || data[3]) abort();
    for (std::size_t i = 0; i < acl->size(); ++i) {
      const std::uint8_t* e = data + 4 + 8 * i;
      if ((*acl)[i].tag != (e[0] | e[1] << 8) || (*acl)[i].perm != (e[2] | e[3] << 8)) abort();
      if ((*acl)[i].id != (e[4] | e[5] << 8 | e[6] << 16 | static_cast<std::uint32_t>(e[7]) << 24)) abort();
    }
  } else if (size >= 4 && (size - 4) % 8 == 0 && data[0] == 2 && !data[1] && !data[2] && !data[3]) {
    abort();
  }
  return 0;
}
