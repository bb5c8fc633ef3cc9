// Terminal colours: the few ECMA-48 SGR ("Select Graphic Rendition") codes
// the renderers use, and a Style that emits them only when colour is on, so
// that output without colour is byte for byte what it was before colour.
//
//   const Style st(color);
//   o << st.bold("checks") << st.dim("  [rule]");            // wrapped strings
//   o << st.code(ansi::dim) << text << st.code(ansi::reset);  // or raw codes around a stream
#pragma once

#include <string>

namespace procforge {

namespace ansi {
inline constexpr const char* bold = "\033[1m";
inline constexpr const char* dim = "\033[2m";
inline constexpr const char* red = "\033[31m";
inline constexpr const char* green = "\033[32m";
inline constexpr const char* reset = "\033[0m";
// Back to column 0 and erase the line: how a progress line redraws itself.
inline constexpr const char* clear_line = "\r\033[K";
}  // namespace ansi

class Style {
 public:
  explicit Style(bool on) : on_(on) {}

  // CODE when colour is on, "" otherwise.
  [[nodiscard]] const char* code(const char* sgr) const { return on_ ? sgr : ""; }
  // S between CODE and a reset when colour is on, S otherwise.
  [[nodiscard]] std::string paint(const char* sgr, const std::string& s) const {
    return on_ ? sgr + s + ansi::reset : s;
  }
  [[nodiscard]] std::string bold(const std::string& s) const { return paint(ansi::bold, s); }
  [[nodiscard]] std::string dim(const std::string& s) const { return paint(ansi::dim, s); }
  [[nodiscard]] std::string red(const std::string& s) const { return paint(ansi::red, s); }
  [[nodiscard]] std::string green(const std::string& s) const { return paint(ansi::green, s); }

 private:
  bool on_;
};

}  // namespace procforge
