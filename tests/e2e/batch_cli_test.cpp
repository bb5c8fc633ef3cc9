// `procforge batch` end to end, with GNU parallel as the oracle wherever the
// two promise the same thing: the same input through `parallel -k` and
// `procforge batch --keep-order` gives the same stdout, stderr and exit
// status; both joblogs have the same columns, values and number shapes; exit
// statuses count failures (up to 101) and --halt-on-error exits as --halt
// soon,fail=1. Then what parallel does not have: outputs that never
// interleave, --json, refusals of bad input, the progress bar on a terminal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "procforge/spawn.hpp"
#include "support/requires.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir_test.hpp"

namespace {

using procforge::testsupport::CommandResult;

constexpr const char* kParallel = "/usr/bin/parallel";

// PROGRAM ARGS... with INPUT on stdin, in DIR.
CommandResult run_with_input(std::vector<std::string> argv, const std::string& input, const std::string& dir) {
  procforge::testsupport::CommandOptions o;
  o.inherit_env = true;
  o.stdin_text = input;
  o.cwd = dir;
  o.timeout_ms = 60000;
  auto r = procforge::testsupport::run_command(argv, o);
  EXPECT_TRUE(r.started) << argv[0] << ": " << r.err;
  EXPECT_FALSE(r.timed_out) << argv[0] << " timed out";
  return r;
}

class BatchCli : public procforge::testing::TempDirTest {
 protected:
  CommandResult batch(std::vector<std::string> args, const std::string& input) {
    args.insert(args.begin(), {PROCFORGE_BINARY, "batch"});
    return run_with_input(args, input, dir);
  }
  CommandResult parallel(std::vector<std::string> args, const std::string& input) {
    args.insert(args.begin(), {kParallel, "--will-cite"});
    return run_with_input(args, input, dir);
  }
};

// Commands whose completion order differs from their input order: sleeps of
// random length, several lines of output on both streams, failures.
std::string mixed_input(unsigned seed, int lines) {
  std::mt19937 rng(seed);
  std::string in;
  for (int i = 0; i < lines; ++i) {
    const std::string n = std::to_string(i);
    switch (rng() % 5) {
      case 0:
        in += "sh -c 'sleep 0.0" + std::to_string(rng() % 10) + "; printf \"%s\\n\" a" + n + " b" + n + "'\n";
        break;
      case 1: in += "printf '%s\\n' 'word with  spaces " + n + "' \"dq \\\" \\\\ " + n + "\"\n"; break;
      case 2:
        in += "sh -c 'echo out " + n + "; echo err " + n + " >&2; exit " + std::to_string(rng() % 3) + "'\n";
        break;
      case 3: in += "seq " + std::to_string(1 + rng() % 50) + "\n"; break;
      default: in += "echo line\\ " + n + " '#' x#y\n"; break;
    }
  }
  return in;
}

TEST_F(BatchCli, keep_order_gives_the_stdout_stderr_and_status_of_parallel_k) {
  SKIP_UNLESS_INSTALLED(kParallel);
  const std::string input = mixed_input(7, 80);
  const auto theirs = parallel({"-k", "-j", "4"}, input);
  const auto ours = batch({"--keep-order", "-j", "4"}, input);
  EXPECT_EQ(ours.out, theirs.out);
  EXPECT_EQ(ours.err, theirs.err);
  EXPECT_EQ(ours.exit_code, theirs.exit_code);
  EXPECT_GT(theirs.exit_code, 0) << "the input should hold failures";
}

TEST_F(BatchCli, without_keep_order_each_output_is_written_when_its_command_ends) {
  const auto r = batch({"-j", "2"}, "sh -c 'sleep 0.5; echo slow'\necho fast\n");
  EXPECT_EQ(r.out, "fast\nslow\n");
  EXPECT_EQ(r.exit_code, 0);
}

// The lines of TEXT, grouped into runs of consecutive lines of one job
// ("job N ..."): a job whose output was written whole is one run.
std::vector<std::pair<std::string, std::string>> runs_by_job(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> runs;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    const std::string job = l.substr(0, l.find(' ', 4));
    if (runs.empty() || runs.back().first != job) runs.emplace_back(job, "");
    runs.back().second += l + "\n";
  }
  return runs;
}

TEST_F(BatchCli, outputs_of_commands_writing_at_once_never_interleave) {
  constexpr int kJobs = 4, kLines = 2000;
  std::string input;
  for (int j = 0; j < kJobs; ++j)
    input += "awk 'BEGIN { for (i = 0; i < " + std::to_string(kLines) + "; i++) { print \"job " + std::to_string(j) +
             " out \" i; fflush(); print \"job " + std::to_string(j) + " err \" i > \"/dev/stderr\"; fflush() } }'\n";
  const auto r = batch({"-j", std::to_string(kJobs)}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 500);
  for (const auto* stream : {&r.out, &r.err}) {
    const auto runs = runs_by_job(*stream);
    EXPECT_EQ(runs.size(), static_cast<std::size_t>(kJobs)) << "a job's lines are split by another's";
    std::set<std::string> jobs;
    for (const auto& [job, text] : runs) {
      jobs.insert(job);
      EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), kLines) << job;
    }
    EXPECT_EQ(jobs.size(), static_cast<std::size_t>(kJobs));
  }
}

// A joblog as rows of columns, by Seq; the header under "header".
std::map<std::string, std::vector<std::string>> joblog_rows(const std::string& path) {
  std::map<std::string, std::vector<std::string>> rows;
  std::ifstream in(path);
  bool first = true;
  for (std::string l; std::getline(in, l); first = false) {
    std::vector<std::string> cols;
    std::size_t at = 0;
    for (std::size_t tab; (tab = l.find('\t', at)) != std::string::npos; at = tab + 1)
      cols.push_back(l.substr(at, tab - at));
    cols.push_back(l.substr(at));
    rows[first ? "header" : cols[0]] = cols;
  }
  return rows;
}

// The shape of a number as the joblog prints it: every digit a 9 ("    0.012" -> "    9.999").
std::string shape(std::string s) {
  for (char& c : s)
    if (c >= '0' && c <= '9') c = '9';
  return s;
}

TEST_F(BatchCli, joblog_has_the_columns_values_and_number_shapes_of_parallels) {
  SKIP_UNLESS_INSTALLED(kParallel);
  const std::string input =
      "echo 'a b'\nsh -c 'echo err >&2; exit 3'\nsh -c 'kill -9 $$'\n/nonexistent/procforge-batch\nsleep 0.2\n"
      "printf '%s\\n' one two three\ntrue\n";
  parallel({"-j", "2", "--joblog", dir + "/theirs"}, input);
  batch({"-j", "2", "--joblog", dir + "/ours"}, input);
  auto theirs = joblog_rows(dir + "/theirs");
  auto ours = joblog_rows(dir + "/ours");
  ASSERT_EQ(theirs.size(), 8U) << "parallel's joblog: a header and 7 jobs";
  ASSERT_EQ(ours.size(), theirs.size());
  EXPECT_EQ(ours["header"], theirs["header"]);
  enum { kSeq, kHost, kStart, kRuntime, kSend, kReceive, kExitval, kSignal, kCommand, kColumns };
  for (const auto& [seq, row] : theirs) {
    if (seq == "header") continue;
    const auto& mine = ours[seq];
    ASSERT_EQ(row.size(), static_cast<std::size_t>(kColumns)) << "parallel, seq " << seq;
    ASSERT_EQ(mine.size(), row.size()) << "seq " << seq;
    for (int c : {kSeq, kHost, kSend, kReceive, kExitval, kSignal, kCommand})
      EXPECT_EQ(mine[c], row[c]) << "seq " << seq << ", column " << theirs["header"][c];
    for (int c : {kStart, kRuntime})
      EXPECT_EQ(shape(mine[c]), shape(row[c])) << "seq " << seq << ": " << mine[c] << " vs " << row[c];
    EXPECT_NEAR(std::stod(mine[kStart]), std::stod(row[kStart]), 120.0) << "seconds since the epoch";
  }
  EXPECT_EQ(ours["4"][kExitval], "127");
  EXPECT_EQ(ours["3"][kSignal], "9");
}

TEST_F(BatchCli, joblog_plus_file_appends_without_a_second_header) {
  batch({"--joblog", dir + "/log"}, "true\n");
  batch({"--joblog", "+" + dir + "/log"}, "false\n");
  const auto rows = joblog_rows(dir + "/log");
  EXPECT_EQ(rows.size(), 2U) << "a header and seq 1 (the second run's seq 1 replaces the first in the map)";
  std::ifstream in(dir + "/log");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
}

TEST_F(BatchCli, exit_status_is_parallels_count_of_failures_up_to_101) {
  SKIP_UNLESS_INSTALLED(kParallel);
  for (int failures : {0, 3, 100, 101, 102}) {
    std::string input;
    for (int i = 0; i < failures; ++i) input += "false\n";
    input += "true\n";
    const auto theirs = parallel({"-j", "4"}, input);
    const auto ours = batch({"-j", "4"}, input);
    EXPECT_EQ(ours.exit_code, theirs.exit_code) << failures << " failures";
    EXPECT_EQ(ours.exit_code, std::min(failures, 101));
  }
}

TEST_F(BatchCli, halt_on_error_exits_as_parallel_halt_soon_fail_1) {
  SKIP_UNLESS_INSTALLED(kParallel);
  const std::string input =
      "sh -c 'sleep 0.4; echo finished'\nsh -c 'exit 5'\necho never\necho never\necho never\necho never\n";
  const auto theirs = parallel({"-j", "2", "--halt", "soon,fail=1"}, input);
  const auto ours = batch({"-j", "2", "--halt-on-error"}, input);
  EXPECT_EQ(ours.exit_code, theirs.exit_code);
  EXPECT_EQ(ours.exit_code, 5);
  EXPECT_EQ(ours.out, theirs.out);
  EXPECT_EQ(ours.out, "finished\n") << "the running command finishes; nothing else starts";
  EXPECT_NE(ours.err.find("line 2 failed with status 5"), std::string::npos) << ours.err;
  EXPECT_NE(ours.err.find("4 of 6 commands not started"), std::string::npos) << ours.err;
}

TEST_F(BatchCli, json_gives_one_object_per_command_in_input_order) {
  const std::string input =
      "# a comment line\nsh -c 'sleep 0.3; echo slow'\n\necho fast 'two words'\nsh -c 'echo e >&2; exit 4'\n"
      "/nonexistent/procforge-batch\n";
  for (bool warm : {false, true}) {
    std::vector<std::string> args{"--json", "-j", "4"};
    if (warm) args.push_back("--warm");
    const auto r = batch(args, input);
    EXPECT_EQ(r.exit_code, 2);
    std::vector<nlohmann::json> objects;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) objects.push_back(nlohmann::json::parse(l));
    ASSERT_EQ(objects.size(), 4U) << r.out;
    const std::set<std::string> keys{"index",
                                     "line",
                                     "argv",
                                     "status",
                                     "signal",
                                     "warm",
                                     "fallback_reason",
                                     "wall_us",
                                     "stdout",
                                     "stderr",
                                     "procforge_version",
                                     "schema"};
    const std::size_t lines[] = {2, 4, 5, 6};
    for (std::size_t i = 0; i < objects.size(); ++i) {
      const auto& j = objects[i];
      std::set<std::string> got;
      for (const auto& [k, v] : j.items()) got.insert(k);
      EXPECT_EQ(got, keys);
      EXPECT_EQ(j["index"], i + 1);
      EXPECT_EQ(j["line"], lines[i]);
      EXPECT_TRUE(j["argv"].is_array());
      EXPECT_TRUE(j["status"].is_number_integer());
      EXPECT_TRUE(j["wall_us"].is_number_integer());
      EXPECT_GE(j["wall_us"].get<long long>(), 0);
      EXPECT_TRUE(j["warm"].is_boolean());
      if (warm && !j["warm"].get<bool>()) {
        ASSERT_TRUE(j["fallback_reason"].is_string()) << j.dump();
        EXPECT_FALSE(j["fallback_reason"].get<std::string>().empty());
      } else {
        EXPECT_TRUE(j["fallback_reason"].is_null()) << j.dump();
      }
      EXPECT_TRUE(j["signal"].is_null());
    }
    EXPECT_EQ(objects[0]["stdout"], "slow\n");
    EXPECT_EQ(objects[1]["argv"], (std::vector<std::string>{"echo", "fast", "two words"}));
    EXPECT_EQ(objects[2]["status"], 4);
    EXPECT_EQ(objects[2]["stderr"], "e\n");
    EXPECT_EQ(objects[3]["status"], 127);
    EXPECT_EQ(objects[3]["stderr"], "procforge batch: execve /nonexistent/procforge-batch: ENOENT\n");
  }
}

TEST_F(BatchCli, a_command_that_cannot_start_says_why_on_its_own_stderr) {
  write("data", "not a program\n", 0644);
  const auto r = batch({"-k"}, "/nonexistent/procforge-batch\n./data\necho after\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "after\n");
  EXPECT_EQ(r.err,
            "procforge batch: execve /nonexistent/procforge-batch: ENOENT\n"
            "procforge batch: execve ./data: EACCES\n");
}

TEST_F(BatchCli, an_unterminated_quote_names_its_line_and_nothing_runs) {
  const auto r = batch({}, "touch " + dir + "/ran\n\necho 'oops\n");
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("line 3, column 6: unterminated ' quote"), std::string::npos) << r.err;
  EXPECT_NE(access((dir + "/ran").c_str(), F_OK), 0) << "a command ran before the bad line was seen";
}

TEST_F(BatchCli, blank_and_comment_lines_are_skipped) {
  const auto r = batch({"-k"}, "echo a\n\n   \n# echo no\n  # echo no\necho b # not c\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "a\nb\n");
}

TEST_F(BatchCli, file_argument_dash_and_no_argument_all_work) {
  const std::string file = write("cmds", "echo from-file\n", 0644);
  EXPECT_EQ(batch({file}, "echo from-stdin\n").out, "from-file\n");
  EXPECT_EQ(batch({"-"}, "echo from-stdin\n").out, "from-stdin\n");
  EXPECT_EQ(batch({}, "echo from-stdin\n").out, "from-stdin\n");
}

TEST_F(BatchCli, bad_jobs_and_missing_file_are_refused_with_255) {
  for (const char* j : {"0", "-1", "x", "99999999"}) {
    const auto r = batch({"-j", j}, "echo no\n");
    EXPECT_EQ(r.exit_code, 255) << "-j " << j;
    EXPECT_EQ(r.out, "") << "-j " << j;
    EXPECT_NE(r.err.find("-j takes how many commands run at once"), std::string::npos) << r.err;
  }
  const auto r = batch({dir + "/missing"}, "");
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.err, "procforge batch: opening " + dir + "/missing: ENOENT\n");
}

TEST_F(BatchCli, the_bar_is_drawn_only_on_a_terminal) {
  const auto piped = batch({"--bar"}, "true\ntrue\n");
  EXPECT_EQ(piped.err, "") << "no bar when stderr is not a terminal";

  // stderr on a pseudo-terminal: the bar is drawn there, and cleared.
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  procforge::spawn::Options o;
  o.path = PROCFORGE_BINARY;
  o.argv = {PROCFORGE_BINARY, "batch", "--bar", write("cmds", "true\ntrue\ntrue\n", 0644)};
  o.stdout_.kind = procforge::spawn::Stdio::Kind::null;
  o.stderr_.kind = procforge::spawn::Stdio::Kind::fd;
  o.stderr_.fd = slave;
  auto child = procforge::spawn::spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message;
  auto exit = child->wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->shell_status(), 0);
  std::string seen;
  char buf[4096];
  pollfd p{master, POLLIN, 0};
  while (poll(&p, 1, 200) > 0) {
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<std::size_t>(n));
  }
  close(slave);
  close(master);
  EXPECT_NE(seen.find("] 3/3"), std::string::npos) << seen;
  EXPECT_EQ(seen.substr(seen.size() - 4), "\r\033[K") << "the bar is cleared at the end";
}

TEST_F(BatchCli, manual_page_and_completions_know_batch) {
  const auto page = run_with_input({PROCFORGE_BINARY, "manpage", "batch"}, "", dir);
  EXPECT_EQ(page.exit_code, 0) << page.err;
  for (const char* want : {".TH PROCFORGE\\-BATCH 1", ".SH EXIT STATUS", "\\-\\-keep\\-order",
                           "\\-\\-halt\\-on\\-error", "\\-\\-joblog FILE", "101"})
    EXPECT_NE(page.out.find(want), std::string::npos) << want;
  const auto bash = run_with_input({PROCFORGE_BINARY, "completion", "bash"}, "", dir);
  EXPECT_NE(bash.out.find("batch) opts=\"-h --help -j --jobs --warm --warm-max-uses --warm-max-age -k --keep-order "
                          "--halt-on-error --joblog --bar "
                          "--json --color\""),
            std::string::npos)
      << bash.out;
}

}  // namespace
