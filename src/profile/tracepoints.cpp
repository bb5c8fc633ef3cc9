#include "profile/tracepoints.hpp"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>

namespace procforge::profile::detail {

namespace {

constexpr std::size_t kDataPages = 64;  // 256 KiB of samples per event

long tracepoint_id(const std::string& name) {
  for (const char* root : {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
    std::ifstream f(std::string(root) + name + "/id");
    long id = -1;
    if (f >> id) return id;
  }
  return -1;
}

}  // namespace

Result<TracepointSession> open_tracepoints(pid_t pid) {
  TracepointSession s;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  s.ring_bytes = (1 + kDataPages) * page;
  const char* names[2] = {"sched/sched_process_exec", "exceptions/page_fault_user"};
  for (int i = 0; i < 2; ++i) {
    const long id = tracepoint_id(names[i]);
    if (id < 0) return Error{ENOENT, std::string("tracepoint ") + names[i] + " not found under /sys/kernel/tracing"};
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = static_cast<std::uint64_t>(id);
    attr.sample_period = 1;
    attr.sample_type = PERF_SAMPLE_TIME;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;  // the tracer's clock
    attr.wakeup_events = 1000000;
    const long fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      read_tracepoints(s);
      return Error{e, std::string("opening tracepoint ") + names[i] + ": " + errno_name(e) +
                          (e == EACCES || e == EPERM ? " (the tracepoint mode needs root)" : "")};
    }
    s.fd[i] = static_cast<int>(fd);
    void* ring = mmap(nullptr, s.ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd[i], 0);
    if (ring == MAP_FAILED) {
      const int e = errno;
      read_tracepoints(s);
      return Error{e, std::string("mapping the tracepoint ring: ") + errno_name(e)};
    }
    s.ring[i] = ring;
  }
  return s;
}

TracepointSamples read_tracepoints(TracepointSession& s) {
  TracepointSamples out;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (int i = 0; i < 2; ++i) {
    if (s.ring[i]) {
      auto* meta = static_cast<perf_event_mmap_page*>(s.ring[i]);
      const auto* data = static_cast<const std::uint8_t*>(s.ring[i]) + page;
      const std::uint64_t size = s.ring_bytes - page;
      const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
      std::uint64_t tail = meta->data_tail;
      while (tail + sizeof(perf_event_header) <= head) {
        perf_event_header h{};
        for (std::size_t k = 0; k < sizeof h; ++k) reinterpret_cast<std::uint8_t*>(&h)[k] = data[(tail + k) % size];
        if (h.size < sizeof h) break;
        auto field = [&](std::size_t off) {
          std::uint64_t v = 0;
          for (std::size_t k = 0; k < 8; ++k)
            reinterpret_cast<std::uint8_t*>(&v)[k] = data[(tail + sizeof h + off + k) % size];
          return v;
        };
        if (h.type == PERF_RECORD_SAMPLE) {
          const auto t = static_cast<std::int64_t>(field(0));
          if (i == 0 && !out.exec_ns) out.exec_ns = t;
          if (i == 1) out.user_fault_ns.push_back(t);
        } else if (h.type == PERF_RECORD_LOST) {
          out.lost += field(8);
        }
        tail += h.size;
      }
      munmap(s.ring[i], s.ring_bytes);
      s.ring[i] = nullptr;
    }
    if (s.fd[i] >= 0) close(s.fd[i]);
    s.fd[i] = -1;
  }
  std::sort(out.user_fault_ns.begin(), out.user_fault_ns.end());
  return out;
}

}  // namespace procforge::profile::detail
