// Splitting batch input into commands and words as sh(1) would, without
// expanding anything: POSIX XCU 2.2 (Quoting) and 2.3 (Token Recognition),
// the rules dash's parser (src/parser.c readtoken1()) and bash's follow for a
// simple command's words. What a shell would read differently from the
// literal text (an expansion, an operator) is refused with its line and
// column, so that a line never runs as something other than what a shell
// would have run: quoting it makes it a word.
#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "procforge/batch.hpp"

namespace procforge::batch {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// XCU 2.9.1's control and redirection operators start with one of these.
bool is_operator(char c) { return std::strchr("|&;<>()", c) != nullptr && c != '\0'; }

// Whether a shell would expand '$' followed by NEXT (XCU 2.6.2 parameters,
// 2.6.3 $(...), 2.6.4 $((...)); outside double quotes bash's $'...' and
// $"..." as well). Any other '$' is a literal dollar in sh too.
bool dollar_expands(char next, bool in_double_quotes) {
  const auto u = static_cast<unsigned char>(next);
  if (std::isalnum(u) || next == '_') return true;
  const char* starts = in_double_quotes ? "{(@*#?-$!" : "{(@*#?-$!'\"";
  return next != '\0' && std::strchr(starts, next) != nullptr;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<std::vector<Command>> commands() {
    // execve takes C strings: a NUL would cut an argument short.
    if (const auto nul = s_.find('\0'); nul != std::string_view::npos) {
      for (std::size_t k = 0; k < nul; ++k)
        if (s_[k] == '\n') next_line(k + 1);
      return fail(column(nul), "a NUL byte cannot be part of an argument");
    }
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\n') {
        end_command();
        next_line(i_ + 1);
      } else if (is_blank(c)) {
        end_word();
        text_ += c;
        ++i_;
      } else if (c == '#' && !in_word_) {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;  // the newline still ends the command
      } else if (auto e = word_part(); !e) {
        return e.error();
      }
    }
    end_command();
    return std::move(out_);
  }

 private:
  // One quoted string, escaped character or plain character of a word.
  Status word_part() {
    if (!in_command_) start_command();
    const char c = s_[i_];
    if (c == '\\') return backslash();
    if (c == '\'') return single_quoted();
    if (c == '"') return double_quoted();
    if (c == '`' || (c == '$' && dollar_expands(at(i_ + 1), false))) return expansion();
    if (is_operator(c))
      return fail(column(i_), fmt::format("'{}' is a shell operator, and batch commands run without a shell: quote "
                                          "it to pass it as a word, or run the line with sh -c '...'",
                                          c));
    take(c, 1);
    return ok_status();
  }

  // Outside quotes a backslash keeps the next character; before a newline it
  // joins the next line to this one (XCU 2.2.1).
  Status backslash() {
    if (i_ + 1 >= s_.size()) return fail(column(i_), "a backslash at the end of the input escapes nothing");
    if (s_[i_ + 1] == '\n') {
      next_line(i_ + 2);
      return ok_status();
    }
    word_ += s_[i_ + 1];
    in_word_ = true;
    text_.append(s_.substr(i_, 2));
    i_ += 2;
    return ok_status();
  }

  // Everything up to the next single quote, as written (XCU 2.2.2). A
  // command ends with its line, so a quote still open there is an error.
  Status single_quoted() {
    const std::size_t open = i_;
    const std::size_t close = s_.find_first_of("'\n", open + 1);
    if (close == std::string_view::npos || s_[close] != '\'') return unterminated('\'', line_, column(open));
    word_.append(s_.substr(open + 1, close - open - 1));
    in_word_ = true;
    text_.append(s_.substr(open, close - open + 1));
    i_ = close + 1;
    return ok_status();
  }

  // Double quotes keep everything but a backslash before $ ` " \ or a
  // newline, which escapes it (XCU 2.2.3); $ and ` would expand.
  Status double_quoted() {
    const std::size_t open_line = line_, open_column = column(i_);
    in_word_ = true;
    text_ += '"';
    ++i_;
    while (i_ < s_.size() && s_[i_] != '\n') {
      const char c = s_[i_];
      if (c == '"') {
        text_ += c;
        ++i_;
        return ok_status();
      }
      if (c == '`' || (c == '$' && dollar_expands(at(i_ + 1), true))) return expansion();
      if (c == '\\' && at(i_ + 1) == '\n') {
        next_line(i_ + 2);
        continue;
      }
      if (c == '\\' && at(i_ + 1) != '\0' && std::strchr("$`\"\\", at(i_ + 1)) != nullptr) {
        text_ += c;
        ++i_;
      }
      word_ += s_[i_];
      text_ += s_[i_];
      ++i_;
    }
    return unterminated('"', open_line, open_column);
  }

  // Names what would expand: '$HOME', '${', '$(', '`'.
  Status expansion() {
    std::size_t end = i_ + 1;
    if (s_[i_] == '$') {
      const auto name_char = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
      end = i_ + 2;
      if (name_char(at(i_ + 1)) && !std::isdigit(static_cast<unsigned char>(at(i_ + 1))))
        while (name_char(at(end))) ++end;
    }
    return fail(column(i_), fmt::format("'{}' would be expanded by a shell, and batch commands are not expanded: "
                                        "put it in single quotes to pass it as written",
                                        s_.substr(i_, end - i_)));
  }

  Status unterminated(char quote, std::size_t line, std::size_t col) const {
    return fail(line, col,
                fmt::format("unterminated {} quote (a command ends with its line; a quote cannot span "
                            "lines)",
                            quote));
  }

  char at(std::size_t k) const { return k < s_.size() ? s_[k] : '\0'; }
  std::size_t column(std::size_t k) const { return k - line_start_ + 1; }

  Error fail(std::size_t col, const std::string& what) const { return fail(line_, col, what); }
  static Error fail(std::size_t line, std::size_t col, const std::string& what) {
    return Error{ErrorStep::parse, EINVAL, fmt::format("line {}", line),
                 fmt::format("line {}, column {}: {}", line, col, what)};
  }

  void take(char c, std::size_t n) {
    word_ += c;
    in_word_ = true;
    text_.append(s_.substr(i_, n));
    i_ += n;
  }

  void start_command() {
    in_command_ = true;
    cur_ = Command{};
    cur_.line = line_;
  }

  void next_line(std::size_t at) {
    ++line_;
    i_ = line_start_ = at;
  }

  void end_word() {
    if (!in_word_) return;
    if (!in_command_) start_command();
    cur_.argv.push_back(std::move(word_));
    word_.clear();
    in_word_ = false;
  }

  void end_command() {
    end_word();
    if (in_command_ && !cur_.argv.empty()) {
      const auto first = text_.find_first_not_of(" \t");
      const auto last = text_.find_last_not_of(" \t");
      cur_.text = text_.substr(first, last - first + 1);
      out_.push_back(std::move(cur_));
    }
    in_command_ = false;
    text_.clear();
  }

  std::string_view s_;
  std::size_t i_ = 0, line_ = 1, line_start_ = 0;
  bool in_word_ = false, in_command_ = false;
  std::string word_, text_;
  Command cur_;
  std::vector<Command> out_;
};

}  // namespace

Result<std::vector<Command>> parse(std::string_view text) { return Parser(text).commands(); }

}  // namespace procforge::batch
