// Per-stop counters of the tracee, read while it sits in a ptrace stop:
//   /proc/PID/schedstat  sum_exec_runtime in ns (kernel/sched/stats.c; finer than stat's utime/stime ticks)
//   /proc/PID/stat       minflt (field 10) and majflt (field 12) (11 and 13: of waited-for children), counted by
//   mm_account_fault() only for
//                        faults with user registers: ptrace's own PEEK/POKE (GUP) faults are not counted
//   /proc/PID/status     voluntary_ctxt_switches / nonvoluntary_ctxt_switches
// The files are opened once per run at the first stop and re-read with pread:
// they stay valid across execve (same task).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "profile/detail.hpp"

namespace procforge::profile::detail {

namespace {

ssize_t slurp(int fd, char* buf, std::size_t size) {
  ssize_t n = pread(fd, buf, size - 1, 0);
  if (n < 0) return n;
  buf[n] = '\0';
  return n;
}

std::int64_t field_after(const char* text, const char* key) {
  const char* p = std::strstr(text, key);
  return p ? std::strtoll(p + std::strlen(key), nullptr, 10) : 0;
}

}  // namespace

ProcCounters::~ProcCounters() = default;

bool ProcCounters::open(pid_t pid) {
  close();
  std::string base = "/proc/" + std::to_string(pid) + "/";
  stat_.reset(::open((base + "stat").c_str(), O_RDONLY | O_CLOEXEC));
  schedstat_.reset(::open((base + "schedstat").c_str(), O_RDONLY | O_CLOEXEC));
  status_.reset(::open((base + "status").c_str(), O_RDONLY | O_CLOEXEC));
  return stat_.valid() && status_.valid();
}

void ProcCounters::close() {
  for (UniqueFd* fd : {&stat_, &schedstat_, &status_}) fd->reset();
}

bool ProcCounters::read(Counters& c) const {
  char buf[4096];
  if (!stat_ || slurp(stat_.get(), buf, sizeof buf) <= 0) return false;
  // Fields after the comm's closing parenthesis: 3 state ... 10 minflt 11 cminflt 12 majflt.
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  ++p;
  long long f[16] = {};
  int field = 2;
  char* end = nullptr;
  while (*p && field < 13) {
    while (*p == ' ') ++p;
    ++field;
    if (field >= 4) {
      f[field] = std::strtoll(p, &end, 10);
      p = end;
    } else {
      while (*p && *p != ' ') ++p;  // state
    }
  }
  c.minflt = f[10];
  c.majflt = f[12];
  c.cminflt = f[11];
  c.cmajflt = f[13];
  if (schedstat_ && slurp(schedstat_.get(), buf, sizeof buf) > 0) c.cpu_ns = std::strtoll(buf, nullptr, 10);
  if (slurp(status_.get(), buf, sizeof buf) > 0) {
    c.vcsw = field_after(buf, "\nvoluntary_ctxt_switches:");
    c.nvcsw = field_after(buf, "\nnonvoluntary_ctxt_switches:");
  }
  return true;
}

}  // namespace procforge::profile::detail
