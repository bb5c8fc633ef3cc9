// batch::run in process: every outcome holds its own command's output and
// nothing else, at most N children run at once, failures are counted as GNU
// parallel counts them, a halt starts nothing more, and after the batch no
// child is left (waitid finds none) and no descriptor is open that was not
// before.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "procforge/batch.hpp"
#include "spawn_test_util.hpp"
#include "support/temp_dir_test.hpp"

namespace {

namespace batch = procforge::batch;
using spawn_test::count_open_fds;

batch::Command command(std::vector<std::string> argv) {
  static std::size_t line = 0;
  batch::Command c;
  c.line = ++line;
  c.argv = std::move(argv);
  return c;
}

batch::Command sh(const std::string& script) { return command({"/bin/sh", "-c", script}); }

// Runs the batch and returns its outcomes by index (empty slots: never run).
struct Ran {
  batch::Summary summary;
  std::vector<std::optional<batch::Outcome>> outcomes;
  std::vector<std::size_t> completion_order;
};

Ran run(const std::vector<batch::Command>& commands, const batch::Options& o) {
  Ran r;
  r.outcomes.resize(commands.size());
  auto s = batch::run(commands, o, [&](batch::Outcome& done) {
    r.completion_order.push_back(done.index);
    r.outcomes.at(done.index) = std::move(done);
  });
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (s) r.summary = *s;
  return r;
}

batch::Options jobs(unsigned n) {
  batch::Options o;
  o.jobs = n;
  return o;
}

// Whether this process has any child left, zombies included.
bool has_children() {
  siginfo_t info{};
  return waitid(P_ALL, 0, &info, WEXITED | WSTOPPED | WNOHANG | WNOWAIT) == 0;
}

// A command that writes LINES lines to stdout and to stderr, one write each,
// so that jobs running side by side write at the same time.
batch::Command chatty(int job, int lines) {
  return sh("i=0; while [ $i -lt " + std::to_string(lines) + " ]; do echo \"job " + std::to_string(job) +
            " out $i\"; echo \"job " + std::to_string(job) + " err $i\" >&2; i=$((i+1)); done");
}

std::string chatty_expected(int job, const char* stream, int lines) {
  std::string s;
  for (int i = 0; i < lines; ++i) s += "job " + std::to_string(job) + " " + stream + " " + std::to_string(i) + "\n";
  return s;
}

TEST(BatchRun, each_outcome_holds_its_own_output_whole_from_many_small_writes) {
  constexpr int kJobs = 4, kLines = 3000;
  std::vector<batch::Command> commands;
  for (int j = 0; j < kJobs; ++j) commands.push_back(chatty(j, kLines));
  const Ran r = run(commands, jobs(kJobs));
  for (int j = 0; j < kJobs; ++j) {
    ASSERT_TRUE(r.outcomes[j]);
    EXPECT_EQ(r.outcomes[j]->status, 0);
    EXPECT_EQ(r.outcomes[j]->out, chatty_expected(j, "out", kLines)) << "job " << j;
    EXPECT_EQ(r.outcomes[j]->err, chatty_expected(j, "err", kLines)) << "job " << j;
  }
}

class BatchRunDir : public procforge::testing::TempDirTest {};

TEST_F(BatchRunDir, at_most_n_commands_run_at_once_and_n_do) {
  // Each command logs its start and end to one file (O_APPEND: whole lines);
  // the log's order gives how many ran at once.
  const std::string log = dir + "/log";
  std::vector<batch::Command> commands;
  for (int i = 0; i < 9; ++i) commands.push_back(sh("echo s >>" + log + "; sleep 0.2; echo e >>" + log));
  const Ran r = run(commands, jobs(3));
  EXPECT_EQ(r.summary.failed, 0U);
  std::ifstream in(log);
  int now = 0, most = 0, starts = 0;
  for (std::string l; std::getline(in, l);) {
    now += l == "s" ? 1 : -1;
    starts += l == "s";
    most = std::max(most, now);
  }
  EXPECT_EQ(starts, 9);
  EXPECT_EQ(most, 3);
}

TEST(BatchRun, outcomes_come_in_completion_order_with_their_input_index) {
  const Ran r = run({sh("sleep 0.4; echo slow"), command({"echo", "fast"})}, jobs(2));
  EXPECT_EQ(r.completion_order, (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(r.outcomes[0]->out, "slow\n");
  EXPECT_EQ(r.outcomes[1]->out, "fast\n");
}

TEST(BatchRun, statuses_are_a_shells_exit_128_plus_signal_127_and_126) {
  const Ran r = run({sh("exit 7"), sh("kill -TERM $$"), command({"/nonexistent/procforge-batch"}),
                     command({"/etc/hostname"}), command({"true"})},
                    jobs(2));
  EXPECT_EQ(r.outcomes[0]->status, 7);
  EXPECT_EQ(r.outcomes[0]->signal, 0);
  EXPECT_EQ(r.outcomes[1]->status, 128 + SIGTERM);
  EXPECT_EQ(r.outcomes[1]->signal, SIGTERM);
  EXPECT_EQ(r.outcomes[2]->status, 127);
  ASSERT_TRUE(r.outcomes[2]->start_error);
  EXPECT_EQ(r.outcomes[2]->start_error->err, ENOENT);
  EXPECT_NE(r.outcomes[2]->start_error->message.find("/nonexistent/procforge-batch"), std::string::npos);
  EXPECT_EQ(r.outcomes[3]->status, 126);
  EXPECT_EQ(r.outcomes[4]->status, 0);
  EXPECT_FALSE(r.outcomes[4]->start_error);
  EXPECT_EQ(r.summary.failed, 4U);
  EXPECT_EQ(r.summary.ran, 5U);
  EXPECT_EQ(r.summary.exit_status(), 4);
}

TEST(BatchRun, exit_status_counts_failures_up_to_101) {
  batch::Summary s;
  for (auto [failed, status] : {std::pair{0, 0}, {1, 1}, {100, 100}, {101, 101}, {102, 101}, {5000, 101}}) {
    s.failed = static_cast<std::size_t>(failed);
    EXPECT_EQ(s.exit_status(), status) << failed << " failed";
  }
  std::vector<batch::Command> commands(103, command({"false"}));
  commands.push_back(command({"true"}));
  const Ran r = run(commands, jobs(4));
  EXPECT_EQ(r.summary.failed, 103U);
  EXPECT_EQ(r.summary.exit_status(), 101);
}

TEST(BatchRun, halt_on_error_starts_nothing_after_the_first_failure_and_lets_the_running_finish) {
  std::vector<batch::Command> commands{sh("sleep 0.5; echo finished"), sh("exit 5")};
  for (int i = 0; i < 5; ++i) commands.push_back(command({"echo", "never"}));
  batch::Options o = jobs(2);
  o.halt_on_error = true;
  const Ran r = run(commands, o);
  ASSERT_TRUE(r.outcomes[0]);
  EXPECT_EQ(r.outcomes[0]->status, 0) << "the running command is not killed";
  EXPECT_EQ(r.outcomes[0]->out, "finished\n");
  ASSERT_TRUE(r.outcomes[1]);
  EXPECT_EQ(r.outcomes[1]->status, 5);
  for (std::size_t i = 2; i < commands.size(); ++i) EXPECT_FALSE(r.outcomes[i]) << "command " << i << " was started";
  EXPECT_EQ(r.summary.ran, 2U);
  ASSERT_TRUE(r.summary.halted_at);
  EXPECT_EQ(*r.summary.halted_at, 1U);
  EXPECT_EQ(r.summary.exit_status(), 5);
}

TEST(BatchRun, without_halt_every_command_runs_after_a_failure) {
  const Ran r = run({sh("exit 3"), command({"true"}), command({"true"})}, jobs(1));
  EXPECT_EQ(r.summary.ran, 3U);
  EXPECT_FALSE(r.summary.halted_at);
  EXPECT_EQ(r.summary.exit_status(), 1);
}

TEST(BatchRun, children_read_dev_null_on_stdin) {
  const Ran r = run({sh("cat; readlink /proc/self/fd/0")}, jobs(1));
  EXPECT_EQ(r.outcomes[0]->out, "/dev/null\n");
}

TEST(BatchRun, no_child_and_no_descriptor_is_left_after_a_batch) {
  ASSERT_FALSE(has_children()) << "a child of an earlier test is still there";
  const int fds_before = count_open_fds();
  std::vector<batch::Command> commands{sh("exit 2"), sh("kill -KILL $$"), command({"/nonexistent/x"}), chatty(0, 100)};
  for (int i = 0; i < 20; ++i) commands.push_back(command({"true"}));
  for (bool warm : {false, true}) {
    batch::Options o = jobs(3);
    o.warm = warm;
    const Ran r = run(commands, o);
    EXPECT_EQ(r.summary.ran, commands.size());
    EXPECT_FALSE(has_children()) << (warm ? "warm" : "cold") << ": a child (or a template) was not reaped";
    EXPECT_EQ(count_open_fds(), fds_before) << (warm ? "warm" : "cold") << ": a descriptor leaked";
  }
  // And when the halt leaves commands behind.
  batch::Options o = jobs(2);
  o.halt_on_error = true;
  (void)run({sh("exit 1"), sh("sleep 0.2"), command({"true"}), command({"true"})}, o);
  EXPECT_FALSE(has_children());
  EXPECT_EQ(count_open_fds(), fds_before);
}

TEST(BatchRun, warm_gives_the_cold_outputs_and_says_why_a_start_went_cold) {
  std::vector<batch::Command> commands;
  for (int i = 0; i < 6; ++i) commands.push_back(command({"/bin/echo", "line", std::to_string(i)}));
  commands.push_back(sh("echo from sh; exit 4"));
  const Ran cold = run(commands, jobs(2));
  batch::Options o = jobs(2);
  o.warm = true;
  const Ran warm = run(commands, o);
  for (std::size_t i = 0; i < commands.size(); ++i) {
    ASSERT_TRUE(cold.outcomes[i] && warm.outcomes[i]);
    EXPECT_EQ(warm.outcomes[i]->out, cold.outcomes[i]->out);
    EXPECT_EQ(warm.outcomes[i]->status, cold.outcomes[i]->status);
    EXPECT_FALSE(cold.outcomes[i]->warm);
    EXPECT_TRUE(cold.outcomes[i]->fallback_reason.empty());
    if (warm.outcomes[i]->warm) EXPECT_TRUE(warm.outcomes[i]->fallback_reason.empty());
    else EXPECT_FALSE(warm.outcomes[i]->fallback_reason.empty()) << "a cold start must say why";
  }
}

TEST(BatchRun, zero_jobs_and_wordless_commands_are_refused_before_anything_runs) {
  auto zero = batch::run({command({"true"})}, jobs(0), [](batch::Outcome&) { ADD_FAILURE() << "ran"; });
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().step, procforge::ErrorStep::options);
  auto wordless =
      batch::run({command({"true"}), batch::Command{}}, jobs(1), [](batch::Outcome&) { ADD_FAILURE() << "ran"; });
  ASSERT_FALSE(wordless.ok());
  EXPECT_EQ(wordless.error().err, EINVAL);
}

TEST(BatchRun, wall_time_and_start_time_are_the_commands_own) {
  const auto before = std::chrono::system_clock::now();
  const Ran r = run({command({"sleep", "0.3"})}, jobs(1));
  EXPECT_GE(r.outcomes[0]->wall, std::chrono::milliseconds(300));
  EXPECT_LT(r.outcomes[0]->wall, std::chrono::seconds(10));
  EXPECT_GE(r.outcomes[0]->started_at, before);
  EXPECT_LE(r.outcomes[0]->started_at, before + std::chrono::seconds(5));
}

}  // namespace
