// batch::parse against the shell: what words a line gives is never written
// here, sh decides. Every line (named cases, then a few hundred generated
// from quotes, escapes, comments and continuations) runs through the real
// shell as `printf '%s\0' MARK LINE`, and the words it prints are compared
// with procforge's, one by one. Only the refusals (what a shell would expand
// or read as an operator, a quote left open) are written out by hand.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "procforge/batch.hpp"
#include "support/run_command.hpp"

namespace {

using procforge::batch::parse;
using Words = std::vector<std::string>;

constexpr const char* kMark = "@@case@@";

// The words SHELL gives each line, in order.
std::vector<Words> shell_words(const std::string& shell, const std::vector<std::string>& lines) {
  std::string script;
  for (const auto& l : lines) script += std::string("printf '%s\\0' ") + kMark + " " + l + "\n";
  procforge::testsupport::CommandOptions o;
  o.cwd = "/";  // nothing generated is a glob, but a stray one must not match files of the test's directory
  const auto r = procforge::testsupport::run_command({shell, "-c", script}, o);
  EXPECT_EQ(r.exit_code, 0) << shell << ": " << r.err;
  std::vector<Words> out;
  std::size_t at = 0;
  while (at < r.out.size()) {
    const std::size_t nul = r.out.find('\0', at);
    std::string w = r.out.substr(at, nul - at);
    at = nul == std::string::npos ? r.out.size() : nul + 1;
    if (w == kMark) out.emplace_back();
    else if (!out.empty()) out.back().push_back(std::move(w));
  }
  EXPECT_EQ(out.size(), lines.size()) << shell << " gave words for " << out.size() << " of " << lines.size()
                                      << " lines";
  return out;
}

// procforge's words for LINE: one command, or none.
Words procforge_words(const std::string& line) {
  auto commands = parse(line);
  if (!commands) {
    ADD_FAILURE() << "refused: " << commands.error().message << "\n  line: " << line;
    return {};
  }
  if (commands->size() != 1) {
    ADD_FAILURE() << commands->size() << " commands from one line: " << line;
    return {};
  }
  return commands->front().argv;
}

void expect_same_as_shells(const std::vector<std::string>& lines) {
  // dash is Debian's /bin/sh; bash --posix splits the same way, and both must agree.
  for (const char* shell : {"/bin/sh", "/bin/bash"}) {
    const auto expected = shell_words(shell, lines);
    for (std::size_t i = 0; i < lines.size() && i < expected.size(); ++i)
      EXPECT_EQ(procforge_words(lines[i]), expected[i]) << shell << " split it otherwise: " << lines[i];
  }
}

struct Case {
  const char* name;
  const char* line;
};
// The name only: a line ending in a backslash would run into the next test name in ctest's discovery.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SplitLikeSh : public ::testing::TestWithParam<Case> {};

TEST_P(SplitLikeSh, gives_the_words_sh_gives) { expect_same_as_shells({GetParam().line}); }

const Case kCases[] = {
    {"blanks_separate_words", "a  b\tc \t d"},
    {"single_quotes_keep_everything", R"('a "b" \c $d `e` #f | g ; h & (i) <j> ~k *l')"},
    {"double_quotes_escape_only_five_characters", R"("a \$ \` \" \\ \n \q 'x' #y | ;")"},
    {"dollar_with_nothing_to_expand_is_literal", R"(a$ "b$" $ "$" c$%)"},
    {"backslash_outside_quotes_keeps_the_next_character", R"(\ a\'b\"c\\d\#e \| \; \& \< \> \( \) \$f \`)"},
    {"hash_inside_a_word_is_literal", R"(a#b "c"#d ''#e)"},
    {"hash_starting_a_word_starts_a_comment", "a #b 'c' \"d"},
    {"empty_quotes_make_empty_words", R"('' "" a''b "")"},
    {"adjacent_quoted_parts_join_into_one_word", R"(a'b'"c"\ d'e f'"g h")"},
    {"backslash_newline_joins_lines_outside_quotes", "a\\\nb c\\\n d"},
    {"backslash_newline_joins_lines_inside_double_quotes", "\"a\\\nb\" c"},
    {"backslash_inside_single_quotes_is_kept", "'a\\'b"},
    {"tabs_and_trailing_blanks", "\ta\t \tb \t"},
    {"equals_signs_and_dashes_are_plain", "--x=1 -y a=b =c"},
};

INSTANTIATE_TEST_SUITE_P(Cases, SplitLikeSh, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Lines assembled at random from every quoting form the splitter knows.
std::string generated_line(std::mt19937& rng) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto chars = [&](const std::string& from, std::size_t most) {
    std::string s;
    for (std::size_t k = pick(most + 1); k > 0; --k) s += from[pick(from.size())];
    return s;
  };
  const std::string plain = "abcxyz019-_.,:=+%/^";
  const std::string in_single = plain + " \t\"\\$`#|;&<>()*~{}!";
  const std::string escapable = " '\"\\#$|;&<>()`a*";
  std::string line;
  for (std::size_t words = 1 + pick(6); words > 0; --words) {
    line += std::string(1 + pick(2), pick(4) ? ' ' : '\t');
    for (std::size_t part = 0, parts = 1 + pick(4); part < parts; ++part) {
      switch (pick(part == 0 ? 6 : 7)) {
        case 0: line += "x" + chars(plain, 6); break;
        case 1: line += "'" + chars(in_single, 8) + "'"; break;
        case 2: {
          std::string s = "\"";
          for (std::size_t k = pick(8); k > 0; --k) {
            switch (pick(5)) {
              case 0: s += std::string("\\") + "$`\"\\aq"[pick(6)]; break;
              case 1: s += "\\\n"; break;
              default: s += chars(plain + " '#|;&<>()", 1); break;
            }
          }
          line += s + "\"";
          break;
        }
        case 3: line += std::string("\\") + escapable[pick(escapable.size())]; break;
        case 4: line += pick(2) ? "''" : "\"\""; break;
        case 5: line += "\\\nx" + chars(plain, 3); break;  // a # after it would start a comment
        default: line += "#" + chars(plain, 3); break;     // not at a word's start: literal
      }
    }
  }
  if (pick(5) == 0) line += " #" + chars(in_single + "'", 10);
  return line;
}

TEST(BatchWords, generated_lines_split_as_sh_and_bash_split_them) {
  std::mt19937 rng(20261207);
  std::vector<std::string> lines;
  for (int i = 0; i < 400; ++i) lines.push_back(generated_line(rng));
  expect_same_as_shells(lines);
}

// What parse refuses: the message names the line and column and what to do.
struct Refusal {
  const char* name;
  const char* text;
  const char* message;  // the start of the Error's message
};
void PrintTo(const Refusal& r, std::ostream* os) { *os << r.name; }

class RefusedLike : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusedLike, names_the_line_and_column) {
  auto r = parse(GetParam().text);
  ASSERT_FALSE(r.ok()) << "accepted: " << GetParam().text;
  EXPECT_EQ(r.error().step, procforge::ErrorStep::parse);
  EXPECT_EQ(r.error().err, EINVAL);
  EXPECT_EQ(r.error().message.rfind(GetParam().message, 0), 0U) << r.error().message;
}

const Refusal kRefusals[] = {
    {"unterminated_single_quote", "echo a\necho 'b c\n", "line 2, column 6: unterminated ' quote"},
    {"unterminated_double_quote", "\n\necho \"b", "line 3, column 6: unterminated \" quote"},
    {"quote_spanning_lines", "echo 'a\nb'\n", "line 1, column 6: unterminated ' quote"},
    {"double_quote_opened_before_a_continuation", "echo \"a\\\nb\nc\"", "line 1, column 6: unterminated \" quote"},
    {"backslash_at_end_of_input", "echo a\\", "line 1, column 7: a backslash at the end of the input"},
    {"parameter_expansion", "echo $HOME/x", "line 1, column 6: '$HOME' would be expanded by a shell"},
    {"parameter_in_double_quotes", "echo \"a $x\"", "line 1, column 9: '$x' would be expanded"},
    {"braced_parameter", "echo ${x}", "line 1, column 6: '${' would be expanded"},
    {"command_substitution", "echo $(id)", "line 1, column 6: '$(' would be expanded"},
    {"backquotes", "echo `id`", "line 1, column 6: '`' would be expanded"},
    {"positional_parameter", "echo $1", "line 1, column 6: '$1' would be expanded"},
    {"bash_ansi_c_quote", "echo $'a'", "line 1, column 6: '$'' would be expanded"},
    {"pipe", "ls | wc", "line 1, column 4: '|' is a shell operator"},
    {"and_list", "a && b", "line 1, column 3: '&' is a shell operator"},
    {"semicolon", "a; b", "line 1, column 2: ';' is a shell operator"},
    {"redirection", "echo a >out", "line 1, column 8: '>' is a shell operator"},
    {"input_redirection", "cat <in", "line 1, column 5: '<' is a shell operator"},
    {"subshell", "(ls)", "line 1, column 1: '(' is a shell operator"},
};

INSTANTIATE_TEST_SUITE_P(Refusals, RefusedLike, ::testing::ValuesIn(kRefusals),
                         [](const ::testing::TestParamInfo<Refusal>& i) { return std::string(i.param.name); });

TEST(BatchWords, nul_byte_is_refused_with_its_line) {
  const std::string text("echo a\necho \0b\n", 15);
  auto r = parse(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("line 2, column 6: a NUL byte", 0), 0U) << r.error().message;
}

TEST(BatchWords, blank_and_comment_lines_give_no_command_and_keep_the_line_numbers) {
  auto r = parse("\n# a comment\n  \t\necho a\n   # indented comment\necho 'b'  # trailing\n\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2U);
  EXPECT_EQ((*r)[0].line, 4U);
  EXPECT_EQ((*r)[0].argv, (Words{"echo", "a"}));
  EXPECT_EQ((*r)[1].line, 6U);
  EXPECT_EQ((*r)[1].text, "echo 'b'");
}

TEST(BatchWords, a_continued_command_starts_on_its_first_line_and_its_text_has_no_continuation) {
  auto r = parse("echo a \\\n  b\necho c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2U);
  EXPECT_EQ((*r)[0].line, 1U);
  EXPECT_EQ((*r)[0].text, "echo a   b");
  EXPECT_EQ((*r)[1].line, 3U);
}

TEST(BatchWords, empty_input_gives_no_command) {
  auto r = parse("");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

}  // namespace
