// The execve model against the files of a real system. First every regular
// file under /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu and /usr/libexec
// goes through exec::predict() (programs, shared libraries, scripts, data):
// the model must answer for each, quickly. Then a deterministic sample of them
// is exec'd by the real kernel and stopped at PTRACE_EVENT_EXEC
// (support/exec_stop.cpp), before the new image runs an instruction, and the
// kernel's result, errno, auxv, entry point and /proc/PID/maps must equal the
// prediction field by field. ADDR_NO_RANDOMIZE makes every address exact.
//
// Closing lines: "system sweep: ..." and "kernel sample: ...", then every
// disagreement (path, kernel, model, field).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <string.h>  // sigabbrev_np
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "procforge/exec.hpp"
#include "procforge/format.hpp"
#include "support/exec_stop.hpp"

namespace procforge::testsupport {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* const kRoots[] = {"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec"};
// Passed byte for byte to both sides: the stack addresses depend on them.
const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LANG=C"};
constexpr std::size_t kSampleTarget = 300;
// One prediction taking longer than this is a hang: fail loudly instead of
// blocking the test run.
constexpr auto kHangLimit = std::chrono::seconds(30);

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

std::string sig_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// The outcome in words both sides are rendered to, so they compare as text.
std::string model_outcome(const exec::Prediction& p) {
  switch (p.outcome) {
    case exec::Outcome::ok: return "run";
    case exec::Outcome::error: return errno_name(p.err);
    case exec::Outcome::killed:
      return "killed (" + sig_name(p.signal) +
             (p.killed_at_first_instruction ? " at first instruction)" : " during exec)");
  }
  return "?";
}

std::string kernel_outcome(const ExecStopResult& r) {
  switch (r.outcome) {
    case ExecStopOutcome::exec_failed: return errno_name(r.err);
    case ExecStopOutcome::killed_during_exec: return "killed (" + sig_name(r.signal) + " during exec)";
    case ExecStopOutcome::stopped_after_exec:
      if (r.first_step_signal == 0 || r.first_step_signal == SIGTRAP) return "run";
      return "killed (" + sig_name(r.first_step_signal) + " at first instruction)";
    case ExecStopOutcome::harness_error: return "harness error: " + r.setup_error;
  }
  return "?";
}

// What kind of file it is, so the sample covers every kind.
std::string file_kind(const std::string& path, const struct stat& st) {
  std::string kind = (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) ? "" : "not executable ";
  // Set-id files and 32-bit ELF files take other paths through the loader
  // (bprm_fill_uid(), compat_binfmt_elf): their own groups.
  if ((st.st_mode & S_ISUID) || (st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) kind += "set-id ";
  char head[20] = {};
  ssize_t n = -1;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    n = ::read(fd, head, sizeof head);
    ::close(fd);
  }
  if (n >= 2 && head[0] == '#' && head[1] == '!') return kind + "script";
  if (n >= 18 && std::memcmp(head, "\x7f" "ELF", 4) == 0) {
    const bool shared = path.find(".so") != std::string::npos && head[16] == 3 /* ET_DYN */;
    if (head[4] == 1 /* ELFCLASS32 */) kind += "32-bit ";
    return kind + (shared ? "ELF shared library" : "ELF");
  }
  return kind + (n == 0 ? "empty" : "data");
}

struct SweptFile {
  std::string path;
  std::string kind;
  std::optional<exec::Prediction> prediction;  // empty: not examined (unreadable)
};

struct Sweep {
  std::vector<SweptFile> files;
  std::map<std::string, int> by_outcome;
  int unexaminable = 0;
  std::vector<std::string> errors;  // predict() failures on readable files
  Clock::duration slowest{};
  std::string slowest_path;
  Clock::duration total{};
};

std::uint64_t stack_rlimit() {
  struct rlimit rl {};
  ::getrlimit(RLIMIT_STACK, &rl);
  return rl.rlim_cur;
}

exec::Request request_for(const std::string& path, const exec::OpenWriters* writers) {
  exec::Request req;
  req.path = path;
  req.argv = {path};
  req.envp = kEnv;
  req.creds = exec::Credentials::current();
  req.rlimit_stack = stack_rlimit();  // what the forked child inherits
  req.addr_no_randomize = true;
  req.writers = writers;
  return req;
}

std::vector<std::string> system_files() {
  std::vector<std::string> out;
  for (const char* root : kRoots) {
    std::error_code ec;
    // Directory symlinks are not followed (the default); file symlinks are
    // skipped: their targets are swept themselves.
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      std::error_code sec;
      if (it->is_symlink(sec) || !it->is_regular_file(sec)) continue;
      out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Aborts the process when one prediction hangs, naming the file.
class HangWatchdog {
 public:
  HangWatchdog() : thread_([this] { run(); }) {}
  ~HangWatchdog() {
    done_ = true;
    thread_.join();
  }
  void begin(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    path_ = path;
    started_ = Clock::now();
  }

 private:
  void run() {
    while (!done_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::lock_guard<std::mutex> lock(mu_);
      if (!path_.empty() && Clock::now() - started_ > kHangLimit) {
        std::fprintf(stderr, "system sweep: predict() on %s has run for more than %lld s: hang\n", path_.c_str(),
                     static_cast<long long>(kHangLimit.count()));
        std::abort();
      }
    }
  }
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::string path_;
  Clock::time_point started_{};
  std::thread thread_;
};

const exec::SystemFacts& facts() {
  static const exec::SystemFacts f = exec::SystemFacts::probe();
  return f;
}

const Sweep& sweep() {
  static const Sweep s = [] {
    Sweep r;
    const auto t0 = Clock::now();
    const exec::OpenWriters writers = exec::OpenWriters::scan();
    HangWatchdog watchdog;
    for (const auto& path : system_files()) {
      SweptFile f;
      f.path = path;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) continue;  // vanished since the listing
      f.kind = file_kind(path, st);
      watchdog.begin(path);
      const auto start = Clock::now();
      auto p = exec::predict(request_for(path, &writers), facts());
      const auto took = Clock::now() - start;
      if (took > r.slowest) {
        r.slowest = took;
        r.slowest_path = path;
      }
      if (p) {
        ++r.by_outcome[model_outcome(*p)];
        f.prediction = std::move(*p);
      } else {
        // Allowed only when we cannot read the file (the kernel could still
        // exec it; the model needs its bytes).
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
          ::close(fd);
          r.errors.push_back(path + ": " + p.error().message);
        } else {
          ++r.unexaminable;
        }
      }
      r.files.push_back(std::move(f));
    }
    r.total = Clock::now() - t0;
    return r;
  }();
  return s;
}

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

TEST(SystemSweep, every_system_file_gets_a_prediction) {
  const Sweep& s = sweep();
  ASSERT_GT(s.files.size(), 100u) << "too few files under the system directories to mean anything";

  std::vector<std::pair<std::string, int>> counts(s.by_outcome.begin(), s.by_outcome.end());
  std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::ostringstream line;
  line << "system sweep: " << s.files.size() << " files:";
  for (const auto& [outcome, n] : counts) line << " " << n << " " << outcome << ",";
  line << " " << s.unexaminable << " could not be examined; slowest " << ms(s.slowest) << " ms (" << s.slowest_path
       << "); whole sweep " << ms(s.total) << " ms\n";
  std::fputs(line.str().c_str(), stdout);
  std::fflush(stdout);

  for (const auto& e : s.errors) ADD_FAILURE() << "predict() failed on a readable file: " << e;
}

// ---- the kernel sample ----------------------------------------------------

// Every file is checked by default (about 2 ms a file, under 30 s for the
// whole system); PROCFORGE_SWEEP_SAMPLE=N checks about N files instead.
std::size_t sample_target() {
  const char* v = std::getenv("PROCFORGE_SWEEP_SAMPLE");
  if (!v || !*v || std::string(v) == "all") return SIZE_MAX;
  const long n = std::atol(v);
  return n > 0 ? static_cast<std::size_t>(n) : kSampleTarget;
}

// Every k-th file within each (predicted outcome, kind) group, so that rare
// groups (scripts, killed images, files without x bits) are represented.
std::vector<const SweptFile*> pick_sample(const Sweep& s) {
  std::map<std::string, std::vector<const SweptFile*>> groups;
  std::size_t examined = 0;
  for (const auto& f : s.files) {
    if (!f.prediction) continue;
    groups[model_outcome(*f.prediction) + " / " + f.kind].push_back(&f);
    ++examined;
  }
  const std::size_t k = std::max<std::size_t>(1, examined / sample_target());
  std::vector<const SweptFile*> out;
  for (const auto& [name, members] : groups) {
    const std::size_t take = std::max<std::size_t>(1, (members.size() + k / 2) / k);
    for (std::size_t i = 0; i < take; ++i) out.push_back(members[i * members.size() / take]);
  }
  return out;
}

// An address range as both sides describe it.
struct Range {
  std::uint64_t start = 0, end = 0;
  int prot = 0;
  bool file = false;
  std::uint64_t offset = 0;  // file ranges
  std::uint64_t inode = 0;   // file ranges: which file
  std::string name;

  [[nodiscard]] std::string str() const {
    return hex(start) + "-" + hex(end) + " " + prot_string(prot) + " " + (name.empty() ? "(anonymous)" : name) +
           (file ? " @" + hex(offset) : "");
  }
  bool operator==(const Range& o) const {
    return start == o.start && end == o.end && prot == o.prot && file == o.file &&
           (!file || (offset == o.offset && inode == o.inode));
  }
};

// The kernel merges adjacent anonymous VMAs with equal flags (mm/vma.c
// vma_merge_new_range(): a bss from vm_brk_flags() next to another anonymous
// range becomes one VMA), and since 6.13 the vDSO data area is two special
// mappings ([vvar], [vvar_vclock]) where the model has one [vvar]. Neither
// boundary is visible to a program, so both sides are compared after merging
// adjacent anonymous ranges of the same protection.
std::vector<Range> merge_anonymous(std::vector<Range> v) {
  std::sort(v.begin(), v.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  std::vector<Range> out;
  for (auto& r : v) {
    if (!out.empty() && !r.file && !out.back().file && out.back().end == r.start && out.back().prot == r.prot) {
      out.back().end = r.end;
      out.back().name += "+" + r.name;
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

struct SampleTally {
  int checked = 0, result_agree = 0, auxv_agree = 0, maps_agree = 0, entry_agree = 0;
  int auxv_checked = 0, maps_checked = 0, entry_checked = 0;
  std::vector<std::string> disagreements;
};

// (a) auxv: the same types in the same order, and every value the plan knows.
std::vector<std::string> compare_auxv(const exec::Plan& plan, const ExecStopResult& k) {
  std::vector<std::string> diffs;
  std::string kt, mt;
  for (const auto& [type, value] : k.auxv) kt += (kt.empty() ? "" : " ") + exec::auxv_name(type);
  for (const auto& a : plan.auxv) mt += (mt.empty() ? "" : " ") + a.name;
  if (kt != mt) diffs.push_back("auxv types: kernel [" + kt + "], model [" + mt + "]");
  // Values: entry by entry, or by type when the lists differ (each type
  // appears once).
  for (std::size_t i = 0; i < plan.auxv.size(); ++i) {
    const auto& a = plan.auxv[i];
    if (!a.value) continue;
    auto kv = kt == mt ? k.auxv.begin() + static_cast<long>(i)
                       : std::find_if(k.auxv.begin(), k.auxv.end(), [&](const auto& e) { return e.first == a.type; });
    if (kv != k.auxv.end() && kv->second != *a.value)
      diffs.push_back(a.name + ": kernel " + hex(kv->second) + ", model " + hex(*a.value) +
                      (a.describe.empty() ? "" : " (" + a.describe + ")"));
  }
  return diffs;
}

// (b) mappings: every range the plan places must be in /proc/PID/maps with the
// same bounds, protection and (for files) offset and file, and vice versa.
std::vector<std::string> compare_maps(const exec::Plan& plan, const ExecStopResult& k) {
  std::vector<Range> model, kernel;
  std::vector<std::uint64_t> open_files;  // inodes of file mappings whose address the plan leaves open
  int open_anonymous = 0;
  for (const auto& m : plan.mappings) {
    struct stat st {};
    const bool have_inode = m.file_backed && ::stat(m.object.c_str(), &st) == 0;
    if (!m.address_known) {
      if (m.file_backed) open_files.push_back(have_inode ? st.st_ino : 0);
      else ++open_anonymous;
      continue;
    }
    if (m.start == m.end) continue;  // the empty [heap]: no VMA until brk() grows it
    model.push_back({m.start, m.end, m.prot, m.file_backed, m.file_offset, have_inode ? st.st_ino : 0, m.object});
  }
  for (const auto& e : k.maps) {
    if (e.name == "[vsyscall]") continue;  // fixed kernel page, not part of the exec
    kernel.push_back({e.start, e.end, e.prot, e.inode != 0, e.offset, e.inode, e.name});
  }
  model = merge_anonymous(std::move(model));
  kernel = merge_anonymous(std::move(kernel));

  std::vector<std::string> diffs;
  auto overlapping = [](const std::vector<Range>& in, const Range& r) {
    std::string s;
    for (const auto& o : in)
      if (o.start < r.end && r.start < o.end) s += (s.empty() ? "" : "; ") + o.str();
    return s.empty() ? std::string("nothing") : s;
  };
  for (const auto& m : model)
    if (std::find(kernel.begin(), kernel.end(), m) == kernel.end())
      diffs.push_back("mapping: model " + m.str() + ", kernel has " + overlapping(kernel, m));
  for (const auto& r : kernel) {
    if (std::find(model.begin(), model.end(), r) != model.end()) continue;
    // A range the plan places only relative to an unknown base cannot be
    // matched by address; it must at least be of a file the plan maps there.
    const bool open = r.file ? std::find(open_files.begin(), open_files.end(), r.inode) != open_files.end()
                             : open_anonymous > 0;
    if (open) continue;
    bool reported = false;
    for (const auto& m : model)
      if (m.start < r.end && r.start < m.end) reported = true;  // already named above
    if (!reported) diffs.push_back("mapping: kernel " + r.str() + ", model has nothing there");
  }
  return diffs;
}

// One disagreement line per file and field group; long lists are cut.
std::string join_capped(const std::vector<std::string>& v, std::size_t cap = 4) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < cap; ++i) out += (i ? "; " : "") + v[i];
  if (v.size() > cap) out += "; ... " + std::to_string(v.size() - cap) + " more";
  return out;
}

void check_one(const SweptFile& f, SampleTally& t) {
  const exec::Prediction& p = *f.prediction;
  ExecStopRequest req;
  req.path = f.path;
  req.argv = {f.path};
  req.envp = kEnv;
  req.addr_no_randomize = true;
  req.step_first_instruction = p.outcome == exec::Outcome::killed && p.killed_at_first_instruction;
  const ExecStopResult k = exec_and_stop(req);
  ++t.checked;

  const std::string ko = kernel_outcome(k), mo = model_outcome(p);
  auto disagree = [&](const std::string& field) {
    t.disagreements.push_back(f.path + " [" + f.kind + "]: kernel " + ko + ", model " + mo + ": " + field);
  };
  if (ko == mo) ++t.result_agree;
  else disagree("result" + (p.failed_step.empty() ? "" : " (model's deciding step: " + p.failed_step + ")"));
  // The image and its plan are compared whenever both sides loaded it
  // completely, even when the results differ (one says the entry faults). A
  // plan cut short by a predicted kill during exec has nothing to compare.
  const bool plan_complete = p.plan && (p.outcome == exec::Outcome::ok || p.killed_at_first_instruction);
  if (k.outcome != ExecStopOutcome::stopped_after_exec || !plan_complete) return;

  ++t.auxv_checked;
  const auto auxv_diffs = compare_auxv(*p.plan, k);
  if (auxv_diffs.empty()) ++t.auxv_agree;
  else disagree("auxv: " + join_capped(auxv_diffs, 8));

  ++t.maps_checked;
  const auto maps_diffs = compare_maps(*p.plan, k);
  if (maps_diffs.empty()) ++t.maps_agree;
  else disagree(join_capped(maps_diffs));

  // At the exec stop rip is the first instruction the image will execute.
  if (p.plan->entry) {
    ++t.entry_checked;
    if (*p.plan->entry == k.rip) ++t.entry_agree;
    else disagree("entry point: kernel rip " + hex(k.rip) + ", model " + hex(*p.plan->entry));
  }
}

TEST(SystemSweep, kernel_agrees_on_a_sample_stopped_at_exec) {
  const Sweep& s = sweep();
  const auto sample = pick_sample(s);
  ASSERT_FALSE(sample.empty());

  SampleTally t;
  std::map<std::string, int> kinds;
  const auto t0 = Clock::now();
  for (const SweptFile* f : sample) {
    ++kinds[model_outcome(*f->prediction) + " / " + f->kind];
    check_one(*f, t);
  }
  const auto took = Clock::now() - t0;

  std::ostringstream out;
  out << "kernel sample: " << t.checked << " checked, " << t.result_agree << " agree on result+errno, "
      << t.auxv_agree << " agree on auxv, " << t.maps_agree << " agree on mappings, " << t.entry_agree
      << " agree on entry point (of " << t.auxv_checked << " images the kernel loaded; " << ms(took) << " ms)\n";
  out << "  sampled groups:";
  for (const auto& [group, n] : kinds) out << " [" << group << "] " << n << ";";
  out << "\n";
  for (const auto& d : t.disagreements) out << "  disagree " << d << "\n";
  std::fputs(out.str().c_str(), stdout);
  std::fflush(stdout);

  EXPECT_EQ(t.result_agree, t.checked);
  EXPECT_EQ(t.auxv_agree, t.auxv_checked);
  EXPECT_EQ(t.maps_agree, t.maps_checked);
  EXPECT_EQ(t.entry_agree, t.entry_checked);
  EXPECT_TRUE(t.disagreements.empty()) << t.disagreements.size() << " disagreements (listed above)";
}

}  // namespace
}  // namespace procforge::testsupport
