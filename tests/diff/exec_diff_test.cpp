// Differential test of the execve model: every case of the generated corpus
// (support/exec_corpus.cpp, reference/kernel-exec.md section 8 rows A-G and
// binfmt_misc) runs through the real kernel (support/oracle.cpp: fork, drop to
// nobody, execve, observe) and through exec::predict(), and the two must agree
// on the outcome, the errno or signal, whether a SIGSEGV came before or after
// the exec succeeded, the argv the final image received and, for auxv cases,
// the auxv types in order and every value the plan claims to know. Every
// image the kernel builds is also read at the exec stop with ASLR off
// (personality ADDR_NO_RANDOMIZE; a second run for cases that randomise) and
// compared with the plan: rsp, the mm fields of /proc/PID/stat and the
// initial stack byte for byte (support/image_check.hpp).
//
// Nothing here states what the kernel does: the kernel says it. A closing line
// "exec differential: N cases, M agree (P%)" and the list of disagreements are
// printed when the run ends (set PROCFORGE_DIFF_REPORT=<file> to also write them).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "procforge/exec.hpp"
#include "procforge/format.hpp"
#include "support/exec_corpus.hpp"
#include "support/image_check.hpp"
#include "support/oracle.hpp"

namespace procforge::testsupport {
namespace {

struct Tally {
  int cases = 0, agree = 0, skipped = 0;
  int images = 0, images_agree = 0, stack_images = 0, images_hidden = 0;
  std::vector<std::string> disagreements;
};

Tally& tally() {
  static Tally t;
  return t;
}

class SummaryEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    SharedEnv::get().teardown();
    const Tally& t = tally();
    if (t.cases == 0 && t.skipped == 0) return;
    std::ostringstream s;
    const double pct = t.cases ? 100.0 * t.agree / t.cases : 0.0;
    char line[160];
    std::snprintf(line, sizeof line, "exec differential: %d cases, %d agree (%.1f%%)", t.cases, t.agree, pct);
    s << line;
    if (t.skipped) s << ", " << t.skipped << " skipped (not counted)";
    s << "\n";
    s << "exec stop (ASLR off): " << t.images << " images compared, " << t.images_agree << " agree (rsp, mm fields; "
      << t.stack_images << " of them also the stack byte for byte)";
    if (t.images_hidden) s << ", " << t.images_hidden << " not readable without root (non-dumpable images)";
    s << "\n";
    for (const auto& d : t.disagreements) s << "  disagree " << d << "\n";
    std::fputs(s.str().c_str(), stdout);
    std::fflush(stdout);
    if (const char* f = std::getenv("PROCFORGE_DIFF_REPORT")) std::ofstream(f) << s.str();
  }
};

[[maybe_unused]] ::testing::Environment* const kSummary = ::testing::AddGlobalTestEnvironment(new SummaryEnvironment);

// SystemFacts depend on mounts (binfmt_misc) that cases may add: re-probe
// whenever the shared environment changed.
const exec::SystemFacts& facts() {
  static int generation = -1;
  static exec::SystemFacts f;
  if (generation != SharedEnv::get().generation()) {
    f = exec::SystemFacts::probe();
    generation = SharedEnv::get().generation();
  }
  return f;
}

std::string short_str(const std::string& s) {
  std::string out;
  for (unsigned char c : s.size() > 48 ? s.substr(0, 32) : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  if (s.size() > 48) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string show_argv(const std::vector<std::string>& v) {
  std::string out = "[";
  const std::size_t shown = std::min<std::size_t>(v.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) out += (i ? ", \"" : "\"") + short_str(v[i]) + "\"";
  if (v.size() > shown) out += ", ... (" + std::to_string(v.size()) + " strings)";
  return out + "]";
}

std::string describe(const exec::Prediction& p) {
  switch (p.outcome) {
    case exec::Outcome::ok: return "ok";
    case exec::Outcome::error:
      return "error " + errno_name(p.err) + (p.failed_step.empty() ? "" : " at " + p.failed_step);
    case exec::Outcome::killed:
      return std::string("killed ") + (p.signal == SIGSEGV ? "SIGSEGV" : "signal " + std::to_string(p.signal)) +
             (p.killed_at_first_instruction ? " (after exec)" : " (during exec)") +
             (p.failed_step.empty() ? "" : " at " + p.failed_step);
  }
  return "?";
}

exec::Outcome as_model(OracleOutcome o) {
  switch (o) {
    case OracleOutcome::ok: return exec::Outcome::ok;
    case OracleOutcome::error: return exec::Outcome::error;
    case OracleOutcome::killed: return exec::Outcome::killed;
  }
  return exec::Outcome::error;
}

// Field-by-field differences between what the kernel did and the prediction.
std::vector<std::string> compare(const OracleResult& k, const exec::Prediction& p, const CaseBuilder& b) {
  std::vector<std::string> diffs;
  if (as_model(k.outcome) != p.outcome) {
    diffs.push_back("outcome");
    return diffs;
  }
  if (k.outcome == OracleOutcome::error && k.err != p.err) diffs.push_back("errno");
  if (k.outcome == OracleOutcome::killed) {
    if (k.signal != p.signal) diffs.push_back("signal");
    if (k.exec_known && k.exec_succeeded != p.killed_at_first_instruction)
      diffs.push_back(std::string("killed ") + (k.exec_succeeded ? "after" : "during") + " exec, model says " +
                      (p.killed_at_first_instruction ? "after" : "during"));
  }
  if (k.outcome == OracleOutcome::ok && k.probe.ran && k.probe.argv != p.argv)
    diffs.push_back("argv: kernel " + show_argv(k.probe.argv) + ", model " + show_argv(p.argv));
  if (b.exit_byte && k.outcome == OracleOutcome::ok && p.plan) {
    // The image exits with one byte of its memory: the file's byte unless the
    // plan zeroes it (padzero()'s ranges, or an anonymous bss page).
    const std::uint64_t a = b.exit_byte->address;
    bool zero = std::any_of(p.plan->zero_ranges.begin(), p.plan->zero_ranges.end(),
                            [a](const auto& r) { return r.first <= a && a - r.first < r.second; });
    for (const auto& m : p.plan->mappings)
      if (m.address_known && !m.file_backed && m.start <= a && a < m.end) zero = true;
    const int model_exit = zero ? 0 : b.exit_byte->file_byte;
    if (k.exit_status != model_exit)
      diffs.push_back("exit status (the byte at " + hex(a) + "): kernel " + std::to_string(k.exit_status) + ", model " +
                      std::to_string(model_exit) + (zero ? " (zeroed)" : " (the file's byte)"));
  }
  if (b.check_auxv && k.outcome == OracleOutcome::ok && k.probe.ran) {
    if (!p.plan) {
      diffs.push_back("auxv: model has no plan");
    } else {
      // The probe stops at AT_NULL; a terminating AT_NULL in the plan is not compared.
      std::vector<exec::AuxvEntry> plan = p.plan->auxv;
      if (!plan.empty() && plan.back().type == 0) plan.pop_back();
      std::size_t i = 0;
      while (i < plan.size() && i < k.probe.auxv.size() && plan[i].type == k.probe.auxv[i].first) ++i;
      if (i < plan.size() || i < k.probe.auxv.size()) {
        std::string kt, mt;
        for (std::size_t j = i; j < k.probe.auxv.size(); ++j) kt += " " + exec::auxv_name(k.probe.auxv[j].first);
        for (std::size_t j = i; j < plan.size(); ++j) mt += " " + exec::auxv_name(plan[j].type);
        diffs.push_back("auxv types from entry " + std::to_string(i) + ": kernel [" + kt.substr(kt.empty() ? 0 : 1) +
                        "], model [" + mt.substr(mt.empty() ? 0 : 1) + "]");
      }
      for (const auto& e : plan) {
        if (!e.value) continue;
        for (const auto& [type, value] : k.probe.auxv) {
          if (type != e.type) continue;
          if (value != *e.value) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "%s: kernel 0x%llx, model 0x%llx (%s)", exec::auxv_name(type).c_str(),
                          static_cast<unsigned long long>(value), static_cast<unsigned long long>(*e.value),
                          e.describe.c_str());
            diffs.push_back(buf);
          }
          break;
        }
      }
    }
  }
  return diffs;
}

// The image the kernel built, read at the exec stop with ASLR off, against the
// plan for the same request with ASLR off: the model must have loaded it too,
// and placed its stack and its mm fields where the kernel did.
struct ImageCheck {
  bool stack_compared = false;
  std::vector<std::string> diffs;
};

ImageCheck check_image(const ExecImage& k, exec::Request req) {
  ImageCheck c;
  req.addr_no_randomize = true;
  req.want_stack_image = true;
  const auto pred = exec::predict(req, facts());
  if (!pred.ok()) {
    c.diffs.push_back("exec stop: predict() failed (" + pred.error().message + ")");
    return c;
  }
  if (!pred->plan || !(pred->outcome == exec::Outcome::ok || pred->killed_at_first_instruction)) {
    c.diffs.push_back("exec stop: the kernel built an image, the model predicts " + describe(*pred) + " with ASLR off");
    return c;
  }
  for (auto& d : compare_rsp_and_mm(*pred->plan, k)) c.diffs.push_back("exec stop: " + d);
  if (has_stack_image(*pred->plan)) {
    c.stack_compared = true;
    for (auto& d : compare_stack_bytes(*pred->plan, k)) c.diffs.push_back("exec stop: " + d);
  }
  return c;
}

class ExecDiff : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ExecDiff, KernelAndModelAgree) {
  const ExecCase& c = exec_corpus()[GetParam()];
  CaseBuilder b;
  c.build(b);
  ASSERT_TRUE(b.setup_error().empty()) << c.name << ": harness failure: " << b.setup_error();
  const bool root = ::geteuid() == 0;
  if (b.skip_reason().empty() && b.as_root && !root)
    b.skip("needs root (case runs with the caller's root credentials)");
  if (!b.skip_reason().empty()) {
    ++tally().skipped;
    GTEST_SKIP() << b.skip_reason();
  }
  // Not root: we cannot become nobody, so both sides run as ourselves.
  OracleRequest oreq = oracle_request(b);
  oreq.capture_image = true;
  const std::vector<std::string>& argv = oreq.argv;
  const std::string& cwd = oreq.cwd;
  const OracleResult k = run_exec(oreq);
  ASSERT_TRUE(k.setup_error.empty()) << c.name << ": " << k.setup_error;

  exec::Request req;
  req.path = b.path;
  req.argv = b.argv_null ? std::vector<std::string>{} : argv;
  req.argv_null = b.argv_null;
  req.envp = b.envp;
  req.cwd = cwd;
  req.creds = oreq.keep_credentials ? exec::Credentials::current() : exec::Credentials::unprivileged(65534, 65534);
  req.rlimit_stack = b.rlimit_stack == RLIM_INFINITY ? ~0ull : static_cast<std::uint64_t>(b.rlimit_stack);
  req.addr_no_randomize = b.addr_no_randomize;
  const auto pred = exec::predict(req, facts());

  ++tally().cases;
  std::vector<std::string> diffs;
  std::string model = "no prediction";
  if (!pred.ok()) {
    model += " (" + pred.error().message + ")";
    diffs.push_back("predict() failed");
  } else {
    model = describe(*pred);
    diffs = compare(k, *pred, b);
  }

  // The image at the exec stop: with ASLR off every address in it is exact.
  // A case that randomises runs a second time without.
  std::optional<OracleResult> norandom;
  if (!b.addr_no_randomize && k.exec_succeeded) {
    OracleRequest again = oreq;
    again.addr_no_randomize = true;
    norandom = run_exec(again);
    ASSERT_TRUE(norandom->setup_error.empty()) << c.name << " (ASLR off): " << norandom->setup_error;
  }
  if (!(norandom ? norandom->image_hidden : k.image_hidden).empty()) ++tally().images_hidden;
  if (const auto& image = norandom ? norandom->image : k.image) {
    const ImageCheck ic = check_image(*image, req);
    ++tally().images;
    if (ic.stack_compared) ++tally().stack_images;
    if (ic.diffs.empty()) ++tally().images_agree;
    diffs.insert(diffs.end(), ic.diffs.begin(), ic.diffs.end());
  }

  std::string joined;
  for (const auto& d : diffs) joined += "; " + d;
  if (diffs.empty()) {
    ++tally().agree;
  } else {
    tally().disagreements.push_back(c.name + ": kernel " + testsupport::describe(k) + ", model " + model + joined);
  }
  EXPECT_TRUE(diffs.empty()) << c.name << "\n  path:   " << short_str(b.path)
                             << "\n  kernel: " << testsupport::describe(k)
                             << (k.probe.ran ? " argv " + show_argv(k.probe.argv) : "") << "\n  model:  " << model
                             << (pred.ok() && !pred->diagnosis.empty() ? " (" + pred->diagnosis + ")" : "")
                             << "\n  differ: " << joined.substr(joined.empty() ? 0 : 2);

  // The fixture's own promise (which image runs and what it returns), not the model's.
  if (k.outcome == OracleOutcome::ok && b.expect_exit && !k.probe.ran) {
    EXPECT_EQ(k.exit_status, *b.expect_exit) << c.name << ": the image that ran is not the one the fixture built";
  }
  if (k.outcome == OracleOutcome::ok && k.out.rfind("probe_args v1", 0) == 0) {
    EXPECT_TRUE(k.probe.ran) << c.name << ": incomplete probe report";
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, ExecDiff, ::testing::Range<std::size_t>(0, exec_corpus().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return exec_corpus()[param.param].name;
                         });

}  // namespace
}  // namespace procforge::testsupport
