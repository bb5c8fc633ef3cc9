// Each phase against a cost planted in it. Sums and totals (the phases add up
// to the traced wall time, the faults to wait4()'s) hold wherever the
// boundaries lie; these programs show where they lie. Built here with the
// system gcc, a program spends a known amount of its own CPU time and
// first-touches a known number of pages in each place the phases name:
//
//   a library's constructor   -> constructors (ld.so's _dl_init, before AT_ENTRY)
//   the program's constructor -> libc init (__libc_start_main's call_init, before main)
//   main                      -> main
//   an atexit handler         -> exit handlers (exit() runs it, then exit_group)
//
// Every cost differs from the others and is larger than the slack allowed on
// any phase, so a boundary moved by one stop puts two costs in one phase, or
// none, and fails. The program is built dynamic, static and static-pie (no
// ld.so: the library is linked in and both constructors run in libc init,
// which the profile says the ld.so phases are merged into), and run as the
// interpreter of a #! script.
//
// The costs are CPU time (CLOCK_THREAD_CPUTIME_ID), compared with the
// schedstat CPU the profile charges each phase: being preempted by other work
// adds wall time but no CPU time, so these bounds hold on a loaded machine.
// Wall time is at least the CPU time; its upper bound is gated only when the
// machine's CPU pressure says no other work competed (CpuContention).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "procforge/profile.hpp"
#include "support/cpu_contention.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/requires.hpp"

namespace {

using namespace procforge::profile;
using procforge::testsupport::CpuContention;
using procforge::testsupport::FixtureDir;

struct Cost {
  int cpu_us = 0, pages = 0;
};
// Distinct, each larger than kCpuSlackUs and kFaultSlack.
constexpr Cost kLibraryConstructor{3000, 200};
constexpr Cost kProgramConstructor{4000, 450};
constexpr Cost kMain{6000, 2000};
constexpr Cost kExitHandler{5000, 900};

// A phase's own work besides the planted cost (ld.so's, libc's, the
// tracer's breakpoint stops) stays below these on this machine class,
// loaded or not, and both are below the smallest cost above.
constexpr double kCpuSlackUs = 1500;
constexpr double kFaultSlack = 150;
// A cost may show as little as 90% of itself: schedstat and the thread CPU
// clock read the same sum_exec_runtime, so this only absorbs rounding.
constexpr double kLowFactor = 0.9;
// Wall time above the CPU cost on an idle machine: the tracer's wake-ups and
// the phase's blocking work (mmap, the page faults' zeroing is CPU).
constexpr double kWallSlackUs = 2500;

constexpr int kRuns = 7;

// spend(): US microseconds of this thread's CPU time, PAGES first touches of
// fresh anonymous pages among them. MADV_NOHUGEPAGE keeps one fault per page
// where transparent huge pages are "always"; the pages are unmapped within
// the cost, so that freeing them does not land in teardown.
const char* kSpendHeader = R"(#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static long thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}
static void spend(long us, long pages) {
  long start = thread_cpu_ns();
  volatile char* p = mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(90);
  madvise((void*)p, pages * 4096, MADV_NOHUGEPAGE);
  for (long i = 0; i < pages; ++i) p[i * 4096] = 1;
  munmap((void*)p, pages * 4096);
  while (thread_cpu_ns() - start < us * 1000L) {}
}
)";

std::string spend_call(const Cost& c) {
  return "spend(" + std::to_string(c.cpu_us) + ", " + std::to_string(c.pages) + ");";
}

std::string library_source() {
  return "#include \"spend.h\"\n__attribute__((constructor)) static void library_constructor(void) { " +
         spend_call(kLibraryConstructor) + " }\n";
}

std::string program_source() {
  return "#include <stdlib.h>\n#include \"spend.h\"\n"
         "static void exit_handler(void) { " +
         spend_call(kExitHandler) +
         " }\n"
         "__attribute__((constructor)) static void program_constructor(void) { " +
         spend_call(kProgramConstructor) +
         " }\n"
         "int main(void) { atexit(exit_handler); " +
         spend_call(kMain) + " return 0; }\n";
}

// The programs, built once for every test of the suite.
struct Programs {
  FixtureDir dir;
  std::string error;                            // the gcc command and its output when a build failed
  std::map<std::string, std::string> by_build;  // "dynamic" -> path

  Programs() {
    dir.write("spend.h", kSpendHeader);
    dir.write("library.c", library_source());
    dir.write("program.c", program_source());
    const std::string rpath = "-Wl,-rpath," + dir.path();
    const std::vector<std::vector<std::string>> builds = {
        {"-O2", "-shared", "-fPIC", "library.c", "-o", "libcost.so"},
        // --no-as-needed: main calls nothing in the library, its constructor is the point.
        {"-O2", "program.c", "-o", "dynamic", "-L.", "-Wl,--no-as-needed", "-lcost", rpath},
        {"-O2", "-static", "program.c", "library.c", "-o", "static"},
        {"-O2", "-static-pie", "-fPIE", "program.c", "library.c", "-o", "static_pie"},
    };
    for (const auto& b : builds)
      if (!dir.gcc(b)) {
        error = dir.error();
        return;
      }
    for (const char* b : {"dynamic", "static", "static_pie"}) by_build[b] = dir.at(b);
    by_build["script"] = dir.write("script", "#!" + dir.at("dynamic") + "\n", 0755);
  }
};

Programs& programs() {
  static Programs p;
  return p;
}

struct Measured {
  Profile profile;
  CpuContention::Reading machine;
};

// One profile per build, shared by the tests that read it.
const Measured& measured(const std::string& build, std::string* error) {
  static std::map<std::string, Measured> cache;
  if (auto it = cache.find(build); it != cache.end()) return it->second;
  static const Measured none{};
  Options o;
  o.argv = {programs().by_build.at(build)};
  o.runs = kRuns;
  o.warmup = 1;
  o.untraced = false;
  o.audit_module = find_audit_module(PROCFORGE_BUILD_DIR);
  CpuContention window;
  auto r = profile(o);
  if (!r) {
    *error = r.error().message;
    return none;
  }
  return cache[build] = Measured{std::move(*r), window.read()};
}

// What a phase should hold for one build: a cost, nothing planted, or
// nothing at all because the boundary does not exist.
struct Expected {
  Cost cost;  // zero: no planted cost
  const char* merged_into = nullptr;
};

std::map<Phase, Expected> expected_for(const std::string& build) {
  const bool dynamic = build == "dynamic" || build == "script";
  std::map<Phase, Expected> e;
  for (int i = 0; i < kPhaseCount; ++i) e[static_cast<Phase>(i)] = {};
  e[Phase::main].cost = kMain;
  e[Phase::exit_handlers].cost = kExitHandler;
  if (dynamic) {
    e[Phase::constructors].cost = kLibraryConstructor;
    e[Phase::libc_init].cost = kProgramConstructor;
  } else {
    // No ld.so: _start -> __libc_start_main runs every constructor.
    e[Phase::libc_init].cost = {kLibraryConstructor.cpu_us + kProgramConstructor.cpu_us,
                                kLibraryConstructor.pages + kProgramConstructor.pages};
    for (Phase p : {Phase::ldso_start, Phase::load_relocate, Phase::constructors}) e[p].merged_into = "libc init";
  }
  return e;
}

class ProfilePhaseCosts : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SKIP_UNLESS_INSTALLED("/usr/bin/gcc");
    ASSERT_TRUE(programs().error.empty()) << programs().error;
    std::string error;
    m_ = &measured(GetParam(), &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_EQ(m_->profile.traced.size(), static_cast<std::size_t>(kRuns));
  }
  const Measured* m_ = nullptr;
};

TEST_P(ProfilePhaseCosts, the_profile_names_the_kind_of_program_that_ran) {
  const std::string& build = GetParam();
  const Profile& p = m_->profile;
  const std::map<std::string, std::string> kind = {{"dynamic", "dynamic (glibc)"},
                                                   {"static", "static"},
                                                   {"static_pie", "static-pie"},
                                                   {"script", "dynamic (glibc)"}};
  EXPECT_EQ(p.kind, kind.at(build));
  EXPECT_EQ(p.main_source, ".symtab main");
  // A #! script: the kernel runs its interpreter, which is what is profiled.
  EXPECT_EQ(p.image, programs().by_build.at(build == "script" ? "dynamic" : build));
  EXPECT_EQ(!p.chain.empty(), build == "script");
}

TEST_P(ProfilePhaseCosts, each_phase_holds_the_cpu_time_spent_in_it) {
  for (const auto& [phase, want] : expected_for(GetParam())) {
    const PhaseStats& ps = m_->profile.phases[static_cast<int>(phase)];
    std::printf("%-14s cpu %8.1f us  wall %8.1f us  minflt %6.0f  (planted %d us)\n", ps.name.c_str(), ps.cpu_us.median,
                ps.wall_us.median, ps.minflt, want.cost.cpu_us);
    if (want.merged_into) {
      EXPECT_FALSE(ps.present) << ps.name << " exists for this build";
      EXPECT_EQ(ps.merged_into, want.merged_into) << ps.name;
      continue;
    }
    ASSERT_TRUE(ps.present) << ps.name << " missing";
    EXPECT_GE(ps.cpu_us.median, kLowFactor * want.cost.cpu_us) << ps.name;
    EXPECT_LE(ps.cpu_us.median, want.cost.cpu_us + kCpuSlackUs) << ps.name;
  }
}

TEST_P(ProfilePhaseCosts, each_phase_holds_the_pages_first_touched_in_it) {
  for (const auto& [phase, want] : expected_for(GetParam())) {
    const PhaseStats& ps = m_->profile.phases[static_cast<int>(phase)];
    if (want.merged_into) continue;
    ASSERT_TRUE(ps.present) << ps.name << " missing";
    EXPECT_GE(ps.minflt, want.cost.pages) << ps.name;
    EXPECT_LE(ps.minflt, want.cost.pages + kFaultSlack) << ps.name;
  }
}

TEST_P(ProfilePhaseCosts, each_phase_lasts_at_least_its_cost_and_on_an_idle_machine_not_much_longer) {
  const auto& machine = m_->machine;
  std::printf("while profiling, %s\n", machine.what.c_str());
  if (machine.disturbed) std::printf("wall upper bounds not checked: other work competed for the CPUs\n");
  for (const auto& [phase, want] : expected_for(GetParam())) {
    const PhaseStats& ps = m_->profile.phases[static_cast<int>(phase)];
    if (want.merged_into) continue;
    ASSERT_TRUE(ps.present) << ps.name << " missing";
    EXPECT_GE(ps.wall_us.median, kLowFactor * want.cost.cpu_us) << ps.name;
    if (!machine.disturbed) {
      EXPECT_LE(ps.wall_us.median, want.cost.cpu_us + kWallSlackUs) << ps.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Builds, ProfilePhaseCosts, ::testing::Values("dynamic", "static", "static_pie", "script"),
                         [](const auto& i) { return i.param; });

}  // namespace
