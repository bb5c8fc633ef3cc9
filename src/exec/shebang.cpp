// fs/binfmt_script.c load_script(), Linux 6.12 lines 34-138, step by step.
// Only ' ' and '\t' are blanks; '\r', '\v', '\f' are ordinary characters, so a
// CRLF script names an interpreter ending in '\r'.
#include "exec/shebang.hpp"

#include <algorithm>
#include <cstring>

namespace procforge::exec {

namespace {

bool spacetab(std::uint8_t c) { return c == ' ' || c == '\t'; }

// next_non_spacetab(first, last): first byte in [first, last] that is not a
// blank, or nullptr (binfmt_script.c:L18-L26; note the inclusive end).
const std::uint8_t* next_non_spacetab(const std::uint8_t* first, const std::uint8_t* last) {
  for (; first <= last; ++first)
    if (!spacetab(*first)) return first;
  return nullptr;
}

// next_terminator(first, last): first blank or NUL in [first, last] (L28-L32).
const std::uint8_t* next_terminator(const std::uint8_t* first, const std::uint8_t* last) {
  for (; first <= last; ++first)
    if (spacetab(*first) || !*first) return first;
  return nullptr;
}

// The kernel copies interpreter and argument with strnlen-bounded string
// copies, so a NUL inside ends them.
std::string c_string(const std::uint8_t* from, const std::uint8_t* to) {
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(from, 0, static_cast<std::size_t>(to - from)));
  return {reinterpret_cast<const char*>(from), reinterpret_cast<const char*>(nul ? nul : to)};
}

}  // namespace

BinprmBuf make_binprm_buf(std::span<const std::uint8_t> first_bytes) {
  BinprmBuf buf{};
  std::copy_n(first_bytes.begin(), std::min(first_bytes.size(), buf.size()), buf.begin());
  return buf;
}

Shebang parse_shebang(const BinprmBuf& b) {
  Shebang s;
  if (b[0] != '#' || b[1] != '!') return s;
  s.is_script = true;

  // The kernel writes NUL over the last byte it considers, so work on a copy.
  BinprmBuf buf = b;
  std::uint8_t* const base = buf.data();
  std::uint8_t* const buf_end = base + kBinprmBufSize - 1;
  auto* i_end = static_cast<std::uint8_t*>(std::memchr(base, '\n', kBinprmBufSize));
  if (!i_end) {
    // No newline in the buffer (L60-L71).
    const std::uint8_t* first = next_non_spacetab(base + 2, buf_end);
    if (!first) {
      s.enoexec_reason = "the #! line holds only blanks";
      return s;
    }
    if (!next_terminator(first, buf_end)) {
      s.enoexec_reason =
          "no blank, NUL or newline within the first 256 bytes: the kernel assumes the interpreter path "
          "is truncated";
      return s;
    }
    i_end = buf_end;
    s.line_truncated = true;
  }
  // Trim trailing blanks before the end (L73-L74) and terminate there.
  while (i_end > base + 2 && spacetab(i_end[-1])) --i_end;
  *i_end = '\0';

  const std::uint8_t* i_name = next_non_spacetab(base + 2, i_end);
  if (!i_name || i_name == i_end) {
    s.enoexec_reason = "no interpreter named after #!";
    return s;
  }
  const std::uint8_t* i_sep = next_terminator(i_name, i_end);
  s.interpreter = c_string(i_name, i_sep ? i_sep : i_end);
  if (i_sep && *i_sep) {
    const std::uint8_t* i_arg = next_non_spacetab(i_sep, i_end);
    // i_arg may point at a NUL (e.g. "#!/x \0y"): the kernel then passes an
    // empty argument, so keep it.
    if (i_arg) s.arg = c_string(i_arg, i_end + 1);
  }
  const std::string& last = s.arg ? *s.arg : s.interpreter;
  s.has_cr = !last.empty() && last.back() == '\r';
  return s;
}

}  // namespace procforge::exec
