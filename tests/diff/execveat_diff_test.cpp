// execveat() and fexecve() (execveat(fd, "", ..., AT_EMPTY_PATH)): the model
// against the real system call. Each case opens the same file or directory
// at the same descriptor number (close-on-exec or not) in the oracle's child
// and in the test process, then the child calls execveat() and the model
// predicts it. The outcome and errno must agree, and when the exec succeeds
// the argv probe_args received must be the predicted one: a #! script's
// interpreter gets "/dev/fd/N" or "/dev/fd/N/NAME" as the script's path, and
// a close-on-exec descriptor makes a script fail with ENOENT.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "procforge/exec.hpp"
#include "support/exec_corpus.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/oracle.hpp"

namespace procforge::testsupport {
namespace {

constexpr int kFd = 37;  // the descriptor number both sides use

// Where descriptor kFd comes from: OPEN opened; the same, then removed
// (unlink, or rmdir for a directory); a memfd holding a copy of OPEN; a
// pipe's read end. The last three leave the descriptor with no path.
enum class Source { path, removed, memfd, pipe };

struct AtCase {
  std::string name;
  std::string open;  // what descriptor kFd names (relative to the fixture directory)
  int open_flags = O_RDONLY;
  bool cloexec = false;
  std::string path;  // execveat's path ("" with AT_EMPTY_PATH)
  int at_flags = 0;
  Source source = Source::path;
};

// What the child does in place of execve(): raw system calls only.
struct ChildCtx {
  const char* open_path;
  int open_flags;
  const char* path;
  char* const* argv;
  char* const* envp;
  int at_flags;
  Source source;
};

// Descriptor FD's contents copied into a new memfd (close-on-exec as
// CLOEXEC says); the memfd, or -1 with errno.
long memfd_copy(long fd, bool cloexec) {
  const long m = syscall(SYS_memfd_create, "execveat-case", cloexec ? MFD_CLOEXEC : 0);
  if (m < 0) return -1;
  while (true) {
    const long n = syscall(SYS_sendfile, m, fd, nullptr, 1L << 20);
    if (n < 0) return -1;
    if (n == 0) break;
  }
  syscall(SYS_fchmod, m, 0755);
  syscall(SYS_close, fd);
  return m;
}

// The descriptor C asks for, by raw system calls (the oracle's child may
// use nothing else); -1 with errno on failure.
long open_source(const ChildCtx* c) {
  if (c->source == Source::pipe) {
    int ends[2];
    if (syscall(SYS_pipe2, ends, c->open_flags & O_CLOEXEC) < 0) return -1;
    return ends[0];
  }
  long fd = syscall(SYS_openat, AT_FDCWD, c->open_path, c->open_flags);
  if (fd < 0) return -1;
  if (c->source == Source::removed &&
      syscall(SYS_unlinkat, AT_FDCWD, c->open_path, (c->open_flags & O_DIRECTORY) ? AT_REMOVEDIR : 0) < 0)
    return -1;
  if (c->source == Source::memfd) fd = memfd_copy(fd, (c->open_flags & O_CLOEXEC) != 0);
  return fd;
}

int exec_at(const void* p) {
  const auto* c = static_cast<const ChildCtx*>(p);
  const long fd = open_source(c);
  if (fd < 0) return errno;
  if (fd != kFd && syscall(SYS_dup3, fd, kFd, c->open_flags & O_CLOEXEC) < 0) return errno;
  syscall(SYS_execveat, kFd, c->path, c->argv, c->envp, c->at_flags);
  return errno;
}

std::vector<char*> c_array(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<AtCase> cases(const std::string& dir) {
  const int dirf = O_RDONLY | O_DIRECTORY;
  return {
      {"dir_prog", ".", dirf, false, "prog", 0},
      {"dir_prog_cloexec", ".", dirf, true, "prog", 0},
      {"opath_dir_prog", ".", O_PATH | O_DIRECTORY, false, "prog", 0},
      {"dir_script", ".", dirf, false, "script", 0},
      {"dir_script_cloexec", ".", dirf, true, "script", 0},
      {"dir_script_in_subdir", ".", dirf, false, "sub/script2", 0},
      {"dir_script_in_subdir_cloexec", ".", dirf, true, "sub/script2", 0},
      {"fexecve_prog", "prog", O_RDONLY, false, "", AT_EMPTY_PATH},
      {"fexecve_prog_cloexec", "prog", O_RDONLY, true, "", AT_EMPTY_PATH},
      {"fexecve_opath_prog", "prog", O_PATH, true, "", AT_EMPTY_PATH},
      {"fexecve_script", "script", O_RDONLY, false, "", AT_EMPTY_PATH},
      {"fexecve_script_cloexec", "script", O_RDONLY, true, "", AT_EMPTY_PATH},
      {"fexecve_directory", ".", dirf, false, "", AT_EMPTY_PATH},
      {"empty_path_without_flag", ".", dirf, false, "", 0},
      {"unknown_flag", ".", dirf, false, "prog", 0x2},
      {"nofollow_symlink", ".", dirf, false, "link", AT_SYMLINK_NOFOLLOW},
      {"follow_symlink", ".", dirf, false, "link", 0},
      {"nofollow_regular", ".", dirf, false, "prog", AT_SYMLINK_NOFOLLOW},
      {"absolute_script_cloexec", ".", dirf, true, dir + "/script", 0},
      {"file_fd_with_name", "prog", O_RDONLY, false, "x", 0},
      {"dir_missing", ".", dirf, false, "missing", 0},
      {"empty_path_flag_on_dir_name", ".", dirf, true, "script", AT_EMPTY_PATH},
      // Descriptors with no path: the kernel goes by the open file alone.
      {"removed_prog", "gone", O_RDONLY, false, "", AT_EMPTY_PATH, Source::removed},
      {"removed_prog_opath_cloexec", "gone", O_PATH, true, "", AT_EMPTY_PATH, Source::removed},
      {"removed_script", "gone_script", O_RDONLY, false, "", AT_EMPTY_PATH, Source::removed},
      {"removed_script_cloexec", "gone_script", O_RDONLY, true, "", AT_EMPTY_PATH, Source::removed},
      {"removed_dir_name", "gone_dir", dirf, false, "prog", 0, Source::removed},
      {"memfd_prog", "prog", O_RDONLY, true, "", AT_EMPTY_PATH, Source::memfd},
      {"memfd_script", "script", O_RDONLY, false, "", AT_EMPTY_PATH, Source::memfd},
      {"memfd_script_cloexec", "script", O_RDONLY, true, "", AT_EMPTY_PATH, Source::memfd},
      {"memfd_with_name", "prog", O_RDONLY, false, "prog", 0, Source::memfd},
      {"pipe", "", O_RDONLY, false, "", AT_EMPTY_PATH, Source::pipe},
  };
}

// One case through the kernel (a child that opens the descriptor and calls
// execveat) and through the model (the same descriptor opened here); true
// when they agree: outcome, errno, and the argv the program received.
bool agree(FixtureDir& d, const AtCase& c) {
  SCOPED_TRACE("case " + c.name);
  const auto parts = [] {
    return ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
  };
  const int before = parts();
  bool setup = false;
  [&] {
    std::vector<std::string> argv = {"argv0", "one"}, envp = {"PATH=/usr/bin:/bin"};
    auto cargv = c_array(argv), cenvp = c_array(envp);
    const std::string open_path = d.at(c.open);
    const int open_flags = c.open_flags | (c.cloexec ? O_CLOEXEC : 0);
    const ChildCtx ctx{open_path.c_str(), open_flags, c.path.c_str(), cargv.data(), cenvp.data(), c.at_flags, c.source};
    // This process's descriptor: opened before the child removes the file
    // (the removed cases make it anew each time), or the same memfd copy or
    // pipe.
    if (c.source == Source::removed) {
      if (c.open == "gone_dir") d.mkdirs(c.open);
      else ASSERT_EQ(run_command({"/bin/cp", d.at(c.open == "gone" ? "prog" : "script"), open_path}).exit_code, 0);
    }
    int fd = -1;
    if (c.source == Source::pipe) {
      int ends[2];
      ASSERT_EQ(::pipe2(ends, open_flags & O_CLOEXEC), 0);
      fd = ends[0];
    } else {
      fd = ::open(open_path.c_str(), open_flags);
      ASSERT_GE(fd, 0) << std::strerror(errno);
      if (c.source == Source::memfd) fd = static_cast<int>(memfd_copy(fd, (open_flags & O_CLOEXEC) != 0));
      ASSERT_GE(fd, 0) << std::strerror(errno);
    }
    OracleRequest oreq;
    oreq.path = "(execveat)";
    oreq.argv = argv;
    oreq.envp = envp;
    oreq.cwd = d.path();
    oreq.keep_credentials = true;
    const OracleResult k = run_child(oreq, exec_at, &ctx);
    ASSERT_TRUE(k.setup_error.empty()) << k.setup_error;

    // The model, with the same descriptor open in this process.
    if (fd != kFd) {
      ASSERT_EQ(::dup3(fd, kFd, open_flags & O_CLOEXEC), kFd);
      ::close(fd);
    }
    exec::Request req;
    req.path = c.path;
    req.argv = argv;
    req.envp = envp;
    req.cwd = d.path();
    req.dirfd = kFd;
    req.at_flags = c.at_flags;
    const auto p = exec::predict(req, exec::SystemFacts::probe());
    ::close(kFd);
    ASSERT_TRUE(p.ok()) << p.error().message;

    const bool kernel_ok = k.outcome == OracleOutcome::ok;
    const bool model_ok = p->outcome == exec::Outcome::ok;
    EXPECT_EQ(kernel_ok, model_ok) << "kernel: " << describe(k) << ", model errno " << p->err << " " << p->failed_step;
    if (!kernel_ok && !model_ok) {
      EXPECT_EQ(k.err, p->err) << "kernel: " << describe(k) << ", model: " << p->failed_step;
    }
    if (kernel_ok && model_ok) {
      EXPECT_TRUE(k.probe.ran) << k.out;
      EXPECT_EQ(k.probe.argv, p->argv);
    }
    setup = true;
  }();
  return setup && parts() == before;
}

TEST(ExecveatDiff, kernel_and_model_agree) {
  FixtureDir d;
  const std::string probe = PROCFORGE_PROBE_DIR "/probe_args";
  ASSERT_EQ(::access(probe.c_str(), X_OK), 0) << probe;
  {
    const CommandResult cp = run_command({"/bin/cp", probe, d.at("prog")});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
  }
  d.write("script", "#!" + d.at("prog") + " -x\n", 0755);
  d.write("sub/script2", "#!" + d.at("prog") + "\n", 0755);
  d.symlink("link", "prog");
  const auto all = cases(d.path());
  std::size_t same = 0;
  for (const auto& c : all) same += agree(d, c);
  std::printf("execveat cases: %zu compared, %zu identical\n", all.size(), same);
}

// binfmt_misc through a descriptor: fs/binfmt_misc.c load_misc_binary()
// refuses a close-on-exec descriptor's name as load_script() does (ENOENT),
// and otherwise hands the interpreter "/dev/fd/N".
TEST(ExecveatDiff, binfmt_misc_through_a_descriptor) {
  Unavailable why;
  const BinfmtEntries* e = SharedEnv::get().binfmt(&why);
  if (!e) {
    ASSERT_FALSE(why.harness_failure) << why.why;
    GTEST_SKIP() << why.why;
  }
  FixtureDir d;
  d.write("plain", e->plain_magic + " payload\n", 0755);
  d.write("preserve", e->preserve_magic + " payload\n", 0755);
  const int dirf = O_RDONLY | O_DIRECTORY;
  const std::vector<AtCase> all = {
      {"fexecve_plain", "plain", O_RDONLY, false, "", AT_EMPTY_PATH},
      {"fexecve_plain_cloexec", "plain", O_RDONLY, true, "", AT_EMPTY_PATH},
      {"fexecve_preserve_cloexec", "preserve", O_RDONLY, true, "", AT_EMPTY_PATH},
      {"dir_plain", ".", dirf, false, "plain", 0},
      {"dir_plain_cloexec", ".", dirf, true, "plain", 0},
      {"memfd_plain", "plain", O_RDONLY, false, "", AT_EMPTY_PATH, Source::memfd},
      {"memfd_plain_cloexec", "plain", O_RDONLY, true, "", AT_EMPTY_PATH, Source::memfd},
  };
  std::size_t same = 0;
  for (const auto& c : all) same += agree(d, c);
  std::printf("execveat binfmt_misc cases: %zu compared, %zu identical\n", all.size(), same);
}

// The CLI: `explain --execveat 3 [--cloexec] script 3<DIR`, the descriptor
// opened by the shell that starts procforge, gives what the kernel gave the
// same calls above (dir_script, dir_script_cloexec).
TEST(ExecveatDiff, explain_takes_the_descriptor_from_its_caller) {
  FixtureDir d;
  d.write("script", "#!/bin/echo\n", 0755);
  CommandOptions opts;
  opts.env = {"PATH=/usr/bin:/bin"};
  for (const bool cloexec : {false, true}) {
    const CommandResult r = run_command({"/bin/sh", "-c",
                                         std::string("exec \"$0\" explain --json --execveat 3 ") +
                                             (cloexec ? "--cloexec " : "") + "script one 3<\"$1\"",
                                         PROCFORGE_BINARY, d.path()},
                                        opts);
    ASSERT_TRUE(r.started) << r.err;
    EXPECT_EQ(r.exit_code, cloexec ? 1 : 0) << r.err;
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    if (cloexec) {
      EXPECT_EQ(j["execve"]["errno"], "ENOENT");
    } else {
      EXPECT_EQ(j["execve"]["argv"], nlohmann::json({"/bin/echo", "/dev/fd/3/script", "one"}));
    }
  }
}

}  // namespace
}  // namespace procforge::testsupport
