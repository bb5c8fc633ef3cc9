// Batch: many short commands, one a line, run at most N at once, each one's
// output kept whole (what xargs -P and GNU parallel do, without a shell).
//
// A line is split into words as sh(1) splits the words of a simple command
// (POSIX XCU 2.2 Quoting, 2.3 Token Recognition): blanks separate words;
// single quotes keep everything up to the next one; double quotes keep
// everything but a backslash before $ ` " \ or a newline; a backslash outside
// quotes keeps the next character; backslash-newline continues the command
// on the next line; a # that starts a word starts a comment. Nothing is
// expanded, so what a shell would expand or treat as an operator ($name,
// $(...), `...`, | & ; < > ( )) is refused rather than passed on silently:
// quote it to mean it literally. Globs and ~ are left as written.
//
//   auto commands = procforge::batch::parse(text);       // "line 3: unterminated ' quote..."
//   if (!commands) return fail(commands.error().message);
//   procforge::batch::Options o;
//   o.jobs = 4;
//   auto summary = procforge::batch::run(*commands, o, [](procforge::batch::Outcome& done) {
//     show(done.out, done.err);                          // in completion order
//   });
//   return summary ? summary->exit_status() : 255;
//
// Each child's stdout and stderr go to a memfd of their own (GNU parallel
// gives its jobs temporary files, so programs see a regular file either way)
// and are read whole once it exits; stdin is /dev/null. Children are waited
// for with poll() on their pidfds, in the calling thread: no thread per child.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procforge/result.hpp"
#include "procforge/warm.hpp"

#pragma GCC visibility push(default)  // exported from libprocforge.so: the public API

namespace procforge::batch {

struct Command {
  std::size_t line = 0;  // the input line it starts on, from 1
  std::string text;      // as written, backslash-newline continuations removed
  std::vector<std::string> argv;
};

// The commands of TEXT, one a line; blank and comment-only lines give none.
// Fails (ErrorStep::parse, EINVAL) on the first line that a shell would
// reject or read differently: "line 3: unterminated ' quote (opened at
// column 7)".
Result<std::vector<Command>> parse(std::string_view text);

struct Options {
  unsigned jobs = 1;  // children running at once, at least 1
  // Start each command from a warm::Pool template when it can (the same
  // spawn::Options either way); Outcome::warm and fallback_reason say how.
  bool warm = false;
  warm::Limits warm_limits;
  // GNU parallel's --halt soon,fail=1: after the first command that fails,
  // start no other, let the running ones finish, and exit with its status.
  bool halt_on_error = false;
};

struct Outcome {
  std::size_t index = 0;  // the command's position in the list given to run()
  // The command's status as a shell reports it: its exit status, 128+N when
  // signal N killed it, spawn::failure_status() (127, 126, 125) when it could
  // not be started.
  int status = 0;
  int signal = 0;  // the signal that killed it, 0 otherwise
  // Why it could not be started (spawn's error, "execve /x: ENOENT"), when
  // it could not.
  std::optional<Error> start_error;
  std::string out, err;  // everything it wrote to stdout and to stderr
  bool warm = false;
  std::string fallback_reason;  // with Options::warm, why it was started cold
  std::chrono::system_clock::time_point started_at;
  std::chrono::nanoseconds wall{};  // from spawn to exit
  [[nodiscard]] bool failed() const { return status != 0; }
};

struct Summary {
  std::size_t ran = 0;     // commands started, or that failed to start
  std::size_t failed = 0;  // of those, the ones whose status is not 0
  // With halt_on_error: the first failure, after which nothing was started.
  std::optional<std::size_t> halted_at;
  int halt_status = 0;
  // GNU parallel's exit status: with a halt, the failing command's status;
  // otherwise the number of failures, at most 101 ("more than 100").
  [[nodiscard]] int exit_status() const;
};

// Runs COMMANDS in order, at most o.jobs at once, and calls done() in the
// calling thread with each outcome as its command ends (completion order;
// outcome.index gives the input order). Fails only when the batch itself
// cannot go on (no memfd, poll failing); the children running then are
// killed and reaped. No child and no descriptor outlives the call.
Result<Summary> run(const std::vector<Command>& commands, const Options& o, const std::function<void(Outcome&)>& done);

}  // namespace procforge::batch

#pragma GCC visibility pop
