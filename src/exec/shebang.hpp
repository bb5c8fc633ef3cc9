// The #! line as fs/binfmt_script.c load_script() reads it (Linux 5.8+ code,
// 256-byte buffer since 5.1). Pure function over the kernel's buffer so it can
// be fuzzed and tested in isolation.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace procforge::exec {

inline constexpr std::size_t kBinprmBufSize = 256;  // include/uapi/linux/binfmts.h BINPRM_BUF_SIZE

// The kernel's view of a file's first bytes: up to 256 bytes, NUL-padded
// (prepare_binprm() memsets the buffer before kernel_read()).
using BinprmBuf = std::array<std::uint8_t, kBinprmBufSize>;
BinprmBuf make_binprm_buf(std::span<const std::uint8_t> first_bytes);

struct Shebang {
  bool is_script = false;          // buf starts with "#!"
  std::string interpreter;         // i_name, up to the first blank or NUL
  std::optional<std::string> arg;  // i_arg: one argument, inner blanks kept
  // When is_script but unusable: why the kernel returns ENOEXEC.
  std::optional<std::string> enoexec_reason;
  bool line_truncated = false;  // no newline in 256 bytes: bytes past buf[254] ignored
  bool has_cr = false;          // the interpreter or argument ends in '\r' (a CRLF line)
};

Shebang parse_shebang(const BinprmBuf& buf);

}  // namespace procforge::exec
