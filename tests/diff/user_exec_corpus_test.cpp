// The user-space loader against the kernel on the generated exec corpus
// (support/exec_corpus.cpp, the 376 cases of exec_diff_test): each case runs
// once through the real execve() (support/oracle.cpp) and once through
// loader::prepare() + enter() in a forked child (support/user_exec.cpp), both
// as nobody, and the two must agree on the outcome: the errno before the point
// of no return, the signal after it, or the exit status, and for probe_args
// images the argv and the number of environment strings received.
//
// Cases whose mapped files the identity may execute but not read count like
// the others, and are listed apart: a user-space exec must mmap what it maps,
// which needs read permission. They run as procforge run --loader=user --uid
// runs them: prepare() reads as the caller (root here) and the stub takes the
// identity last. A caller that has only that identity gets EACCES from
// prepare() instead (a documented difference of the loader).
//
// A closing line "user exec corpus: N cases, M agree (P%)" and the list of
// disagreements are printed when the run ends (PROCFORGE_DIFF_REPORT_USER=<file>
// also writes them).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/exec_corpus.hpp"
#include "support/oracle.hpp"
#include "support/user_exec.hpp"

namespace procforge::testsupport {
namespace {

struct Tally {
  int cases = 0, agree = 0, skipped = 0;
  std::vector<std::string> disagreements, read_as_caller;
};

Tally& tally() {
  static Tally t;
  return t;
}

class UserCorpusSummary : public ::testing::Environment {
 public:
  void TearDown() override {
    SharedEnv::get().teardown();
    const Tally& t = tally();
    if (t.cases == 0 && t.skipped == 0) return;
    std::ostringstream s;
    char line[160];
    std::snprintf(line, sizeof line, "user exec corpus: %d cases, %d agree (%.1f%%)", t.cases, t.agree,
                  t.cases ? 100.0 * t.agree / t.cases : 0.0);
    s << line;
    if (t.skipped) s << ", " << t.skipped << " skipped (not counted)";
    if (!t.read_as_caller.empty())
      s << "; " << t.read_as_caller.size()
        << " of the cases map files their identity may only execute (read by prepare() as the caller)";
    s << "\n";
    for (const auto& d : t.disagreements) s << "  disagree " << d << "\n";
    for (const auto& e : t.read_as_caller) s << "  read as the caller: " << e << "\n";
    std::fputs(s.str().c_str(), stdout);
    std::fflush(stdout);
    if (const char* f = std::getenv("PROCFORGE_DIFF_REPORT_USER")) std::ofstream(f) << s.str();
  }
};

[[maybe_unused]] ::testing::Environment* const kSummary = ::testing::AddGlobalTestEnvironment(new UserCorpusSummary);

std::string show_argv(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size() && i < 6; ++i) {
    std::string s = v[i].size() > 40 ? v[i].substr(0, 32) + "...(" + std::to_string(v[i].size()) + ")" : v[i];
    out += (i ? ", \"" : "\"") + s + "\"";
  }
  if (v.size() > 6) out += ", ... (" + std::to_string(v.size()) + ")";
  return out + "]";
}

// Plain result without the ptrace detail the user side cannot have.
std::string outcome(const OracleResult& r) {
  if (!r.setup_error.empty()) return "harness failure: " + r.setup_error;
  OracleResult plain = r;
  plain.exec_known = false;
  plain.timed_out = false;
  return describe(plain) + (r.timed_out ? " (timeout)" : "");
}

std::vector<std::string> compare(const OracleResult& k, const OracleResult& u) {
  std::vector<std::string> d;
  if (k.outcome != u.outcome) return {"outcome"};
  if (k.outcome == OracleOutcome::error && k.err != u.err) d.push_back("errno");
  if (k.outcome == OracleOutcome::killed && k.signal != u.signal) d.push_back("signal");
  if (k.outcome == OracleOutcome::ok && k.exit_status != u.exit_status) d.push_back("exit status");
  if (k.probe.ran != u.probe.ran) d.push_back(std::string("probe report ") + (k.probe.ran ? "missing" : "unexpected"));
  if (k.probe.ran && u.probe.ran) {
    if (k.probe.argv != u.probe.argv)
      d.push_back("argv: kernel " + show_argv(k.probe.argv) + ", user " + show_argv(u.probe.argv));
    if (k.probe.envc != u.probe.envc) d.push_back("envc");
  }
  if (!k.probe.ran && !u.probe.ran && k.out != u.out) d.push_back("stdout");
  return d;
}

class UserExecCorpus : public ::testing::TestWithParam<std::size_t> {};

TEST_P(UserExecCorpus, KernelAndUserLoaderAgree) {
  const ExecCase& c = exec_corpus()[GetParam()];
  CaseBuilder b;
  c.build(b);
  ASSERT_TRUE(b.setup_error().empty()) << c.name << ": harness failure: " << b.setup_error();
  if (b.skip_reason().empty() && b.as_root && ::geteuid() != 0) b.skip("needs root");
  if (!b.skip_reason().empty()) {
    ++tally().skipped;
    GTEST_SKIP() << b.skip_reason();
  }
  const OracleRequest req = oracle_request(b);
  const OracleResult k = run_exec(req);
  ASSERT_TRUE(k.setup_error.empty()) << c.name << ": kernel side: " << k.setup_error;
  UserExecDetail detail;
  const OracleResult u = run_user_exec(req, &detail);
  ASSERT_TRUE(u.setup_error.empty()) << c.name << ": user side: " << u.setup_error;

  const std::vector<std::string> diffs = compare(k, u);
  std::string joined;
  for (const auto& d : diffs) joined += "; " + d;
  const std::string line = c.name + ": kernel " + outcome(k) + ", user " + outcome(u) +
                           (detail.prepared ? "" : " (prepare: " + detail.prepare_error + ")") + joined;

  if (!req.keep_credentials && detail.prepared) {
    const auto unreadable = unreadable_by(detail.mapped_files, req.uid, req.gid, req.groups);
    if (!unreadable.empty()) tally().read_as_caller.push_back(line + " [" + unreadable.front() + "]");
  }
  ++tally().cases;
  if (diffs.empty()) ++tally().agree;
  else tally().disagreements.push_back(line);
  EXPECT_TRUE(diffs.empty()) << line;
}

INSTANTIATE_TEST_SUITE_P(Corpus, UserExecCorpus, ::testing::Range<std::size_t>(0, exec_corpus().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return exec_corpus()[param.param].name;
                         });

}  // namespace
}  // namespace procforge::testsupport
