// Records every skipped test, so that scripts/test can count skips per suite
// and reason and hold each suite to a bound (tests/skip_bounds.tsv, checked
// by scripts/check_skips). A skip is not a pass: without this record a
// harness that silently skips everything would look green.
//
// When PROCFORGE_SKIP_LOG names a file, each skipped test appends one line
//   binary<TAB>suite<TAB>test<TAB>reason
// with a single O_APPEND write(): ctest runs every test as its own process,
// several at once, and one write() of a short line to an O_APPEND file is
// never interleaved with another's.
//
// This file is compiled into every test binary (an OBJECT library, not the
// static support library), so the linker cannot drop the registration below.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace {

// Tabs and newlines would break the line format.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string skip_message(const testing::TestResult& r) {
  for (int i = 0; i < r.total_part_count(); ++i) {
    const auto& part = r.GetTestPartResult(i);
    if (part.skipped()) return part.message();
  }
  return {};
}

class SkipLog : public testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const testing::TestInfo& info) override {
    if (!info.result()->Skipped()) return;
    const char* path = std::getenv("PROCFORGE_SKIP_LOG");
    if (path == nullptr || *path == '\0') return;
    std::string reason = skip_message(*info.result());
    // GTEST_SKIP() in SetUpTestSuite() leaves the reason on the suite.
    if (reason.empty()) {
      if (const auto* suite = testing::UnitTest::GetInstance()->current_test_suite())
        reason = skip_message(suite->ad_hoc_test_result());
    }
    if (reason.empty()) reason = "(no reason given)";
    const std::string line = one_line(program_invocation_short_name) + '\t' + one_line(info.test_suite_name()) + '\t' +
                             one_line(info.name()) + '\t' + one_line(reason) + '\n';
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    // A skip that cannot be recorded would escape the bound: fail loudly.
    if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      std::fprintf(stderr, "skip log %s: cannot record a skip: %s\n", path, std::strerror(errno));
      std::abort();
    }
    ::close(fd);
  }
};

// Runs before main(); UnitTest::GetInstance() is a function-local static, so
// the order of static initialisers does not matter.
[[maybe_unused]] const bool registered = [] {
  testing::UnitTest::GetInstance()->listeners().Append(new SkipLog);
  return true;
}();

}  // namespace
