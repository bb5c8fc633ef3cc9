// When the tracee itself stopped and resumed, as opposed to when the tracer
// noticed. A ptrace stop is a context switch of the tracee: ptrace_stop()
// (kernel/signal.c) parks it in TASK_TRACED and calls schedule(), and
// PTRACE_CONT wakes it. The tracer's own clock readings lag both: wait4()
// returns only once the tracer is scheduled again (5 to 30 us later on a VM
// whose other CPU idles), and the tracee runs again only once scheduled after
// the wake-up. A program that reads its own clock across a stop (Go's
// GODEBUG=inittrace=1) sees the tracee's instants, so those are the ones a
// runtime phase is measured between.
// The kernel writes a PERF_RECORD_SWITCH at each switch of the task
// (kernel/events/core.c perf_event_switch_output(), attr.context_switch) with
// its time (PERF_SAMPLE_TIME through sample_id_all) on CLOCK_MONOTONIC, the
// tracer's clock. The dummy software event counts nothing and excludes the
// kernel, so no privilege beyond tracing one's own child is needed; where
// perf events are refused (perf_event_paranoid 3, a seccomp filter) the
// tracer's instants stand.
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {
constexpr std::size_t kDataPages = 16;  // 64 KiB: ~2700 records between two drains
}

TraceeSwitches::~TraceeSwitches() { close(); }

bool TraceeSwitches::open(pid_t pid) {
  close();
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_DUMMY;
  attr.context_switch = 1;
  attr.sample_id_all = 1;
  attr.sample_type = PERF_SAMPLE_TIME;
  attr.use_clockid = 1;
  attr.clockid = CLOCK_MONOTONIC;  // now_ns()'s clock
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  attr.wakeup_events = 1000000;  // nobody polls the ring
  const long fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return false;
  fd_ = UniqueFd(static_cast<int>(fd));
  page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  ring_bytes_ = (1 + kDataPages) * page_;
  void* ring = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (ring == MAP_FAILED) {
    fd_ = UniqueFd();
    return false;
  }
  ring_ = ring;
  return true;
}

void TraceeSwitches::close() {
  if (ring_) munmap(ring_, ring_bytes_);
  ring_ = nullptr;
  fd_ = UniqueFd();
}

void TraceeSwitches::drain() {
  if (!ring_) return;
  auto* meta = static_cast<perf_event_mmap_page*>(ring_);
  const auto* data = static_cast<const std::uint8_t*>(ring_) + page_;
  const std::uint64_t size = ring_bytes_ - page_;
  const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  std::uint64_t tail = meta->data_tail;
  auto bytes_at = [&](std::uint64_t at, void* out, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) static_cast<std::uint8_t*>(out)[k] = data[(at + k) % size];
  };
  while (tail + sizeof(perf_event_header) <= head) {
    perf_event_header h{};
    bytes_at(tail, &h, sizeof h);
    if (h.size < sizeof h || tail + h.size > head) break;
    if (h.type == PERF_RECORD_SWITCH && h.size >= sizeof h + 8) {
      // The record is its header and the sample_id trailer: here only the time.
      std::uint64_t t = 0;
      bytes_at(tail + h.size - 8, &t, 8);
      const bool out = (h.misc & PERF_RECORD_MISC_SWITCH_OUT) != 0;
      switches_.push_back({static_cast<std::int64_t>(t), out});
    } else if (h.type == PERF_RECORD_LOST) {
      lost_ = true;
    }
    tail += h.size;
  }
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

std::optional<std::int64_t> TraceeSwitches::stopped_at(std::int64_t noticed_ns) const {
  if (lost_) return std::nullopt;
  // ptrace_stop() (kernel/signal.c) wakes the tracer before the tracee's own
  // schedule(): a tracer woken at once on the other CPU can read its clock
  // before the tracee's switch out is written, and the last switch out
  // before that reading is then an earlier one. The stop is the first switch
  // out after the tracee last came onto a CPU before the tracer woke: it ran
  // from there to its trap, and no ptrace request reaches it before it is off
  // the CPU (ptrace_check_attach() waits for that), so no single step of the
  // tracer's comes in between.
  auto it = std::upper_bound(switches_.begin(), switches_.end(), noticed_ns,
                             [](std::int64_t t, const Switch& s) { return t < s.ns; });
  while (it != switches_.begin()) {
    --it;
    if (it->out) continue;
    for (auto out = it; out != switches_.end(); ++out)
      if (out->out) return out->ns;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::int64_t> TraceeSwitches::resumed_at(std::int64_t continued_ns) const {
  if (lost_) return std::nullopt;
  // The first switch in once PTRACE_CONT was on its way (single steps inside
  // the stop came before).
  for (auto it = std::lower_bound(switches_.begin(), switches_.end(), continued_ns,
                                  [](const Switch&s, std::int64_t t) { return s.ns < t; });
       it != switches_.end(); ++it)
    if (!it->out) return it->ns;
  return std::nullopt;
}

}  // namespace procforge::profile::detail
