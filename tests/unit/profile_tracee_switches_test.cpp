// The tracee's own instants of a ptrace stop, from its context-switch records
// (profile/tracee_switches.cpp): the switch out that is the stop, and the
// switch in once the tracer let it go, whatever else the records hold.
#include <gtest/gtest.h>

#include "profile/detail.hpp"

namespace {

using procforge::profile::detail::TraceeSwitches;

// The records (time, switched out) in time order.
void fill(TraceeSwitches& s, std::initializer_list<std::pair<std::int64_t, bool>> records) {
  for (const auto& [ns, out] : records) s.add(ns, out);
}

// Preempted while it ran (out at 150, in at 200), then its trap: the stop is
// the switch out at 260, before the tracer woke at 300.
TEST(ProfileTraceeSwitches, a_preemption_before_the_trap_is_not_the_stop) {
  TraceeSwitches s;
  fill(s, {{100, false}, {150, true}, {200, false}, {260, true}});
  EXPECT_EQ(s.stopped_at(300), 260);
}

// ptrace_stop() wakes the tracer before the tracee's schedule(): the tracer
// can read its clock (300) before the tracee's switch out is written (310).
// The stop is that switch out, not the preemption before it.
TEST(ProfileTraceeSwitches, a_tracer_woken_before_the_switch_out_still_finds_the_stop) {
  TraceeSwitches s;
  fill(s, {{100, false}, {150, true}, {200, false}, {310, true}});
  EXPECT_EQ(s.stopped_at(300), 310);
}

// Single steps inside the stop (in, out after the tracer woke) and the
// resume after PTRACE_CONT at 500: the tracee ran again at 520.
TEST(ProfileTraceeSwitches, the_resume_is_the_first_switch_in_after_the_continue) {
  TraceeSwitches s;
  fill(s, {{100, false}, {260, true}, {320, false}, {330, true}, {520, false}});
  EXPECT_EQ(s.stopped_at(300), 260);
  EXPECT_EQ(s.resumed_at(500), 520);
}

}  // namespace
