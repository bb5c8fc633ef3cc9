// `procforge batch [-j N] [--warm] [--keep-order] [--halt-on-error]
// [--joblog FILE] [--bar] [--json] [FILE|-]`: one command a line, at most N
// at once (batch::run), each one's stdout and stderr written whole when it
// ends, or in input order with --keep-order; exit status as GNU parallel's.
// The input is read and split whole before anything runs, so that a bad line
// stops the batch before any command of it has run.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/render_batch.hpp"
#include "common/ansi.hpp"
#include "common/unique_fd.hpp"
#include "procforge/batch.hpp"

namespace procforge::cli {

namespace {

constexpr int kExitBatchCannotRun = 255;  // parallel(1): "255  Other error."

struct BatchOptions {
  std::string jobs;
  bool warm = false, keep_order = false, halt_on_error = false, bar = false, json = false;
  unsigned warm_max_uses = warm::Limits{}.max_uses;
  double warm_max_age_s = std::chrono::duration<double>(warm::Limits{}.max_age).count();
  std::string joblog;
  std::string file;  // "-" taken by the parser as a positional
};

// The CPUs this process may run on, as nproc(1) counts them.
unsigned cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

std::optional<unsigned> parse_jobs(const std::string& s) {
  constexpr unsigned long kMost = 1U << 16;
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const unsigned long n = std::stoul(s);
  if (n == 0 || n > kMost) return std::nullopt;
  return static_cast<unsigned>(n);
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a closed stdout: nothing more can be shown there
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

Result<std::string> read_input(const std::string& file) {
  UniqueFd owned;
  int fd = STDIN_FILENO;
  if (file != "-") {
    owned.reset(open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned) return Error::call(ErrorStep::open, errno, "opening", file);
    fd = owned.get();
  }
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::call(ErrorStep::read, errno, "reading", file == "-" ? "standard input" : file);
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

// "+FILE" appends, as parallel's --joblog does; the header starts a new file.
Result<UniqueFd> open_joblog(std::string path) {
  const bool append = !path.empty() && path[0] == '+';
  if (append) path.erase(0, 1);
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644));
  if (!fd) return Error::call(ErrorStep::open, errno, "opening the joblog", path);
  struct stat st {};
  if (fstat(fd.get(), &st) == 0 && st.st_size == 0) write_all(fd.get(), kJoblogHeader);
  return fd;
}

// Writes each outcome where and when it belongs: at once, or held until every
// earlier command has been shown (--keep-order, --json); its joblog line goes
// with it, as parallel writes it.
class Printer {
 public:
  Printer(const std::vector<batch::Command>& commands, const BatchOptions& o, UniqueFd joblog, bool bar)
      : commands_(commands), o_(o), joblog_(std::move(joblog)), bar_(bar) {}

  void done(batch::Outcome& outcome) {
    if (outcome.start_error) outcome.err = start_failure_text(*outcome.start_error);
    ++finished_;
    if (outcome.failed() && o_.halt_on_error && !halt_said_) {
      halt_said_ = true;
      clear_bar();
      write_all(STDERR_FILENO, fmt::format("procforge batch: line {} failed with status {}: --halt-on-error starts "
                                           "no more commands, the running ones finish\n",
                                           commands_[outcome.index].line, outcome.status));
    }
    if (o_.keep_order || o_.json) {
      held_.emplace(outcome.index, std::move(outcome));
      while (!held_.empty() && held_.begin()->first == next_in_order_) show_next_held();
    } else {
      show(outcome);
    }
    draw_bar();
  }

  // After the batch: what a halt left held behind commands never started.
  void finish() {
    while (!held_.empty()) show_next_held();
    clear_bar();
  }

 private:
  void show_next_held() {
    auto node = held_.extract(held_.begin());
    show(node.mapped());
    next_in_order_ = node.key() + 1;
  }

  void show(const batch::Outcome& outcome) {
    clear_bar();
    const batch::Command& c = commands_[outcome.index];
    if (o_.json) {
      write_all(STDOUT_FILENO, stamped(batch_json(c, outcome, o_.warm), schema::batch)
                                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                                   "\n");
    } else {
      write_all(STDOUT_FILENO, outcome.out);
      write_all(STDERR_FILENO, outcome.err);
    }
    if (joblog_) write_all(joblog_.get(), joblog_line(c, outcome));
  }

  void draw_bar() {
    if (!bar_) return;
    const auto now = std::chrono::steady_clock::now();
    if (finished_ != commands_.size() && now - last_drawn_ < std::chrono::milliseconds(100)) return;
    last_drawn_ = now;
    write_all(STDERR_FILENO, ansi::clear_line + progress_bar(finished_, commands_.size()));
    drawn_ = true;
  }

  void clear_bar() {
    if (drawn_) write_all(STDERR_FILENO, ansi::clear_line);
    drawn_ = false;
  }

  const std::vector<batch::Command>& commands_;
  const BatchOptions& o_;
  UniqueFd joblog_;
  bool bar_;
  std::map<std::size_t, batch::Outcome> held_;
  std::size_t next_in_order_ = 0, finished_ = 0;
  bool halt_said_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point last_drawn_{};
};

int run_batch(const BatchOptions& o, const std::vector<std::string>& rest) {
  auto cannot = [](const std::string& why) {
    print_error("batch", why);
    return kExitBatchCannotRun;
  };
  if (rest.size() > 1 || (!rest.empty() && !o.file.empty()))
    return cannot("takes one FILE (or - for standard input), got more");
  const std::string file = !rest.empty() ? rest.front() : o.file.empty() ? "-" : o.file;
  batch::Options bo;
  bo.jobs = cpus();
  if (!o.jobs.empty()) {
    auto jobs = parse_jobs(o.jobs);
    if (!jobs) return cannot("-j takes how many commands run at once, from 1 to 65536; got '" + o.jobs + "'");
    bo.jobs = *jobs;
  }
  bo.warm = o.warm;
  bo.warm_limits.max_uses = o.warm_max_uses;
  bo.warm_limits.max_age = std::chrono::milliseconds(static_cast<long long>(o.warm_max_age_s * 1000));
  bo.halt_on_error = o.halt_on_error;

  auto text = read_input(file);
  if (!text) return cannot(text.error().message);
  auto commands = batch::parse(*text);
  if (!commands) return cannot((file == "-" ? "standard input" : file) + ", " + commands.error().message);
  UniqueFd joblog;
  if (!o.joblog.empty()) {
    auto fd = open_joblog(o.joblog);
    if (!fd) return cannot(fd.error().message);
    joblog = std::move(*fd);
  }

  Printer printer(*commands, o, std::move(joblog), o.bar && isatty(STDERR_FILENO));
  auto summary = batch::run(*commands, bo, [&](batch::Outcome& done) { printer.done(done); });
  printer.finish();
  if (!summary) return cannot(summary.error().message);
  if (summary->halted_at && summary->ran < commands->size())
    print_error("batch", fmt::format("{} of {} commands not started (--halt-on-error)", commands->size() - summary->ran,
                                     commands->size()));
  return summary->exit_status();
}

}  // namespace

void add_batch(CLI::App& app, std::vector<Command>& commands) {
  auto o = std::make_shared<BatchOptions>();
  auto* b = app.add_subcommand("batch", "Run one command a line, N at once, each one's output whole");
  b->add_option("-j,--jobs", o->jobs, "How many commands run at once (default: the number of CPUs)")->type_name("N");
  b->add_flag("--warm", o->warm,
              "Start each program from a warm template when it can, cold otherwise (--json says why)");
  b->add_option("--warm-max-uses", o->warm_max_uses,
                "A fresh template after this many instances (default 256: instances of one template share its "
                "layout and stack canary; docs/warm-starts.md)")
      ->check(CLI::PositiveNumber);
  b->add_option("--warm-max-age", o->warm_max_age_s, "A fresh template after this many seconds (default 60)")
      ->check(CLI::PositiveNumber);
  b->add_flag("-k,--keep-order", o->keep_order, "Write the outputs in input order, not as commands end");
  b->add_flag("--halt-on-error", o->halt_on_error,
              "After the first failure start no more commands; exit with its status (parallel --halt soon,fail=1)");
  b->add_option("--joblog", o->joblog, "Log every command in GNU parallel's joblog format ('+FILE' appends)")
      ->type_name("FILE");
  b->add_flag("--bar", o->bar, "A progress bar on stderr, when it is a terminal");
  b->add_flag("--json", o->json, "One JSON object a command, in input order, its output included");
  b->add_option("file", o->file, "The commands, one a line ('-' or none: standard input)");
  b->footer("procforge batch [OPTIONS] [FILE|-]: the commands of FILE, or of standard input.");
  commands.push_back({b, [o](std::vector<std::string> rest) { return run_batch(*o, rest); }});
}

}  // namespace procforge::cli
