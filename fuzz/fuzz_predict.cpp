// libFuzzer target for the exec model: the input is the content of a file,
// predict() says what execve() of it would do. The file is a memfd reached
// through /proc/self/fd/N, so each input costs no file system write; the
// #! and PT_INTERP paths an input names are looked up on this machine, as the
// kernel would. Beyond "no crash", what a prediction says must be possible:
//   - an error carries an errno the kernel has (1..4095, with a name);
//   - a kill names a signal;
//   - an ok prediction's mappings whose addresses are known are page aligned,
//     inside the user address space of the image's class, and do not overlap
//     (an empty one is allowed: [heap] starts empty at the brk).
// Run: fuzz_predict -max_total_time=60 corpus/  (seeds: the fuzz_elf and fuzz_shebang corpora)
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "invariant.hpp"
#include "procforge/exec.hpp"

namespace {

using namespace procforge::exec;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kTaskSize64 = (1ull << 47) - kPage;  // TASK_SIZE_MAX with 4-level paging
constexpr std::uint64_t kTaskSizeIa32 = 0xFFFFe000;          // IA32_PAGE_OFFSET

volatile std::uint64_t g_sink;

void check_mappings(const Prediction& p) {
  FUZZ_CHECK(p.plan.has_value(), "an ok prediction without a plan");
  // The handler, not EI_CLASS, decides the layout: x86_64's binfmt_elf loads
  // any EM_X86_64 file (EI_CLASS unchecked), compat_binfmt_elf any EM_386.
  const bool ia32 = p.elf_header && !p.elf_header->is64;
  const std::uint64_t task_size = ia32 ? kTaskSizeIa32 : kTaskSize64;
  std::vector<const Mapping*> known;
  for (const auto& m : p.plan->mappings) {
    if (!m.address_known) continue;
    FUZZ_CHECK(m.start % kPage == 0 && m.end % kPage == 0, "{} [{:#x}, {:#x}) is not page aligned", m.object, m.start,
               m.end);
    FUZZ_CHECK(m.start <= m.end && m.end <= task_size, "{} [{:#x}, {:#x}) is outside [0, {:#x})", m.object, m.start,
               m.end, task_size);
    if (m.start < m.end) known.push_back(&m);
  }
  std::sort(known.begin(), known.end(), [](auto* a, auto* b) { return a->start < b->start; });
  for (std::size_t i = 1; i < known.size(); ++i)
    FUZZ_CHECK(known[i]->start >= known[i - 1]->end, "{} [{:#x}, {:#x}) overlaps {} [{:#x}, {:#x})", known[i]->object,
               known[i]->start, known[i]->end, known[i - 1]->object, known[i - 1]->start, known[i - 1]->end);
}

void check(const Prediction& p) {
  switch (p.outcome) {
    case Outcome::ok: check_mappings(p); break;
    case Outcome::error:
      FUZZ_CHECK(p.err > 0 && p.err < 4096 && strerrorname_np(p.err) != nullptr, "an error with errno {} (step \"{}\")",
                 p.err, p.failed_step);
      break;
    case Outcome::killed:
      FUZZ_CHECK(p.signal > 0 && p.signal < NSIG, "a kill by signal {} (step \"{}\")", p.signal, p.failed_step);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const SystemFacts facts = SystemFacts::probe();
  // Nobody else writes the memfd: an empty writer set spares a /proc scan
  // per input (and the fd this process writes with is not an exec's writer).
  static const OpenWriters no_writers;
  static const int fd = memfd_create("fuzz_predict", MFD_CLOEXEC);
  static Request req = [] {
    Request r;
    r.path = "/proc/self/fd/" + std::to_string(fd);
    r.argv = {"prog", "arg"};
    r.envp = {"PATH=/usr/bin:/bin"};
    r.writers = &no_writers;
    r.dice = Dice{};  // fixed draws: every address known, every run the same
    return r;
  }();
  if (fd < 0) violated("memfd_create: {}", std::strerror(errno));
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    violated("writing the memfd: {}", std::strerror(errno));

  auto p = predict(req, facts);
  if (!p) {
    // The question could not be answered (e.g. the cwd is unreadable): not
    // the input's doing, but its errno must still be real.
    FUZZ_CHECK(p.error().err > 0 && p.error().err < 4096, "predict() failed with errno {}: {}", p.error().err,
               p.error().message);
    return 0;
  }
  check(*p);
  g_sink = g_sink + p->checks.size() + p->argv.size();
  return 0;
}
