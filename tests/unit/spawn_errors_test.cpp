// The structured error: spawn's failures carry the step, the errno and the
// object, callers decide (exec_failed, failure_status) from those fields, and
// context added on the way up changes the text only.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "procforge/result.hpp"
#include "procforge/spawn.hpp"

namespace {

using namespace procforge;

spawn::Options command(std::vector<std::string> argv) {
  spawn::Options o;
  o.path = argv.front();
  o.argv = std::move(argv);
  return o;
}

TEST(SpawnErrors, error_from_errno_and_text_has_no_step_or_object) {
  const Error e{ENOENT, "something: ENOENT"};
  EXPECT_EQ(e.step, ErrorStep::unspecified);
  EXPECT_EQ(e.object, "");
  EXPECT_EQ(e.err, ENOENT);
  EXPECT_EQ(e.message, "something: ENOENT");
}

TEST(SpawnErrors, a_failed_call_names_what_the_object_and_the_errno) {
  const Error e = Error::call(ErrorStep::open, EACCES, "opening cgroup", "/sys/fs/cgroup/x");
  EXPECT_EQ(e.message, "opening cgroup /sys/fs/cgroup/x: EACCES");
  EXPECT_EQ(e.object, "/sys/fs/cgroup/x");
  EXPECT_EQ(e.step, ErrorStep::open);
  EXPECT_EQ(Error::call(ErrorStep::clone, EAGAIN, "clone3").message, "clone3: EAGAIN");
}

TEST(SpawnErrors, context_changes_the_text_and_keeps_the_fields) {
  const Error e = Error{ErrorStep::execve, ENOENT, "/x/y", "execve /x/y: ENOENT"}.with_context("running the test");
  EXPECT_EQ(e.message, "running the test: execve /x/y: ENOENT");
  EXPECT_EQ(e.step, ErrorStep::execve);
  EXPECT_EQ(e.object, "/x/y");
  EXPECT_EQ(e.err, ENOENT);
}

TEST(SpawnErrors, missing_program_is_step_execve_with_the_path_and_status_127_after_context) {
  auto c = spawn::spawn(command({"/nonexistent/x/y"}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::execve);
  EXPECT_EQ(c.error().object, "/nonexistent/x/y");
  const Error risen = c.error().with_context("starting the job").with_context("procforge");
  EXPECT_TRUE(spawn::exec_failed(risen));
  EXPECT_EQ(spawn::failure_status(risen), 127);
}

TEST(SpawnErrors, non_executable_program_is_status_126) {
  auto c = spawn::spawn(command({"/etc/passwd"}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::execve);
  EXPECT_EQ(c.error().object, "/etc/passwd");
  EXPECT_EQ(spawn::failure_status(c.error().with_context("x")), 126);
}

TEST(SpawnErrors, path_search_miss_names_the_program_as_asked) {
  auto o = command({"procforge-no-such-program"});
  o.set_env = {"PATH=/nonexistent:/usr/bin"};
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::execve);
  EXPECT_EQ(c.error().object, "procforge-no-such-program");
}

TEST(SpawnErrors, a_message_that_starts_like_execve_is_not_an_exec_failure) {
  const Error e{ENOENT, "execve looks like this but is something else: ENOENT"};
  EXPECT_FALSE(spawn::exec_failed(e));
  EXPECT_EQ(spawn::failure_status(e), 125);
}

TEST(SpawnErrors, bad_cwd_is_a_setup_step_with_the_directory_and_status_125) {
  auto o = command({"/bin/true"});
  o.cwd = "/nonexistent-dir";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::spawn_setup);
  EXPECT_EQ(c.error().object, "/nonexistent-dir");
  EXPECT_EQ(spawn::failure_status(c.error()), 125);
}

TEST(SpawnErrors, failed_open_onto_stdout_names_the_file) {
  auto o = command({"/bin/true"});
  o.stdout_.kind = spawn::Stdio::Kind::file;
  o.stdout_.path = "/nonexistent-dir/out";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::spawn_setup);
  EXPECT_EQ(c.error().object, "/nonexistent-dir/out");
}

TEST(SpawnErrors, contradictory_options_are_step_options) {
  auto o = command({"/bin/true"});
  o.hostname = "x";
  auto c = spawn::spawn(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().step, ErrorStep::options);
  EXPECT_EQ(c.error().err, EINVAL);
}

}  // namespace
