// The structured error: spawn's failures carry the step, the errno and the
// object, callers decide (exec_failed, failure_status) from those fields, and
// context added on the way up changes the text only. Also the hints that
// turn a refusal into a sentence, each reached by a real refusal.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
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

// In a user namespace whose setgroups file says "deny", even its root (with
// CAP_SETGID there) gets EPERM from setgroups(2) (kernel/user_namespace.c
// userns_may_setgroups()): the hint must say so, not ask for CAP_SETGID.
// unshare(CLONE_NEWUSER) needs a single-threaded caller, so a forked child
// does the spawn and writes its message back.
TEST(SpawnErrors, setgroups_denied_in_the_user_namespace_gets_its_own_hint) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    auto say = [&](const std::string& s) {
      (void)!write(p[1], s.data(), s.size());
      _exit(0);
    };
    if (unshare(CLONE_NEWUSER) != 0) say("skip: unshare(CLONE_NEWUSER): " + errno_name(errno));
    auto put = [](const char* file, const std::string& text) {
      const int fd = open(file, O_WRONLY | O_CLOEXEC);
      const bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      if (fd >= 0) close(fd);
      return ok;
    };
    if (!put("/proc/self/setgroups", "deny") || !put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
        !put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n"))
      say("skip: cannot write the id maps of the new user namespace: " + errno_name(errno));
    auto o = command({"/bin/true"});
    o.groups = std::vector<gid_t>{};
    auto c = spawn::spawn(o);
    if (c.ok()) say("spawned: setgroups was not refused");
    say(std::to_string(c.error().err) + "\n" + c.error().message);
  }
  close(p[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (got.rfind("skip: ", 0) == 0) GTEST_SKIP() << "user namespaces unavailable: " << got.substr(6);
  ASSERT_NE(got.find('\n'), std::string::npos) << got;
  EXPECT_EQ(got.substr(0, got.find('\n')), std::to_string(EPERM));
  EXPECT_EQ(got.substr(got.find('\n') + 1),
            "setting supplementary groups none: EPERM (setgroups is denied in this user namespace)");
}

}  // namespace
