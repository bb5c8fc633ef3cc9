// The execve model against the files of a real system. First every regular
// file under /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu and /usr/libexec
// goes through exec::predict() (programs, shared libraries, scripts, data):
// the model must answer for each, quickly. Then a deterministic sample of them
// is exec'd by the real kernel and stopped at PTRACE_EVENT_EXEC
// (support/exec_stop.cpp), before the new image runs an instruction, and the
// kernel's result, errno, auxv, entry point, /proc/PID/maps, rsp, the mm
// fields and the initial stack's bytes must equal the prediction field by
// field. ADDR_NO_RANDOMIZE makes every address exact. The first instruction
// of every image is single-stepped, so that whether the entry faults is the
// kernel's answer for every image, not only where the model predicts a fault.
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
#include <cstdint>
#include <cstdio>
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
#include "support/elf_builder.hpp"
#include "support/exec_stop.hpp"
#include "support/image_check.hpp"
#include "support/requires.hpp"

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
  if (n >= 18 && std::memcmp(head,
                             "\x7f"
                             "ELF",
                             4) == 0) {
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
  req.want_stack_image = true;
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

// Images a system may not hold but whose place the kernel chooses itself: an
// ET_DYN without PT_INTERP whose segments span 2 MiB or more is mapped at a
// hint of 0 (load_elf_binary(); with a p_align above the page size, then
// aligned down), where the file system's get_unmapped_area may align it for
// transparent huge pages (thp_get_unmapped_area(), mm/huge_memory.c). Built
// in a temporary directory, removed with the object; `error` says what failed.
struct GeneratedImages {
  std::string dir;
  std::vector<SweptFile> files;
  std::string error;

  GeneratedImages() {
    std::string t = "/tmp/pfsweep-XXXXXX";
    if (!::mkdtemp(t.data())) {
      error = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir = t;
    for (const std::uint64_t align : {std::uint64_t{0x1000}, std::uint64_t{0x200000}}) {
      // Text at 0, then 4 MiB of bss from 2 MiB up: the image spans 6 MiB.
      ElfSpec spec = minimal_pie(0);
      spec.phdrs[0].align = align;
      spec.phdrs.push_back(Phdr{kPtLoad, kPfR | kPfW, 0, 0x200000, 0, 0, 0x400000, align});
      const std::string path = dir + "/static-pie-6m-align-" + hex(align);
      if (!write_file(path, build(spec), 0755)) {
        error = "writing " + path + ": " + std::strerror(errno);
        return;
      }
      SweptFile f{path, "generated ET_DYN without PT_INTERP, 6 MiB, p_align " + hex(align), std::nullopt};
      auto p = exec::predict(request_for(path, nullptr), facts());
      if (!p) {
        error = "predict() on " + path + ": " + p.error().message;
        return;
      }
      f.prediction = std::move(*p);
      files.push_back(std::move(f));
    }
  }
  ~GeneratedImages() {
    for (const auto& f : files) ::unlink(f.path.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

TEST(SystemSweep, every_system_file_gets_a_prediction) {
  SKIP_IF_TOO_FEW_FILES(100u, true, "/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec");
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
  int mm_checked = 0, mm_agree = 0, stack_checked = 0, stack_agree = 0;
  std::vector<std::string> rebased;  // images with objects the kernel places itself (compared rebased)
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

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// What a mapping belongs to, the same on both sides: a file (by inode; a bss
// belongs to the file whose segment it extends) or a special mapping.
std::string owner_of_model(const exec::Mapping& m) {
  static const std::string kBss = "[bss of ";
  if (m.file_backed) return "inode " + std::to_string(inode_of(m.object));
  if (m.object.rfind(kBss, 0) == 0)
    return "inode " + std::to_string(inode_of(m.object.substr(kBss.size(), m.object.size() - kBss.size() - 1)));
  return m.object;
}

std::string owner_of_kernel(const MapsEntry& e) {
  if (e.inode) return "inode " + std::to_string(e.inode);
  return e.name == "[vvar_vclock]" ? "[vvar]" : e.name;  // 6.13+ splits the vDSO data in two
}

// Where the kernel put the lowest mapping of each object.
std::map<std::string, std::uint64_t> kernel_lowest(const ExecStopResult& k) {
  std::map<std::string, std::uint64_t> low;
  for (const auto& e : k.maps) {
    const std::string owner = owner_of_kernel(e);
    if (owner.empty()) continue;
    auto [it, fresh] = low.emplace(owner, e.start);
    if (!fresh) it->second = std::min(it->second, e.start);
  }
  return low;
}

// The plan's mappings with absolute addresses. An object the plan places
// only relative to a base (Mapping::address_known false) is one the kernel
// places itself: with ASLR off that is an ET_DYN of 2 MiB or more mapped at a
// hint of 0 (the main program without PT_INTERP, or the interpreter), which
// thp_get_unmapped_area() aligns for file THP (mm/huge_memory.c), and what is
// placed top-down below it (the vDSO); and everything of a set-id image, for
// which the kernel turns ASLR back on (PER_CLEAR_ON_SETID in bprm_fill_uid(),
// applied by begin_new_exec()). Such an object is rebased so that its
// lowest mapping starts where the kernel's lowest mapping of it does; its
// other mappings keep their places relative to that one. `shift_of` gets, per
// rebased owner, what was added.
std::vector<exec::Mapping> placed_mappings(const exec::Plan& plan, const ExecStopResult& k,
                                           std::map<std::string, std::uint64_t>* shift_of,
                                           std::vector<std::string>* diffs) {
  std::map<std::string, std::int64_t> model_low;
  for (const auto& m : plan.mappings) {
    if (m.address_known || m.start == m.end) continue;
    const std::string owner = owner_of_model(m);
    auto [it, fresh] = model_low.emplace(owner, static_cast<std::int64_t>(m.start));
    if (!fresh) it->second = std::min(it->second, static_cast<std::int64_t>(m.start));
  }
  const auto klow = kernel_lowest(k);
  for (const auto& [owner, low] : model_low) {
    const auto it = klow.find(owner);
    if (it == klow.end()) {
      diffs->push_back("mapping: model places " + owner + " relative to a base, kernel has no mapping of it");
      continue;
    }
    (*shift_of)[owner] = it->second - static_cast<std::uint64_t>(low);
  }
  std::vector<exec::Mapping> out;
  for (auto m : plan.mappings) {
    if (!m.address_known) {
      const auto it = shift_of->find(owner_of_model(m));
      if (it == shift_of->end()) continue;  // reported above
      m.start += it->second;
      m.end += it->second;
      m.address_known = true;
    }
    out.push_back(std::move(m));
  }
  return out;
}

// (b) mappings: every range the plan places must be in /proc/PID/maps with the
// same bounds, protection and (for files) offset and file, and vice versa.
std::vector<std::string> compare_maps(const std::vector<exec::Mapping>& placed, const ExecStopResult& k) {
  std::vector<Range> model, kernel;
  for (const auto& m : placed) {
    if (m.start == m.end) continue;  // the empty [heap]: no VMA until brk() grows it
    model.push_back(
        {m.start, m.end, m.prot, m.file_backed, m.file_offset, m.file_backed ? inode_of(m.object) : 0, m.object});
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

// The kernel's load bias for the program: where it put the program's lowest
// mapping, less the page of its first PT_LOAD (load_elf_binary() maps that
// one first, at the bias plus its p_vaddr).
std::optional<std::uint64_t> kernel_program_bias(const exec::Prediction& p, const ExecStopResult& k) {
  const auto klow = kernel_lowest(k);
  const auto it = klow.find("inode " + std::to_string(inode_of(p.plan->exe)));
  const auto first = std::find_if(p.elf_phdrs.begin(), p.elf_phdrs.end(),
                                  [](const elf::ProgramHeader& ph) { return ph.type == 1 /* PT_LOAD */; });
  if (it == klow.end() || first == p.elf_phdrs.end()) return std::nullopt;
  return it->second - (first->vaddr & ~0xfffull);
}

// Where the first instruction is: the plan's, or for an image it places only
// relative to a base, its entry offset from the kernel's base of the object
// (the interpreter's: AT_BASE).
std::optional<std::uint64_t> entry_of(const exec::Prediction& p, const ExecStopResult& k,
                                      const std::optional<std::uint64_t>& program_bias) {
  if (p.plan->entry) return p.plan->entry;
  if (!p.plan->entry_in_interp)
    return program_bias ? std::optional(*program_bias + p.plan->entry_offset) : std::nullopt;
  for (const auto& [type, value] : k.auxv)
    if (type == 7 /* AT_BASE */) return value + p.plan->entry_offset;
  return std::nullopt;
}

void check_one(const SweptFile& f, SampleTally& t) {
  const exec::Prediction& p = *f.prediction;
  ExecStopRequest req;
  req.path = f.path;
  req.argv = {f.path};
  req.envp = kEnv;
  req.addr_no_randomize = true;
  req.step_first_instruction = true;
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
  std::map<std::string, std::uint64_t> shift_of;
  std::vector<std::string> maps_diffs;
  const auto placed = placed_mappings(*p.plan, k, &shift_of, &maps_diffs);
  if (!shift_of.empty()) {
    std::string owners;
    for (const auto& [owner, shift] : shift_of) owners += (owners.empty() ? "" : ", ") + owner;
    t.rebased.push_back(f.path + " (" + owners + ")");
  }
  for (auto& d : compare_maps(placed, k)) maps_diffs.push_back(std::move(d));
  if (maps_diffs.empty()) ++t.maps_agree;
  else disagree(join_capped(maps_diffs));

  // At the exec stop rip is the first instruction the image will execute.
  const auto program_bias = kernel_program_bias(p, k);
  if (const auto entry = entry_of(p, k, program_bias)) {
    ++t.entry_checked;
    if (*entry == k.rip) ++t.entry_agree;
    else disagree("entry point: kernel rip " + hex(k.rip) + ", model " + hex(*entry));
  }

  ++t.mm_checked;
  const auto mm_diffs = compare_rsp_and_mm(*p.plan, k, program_bias);
  if (mm_diffs.empty()) ++t.mm_agree;
  else disagree("mm: " + join_capped(mm_diffs, 8));

  if (has_stack_image(*p.plan)) {
    ++t.stack_checked;
    const auto stack_diffs = compare_stack_bytes(*p.plan, k);
    if (stack_diffs.empty()) ++t.stack_agree;
    else disagree(join_capped(stack_diffs, 6));
  }
}

TEST(SystemSweep, kernel_agrees_on_a_sample_stopped_at_exec) {
  const Sweep& s = sweep();
  auto sample = pick_sample(s);
  ASSERT_FALSE(sample.empty());
  const GeneratedImages generated;
  ASSERT_TRUE(generated.error.empty()) << "building the generated images: " << generated.error;
  for (const auto& f : generated.files) sample.push_back(&f);

  SampleTally t;
  std::map<std::string, int> kinds;
  const auto t0 = Clock::now();
  for (const SweptFile* f : sample) {
    ++kinds[model_outcome(*f->prediction) + " / " + f->kind];
    check_one(*f, t);
  }
  const auto took = Clock::now() - t0;

  std::ostringstream out;
  out << "kernel sample: " << t.checked << " checked (first instruction stepped in each image), " << t.result_agree
      << " agree on result+errno, " << t.auxv_agree << " agree on auxv, " << t.maps_agree << " agree on mappings ("
      << t.rebased.size() << " with objects rebased on the kernel's base), " << t.entry_agree << " of "
      << t.entry_checked << " agree on entry point, " << t.mm_agree << " agree on rsp and mm fields, " << t.stack_agree
      << " of " << t.stack_checked << " on the stack bytes (of " << t.auxv_checked << " images the kernel loaded; "
      << ms(took) << " ms)\n";
  out << "  sampled groups:";
  for (const auto& [group, n] : kinds) out << " [" << group << "] " << n << ";";
  out << "\n";
  for (const auto& r : t.rebased) out << "  rebased " << r << "\n";
  for (const auto& d : t.disagreements) out << "  disagree " << d << "\n";
  std::fputs(out.str().c_str(), stdout);
  std::fflush(stdout);

  EXPECT_EQ(t.result_agree, t.checked);
  EXPECT_EQ(t.auxv_agree, t.auxv_checked);
  EXPECT_EQ(t.maps_agree, t.maps_checked);
  EXPECT_EQ(t.entry_agree, t.entry_checked);
  EXPECT_EQ(t.mm_agree, t.mm_checked);
  EXPECT_EQ(t.stack_agree, t.stack_checked);
  EXPECT_TRUE(t.disagreements.empty()) << t.disagreements.size() << " disagreements (listed above)";
}

}  // namespace
}  // namespace procforge::testsupport
