// libFuzzer target for the #! parser and the binfmt_misc matcher: any first
// 256 bytes of a file. Checks the parser's invariants, not only that it
// survives them.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "exec/binfmt_misc.hpp"
#include "exec/shebang.hpp"

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
  return 0;
}
