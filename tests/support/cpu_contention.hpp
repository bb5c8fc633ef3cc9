// Whether other work on the machine competed for the CPUs while a timing
// measurement ran, so that a timing test can tell "the clocks disagree" from
// "the machine was busy" and say which one it saw.
//
// The measure is the kernel's CPU pressure (kernel/sched/psi.c): the "some"
// line of /proc/pressure/cpu counts, in microseconds, the time during which at
// least one runnable task waited for a CPU. Its growth over the window, as a
// share of the window's wall time, is how much of the measurement ran on a
// contended machine. Without PSI (CONFIG_PSI=n or psi=0) the 1-minute load
// average is compared with the number of CPUs instead, a coarser view.
#pragma once

#include <cstdint>
#include <string>

namespace procforge::testsupport {

class CpuContention {
 public:
  CpuContention();  // opens the window

  // Above this share of the window with a task waiting for a CPU (or, without
  // PSI, a load average above the CPU count) the window counts as disturbed.
  static constexpr double kDisturbedShare = 0.10;

  struct Reading {
    bool disturbed = false;
    // With PSI: how long, in total, some task waited for a CPU in the window
    // (-1 without PSI). A timing difference smaller than this may be the
    // contention's doing; a larger one cannot be.
    double stall_us = -1;
    // What was measured, as a sentence fragment: "a task waited for a CPU
    // during 96% of the 1.21 s (PSI cpu some)".
    std::string what;
  };
  // The window from construction until now.
  [[nodiscard]] Reading read() const;

 private:
  struct Sample {
    bool psi = false;
    std::int64_t stall_us = 0;  // PSI cpu some total
    std::int64_t wall_ns = 0;   // CLOCK_MONOTONIC
    double loadavg1 = 0;
  };
  static Sample sample();

  Sample start_;
};

}  // namespace procforge::testsupport
