// The spawn server (procforge serve, procforge/server.hpp) against the same
// spawns made locally: a process started through the server must end, print
// and fail exactly as spawn::spawn's does. Every test runs on both backends;
// the server runs in a forked process of this test (or as the CLI).
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "common/fd_passing.hpp"
#include "procforge/client.hpp"
#include "procforge/elf.hpp"
#include "procforge/server.hpp"
#include "procforge/spawn.hpp"
#include "server/protocol.hpp"
#include "support/run_command.hpp"

namespace procforge {
namespace {

namespace proto = server::proto;

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

int open_fds_of(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    ++n;
  return n;
}

bool can_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A server in a child process of this test, stopped (SIGTERM) and reaped at
// the end.
class Served {
 public:
  Served(server::Config c, void (*before)() = nullptr) {
    static int n = 0;
    dir_ =
        std::filesystem::temp_directory_path() / ("pf-serve-" + std::to_string(getpid()) + "-" + std::to_string(++n));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "s.sock").string();
    c.socket_path = path_;
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(p[0]);
      if (before) before();
      c.on_ready = [](const char*, const char* backend, void* arg) {
        int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
        (void)!write(fd, backend, strlen(backend));
        close(fd);
      };
      c.on_ready_arg = reinterpret_cast<void*>(static_cast<std::intptr_t>(p[1]));
      auto s = server::serve(c);
      if (!s) {
        (void)!write(p[1], "!", 1);
        (void)!write(2, s.error().message.data(), s.error().message.size());
      }
      _exit(s ? 0 : 1);
    }
    close(p[1]);
    backend_ = read_all(p[0]);
    close(p[0]);
  }
  ~Served() { stop(); }
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    return st;
  }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& backend() const { return backend_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  std::filesystem::path dir_;
  std::string path_, backend_;
  pid_t pid_ = -1;
};

class Server : public ::testing::TestWithParam<const char*> {
 protected:
  server::Config config() const {
    server::Config c;
    c.backend = GetParam();
    c.grace = std::chrono::milliseconds(500);
    return c;
  }
};

spawn::Options sh(const std::string& script) {
  spawn::Options o;
  o.path = "/bin/sh";
  o.argv = {"sh", "-c", script};
  return o;
}

struct Outcome {
  int status = -1;      // shell status, or failure_status of a failed spawn
  std::string message;  // the error of a failed spawn
  std::string out;
};

Outcome outcome(Result<spawn::Child> c) {
  Outcome r;
  if (!c) {
    r.status = spawn::failure_status(c.error());
    r.message = c.error().message;
    return r;
  }
  if (c->stdout_fd >= 0) r.out = read_all(c->stdout_fd);
  auto e = c->wait();
  r.status = e ? e->shell_status() : -2;
  if (!e) r.message = e.error().message;
  return r;
}

TEST_P(Server, listens_on_the_backend_asked_for) {
  Served s(config());
  EXPECT_EQ(s.backend(), GetParam());
  auto c = client::Connection::connect(s.path());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->backend(), GetParam());
  EXPECT_EQ(c->server_pid(), s.pid());
}

// The local spawn is the oracle: status, output and error text.
TEST_P(Server, processes_end_fail_and_print_as_local_spawns_do) {
  Served s(config());
  auto c = client::Connection::connect(s.path());
  ASSERT_TRUE(c) << c.error().message;
  std::string tmp = std::filesystem::temp_directory_path() / ("pf-noexec-" + std::to_string(getpid()));
  std::ofstream(tmp) << "#!/bin/sh\n";
  chmod(tmp.c_str(), 0644);
  std::vector<spawn::Options> cases = {sh("exit 0"), sh("exit 3"), sh("kill -SEGV $$"), sh("echo out; echo err >&2")};
  spawn::Options missing;
  missing.path = "/nonexistent/program";
  cases.push_back(missing);
  spawn::Options noexec;
  noexec.path = tmp;
  cases.push_back(noexec);
  spawn::Options badcwd = sh("pwd");
  badcwd.cwd = "/nonexistent/dir";
  cases.push_back(badcwd);
  spawn::Options controls = sh("umask; ulimit -n; echo $FOO; pwd");
  controls.umask = 027;
  controls.rlimits.push_back({RLIMIT_NOFILE, 77, 77});
  controls.set_env = {"FOO=bar"};
  controls.cwd = "/usr";
  cases.push_back(controls);
  for (auto& o : cases) {
    o.stdout_.kind = spawn::Stdio::Kind::pipe;
    Outcome local = outcome(spawn::spawn(o));
    Outcome remote = outcome(c->spawn(o));
    SCOPED_TRACE(o.argv.empty() ? o.path : o.argv.back());
    EXPECT_EQ(remote.status, local.status);
    EXPECT_EQ(remote.out, local.out);
    EXPECT_EQ(remote.message, local.message);
  }
  unlink(tmp.c_str());
}

TEST_P(Server, many_requests_in_flight_end_in_any_order) {
  Served s(config());
  auto c = client::Connection::connect(s.path());
  ASSERT_TRUE(c) << c.error().message;
  std::vector<spawn::Child> running;
  for (int i = 0; i < 12; ++i) {
    auto ch = c->spawn(sh("sleep 0.0" + std::to_string(i % 5) + "; exit " + std::to_string(i)));
    ASSERT_TRUE(ch) << ch.error().message;
    running.push_back(std::move(*ch));
  }
  for (int i = 11; i >= 0; --i) {  // the last first: the others' exits wait in the connection
    auto e = running[static_cast<std::size_t>(i)].wait();
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->shell_status(), i);
  }
}

TEST_P(Server, a_timeout_kills_as_for_a_local_child) {
  Served s(config());
  auto c = client::Connection::connect(s.path());
  ASSERT_TRUE(c);
  auto ch = c->spawn(sh("exec sleep 10"));
  ASSERT_TRUE(ch);
  auto e = ch->wait(std::chrono::milliseconds(100));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE(e->timed_out);
  EXPECT_EQ(e->shell_status(), 128 + SIGKILL);
}

bool ends_within(pid_t pid, std::chrono::milliseconds limit) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  bool ended = poll(&p, 1, static_cast<int>(limit.count())) == 1;
  close(fd);
  return ended;
}

TEST_P(Server, a_client_that_goes_away_takes_its_processes_unless_detached) {
  Served s(config());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const std::string grandchild_file =
      std::filesystem::temp_directory_path() / ("pf-grandchild-" + std::to_string(getpid()) + "-" + GetParam());
  pid_t client_process = fork();
  if (client_process == 0) {
    auto c = client::Connection::connect(s.path());
    if (!c) _exit(1);
    // The shell's own child must end with the shell: it is in the group the
    // server made for the request. Its stdout is not this test's pipe.
    spawn::Options with_child = sh("sleep 30 & echo $! > " + grandchild_file + "; wait");
    with_child.stdout_.kind = with_child.stderr_.kind = spawn::Stdio::Kind::null;
    auto a = c->spawn(with_child);
    auto b = c->spawn(sh("exec sleep 30"), false, true);
    if (!a || !b) _exit(2);
    for (int i = 0; i < 300 && !std::filesystem::exists(grandchild_file); ++i) usleep(10000);
    usleep(20000);  // the echo done
    pid_t pids[2] = {a->pid(), b->pid()};
    (void)!write(p[1], pids, sizeof pids);
    _exit(0);  // no destructors: the connection just closes
  }
  close(p[1]);
  pid_t pids[2] = {-1, -1};
  ASSERT_EQ(read(p[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
  close(p[0]);
  waitpid(client_process, nullptr, 0);
  pid_t grandchild = -1;
  std::ifstream(grandchild_file) >> grandchild;
  std::filesystem::remove(grandchild_file);
  ASSERT_GT(grandchild, 0) << "the shell did not say its child's pid";
  EXPECT_TRUE(ends_within(pids[0], std::chrono::milliseconds(3000))) << "the attached process outlived its client";
  EXPECT_TRUE(ends_within(grandchild, std::chrono::milliseconds(3000))) << "the attached process's child outlived it";
  EXPECT_FALSE(ends_within(pids[1], std::chrono::milliseconds(300))) << "the detached process was ended";
  kill(pids[1], SIGKILL);
  EXPECT_TRUE(ends_within(pids[1], std::chrono::milliseconds(3000)));
}

// A raw connection, to send what no client of the library would.
struct Raw {
  int fd = -1;
  explicit Raw(const std::string& path) {
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~Raw() { close(fd); }
  void send_bytes(const std::string& b, const std::vector<int>& fds = {}) const {
    EXPECT_GE(send_with_fds(fd, b, fds), 0);
  }
  // The next message, and whether the connection then closes.
  std::string next(int timeout_ms = 3000) const {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return "(nothing)";
    std::string b(proto::kMaxMessage, '\0');
    ssize_t n = recv(fd, b.data(), b.size(), 0);
    if (n <= 0) return "(closed)";
    b.resize(static_cast<std::size_t>(n));
    return b;
  }
};

std::string failure_text(const std::string& bytes) {
  auto m = proto::parse(bytes);
  if (!m) return "(unparsable: " + m.error().message + ")";
  if (m->header.kind != proto::Kind::failed) return "(not a failure)";
  auto f = proto::decode_failed(*m);
  return f ? f->message : "(bad failure: " + f.error().message + ")";
}

TEST_P(Server, bad_input_gets_an_error_reply_and_the_server_serves_on) {
  Served s(config());
  const int fds_before = open_fds_of(s.pid());
  std::string hello = proto::encode(0, proto::Hello{});
  proto::Request req;
  req.path = "/bin/true";
  std::string spawn = proto::encode(1, req);
  proto::Hello future{7, 9};
  std::string bad_field = hello;
  bad_field.resize(bad_field.size() - 1);  // the last field cut short
  std::string unknown_tag = hello + std::string("\x63\x00\x00\x00\x00\x00", 6);
  std::string wrong_magic = hello;
  wrong_magic[0] ^= 0x55;
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct Case {
    const char* name;
    std::vector<std::string> before;  // sent and answered normally first
    std::string bytes;
    std::vector<int> fds;
    const char* says;  // in the failure's message
  };
  std::vector<Case> cases = {
      {"short", {}, "abc", {}, "shorter than the 16-byte header"},
      {"magic", {}, wrong_magic, {}, "bad magic"},
      {"spawn before hello", {}, spawn, {}, "first message must be hello"},
      {"truncated field", {}, bad_field, {}, "runs past the end of the message"},
      {"unknown field", {}, unknown_tag, {}, "tag 99"},
      {"unknown version", {}, proto::encode(0, future), {}, "speaks versions 7..9"},
      {"fd not placed", {hello}, spawn, {devnull}, "1 descriptors came with the request, 0 of them placed"},
      {"oversized", {hello}, std::string(proto::kMaxMessage + 100, 'x'), {}, "above"},
      {"fd with hello", {}, hello, {devnull}, "of a kind that carries none"},
      {"fd with kill", {hello}, proto::encode(1, proto::Kill{SIGTERM}), {devnull}, "of a kind that carries none"},
      {"a server's message", {hello}, proto::encode(0, proto::Welcome{}), {}, "a client does not send"},
      {"kill of no request", {hello}, proto::encode(3, proto::Kill{SIGTERM}), {}, "no running process of request 3"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    Raw r(s.path());
    for (const auto& b : k.before) {
      r.send_bytes(b);
      r.next();
    }
    r.send_bytes(k.bytes, k.fds);
    std::string reply = r.next();
    EXPECT_NE(failure_text(reply).find(k.says), std::string::npos) << failure_text(reply);
    if (std::string(k.name) != "fd not placed" && std::string(k.name) != "kill of no request") {
      EXPECT_EQ(r.next(), "(closed)");
    }
  }
  {  // a client that sends a request and vanishes
    Raw r(s.path());
    r.send_bytes(hello);
    r.next();
    req.path = "/bin/sleep";
    req.argv = {"sleep", "30"};
    r.send_bytes(proto::encode(5, req));
  }
  close(devnull);
  {
    auto c = client::Connection::connect(s.path());
    ASSERT_TRUE(c) << c.error().message;
    auto ok = c->spawn(sh("exit 7"));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->wait()->shell_status(), 7);
  }
  // Once the last connection is closed on its side (a moment after ours).
  int fds_after = open_fds_of(s.pid());
  for (int i = 0; i < 100 && fds_after != fds_before; ++i) {
    usleep(10000);
    fds_after = open_fds_of(s.pid());
  }
  EXPECT_EQ(fds_after, fds_before) << "the server leaked descriptors";
}

TEST_P(Server, requests_beyond_max_children_are_refused_with_a_reason) {
  server::Config cfg = config();
  cfg.max_children = 2;
  Served s(cfg);
  auto c = client::Connection::connect(s.path());
  ASSERT_TRUE(c);
  auto a = c->spawn(sh("sleep 0.3"));
  auto b = c->spawn(sh("sleep 0.3"));
  ASSERT_TRUE(a && b);
  auto refused = c->spawn(sh("true"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().err, EAGAIN);
  EXPECT_NE(refused.error().message.find("--max-children"), std::string::npos) << refused.error().message;
  (void)a->wait();
  auto again = c->spawn(sh("exit 4"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->wait()->shell_status(), 4);
}

TEST_P(Server, warm_spawns_come_from_a_template_kept_between_clients) {
  Served s(config());
  for (int i = 0; i < 3; ++i) {
    auto c = client::Connection::connect(s.path());
    ASSERT_TRUE(c);
    spawn::Options o;
    o.path = "/bin/echo";
    o.argv = {"echo", "warm", std::to_string(i)};
    o.stdout_.kind = spawn::Stdio::Kind::pipe;
    client::Spawned info;
    auto ch = c->spawn(o, true, false, &info);
    ASSERT_TRUE(ch) << ch.error().message;
    EXPECT_EQ(read_all(ch->stdout_fd), "warm " + std::to_string(i) + "\n");
    EXPECT_EQ(ch->wait()->shell_status(), 0);
    if (i > 0) {
      EXPECT_TRUE(info.warm) << info.fallback_reason;
    }
  }
}

void refuse_io_uring_setup() {
  // seccomp: io_uring_setup fails with EPERM, as Docker's default profile does.
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
    _exit(3);
}

// A server process of a test, killed and reaped when the test ends, also
// when an assertion returns early (pid -1 once the test reaped it itself).
struct Ender {
  pid_t pid = -1;
  ~Ender() {
    if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
  }
};

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

TEST_P(Server, a_killed_server_leaves_no_template_and_a_new_one_takes_its_socket) {
  Served s(config());
  const std::string path = s.path();
  {
    auto c = client::Connection::connect(path);
    ASSERT_TRUE(c);
    spawn::Options o;
    o.path = "/bin/true";
    o.argv = {"true"};
    for (int i = 0; i < 2; ++i) {  // the second is a warm instance: the template exists
      client::Spawned info;
      auto ch = c->spawn(o, true, false, &info);
      ASSERT_TRUE(ch) << ch.error().message;
      EXPECT_EQ(ch->wait()->shell_status(), 0);
      if (i == 1) {
        ASSERT_TRUE(info.warm) << info.fallback_reason;
      }
    }
  }
  // The template (the server's child) and its spare (the template's), as pidfds
  // taken now: once the server is gone they are nobody's children.
  std::vector<int> pidfds;
  for (pid_t t : children_of(s.pid())) {
    pidfds.push_back(static_cast<int>(syscall(SYS_pidfd_open, t, 0)));
    for (pid_t spare : children_of(t)) pidfds.push_back(static_cast<int>(syscall(SYS_pidfd_open, spare, 0)));
  }
  ASSERT_GE(pidfds.size(), 1u) << "no template was found under the server";
  kill(s.pid(), SIGKILL);
  waitpid(s.pid(), nullptr, 0);
  for (int fd : pidfds) {
    ASSERT_GE(fd, 0);
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 3000), 1) << "a template or spare outlived the killed server";
    close(fd);
  }
  // Its socket file is left behind (and an io_uring server's socket still
  // takes connections for some milliseconds, until its ring is torn down):
  // a new server started at once replaces it.
  ASSERT_TRUE(std::filesystem::exists(path));
  int err[2];
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  pid_t next = fork();
  if (next == 0) {
    dup2(err[1], 2);
    execl(PROCFORGE_BINARY, "procforge", "serve", "--socket", path.c_str(), "--backend", GetParam(), nullptr);
    _exit(127);
  }
  close(err[1]);
  Ender ender{next};
  std::string said;
  char byte = 0;
  while (said.find('\n') == std::string::npos && read(err[0], &byte, 1) == 1) said += byte;
  ASSERT_NE(said.find("listening on " + path), std::string::npos) << said;
  {
    auto c = client::Connection::connect(path);
    ASSERT_TRUE(c) << c.error().message;
    auto ch = c->spawn(sh("exit 3"));
    ASSERT_TRUE(ch);
    EXPECT_EQ(ch->wait()->shell_status(), 3);
  }
  kill(next, SIGTERM);
  said += read_all(err[0]);  // to its end: the server's last line must find a reader
  close(err[0]);
  int st = 0;
  waitpid(next, &st, 0);
  ender.pid = -1;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << " " << said;
}

TEST(ServerBackend, io_uring_refused_by_seccomp_falls_back_to_epoll_with_the_same_results) {
  server::Config c;
  c.backend = "auto";
  Served s(c, refuse_io_uring_setup);
  EXPECT_EQ(s.backend(), "epoll");
  auto conn = client::Connection::connect(s.path());
  ASSERT_TRUE(conn) << conn.error().message;
  EXPECT_EQ(conn->backend(), "epoll");
  auto ch = conn->spawn(sh("exit 5"));
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->wait()->shell_status(), 5);
  server::Config strict;
  strict.backend = "io_uring";
  Served refused(strict, refuse_io_uring_setup);
  EXPECT_EQ(refused.backend(), "!");
}

// As another user: refused unless allowed, and an allowed one's processes
// run as that user.
TEST(ServerPeers, another_uid_is_refused_and_an_allowed_one_runs_as_itself) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as other users";
  server::Config c;
  c.allow_uids = {4242};
  Served s(c);
  struct stat st {};
  ASSERT_EQ(stat(s.path().c_str(), &st), 0);
  std::filesystem::permissions(std::filesystem::path(s.path()).parent_path(), std::filesystem::perms::all);
  auto as_user = [&](uid_t uid, gid_t gid) {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
      close(p[0]);
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(9);
      std::string said;
      auto conn = client::Connection::connect(s.path());
      if (!conn) {
        said = "refused: " + conn.error().message;
      } else {
        spawn::Options o = sh("id -u; id -g; id -G");
        o.stdout_.kind = spawn::Stdio::Kind::pipe;
        auto ch = conn->spawn(o);
        said = ch ? read_all(ch->stdout_fd) : "spawn failed: " + ch.error().message;
      }
      (void)!write(p[1], said.data(), said.size());
      _exit(0);
    }
    close(p[1]);
    std::string said = read_all(p[0]);
    close(p[0]);
    waitpid(child, nullptr, 0);
    return said;
  };
  std::string nobody = as_user(65534, 65534);
  EXPECT_NE(nobody.find("refused: the procforge server refused the connection: uid 65534 may not use this server"),
            std::string::npos)
      << nobody;
  EXPECT_EQ(as_user(4242, 4343), "4242\n4343\n4343\n");
}

INSTANTIATE_TEST_SUITE_P(Backends, Server, ::testing::Values("io_uring", "epoll"),
                         [](const auto& param) { return std::string(param.param); });

// ---- the CLI ----

std::string procforge_binary() { return std::string(PROCFORGE_BINARY); }

TEST(ServeCli, a_second_server_on_the_same_socket_refuses_and_sigterm_drains) {
  std::string dir = std::filesystem::temp_directory_path() / ("pf-serve-cli-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string sock = dir + "/s.sock";
  pid_t first = fork();
  if (first == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(procforge_binary().c_str(), "procforge", "serve", "--socket", sock.c_str(), "--grace", "0.3", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200 && !can_connect(sock); ++i) usleep(10000);
  ASSERT_TRUE(can_connect(sock));
  struct stat st {};
  ASSERT_EQ(stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The second one.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t second = fork();
  if (second == 0) {
    dup2(p[1], 2);
    execl(procforge_binary().c_str(), "procforge", "serve", "--socket", sock.c_str(), nullptr);
    _exit(127);
  }
  close(p[1]);
  std::string said = read_all(p[0]);
  close(p[0]);
  int status = 0;
  waitpid(second, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(said.find("another server already listens on " + sock), std::string::npos) << said;
  // A process that ignores SIGTERM is killed after the grace period.
  auto c = client::Connection::connect(sock);
  ASSERT_TRUE(c);
  auto stubborn = c->spawn(sh("trap '' TERM; sleep 30; true"));
  ASSERT_TRUE(stubborn);
  usleep(100000);
  kill(first, SIGTERM);
  auto e = stubborn->wait();
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->shell_status(), 128 + SIGKILL);
  waitpid(first, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(std::filesystem::exists(sock)) << "the socket was left behind";
  std::filesystem::remove_all(dir);
}

TEST(ServeCli, run_through_the_server_gives_run_s_statuses) {
  std::string dir = std::filesystem::temp_directory_path() / ("pf-serve-run-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string sock = dir + "/s.sock";
  pid_t srv = fork();
  if (srv == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(procforge_binary().c_str(), "procforge", "serve", "--socket", sock.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200 && !can_connect(sock); ++i) usleep(10000);
  auto run = [&](std::vector<std::string> args, bool server) {
    std::vector<std::string> argv = {procforge_binary(), "run"};
    if (server) argv.push_back("--server=" + sock);
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t p = fork();
    if (p == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> v;
      for (auto& a : argv) v.push_back(a.data());
      v.push_back(nullptr);
      execv(v[0], v.data());
      _exit(99);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
  };
  std::vector<std::vector<std::string>> cases = {{"--", "/bin/true"},
                                                 {"--", "/bin/sh", "-c", "exit 42"},
                                                 {"--", "/nonexistent"},
                                                 {"--cwd", "/nonexistent", "--", "/bin/true"},
                                                 {"--timeout", "100ms", "--", "/bin/sleep", "5"},
                                                 {"--", "/bin/sh", "-c", "kill -TERM $$"},
                                                 {"--warm", "--", "/bin/true"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.back());
    EXPECT_EQ(run(c, true), run(c, false));
  }
  kill(srv, SIGTERM);
  waitpid(srv, nullptr, 0);
  std::filesystem::remove_all(dir);
}

TEST(ServeCli, socket_activation_serves_on_the_inherited_socket_and_leaves_it) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("pf-serve-activated-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string sock = (dir / "activated.sock").string();
  // What systemd does for a .socket unit: bind, listen, pass it as fd 3.
  int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(l, 16), 0);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t srv = fork();
  if (srv == 0) {
    if (l == 3) fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
    else dup2(l, 3);                   // without FD_CLOEXEC
    dup2(p[1], 2);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    execl(PROCFORGE_BINARY, "procforge", "serve", "--socket", (dir / "not-this-one.sock").c_str(), nullptr);
    _exit(127);
  }
  close(l);
  close(p[1]);
  Ender ender{srv};
  auto c = client::Connection::connect(sock);
  ASSERT_TRUE(c) << c.error().message;
  auto child = c->spawn(sh("exit 5"));
  ASSERT_TRUE(child) << child.error().message;
  EXPECT_EQ(child->wait()->shell_status(), 5);
  kill(srv, SIGTERM);
  int st = 0;
  waitpid(srv, &st, 0);
  ender.pid = -1;
  const std::string said = read_all(p[0]);
  close(p[0]);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << " " << said;
  EXPECT_NE(said.find("(inherited socket)"), std::string::npos) << said;
  EXPECT_FALSE(std::filesystem::exists(dir / "not-this-one.sock")) << "--socket was bound despite LISTEN_FDS";
  EXPECT_TRUE(std::filesystem::exists(sock)) << "the inherited socket's file is systemd's, not the server's to remove";
  std::filesystem::remove_all(dir);
}

// ---- the server under load ----

// What the server holds: descriptors, resident memory and live children.
struct Holdings {
  int fds = 0;
  long rss_kb = 0;
  int children = 0;
};

Holdings holdings_of(pid_t pid) {
  Holdings h;
  h.fds = open_fds_of(pid);
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) h.rss_kb = std::stol(line.substr(6));
  std::ifstream kids("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (std::string k; kids >> k;) ++h.children;
  return h;
}

// PROCFORGE_SOAK=CLIENTSxREQUESTS (default 12x60; the closing figures come
// from 100x1000): every client a thread with its own connection, its
// requests one after another, each exit status checked against the one
// asked for. The server must end where it began: the same descriptors, no
// children, no memory growth beyond the allocator's slack.
TEST_P(Server, soak_many_clients_leave_the_server_as_they_found_it) {
  int clients = 12, requests = 60;
  if (const char* e = getenv("PROCFORGE_SOAK")) {
    ASSERT_EQ(sscanf(e, "%dx%d", &clients, &requests), 2) << e;
  }
  server::Config c = config();
  Served s(c);
  ASSERT_EQ(s.backend(), GetParam());
  std::atomic<int> delivered{0}, wrong{0}, peak_children{0};
  std::vector<std::string> failures(static_cast<std::size_t>(clients));
  // Every client at once, `n` requests each.
  auto round = [&](int n) {
    std::vector<std::thread> threads;
    for (int k = 0; k < clients; ++k)
      threads.emplace_back([&, k, n] {
        auto conn = client::Connection::connect(s.path());
        if (!conn) {
          failures[static_cast<std::size_t>(k)] = conn.error().message;
          return;
        }
        for (int i = 0; i < n; ++i) {
          const int want = (k * 7 + i) % 256;
          auto child = conn->spawn(sh("exit " + std::to_string(want)));
          if (!child) {
            failures[static_cast<std::size_t>(k)] = child.error().message;
            return;
          }
          auto exit = child->wait();
          if (!exit) {
            failures[static_cast<std::size_t>(k)] = exit.error().message;
            return;
          }
          ++delivered;
          if (exit->shell_status() != want) ++wrong;
        }
      });
    for (auto& t : threads) t.join();
  };
  // Settled: the descriptors back to `fds` and no child left.
  auto settled = [&](int fds) {
    Holdings h;
    for (int i = 0; i < 100; ++i) {
      h = holdings_of(s.pid());
      if (h.fds == fds && h.children == 0) break;
      usleep(20000);
    }
    return h;
  };
  // Before: after a first round with every client, so that what the server
  // keeps for that many connections at once (buffers, the allocator's
  // arenas) is there; a leak grows with the requests that follow.
  const int idle_fds = open_fds_of(s.pid());
  round(std::max(10, requests / 4));
  const Holdings before = settled(idle_fds);
  delivered = 0;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      peak_children = std::max(peak_children.load(), holdings_of(s.pid()).children);
      usleep(20000);
    }
  });
  round(requests);
  done = true;
  sampler.join();
  for (int k = 0; k < clients; ++k) EXPECT_EQ(failures[static_cast<std::size_t>(k)], "") << "client " << k;
  EXPECT_EQ(delivered.load(), clients * requests);
  EXPECT_EQ(wrong.load(), 0) << "exit statuses delivered to the wrong request";
  const Holdings after = settled(before.fds);
  std::printf(
      "[ soak ] %s: %d clients x %d requests, %d exits delivered, %d wrong; server before: %d fds, %ld KiB, "
      "%d children; after: %d fds, %ld KiB, %d children; at most %d children at once\n",
      GetParam(), clients, requests, delivered.load(), wrong.load(), before.fds, before.rss_kb, before.children,
      after.fds, after.rss_kb, after.children, peak_children.load());
  EXPECT_EQ(after.fds, before.fds) << "descriptors leaked";
  EXPECT_EQ(after.children, 0) << "children left";
  EXPECT_LE(after.rss_kb, before.rss_kb + 512) << "the server grew";
}

// ---- procforge-spawn, the static client ----

std::string spawn_client() { return std::string(PROCFORGE_BUILD_DIR) + "/procforge-spawn"; }

// A `procforge serve` of the build on a socket of its own, ended (SIGTERM) at the end.
class CliServer {
 public:
  CliServer() {
    dir_ = std::filesystem::temp_directory_path() / ("pf-spawn-cli-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    sock_ = (dir_ / "s.sock").string();
    pid_ = fork();
    if (pid_ == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 2);
      execl(PROCFORGE_BINARY, "procforge", "serve", "--socket", sock_.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !can_connect(sock_); ++i) usleep(10000);
  }
  ~CliServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  [[nodiscard]] const std::string& socket() const { return sock_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string sock_;
  pid_t pid_ = -1;
};

TEST(SpawnClient, is_static_and_links_no_cxx_runtime) {
  std::ifstream f(spawn_client(), std::ios::binary);
  ASSERT_TRUE(f) << spawn_client() << " was not built";
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto elf = elf::File::parse(bytes);
  ASSERT_TRUE(elf) << elf.error().message;
  auto interp = elf->interpreter();
  ASSERT_TRUE(interp);
  EXPECT_FALSE(interp->has_value()) << "procforge-spawn asks for a dynamic loader: " << **interp;
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text.find("libstdc++"), std::string::npos);
  EXPECT_EQ(text.find("__cxa_throw"), std::string::npos);
}

TEST(SpawnClient, gives_run_s_statuses_output_and_input) {
  CliServer srv;
  ASSERT_TRUE(can_connect(srv.socket()));
  using testsupport::run_command;
  testsupport::CommandOptions opts;
  opts.inherit_env = true;
  opts.stdin_text = "line one\nline two\n";
  const std::vector<std::vector<std::string>> cases = {
      {"/bin/true"},
      {"/bin/sh", "-c", "echo out; echo err >&2; exit 42"},
      {"sh", "-c", "echo \"$0 $# $1\"; pwd", "zero", "one"},
      {"cat"},
      {"/nonexistent"},
      {"/etc/passwd"},
      {"/bin/sh", "-c", "kill -TERM $$"},
      {"--cwd", "/usr", "--", "/bin/pwd"},
      {"--cwd", "/nonexistent", "--", "/bin/true"},
      {"--warm", "--", "/bin/echo", "warm"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.back());
    std::vector<std::string> through = {spawn_client(), "--socket", srv.socket()};
    std::vector<std::string> local = {PROCFORGE_BINARY, "run"};
    through.insert(through.end(), c.begin(), c.end());
    if (c.front() != "--cwd" && c.front() != "--warm") local.push_back("--");
    local.insert(local.end(), c.begin(), c.end());
    auto a = run_command(through, opts), b = run_command(local, opts);
    ASSERT_TRUE(a.started && b.started);
    EXPECT_EQ(a.exit_code, b.exit_code) << a.err << " | " << b.err;
    EXPECT_EQ(a.out, b.out);
    if (b.exit_code < 125 || b.exit_code > 127) EXPECT_EQ(a.err, b.err);
    else EXPECT_NE(a.err.find("procforge-spawn: "), std::string::npos) << a.err;
  }
}

TEST(SpawnClient, passes_signals_on_and_refuses_bad_usage) {
  CliServer srv;
  ASSERT_TRUE(can_connect(srv.socket()));
  // SIGTERM to the client reaches the program, whose trap decides the status.
  const std::string ready = (srv.dir() / "ready").string();
  pid_t p = fork();
  if (p == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1);
    execl(spawn_client().c_str(), "procforge-spawn", "-s", srv.socket().c_str(), "/bin/sh", "-c",
          ("trap 'exit 7' TERM; touch " + ready + "; while :; do sleep 0.02; done").c_str(), nullptr);
    _exit(99);
  }
  for (int i = 0; i < 500 && !std::filesystem::exists(ready); ++i) usleep(10000);
  ASSERT_TRUE(std::filesystem::exists(ready));
  kill(p, SIGTERM);
  int st = 0;
  pid_t got = 0;
  for (int i = 0; i < 500 && (got = waitpid(p, &st, WNOHANG)) == 0; ++i) usleep(10000);
  if (got == 0) {  // the signal never reached the program
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
  }
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 7) << "wait status " << st;

  using testsupport::run_command;
  auto none = run_command({spawn_client()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no program given"), std::string::npos) << none.err;
  auto bogus = run_command({spawn_client(), "--bogus", "/bin/true"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("--bogus"), std::string::npos) << bogus.err;
  auto missing = run_command({spawn_client(), "--socket"});
  EXPECT_EQ(missing.exit_code, 2);
  const std::string gone = (srv.dir() / "nobody-here.sock").string();
  auto absent = run_command({spawn_client(), "--socket", gone, "/bin/true"});
  EXPECT_EQ(absent.exit_code, 125);
  EXPECT_NE(absent.err.find(gone), std::string::npos) << absent.err;
  // Above the server's size for one request: refused by the client, with the limit named.
  testsupport::CommandOptions big;
  big.env = {"PATH=/usr/bin:/bin"};
  for (int i = 0; i < 4; ++i) big.env.push_back("HUGE" + std::to_string(i) + "=" + std::string(50 << 10, 'x'));
  auto huge = run_command({spawn_client(), "--socket", srv.socket(), "/bin/true"}, big);
  EXPECT_EQ(huge.exit_code, 125);
  EXPECT_NE(huge.err.find("KiB"), std::string::npos) << huge.err;
}

}  // namespace
}  // namespace procforge
