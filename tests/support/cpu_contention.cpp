#include "cpu_contention.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>

namespace procforge::testsupport {

CpuContention::CpuContention() : start_(sample()) {}

CpuContention::Sample CpuContention::sample() {
  Sample s;
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  s.wall_ns = static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
  // "some avg10=0.00 avg60=0.00 avg300=0.00 total=12345" (Documentation/accounting/psi.rst)
  std::ifstream psi("/proc/pressure/cpu");
  for (std::string line; std::getline(psi, line);) {
    if (line.rfind("some ", 0) != 0) continue;
    const auto at = line.find("total=");
    if (at == std::string::npos) break;
    s.stall_us = std::stoll(line.substr(at + 6));
    s.psi = true;
  }
  std::ifstream("/proc/loadavg") >> s.loadavg1;
  return s;
}

CpuContention::Reading CpuContention::read() const {
  const Sample now = sample();
  Reading r;
  char buf[160];
  const double wall_us = static_cast<double>(now.wall_ns - start_.wall_ns) / 1000.0;
  if (now.psi && start_.psi && wall_us > 0) {
    r.stall_us = static_cast<double>(now.stall_us - start_.stall_us);
    const double share = r.stall_us / wall_us;
    r.disturbed = share > kDisturbedShare;
    std::snprintf(buf, sizeof buf, "a task waited for a CPU during %.0f%% of the %.2f s (PSI cpu some)", 100.0 * share,
                  wall_us / 1e6);
  } else {
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    r.disturbed = now.loadavg1 > static_cast<double>(cpus);
    std::snprintf(buf, sizeof buf, "load average %.2f on %ld CPUs (no /proc/pressure/cpu)", now.loadavg1, cpus);
  }
  r.what = buf;
  return r;
}

}  // namespace procforge::testsupport
