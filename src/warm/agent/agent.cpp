// procforge_warm.so: what a template runs. Preloaded (LD_PRELOAD) into a
// dynamically linked glibc program, it lets ld.so, the constructors and libc's
// initialisation run as in any start, takes the call of main() and holds the
// process there as a template. Each spawn request then makes an instance: a
// copy of the template that applies the spawn controls (spawn::child_main(),
// the code a cold child runs), takes its own argv and environment, and calls
// the program's main() exactly as __libc_start_main would have.
//
// How main() is reached: _start calls __libc_start_main through the GOT
// (sysdeps/x86_64/start.S), so a preloaded definition interposes it; ours
// calls glibc's with template_main in place of main (csu/libc-start.c calls
// main after __libc_init_first, the constructors and the auditing hooks).
//
// How an instance becomes the caller's child and not the template's: the copy
// is made with clone(CLONE_PARENT) (kernel/fork.c copy_process(): the child's
// real_parent is the template's, and its exit signal the template's). A raw
// clone skips glibc's fork(), so this file does what fork() does for a
// single-threaded process (sysdeps/nptl/fork.h, posix/fork.c): the thread
// descriptor's tid through CLONE_CHILD_SETTID at the address glibc gave to
// set_tid_address (PR_GET_TID_ADDRESS), the robust-futex list re-registered
// (the kernel clears it for a new task), and the atfork handlers the program
// and its libraries registered (recorded by interposing __register_atfork),
// run in glibc's order: prepare in reverse, parent and child in order.
//
// What the template records before main, for the pool to decide when an
// instance would differ from a cold start: the names looked up with getenv
// and secure_getenv (calls from other objects; libc's own internal lookups
// bypass the PLT), whether it looked at the cwd, the fds it opened, its
// threads, and the identity of every mapped file.
//
// Built without the C++ runtime (no exceptions, no libstdc++): it lives
// inside someone else's program.
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "spawn/plan.hpp"
#include "warm/wire.hpp"

extern char** environ;

#define PF_EXPORT extern "C" __attribute__((visibility("default")))

namespace pf = procforge;
namespace wire = procforge::warm::wire;

namespace {

using MainFn = int (*)(int, char**, char**);
using StartMainFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);

// ---- what happens before main ---------------------------------------------

bool g_recording = false;  // a template, before main
int g_control = -1;
MainFn g_main = nullptr;

constexpr int kMaxNames = 512;
constexpr int kNameLen = 96;
char g_names[kMaxNames][kNameLen];
int g_nnames = 0;
bool g_names_overflow = false;
bool g_looked_at_cwd = false;

struct Atfork {
  void (*prepare)();
  void (*parent)();
  void (*child)();
};
constexpr int kMaxAtfork = 128;
Atfork g_atfork[kMaxAtfork];
int g_natfork = 0;
bool g_atfork_overflow = false;

void record_name(const char* name) {
  if (!g_recording || !name) return;
  size_t n = strnlen(name, kNameLen);
  if (n >= kNameLen) {
    g_names_overflow = true;
    return;
  }
  for (int i = 0; i < g_nnames; ++i)
    if (strcmp(g_names[i], name) == 0) return;
  if (g_nnames == kMaxNames) {
    g_names_overflow = true;
    return;
  }
  memcpy(g_names[g_nnames++], name, n + 1);
}

// getenv as glibc's stdlib/getenv.c: the first NAME=VALUE entry of environ.
char* lookup(const char* name) {
  if (!name || !environ) return nullptr;
  size_t n = strlen(name);
  if (n == 0 || strchr(name, '=')) return nullptr;
  for (char** e = environ; *e; ++e)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return nullptr;
}

template <class F>
F next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// Removes the entry `name=...` from environ in place.
void drop_variable(const char* name) {
  if (!environ) return;
  size_t n = strlen(name);
  char** out = environ;
  for (char** e = environ; *e; ++e)
    if (!(strncmp(*e, name, n) == 0 && (*e)[n] == '=')) *out++ = *e;
  *out = nullptr;
}

// This module's own path, to take it back out of LD_PRELOAD.
const char* self_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&self_path), &info) && info.dli_fname) return info.dli_fname;
  return nullptr;
}

// The template's environment, as the program should see it: the pool added
// PROCFORGE_WARM_FD and put this module first in LD_PRELOAD ("agent" or
// "agent:the caller's list"); both go before any other constructor can look.
__attribute__((constructor(101))) void take_control() {
  const char* fd = lookup(wire::kFdVariable);
  if (!fd) return;  // preloaded by someone else's hand: stay out of the way
  g_control = atoi(fd);
  drop_variable(wire::kFdVariable);
  const char* self = self_path();
  for (char** e = environ; self && e && *e; ++e) {
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0) continue;
    const char* v = *e + 11;
    size_t n = strlen(self);
    if (strncmp(v, self, n) != 0) break;
    if (v[n] == 0) {
      drop_variable("LD_PRELOAD");
    } else if (v[n] == ':') {
      // "LD_PRELOAD=" + the rest, in a string of its own.
      size_t rest = strlen(v + n + 1);
      char* s = static_cast<char*>(malloc(11 + rest + 1));
      if (s) {
        memcpy(s, "LD_PRELOAD=", 11);
        memcpy(s + 11, v + n + 1, rest + 1);
        *e = s;
      }
    }
    break;
  }
  g_recording = true;
}

// ---- the facts, sent once the template reaches main ----------------------

struct Text {
  char* buf;
  size_t cap, len;
  bool full = false;
  void add(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (full) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0 || static_cast<size_t>(n) >= cap - len) full = true;
    else len += static_cast<size_t>(n);
  }
};

int count_threads() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  while (struct dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

// "obj DEV INO MTIME_NS SIZE PATH" for each distinct mapped file (not this
// module): dev and inode as mapped (/proc/self/maps), mtime and size from
// stat() of the path now. The pool compares them with the files at each spawn.
void add_objects(Text& t, const char* self) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    t.add("error reading /proc/self/maps: %s\n", strerror(errno));
    return;
  }
  size_t cap = 1 << 20, len = 0;
  char* maps = static_cast<char*>(malloc(cap));
  if (!maps) {
    close(fd);
    t.add("error reading /proc/self/maps: ENOMEM\n");
    return;
  }
  ssize_t r;
  while (len + 1 < cap && (r = read(fd, maps + len, cap - 1 - len)) > 0) len += static_cast<size_t>(r);
  close(fd);
  maps[len] = 0;
  char last[4096] = "";
  for (char* line = maps; line && *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    unsigned maj = 0, min = 0;
    unsigned long ino = 0;
    int path_at = 0;
    if (sscanf(line, "%*s %*s %*s %x:%x %lu %n", &maj, &min, &ino, &path_at) >= 3 && path_at > 0 &&
        line[path_at] == '/') {
      const char* path = line + path_at;
      if (strcmp(path, last) != 0 && !(self && strcmp(path, self) == 0)) {
        snprintf(last, sizeof last, "%s", path);
        struct stat st {};
        if (strstr(path, " (deleted)") || stat(path, &st) != 0 || st.st_dev != makedev(maj, min) || st.st_ino != ino) {
          t.add("replaced %s\n", path);
        } else {
          t.add("obj %lu %lu %lld %lld %s\n", static_cast<unsigned long>(makedev(maj, min)), ino,
                static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                static_cast<long long>(st.st_size), path);
        }
      }
    }
    line = end ? end + 1 : nullptr;
  }
  free(maps);
}

// Calls f(fd) for each fd the program holds beyond 0, 1 and 2 (not the
// control socket, not the directory being read).
template <class F>
void for_each_program_fd(F f) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd <= 2 || fd == own || fd == g_control) continue;
    f(fd);
  }
  closedir(d);
}

void add_fds(Text& t) {
  for_each_program_fd([&](int fd) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    t.add("fd %d %s\n", fd, target);
  });
}

bool send_ready(const char* self) {
  size_t cap = 256 << 10;
  Text t{static_cast<char*>(malloc(cap)), cap, 0};
  if (!t.buf) return false;
  wire::Header h{wire::kMagic, wire::Kind::ready};
  memcpy(t.buf, &h, sizeof h);
  t.len = sizeof h;
  char cwd[4096];
  t.add("pid %d\nthreads %d\nlooked_at_cwd %d\natfork %d\n", getpid(), count_threads(), g_looked_at_cwd ? 1 : 0,
        g_natfork);
  if (getcwd(cwd, sizeof cwd)) t.add("cwd %s\n", cwd);
  for (int i = 0; i < g_nnames; ++i) t.add("env %s\n", g_names[i]);
  if (g_names_overflow) t.add("env_overflow\n");
  if (g_atfork_overflow) t.add("atfork_overflow\n");
  add_fds(t);
  add_objects(t, self);
  if (t.full) t.add("truncated\n");
  bool ok = send(g_control, t.buf, t.len, MSG_NOSIGNAL) == static_cast<ssize_t>(t.len);
  free(t.buf);
  return ok;
}

// ---- the instance: from the copy to main() --------------------------------

// What enter_main() needs, set in the template before each clone.
struct Entry {
  const pf::spawn::Block* block = nullptr;
  long argc = 0, envc = 0;
  int err_fd = -1;
  // The memory map fields prctl(PR_SET_MM_MAP) wants besides the argument
  // and environment areas, read once from /proc/self/stat (fs/proc/array.c
  // do_task_stat(): fields 26-28 and 45-47).
  unsigned long start_code = 0, end_code = 0, start_stack = 0, start_data = 0, end_data = 0, start_brk = 0;
};
Entry g_entry;

bool read_mm_fields(Entry& e) {
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[2048];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // Fields after the command name, which may itself hold spaces and ')'.
  char* p = strrchr(buf, ')');
  if (!p) return false;
  unsigned long v[52] = {};
  int field = 2;
  for (char* tok = strtok(p + 1, " "); tok && field < 51; tok = strtok(nullptr, " ")) {
    ++field;
    v[field] = strtoul(tok, nullptr, 10);
  }
  if (field < 47) return false;
  e.start_code = v[26], e.end_code = v[27], e.start_stack = v[28];
  e.start_data = v[45], e.end_data = v[46], e.start_brk = v[47];
  return true;
}

[[noreturn]] void fail_entry(long err) {
  pf::spawn::Report r;
  r.step = static_cast<int>(pf::spawn::Step::warm_enter);
  r.err = static_cast<int>(-err);
  r.index = -1;
  r.pid = static_cast<int>(getpid());
  if (g_entry.err_fd >= 0) (void)!write(g_entry.err_fd, &r, sizeof r);
  _exit(127);
}

// Replaces execve in child_main(): the argument and environment strings go
// into a fresh area laid out as the kernel lays them out on the stack (argv
// strings, then envp strings), which /proc/PID/cmdline and /proc/PID/environ
// then show (prctl PR_SET_MM_MAP needs no privilege without exe_fd:
// kernel/sys.c prctl_set_mm_map()); environ and the program's names follow;
// main() is called as __libc_start_main calls it, and its result goes to
// exit() as there.
[[noreturn]] void enter_main(const void*, const pf::spawn::ExecResetsDone&) {
  const pf::spawn::Block* b = g_entry.block;
  const long argc = g_entry.argc, envc = g_entry.envc;
  size_t strings = 0;
  for (long i = 0; i < argc; ++i) strings += strlen(b->argv[i]) + 1;
  for (long i = 0; i < envc; ++i) strings += strlen(b->envp[i]) + 1;
  size_t arrays = static_cast<size_t>(argc + 1 + envc + 1) * sizeof(char*);
  size_t size = (arrays + strings + 4095) & ~size_t{4095};
  void* area = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) fail_entry(-errno);
  char** argv = static_cast<char**>(area);
  char** envp = argv + argc + 1;
  char* s = static_cast<char*>(area) + arrays;
  // Copies count strings to s, one after another, and points out[] at them.
  auto lay_out = [&s](char* const* in, long count, char** out) {
    for (long i = 0; i < count; ++i) {
      size_t n = strlen(in[i]) + 1;
      memcpy(s, in[i], n);
      out[i] = s;
      s += n;
    }
    out[count] = nullptr;
  };
  prctl_mm_map map{};
  map.arg_start = reinterpret_cast<unsigned long>(s);
  lay_out(b->argv, argc, argv);
  map.arg_end = map.env_start = reinterpret_cast<unsigned long>(s);
  lay_out(b->envp, envc, envp);
  map.env_end = reinterpret_cast<unsigned long>(s);
  map.start_code = g_entry.start_code, map.end_code = g_entry.end_code;
  map.start_data = g_entry.start_data, map.end_data = g_entry.end_data;
  map.start_brk = g_entry.start_brk;
  map.brk = static_cast<unsigned long>(syscall(SYS_brk, 0));
  map.start_stack = g_entry.start_stack;
  map.exe_fd = static_cast<__u32>(-1);
  if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) != 0) fail_entry(-errno);
  // What execve does to the dumpable flag (fs/exec.c begin_new_exec()):
  // SUID_DUMP_USER unless the ids differ or the program is not readable
  // (would_dump()). A uid change in child_main() cleared it, which would
  // hide /proc/self/environ and core dumps from the program.
  if ((b->set_uid || b->set_gid || b->set_groups) && getuid() == geteuid() && getgid() == getegid() &&
      access("/proc/self/exe", R_OK) == 0)
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  environ = envp;
  // csu/init-misc.c __init_misc(): the names error() and err() print.
  program_invocation_name = argv[0];
  const char* slash = strrchr(argv[0], '/');
  program_invocation_short_name = const_cast<char*>(slash ? slash + 1 : argv[0]);
  // The instance's one message: it entered main (wire.hpp).
  pf::spawn::Report done;
  done.step = 0;
  done.err = 0;
  done.pid = static_cast<int>(getpid());
  send(g_entry.err_fd, &done, sizeof done, MSG_NOSIGNAL);
  close(g_entry.err_fd);
  exit(g_main(static_cast<int>(argc), argv, envp));
}

// What a copy of the template becomes.
enum class Copy {
  instance,     // applies the request in g_entry and enters main()
  spare,        // waits for the next request itself (spare_main())
  exit_at_once  // the floor under an instance, for benchmarks
};

[[noreturn]] void spare_main();

// One fork of the template, as glibc's fork() would make it but with
// CLONE_PARENT. Returns the pid (or -errno) in the template; does not return
// in the copy.
long clone_copy(Copy what) {
  static void* tid_address = nullptr;
  static bool tid_known = false;
  if (!tid_known) {
    // The main thread's &THREAD_SELF->tid, given to set_tid_address by
    // glibc at start (sysdeps/nptl/dl-tls_init_tp.c __tls_init_tp()).
    if (prctl(PR_GET_TID_ADDRESS, &tid_address, 0, 0, 0) != 0) tid_address = nullptr;
    tid_known = true;
  }
  void* robust_head = nullptr;
  size_t robust_len = 0;
  if (syscall(SYS_get_robust_list, 0, &robust_head, &robust_len) != 0) robust_head = nullptr;

  for (int i = g_natfork - 1; i >= 0; --i)
    if (g_atfork[i].prepare) g_atfork[i].prepare();
  long flags = CLONE_PARENT | (tid_address ? CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID : 0);
  long pid = syscall(SYS_clone, flags, nullptr, nullptr, tid_address, nullptr);
  if (pid < 0) pid = -errno;
  if (pid == 0) {
    if (what == Copy::exit_at_once) _exit(0);
    if (robust_head) syscall(SYS_set_robust_list, robust_head, robust_len);
    for (int i = 0; i < g_natfork; ++i)
      if (g_atfork[i].child) g_atfork[i].child();
    if (what == Copy::spare) spare_main();
    pf::spawn::child_main(const_cast<pf::spawn::Block*>(g_entry.block));  // the controls, then enter_main()
  }
  for (int i = 0; i < g_natfork; ++i)
    if (g_atfork[i].parent) g_atfork[i].parent();
  return pid;
}

void reply_refused(const char* why) {
  char buf[512];
  wire::RefusedReply r;
  memcpy(buf, &r, sizeof r);
  size_t n = strnlen(why, sizeof buf - sizeof r);
  memcpy(buf + sizeof r, why, n);
  send(g_control, buf, sizeof r + n, MSG_NOSIGNAL);
}

void close_all(const int* fds, int n) {
  for (int i = 0; i < n; ++i) close(fds[i]);
}

// The kept list of the request (sorted) plus the template's own fds that the
// instance must keep: those the program opened before main and the error pipe.
unsigned g_kept[4096];
int g_premain_fds[256];
int g_npremain = 0;

bool build_kept(pf::spawn::Block* b, int err_fd) {
  int n = 0;
  auto add = [&](unsigned fd) {
    if (n == static_cast<int>(sizeof g_kept / sizeof g_kept[0])) return false;
    int at = n;
    while (at > 0 && g_kept[at - 1] > fd) --at;
    if (at > 0 && g_kept[at - 1] == fd) return true;
    memmove(g_kept + at + 1, g_kept + at, static_cast<size_t>(n - at) * sizeof g_kept[0]);
    g_kept[at] = fd;
    ++n;
    return true;
  };
  for (int i = 0; i < b->nkept; ++i)
    if (!add(b->kept[i])) return false;
  for (int i = 0; i < g_npremain; ++i)
    if (!add(static_cast<unsigned>(g_premain_fds[i]))) return false;
  if (!add(static_cast<unsigned>(err_fd))) return false;
  b->kept = g_kept;
  b->nkept = n;
  return true;
}

// Makes g_entry the instance a spawn request asks for. False (the request
// refused, its fds closed) when it is malformed.
bool take_request(char* msg, size_t len, int* fds, int nfds) {
  long argc = 0, envc = 0;
  pf::spawn::Block* b = wire::rebase_block(msg, len, argc, envc);
  if (!b) {
    close_all(fds, nfds);
    reply_refused("malformed spawn request");
    return false;
  }
  // Threads: counted when the template reached main (send_ready()); the pool
  // refuses a template with more than one. No code of the program runs in
  // the template after that but fork handlers, so the count still holds at
  // every fork.
  // The dup sources arrive as SCM_RIGHTS, in the order of the dup ops.
  int used = 0;
  for (int i = 0; i < b->nfd_ops; ++i) {
    if (b->fd_ops[i].kind != pf::spawn::FdOp::dup) continue;
    if (used == nfds) break;
    b->fd_ops[i].source = fds[used++];
  }
  if (used != nfds) {
    close_all(fds, nfds);
    reply_refused("the spawn request's descriptors do not match its dup operations");
    return false;
  }
  // The instance reports on a copy of the control socket placed above every
  // target (fd_floor), where no fd action of the request can overwrite it.
  int report_fd = fcntl(g_control, F_DUPFD_CLOEXEC, b->fd_floor);
  if (report_fd < 0 || !build_kept(b, report_fd)) {
    if (report_fd >= 0) close(report_fd);
    close_all(fds, nfds);
    reply_refused("cannot give the instance its report channel");
    return false;
  }
  b->err_fd = report_fd;
  b->replace = enter_main;
  b->handlers_cleared = true;  // the template's handlers are the program's own: keep them
  b->reset_dispositions = false;
  g_entry.block = b;
  g_entry.argc = argc;
  g_entry.envc = envc;
  g_entry.err_fd = report_fd;
  return true;
}

// What the pool asked for.
enum class Asked { end, spawn, fork_only, nothing };

// The next request on the control socket; malformed ones are answered here.
Asked next_request(char* msg, size_t cap, int* fds, int& nfds, size_t& len) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * wire::kMaxFds)];
  iovec iov{msg, cap};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = recvmsg(g_control, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0 && errno == EINTR) return Asked::nothing;
  if (n <= 0) return Asked::end;  // the pool closed its end: the template is done
  nfds = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k && nfds < wire::kMaxFds; ++i)
      memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  wire::Header h;
  if (static_cast<size_t>(n) < sizeof h || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    close_all(fds, nfds);
    reply_refused("truncated request");
    return Asked::nothing;
  }
  memcpy(&h, msg, sizeof h);
  if (h.magic == wire::kMagic && h.kind == wire::Kind::fork_only) {
    close_all(fds, nfds);
    return Asked::fork_only;
  }
  if (h.magic != wire::kMagic || h.kind != wire::Kind::spawn) {
    close_all(fds, nfds);
    reply_refused("unknown request");
    return Asked::nothing;
  }
  len = static_cast<size_t>(n);
  return Asked::spawn;
}

void answer_fork_only() {
  wire::SpawnedReply reply;
  long pid = clone_copy(Copy::exit_at_once);
  if (pid < 0) reply.report.err = static_cast<int>(-pid);
  else reply.pid = static_cast<std::int32_t>(pid);
  send(g_control, &reply, sizeof reply, MSG_NOSIGNAL);
}

struct Buffers {
  char* msg = nullptr;
  int fds[wire::kMaxFds];
  int nfds = 0;
  size_t len = 0;
};
Buffers g_in;

bool map_buffers() {
  void* m = mmap(nullptr, wire::kMaxMessage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_in.msg = m == MAP_FAILED ? nullptr : static_cast<char*>(m);
  return g_in.msg != nullptr;
}

Asked next_request() { return next_request(g_in.msg, wire::kMaxMessage, g_in.fds, g_in.nfds, g_in.len); }

// The template answering every request itself: an instance is forked when
// its request arrives (when no spare can be kept).
[[noreturn]] void serve() {
  for (;;) {
    switch (next_request()) {
      case Asked::end: _exit(0);
      case Asked::fork_only: answer_fork_only(); break;
      case Asked::spawn:
        if (take_request(g_in.msg, g_in.len, g_in.fds, g_in.nfds)) {
          long pid = clone_copy(Copy::instance);
          close(g_entry.err_fd);
          close_all(g_in.fds, g_in.nfds);
          if (pid < 0) {
            wire::SpawnedReply reply;
            reply.report.step = static_cast<int>(pf::spawn::Step::none);
            reply.report.err = static_cast<int>(-pid);
            send(g_control, &reply, sizeof reply, MSG_NOSIGNAL);
          }
        }
        break;
      case Asked::nothing: break;
    }
  }
}

// ---- the spare: the next instance, forked before its request -------------
//
// The fork is most of an instance's cost, and nothing about it depends on
// the request: the copy's memory is the template's, which no longer changes.
// So the template keeps one copy forked ahead, the spare, which reads the
// control socket itself; the request that reaches it makes it the instance,
// and the template forks the next spare while the instance runs. The spare
// tells the template what it took on a pipe (kTaken, kForkOnly, kEnd); the
// template tells the pool each spare's pid (wire::Kind::spare), so that the
// pool can reap the last one, which never becomes an instance.
int g_spare_pipe[2] = {-1, -1};
constexpr char kTaken = 'T', kForkOnly = 'F', kEnd = 'E';

void tell_template(char what) {
  while (write(g_spare_pipe[1], &what, 1) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void spare_main() {
  for (;;) {
    switch (next_request()) {
      case Asked::end: tell_template(kEnd); _exit(0);
      case Asked::fork_only: tell_template(kForkOnly); break;
      case Asked::spawn:
        if (take_request(g_in.msg, g_in.len, g_in.fds, g_in.nfds)) {
          tell_template(kTaken);
          close(g_spare_pipe[0]);
          close(g_spare_pipe[1]);
          pf::spawn::child_main(const_cast<pf::spawn::Block*>(g_entry.block));
        }
        break;
      case Asked::nothing: break;
    }
  }
}

// The template with a spare: fork one, wait until a request takes it, fork
// the next. Falls back to serve() when a spare cannot be had.
[[noreturn]] void hold_spares() {
  if (pipe2(g_spare_pipe, O_CLOEXEC) != 0) serve();
  for (;;) {
    long pid = clone_copy(Copy::spare);
    if (pid < 0) {
      close(g_spare_pipe[0]);
      close(g_spare_pipe[1]);
      serve();
    }
    wire::SpareNotice notice;
    notice.pid = static_cast<std::int32_t>(pid);
    send(g_control, &notice, sizeof notice, MSG_NOSIGNAL);
    // A spare killed before it could say anything ends the template too:
    // the pool then starts a fresh one.
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    for (bool taken = false; !taken;) {
      pollfd p[2] = {{g_spare_pipe[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
      if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        _exit(0);
      }
      char what = 0;
      if (p[0].revents & POLLIN) {
        if (read(g_spare_pipe[0], &what, 1) != 1) continue;
      } else if (p[1].revents & POLLIN) {
        _exit(0);
      }
      if (what == kEnd) _exit(0);
      if (what == kForkOnly) answer_fork_only();
      taken = what == kTaken;
    }
    if (pidfd >= 0) close(pidfd);
  }
}

void note_premain_fds() {
  for_each_program_fd([](int fd) {
    if (g_npremain < static_cast<int>(sizeof g_premain_fds / sizeof g_premain_fds[0])) g_premain_fds[g_npremain++] = fd;
  });
}

int template_main(int, char**, char**) {
  g_recording = false;
  note_premain_fds();
  if (!read_mm_fields(g_entry) || !map_buffers() || !send_ready(self_path())) _exit(125);
  hold_spares();
}

}  // namespace

// ---- interposed entry points ----------------------------------------------

PF_EXPORT int __libc_start_main(MainFn main, int argc, char** argv, void (*init)(), void (*fini)(), void (*rtld_fini)(),
                                void* stack_end) {
  static StartMainFn real = nullptr;
  if (!real) real = next<StartMainFn>("__libc_start_main");
  if (!real) _exit(125);
  if (g_control < 0) return real(main, argc, argv, init, fini, rtld_fini, stack_end);
  g_main = main;
  return real(template_main, argc, argv, init, fini, rtld_fini, stack_end);
}

PF_EXPORT char* getenv(const char* name) {
  record_name(name);
  return lookup(name);
}

// stdlib/secure-getenv.c: nothing in a set-id or capability-gaining start
// (such a program is never a template, but the rule stays).
PF_EXPORT char* secure_getenv(const char* name) {
  record_name(name);
  static unsigned long secure = getauxval(AT_SECURE);
  return secure ? nullptr : lookup(name);
}

PF_EXPORT char* getcwd(char* buf, size_t size) {
  if (g_recording) g_looked_at_cwd = true;
  static auto real = next<char* (*)(char*, size_t)>("getcwd");
  if (!real) {
    errno = ENOSYS;
    return nullptr;
  }
  return real(buf, size);
}

PF_EXPORT char* get_current_dir_name() {
  if (g_recording) g_looked_at_cwd = true;
  static auto real = next<char* (*)()>("get_current_dir_name");
  if (!real) {
    errno = ENOSYS;
    return nullptr;
  }
  return real();
}

// pthread_atfork() is a static stub in libc_nonshared.a that calls this
// with the caller's __dso_handle (nptl/pthread_atfork.c), so every object's
// registration comes through here.
PF_EXPORT int __register_atfork(void (*prepare)(), void (*parent)(), void (*child)(), void* dso) {
  static auto real = next<int (*)(void (*)(), void (*)(), void (*)(), void*)>("__register_atfork");
  if (g_recording) {
    if (g_natfork < kMaxAtfork) g_atfork[g_natfork++] = {prepare, parent, child};
    else g_atfork_overflow = true;
  }
  return real ? real(prepare, parent, child, dso) : ENOMEM;
}
