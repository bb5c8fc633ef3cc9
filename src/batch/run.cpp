// Running a batch: at most N children at once, each with its stdout and
// stderr in memfds of its own, waited for with poll() on their pidfds (a
// pidfd becomes readable when its process exits: kernel/pid.c pidfd_poll()),
// all in the calling thread. GNU parallel's semantics for the outcome: a
// command fails when its status is not 0 (a signal or a failed start
// included), the exit status counts the failures up to 101, and --halt
// soon,fail=1 stops starting commands after the first failure while the
// running ones finish (parallel(1) "EXIT STATUS" and --halt).
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>

#include "common/unique_fd.hpp"
#include "procforge/batch.hpp"

namespace procforge::batch {

int Summary::exit_status() const {
  constexpr std::size_t kMostCounted = 101;  // parallel(1): "101  More than 100 jobs failed."
  if (halted_at) return halt_status;
  return static_cast<int>(std::min(failed, kMostCounted));
}

namespace {

Result<UniqueFd> memfd(const char* name) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
  if (!fd) return Error::call(ErrorStep::open, errno, "memfd_create", name);
  return fd;
}

// All a child wrote to the memfd, from its start (the child's own offset is
// not ours to trust: it may have seeked).
Result<std::string> read_whole(int fd, const char* name) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Error::call(ErrorStep::read, errno, "fstat of the memfd", name);
  std::string s(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = pread(fd, s.data() + got, s.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::call(ErrorStep::read, errno, "reading the memfd", name);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  s.resize(got);
  return s;
}

struct Running {
  spawn::Child child;
  UniqueFd own_pidfd;  // pidfd_open()ed when the spawn strategy gave none
  UniqueFd out, err;
  Outcome outcome;
  [[nodiscard]] int pidfd() const { return child.pidfd() >= 0 ? child.pidfd() : own_pidfd.get(); }
};

class Runner {
 public:
  Runner(const std::vector<Command>& commands, const Options& o, const std::function<void(Outcome&)>& done)
      : commands_(commands), o_(o), done_(done) {
    if (o.warm) pool_.emplace(o.warm_limits);
  }

  [[nodiscard]] bool more_to_start() const { return next_ < commands_.size() && !summary_.halted_at; }
  [[nodiscard]] bool slot_free() const { return running_.size() < o_.jobs; }
  [[nodiscard]] bool busy() const { return !running_.empty(); }
  [[nodiscard]] const Summary& summary() const { return summary_; }

  // Starts the next command; one that cannot start ends here, with its status.
  Status start_next() {
    const Command& c = commands_[next_];
    Running r;
    r.outcome.index = next_++;
    auto out = memfd("stdout");
    if (!out) return out.error();
    auto err = memfd("stderr");
    if (!err) return err.error();
    r.out = std::move(*out);
    r.err = std::move(*err);

    spawn::Options so;
    so.path = c.argv.front();
    so.argv = c.argv;
    so.stdin_.kind = spawn::Stdio::Kind::null;
    so.stdout_.kind = so.stderr_.kind = spawn::Stdio::Kind::fd;
    so.stdout_.fd = r.out.get();
    so.stderr_.fd = r.err.get();

    ++summary_.ran;
    r.outcome.started_at = std::chrono::system_clock::now();
    warm::Report report;
    auto child = pool_ ? pool_->spawn(so, &report) : spawn::spawn(so);
    if (pool_) {
      r.outcome.warm = report.warm;
      r.outcome.fallback_reason = report.fallback_reason;
    }
    if (!child) {
      r.outcome.status = spawn::failure_status(child.error());
      r.outcome.start_error = child.error();
      record(r.outcome);
      return ok_status();
    }
    r.child = std::move(*child);
    if (r.child.pidfd() < 0) {
      r.own_pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, r.child.pid(), 0)));
      if (!r.own_pidfd) return Error::call(ErrorStep::wait, errno, "pidfd_open", std::to_string(r.child.pid()));
    }
    running_.push_back(std::move(r));
    return ok_status();
  }

  // Sleeps until at least one child has exited, then ends every one that has.
  Status collect() {
    std::vector<pollfd> fds;
    fds.reserve(running_.size());
    for (const auto& r : running_) fds.push_back({r.pidfd(), POLLIN, 0});
    int n;
    do n = poll(fds.data(), fds.size(), -1);
    while (n < 0 && errno == EINTR);
    if (n < 0) return Error::call(ErrorStep::wait, errno, "poll on the children's pidfds");
    std::vector<Running> still, ended;
    for (std::size_t i = 0; i < running_.size(); ++i)
      (fds[i].revents ? ended : still).push_back(std::move(running_[i]));
    running_ = std::move(still);
    for (auto& r : ended)
      if (auto s = end(r); !s) return s;
    return ok_status();
  }

 private:
  // Reaps an exited child (its pidfd is readable, so wait() does not block)
  // and takes what it wrote.
  Status end(Running& r) {
    auto exit = r.child.wait();
    if (!exit) return exit.error().with_context(fmt::format("waiting for line {}", commands_[r.outcome.index].line));
    r.outcome.status = exit->shell_status();
    r.outcome.signal = exit->exited ? 0 : exit->status;
    r.outcome.wall = exit->wall;
    auto out = read_whole(r.out.get(), "stdout");
    if (!out) return out.error();
    auto err = read_whole(r.err.get(), "stderr");
    if (!err) return err.error();
    r.outcome.out = std::move(*out);
    r.outcome.err = std::move(*err);
    record(r.outcome);
    return ok_status();
  }

  void record(Outcome& outcome) {
    if (outcome.failed()) {
      ++summary_.failed;
      if (o_.halt_on_error && !summary_.halted_at) {
        summary_.halted_at = outcome.index;
        summary_.halt_status = outcome.status;
      }
    }
    done_(outcome);
  }

  const std::vector<Command>& commands_;
  const Options& o_;
  const std::function<void(Outcome&)>& done_;
  std::optional<warm::Pool> pool_;  // declared before running_: its templates outlive the instances
  std::vector<Running> running_;    // killed and reaped by ~Child if the batch stops early
  std::size_t next_ = 0;
  Summary summary_;
};

}  // namespace

Result<Summary> run(const std::vector<Command>& commands, const Options& o, const std::function<void(Outcome&)>& done) {
  if (o.jobs == 0) return Error{ErrorStep::options, EINVAL, "jobs", "jobs must be at least 1"};
  for (const auto& c : commands)
    if (c.argv.empty())
      return Error{ErrorStep::options, EINVAL, fmt::format("line {}", c.line),
                   fmt::format("line {}: a command without words", c.line)};
  Runner runner(commands, o, done);
  while (runner.more_to_start() || runner.busy()) {
    // Fill every free slot, then sleep until a child ends and collect it.
    while (runner.slot_free() && runner.more_to_start())
      if (auto s = runner.start_next(); !s) return s.error();
    if (runner.busy())
      if (auto s = runner.collect(); !s) return s.error();
  }
  return runner.summary();
}

}  // namespace procforge::batch
