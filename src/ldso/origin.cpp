// Dynamic string tokens and search-path lists, as glibc 2.36 elf/dl-load.c
// handles them: is_dst() (the greedy gABI identifier rule: "$ORIGINX" is not
// $ORIGIN; "${ORIGIN}" is), _dl_dst_count(), _dl_dst_substitute() (a
// recognised token without a value empties the whole string; in secure mode
// $ORIGIN is allowed only as the first component and the result must lie in a
// trusted directory, is_trusted_path_normalize()), and fillin_rpath() (split,
// expand, drop empty expansions, keep literal empty elements as the current
// directory, fold trailing slashes, remove duplicates within one list).
#include "procforge/ldso.hpp"

namespace procforge::ldso {

namespace {

bool ident_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Length of the DST REF at INPUT (just after '$'), braces included; 0 if none.
std::size_t is_dst(std::string_view input, std::string_view ref) {
  bool curly = false;
  if (!input.empty() && input[0] == '{') {
    curly = true;
    input.remove_prefix(1);
  }
  if (input.substr(0, ref.size()) != ref) return 0;
  const char next = input.size() > ref.size() ? input[ref.size()] : '\0';
  if ((curly && next != '}') || ident_char(next)) return 0;
  return curly ? ref.size() + 2 : ref.size();
}

// is_trusted_path_normalize(): collapse "/./", "/../" and "//", then test for
// a system-directory prefix.
bool trusted_path(std::string_view path, const std::vector<std::string>& trusted) {
  if (path.empty()) return false;
  std::string n;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      const char c1 = i + 1 < path.size() ? path[i + 1] : '\0';
      const char c2 = i + 2 < path.size() ? path[i + 2] : '\0';
      const char c3 = i + 3 < path.size() ? path[i + 3] : '\0';
      if (c1 == '.') {
        if (c2 == '.' && (c3 == '/' || c3 == '\0')) {
          while (!n.empty()) {
            const char back = n.back();
            n.pop_back();
            if (back == '/') break;
          }
          i += 3;
          continue;
        }
        if (c2 == '/' || c2 == '\0') {
          i += 2;
          continue;
        }
      }
      if (!n.empty() && n.back() == '/') {
        ++i;
        continue;
      }
    }
    n += path[i++];
  }
  if (n.empty() || n.back() != '/') n += '/';
  for (const auto& t : trusted)
    if (n.size() >= t.size() && n.compare(0, t.size(), t) == 0) return true;
  return false;
}

}  // namespace

std::size_t dst_count(std::string_view input) {
  std::size_t cnt = 0;
  std::size_t p = input.find('$');
  while (p != std::string_view::npos) {
    const std::string_view rest = input.substr(p + 1);
    std::size_t len = 0;
    if ((len = is_dst(rest, "ORIGIN")) != 0 || (len = is_dst(rest, "PLATFORM")) != 0 ||
        (len = is_dst(rest, "LIB")) != 0)
      ++cnt;
    p = input.find('$', p + 1 + len);
  }
  return cnt;
}

std::string dst_substitute(std::string_view input, const DstContext& ctx) {
  std::string out;
  bool check_trusted = false;
  std::size_t i = 0;
  do {
    if (i < input.size() && input[i] == '$') {
      ++i;
      const std::string_view rest = input.substr(i);
      std::optional<std::string> repl;
      bool refused = false;
      std::size_t len = 0;
      if ((len = is_dst(rest, "ORIGIN")) != 0) {
        // Secure mode: only "$ORIGIN" as the whole string or its first component.
        const char after = i + len < input.size() ? input[i + len] : '\0';
        if (ctx.secure && !(i == 1 && (after == '\0' || after == '/'))) refused = true;
        else repl = ctx.origin;
        check_trusted = ctx.secure && ctx.is_executable;
      } else if ((len = is_dst(rest, "PLATFORM")) != 0) {
        repl = ctx.platform;
      } else if ((len = is_dst(rest, "LIB")) != 0) {
        repl = ctx.lib;
      }
      if (repl && !refused) {
        out += *repl;
        i += len;
      } else if (len != 0) {
        return "";  // a known DST without a value: the element is unusable
      } else {
        out += '$';
      }
    } else if (i < input.size()) {
      out += input[i++];
    }
  } while (i < input.size());
  if (check_trusted && !trusted_path(out, ctx.trusted_dirs)) return "";
  return out;
}

std::vector<SearchDir> split_search_path(std::string_view list, std::string_view separators, const DstContext& ctx) {
  std::vector<SearchDir> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t sep = list.find_first_of(separators, start);
    const std::string_view elem =
        list.substr(start, sep == std::string_view::npos ? std::string_view::npos : sep - start);
    std::string dir;
    bool keep = true;
    if (!elem.empty()) {
      dir = dst_count(elem) ? dst_substitute(elem, ctx) : std::string(elem);
      if (dir.empty()) keep = false;  // expanded to nothing
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (!dir.empty() && dir.back() != '/') dir += '/';
    }
    if (keep) {
      bool dup = false;
      for (const auto& d : out) dup |= d.dir == dir;
      if (!dup) out.push_back({dir, std::string(elem)});
    }
    if (sep == std::string_view::npos) break;
    start = sep + 1;
  }
  return out;
}

std::vector<SearchDir> parse_library_path(std::string_view value, const DstContext& main_ctx) {
  // _dl_init_paths(): an unset or empty LD_LIBRARY_PATH adds no directory.
  if (value.empty()) return {};
  return split_search_path(value, ":;", main_ctx);
}

}  // namespace procforge::ldso
