// probe_state: prints the process state a spawned child received, then exits 0.
//
// Every spawn control (fds, signals, limits, credentials, namespaces, cgroup)
// leaves a trace in the kernel's view of the task; this probe reads that view
// with raw system calls right after execve() and prints it, so a test asserts
// on what really happened instead of on what the library says it did.
//
// Output (stdout), one fact per line, key=value, in this order:
//   probe=state v1
//   argc=<n>, argv[<i>]=<escaped>, envc=<n>, env[<i>]=<escaped>
//   cwd=<escaped>
//   fds=<fd>,<fd>,...                 open fds, the probe's own /proc/self/fd walk excluded
//   fd[<n>]=<readlink target>  fdflags[<n>]=0<octal>  cloexec[<n>]=0|1   (from /proc/self/fdinfo)
//   sigmask=0x<hex>                   rt_sigprocmask, bit (signo-1)
//   sig[<signo>]=ign|handler          only signals whose disposition is not SIG_DFL
//   rlimit[<resource>]=<soft>,<hard>  decimal or "inf", for every resource 0..15
//   umask=0<octal>  nice=<n>  sched=<policy>
//   uid=<r>,<e>,<s>  gid=<r>,<e>,<s>  groups=<g>,<g>,...
//   CapEff= CapPrm= CapBnd= CapAmb= NoNewPrivs= Seccomp=     copied from /proc/self/status
//   pid= ppid= pgid= sid= pdeathsig= tty_nr=
//   with --mm as argv[1] (see Modes), here:
//   mm.<field>=<decimal>              the mm fields of /proc/self/stat: start_code,
//                                     end_code, start_stack (fields 26-28), start_data,
//                                     end_data, start_brk, arg_start, arg_end, env_start,
//                                     env_end (45-51); what execve() set them to
//   cmdline=, environ=                /proc/self/cmdline and environ (the arg and env
//                                     ranges above, read by the kernel), NULs as \x00
//   ns.<name>=<link>                  user pid mnt net uts ipc cgroup time
//   hostname=<nodename>
//   uid_map[<i>]=<inside> <outside> <count>, gid_map[<i>]=...
//   cgroup[<i>]=<line of /proc/self/cgroup>
//   proc_pids=<number of numeric entries in /proc>
//   end=1
// A value that could not be read is "!<errno>" (a seccomp filter returning
// EPERM for getppid shows as "ppid=!1").
//
// Modes (argv[1]): "--exit <n>" exits with status n at once (the smallest
// possible spawn target); "--pause" waits for a signal; "--mm" adds the mm
// facts above (addresses that ASLR moves from run to run, so they are only
// printed for whoever compares them).
//
// No libc, raw syscalls only, no relocations: static, -nostdlib.

#include "probe_rt.h"

#define SYS_read 0
#define SYS_close 3
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_pause 34
#define SYS_getpid 39
#define SYS_uname 63
#define SYS_getcwd 79
#define SYS_umask 95
#define SYS_getppid 110
#define SYS_getgroups 115
#define SYS_getresuid 118
#define SYS_getresgid 120
#define SYS_getpgid 121
#define SYS_getsid 124
#define SYS_getpriority 140
#define SYS_sched_getscheduler 145
#define SYS_prctl 157
#define SYS_getdents64 217
#define SYS_openat 257
#define SYS_readlinkat 267
#define SYS_prlimit64 302

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define PR_GET_PDEATHSIG 2

PROBE_START;

// "key[index]="
static void put_key_idx(const char* key, u64 idx) {
  put_s(key);
  put_c('[');
  put_dec(idx);
  put_s("]=");
}

// ---- input ----------------------------------------------------------------

static char fbuf[1 << 16];
static char lbuf[4096];

// Reads a whole (small) file into fbuf, NUL-terminated; length or -errno.
static i64 read_file(const char* path) {
  i64 fd = sys4(SYS_openat, AT_FDCWD, (i64)path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return fd;
  u64 len = 0;
  while (len < sizeof fbuf - 1) {
    i64 r = sys3(SYS_read, fd, (i64)(fbuf + len), (i64)(sizeof fbuf - 1 - len));
    if (r == -4) continue;
    if (r < 0) {
      sys1(SYS_close, fd);
      return r;
    }
    if (r == 0) break;
    len += (u64)r;
  }
  sys1(SYS_close, fd);
  fbuf[len] = 0;
  return (i64)len;
}

// A symlink's target, escaped, or "!errno"; then the end of the line.
static void put_link(const char* path) {
  i64 r = sys4(SYS_readlinkat, AT_FDCWD, (i64)path, (i64)lbuf, sizeof lbuf - 1);
  if (r < 0) {
    put_err(r);
  } else {
    lbuf[r] = 0;
    put_escaped(lbuf);
  }
  put_c('\n');
}

static int starts_with(const char* s, const char* prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

static u64 str_len(const char* s) {
  u64 n = 0;
  while (s[n]) ++n;
  return n;
}

static int streq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

static u64 parse_dec(const char* s, int* ok) {
  u64 v = 0;
  *ok = *s != 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') {
      *ok = 0;
      return 0;
    }
    v = v * 10 + (u64)(*s - '0');
  }
  return v;
}

// Builds "<prefix><n><suffix>" in dst.
static void path_num(char* dst, const char* prefix, u64 n, const char* suffix) {
  char tmp[20];
  int k = 0;
  while (*prefix) *dst++ = *prefix++;
  do {
    tmp[k++] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  while (k) *dst++ = tmp[--k];
  while (*suffix) *dst++ = *suffix++;
  *dst = 0;
}

struct linux_dirent64 {
  u64 d_ino;
  i64 d_off;
  u16 d_reclen;
  unsigned char d_type;
  char d_name[];
};

static char dbuf[1 << 15];

// Calls fn(name) for every entry of the directory at path; entry count or -errno.
static i64 walk_dir(const char* path, void (*fn)(const char*)) {
  i64 dfd = sys4(SYS_openat, AT_FDCWD, (i64)path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) return dfd;
  i64 count = 0;
  for (;;) {
    i64 n = sys3(SYS_getdents64, dfd, (i64)dbuf, sizeof dbuf);
    if (n <= 0) break;
    for (i64 off = 0; off < n;) {
      struct linux_dirent64* d = (struct linux_dirent64*)(dbuf + off);
      fn(d->d_name);
      ++count;
      off += d->d_reclen;
    }
  }
  sys1(SYS_close, dfd);
  return count;
}

// ---- facts ----------------------------------------------------------------

#define MAX_FDS 65536
static int fds[MAX_FDS];
static u64 nfds;
static int fds_overflow;

static void collect_fd(const char* name) {
  int ok;
  u64 v = parse_dec(name, &ok);
  if (!ok) return;
  if (nfds == MAX_FDS) {
    fds_overflow = 1;
    return;
  }
  fds[nfds++] = (int)v;
}

static void sort_fds(void) {  // insertion sort: the list is usually tiny and nearly sorted
  for (u64 i = 1; i < nfds; ++i) {
    int v = fds[i];
    u64 j = i;
    while (j > 0 && fds[j - 1] > v) {
      fds[j] = fds[j - 1];
      --j;
    }
    fds[j] = v;
  }
}

static void print_fds(void) {
  // The walk's own directory fd is the lowest free fd at the time; find it
  // by opening the directory first, so it can be excluded.
  i64 self_fd = sys4(SYS_openat, AT_FDCWD, (i64) "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (self_fd < 0) {
    put_s("fds=");
    put_err(self_fd);
    put_c('\n');
    return;
  }
  nfds = 0;
  for (;;) {
    i64 n = sys3(SYS_getdents64, self_fd, (i64)dbuf, sizeof dbuf);
    if (n <= 0) break;
    for (i64 off = 0; off < n;) {
      struct linux_dirent64* d = (struct linux_dirent64*)(dbuf + off);
      int ok;
      u64 v = parse_dec(d->d_name, &ok);
      if (ok && (i64)v != self_fd) collect_fd(d->d_name);
      off += d->d_reclen;
    }
  }
  sys1(SYS_close, self_fd);
  sort_fds();
  put_s("fds=");
  for (u64 i = 0; i < nfds; ++i) {
    if (i) put_c(',');
    put_dec((u64)fds[i]);
  }
  if (fds_overflow) put_s(",...");
  put_c('\n');

  char path[64];
  for (u64 i = 0; i < nfds; ++i) {
    u64 fd = (u64)fds[i];
    path_num(path, "/proc/self/fd/", fd, "");
    put_key_idx("fd", fd);
    put_link(path);

    path_num(path, "/proc/self/fdinfo/", fd, "");
    i64 r = read_file(path);
    u64 flags = 0;
    int have = 0;
    if (r > 0) {
      for (char* p = fbuf; *p; ++p) {
        if ((p == fbuf || p[-1] == '\n') && starts_with(p, "flags:")) {
          p += 6;
          while (*p == ' ' || *p == '\t') ++p;
          while (*p >= '0' && *p <= '7') flags = flags * 8 + (u64)(*p++ - '0');
          have = 1;
          break;
        }
      }
    }
    put_key_idx("fdflags", fd);
    if (have) put_oct(flags);
    else put_err(r < 0 ? r : -5);
    put_c('\n');
    put_key_idx("cloexec", fd);
    if (have) put_c((flags & O_CLOEXEC) ? '1' : '0');
    else put_err(r < 0 ? r : -5);
    put_c('\n');
  }
}

struct k_sigaction {
  u64 handler, flags, restorer, mask;
};

static void print_signals(void) {
  u64 mask = 0;
  i64 r = sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, 0, (i64)&mask, 8);
  put_s("sigmask=");
  if (r < 0) put_err(r);
  else put_hex(mask);
  put_c('\n');
  for (u64 sig = 1; sig <= 64; ++sig) {
    struct k_sigaction sa;
    memset(&sa, 0, sizeof sa);
    r = sys4(SYS_rt_sigaction, (i64)sig, 0, (i64)&sa, 8);
    if (r < 0 || sa.handler == 0) continue;  // SIG_DFL (or not queryable)
    put_key_idx("sig", sig);
    put_s(sa.handler == 1 ? "ign" : "handler");
    put_c('\n');
  }
}

static void print_rlimits(void) {
  for (u64 res = 0; res < 16; ++res) {
    u64 lim[2] = {0, 0};
    i64 r = sys4(SYS_prlimit64, 0, (i64)res, 0, (i64)lim);
    put_key_idx("rlimit", res);
    if (r < 0) {
      put_err(r);
    } else {
      for (int k = 0; k < 2; ++k) {
        if (k) put_c(',');
        if (lim[k] == (u64)-1) put_s("inf");
        else put_dec(lim[k]);
      }
    }
    put_c('\n');
  }
}

static void put_fact(const char* key, i64 v) {
  put_s(key);
  put_c('=');
  if (v < 0 && v > -4096) put_err(v);
  else put_sdec(v);
  put_c('\n');
}

static void print_ids(void) {
  u32 r, e, s;
  for (int g = 0; g < 2; ++g) {
    i64 rc = sys3(g ? SYS_getresgid : SYS_getresuid, (i64)&r, (i64)&e, (i64)&s);
    put_s(g ? "gid=" : "uid=");
    if (rc < 0) {
      put_err(rc);
    } else {
      put_dec(r);
      put_c(',');
      put_dec(e);
      put_c(',');
      put_dec(s);
    }
    put_c('\n');
  }
  static u32 groups[65536];
  i64 n = sys2(SYS_getgroups, 65536, (i64)groups);
  put_s("groups=");
  if (n < 0) {
    put_err(n);
  } else {
    for (i64 i = 0; i < n; ++i) {
      if (i) put_c(',');
      put_dec(groups[i]);
    }
  }
  put_c('\n');
}

static void print_status(void) {
  static const char* const keys[] = {"CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"};
  i64 r = read_file("/proc/self/status");
  for (u64 k = 0; k < sizeof keys / sizeof keys[0]; ++k) {
    put_s(keys[k]);
    put_c('=');
    int found = 0;
    if (r > 0) {
      for (char* p = fbuf; *p; ++p) {
        if (!(p == fbuf || p[-1] == '\n') || !starts_with(p, keys[k])) continue;
        char* q = p;
        while (*q && *q != ':') ++q;
        if (*q != ':' || q - p != (i64)str_len(keys[k])) continue;
        ++q;
        while (*q == ' ' || *q == '\t') ++q;
        while (*q && *q != '\n') put_c(*q++);
        found = 1;
        break;
      }
    }
    if (!found) put_err(r < 0 ? r : -2);
    put_c('\n');
  }
}

// /proc/self/stat fields by their number in proc(5) (fs/proc/array.c
// do_task_stat()): field 2 (comm) may hold spaces, so fields are counted
// after its closing ")", where field 3 (state) starts.
static void print_stat_fields(int with_mm) {
  static const struct {
    const char* key;
    int field;
  } wanted[] = {{"tty_nr", 7},         {"mm.start_code", 26}, {"mm.end_code", 27},  {"mm.start_stack", 28},
                {"mm.start_data", 45}, {"mm.end_data", 46},   {"mm.start_brk", 47}, {"mm.arg_start", 48},
                {"mm.arg_end", 49},    {"mm.env_start", 50},  {"mm.env_end", 51}};
  const u64 count = with_mm ? sizeof wanted / sizeof wanted[0] : 1;
  i64 r = read_file("/proc/self/stat");
  char* after_comm = 0;
  for (char* p = fbuf + (r > 0 ? r : 0); r > 0 && p > fbuf; --p)
    if (*p == ')') {
      after_comm = p + 1;
      break;
    }
  for (u64 k = 0; k < count; ++k) {
    put_s(wanted[k].key);
    put_c('=');
    char* p = after_comm;
    for (int f = 3; p && f <= wanted[k].field; ++f) {
      while (*p == ' ') ++p;
      if (!*p || *p == '\n') {
        p = 0;
        break;
      }
      if (f == wanted[k].field) break;
      while (*p && *p != ' ' && *p != '\n') ++p;
    }
    if (!p) put_err(r < 0 ? r : -5);
    else
      while (*p && *p != ' ' && *p != '\n') put_c(*p++);
    put_c('\n');
  }
}

// A whole /proc file as key=<bytes>, its NUL separators shown as \x00.
static void print_raw(const char* key, const char* path) {
  i64 r = read_file(path);
  put_s(key);
  put_c('=');
  if (r < 0) put_err(r);
  else put_escaped_bytes(fbuf, (u64)r);
  put_c('\n');
}

static void print_namespaces(void) {
  static const char* const names[] = {"user", "pid", "mnt", "net", "uts", "ipc", "cgroup", "time"};
  char path[64];
  for (u64 i = 0; i < sizeof names / sizeof names[0]; ++i) {
    char* d = path;
    const char* s = "/proc/self/ns/";
    while (*s) *d++ = *s++;
    for (s = names[i]; *s;) *d++ = *s++;
    *d = 0;
    put_s("ns.");
    put_s(names[i]);
    put_c('=');
    put_link(path);
  }
}

// Prints every line of a file as key[i]=line, runs of blanks collapsed to one space.
static void print_lines(const char* key, const char* path) {
  i64 r = read_file(path);
  if (r < 0) {
    put_s(key);
    put_s("=");
    put_err(r);
    put_c('\n');
    return;
  }
  u64 idx = 0;
  char* p = fbuf;
  while (*p) {
    char* e = p;
    while (*e && *e != '\n') ++e;
    put_key_idx(key, idx++);
    int blank = 0, started = 0;
    for (char* q = p; q < e; ++q) {
      if (*q == ' ' || *q == '\t') {
        blank = started;
        continue;
      }
      if (blank) put_c(' ');
      blank = 0;
      started = 1;
      put_escaped_n(q, 1);
    }
    put_c('\n');
    p = *e ? e + 1 : e;
  }
}

static u64 proc_pids;
static void count_pid(const char* name) {
  int ok;
  parse_dec(name, &ok);
  if (ok) ++proc_pids;
}

__attribute__((visibility("hidden"), used, noreturn)) void probe_main(u64* sp) {
  u64 argc = sp[0];
  char** argv = (char**)(sp + 1);
  char** envp = argv + argc + 1;

  if (argc >= 3 && streq(argv[1], "--exit")) {
    int ok;
    sys_exit((int)parse_dec(argv[2], &ok));
  }
  if (argc >= 2 && streq(argv[1], "--pause")) {
    for (;;) sys0(SYS_pause);
  }

  put_s("probe=state v1\nargc=");
  put_dec(argc);
  put_c('\n');
  for (u64 i = 0; i < argc; ++i) {
    put_key_idx("argv", i);
    put_escaped(argv[i] ? argv[i] : "");
    put_c('\n');
  }
  u64 envc = 0;
  while (envp[envc]) ++envc;
  put_s("envc=");
  put_dec(envc);
  put_c('\n');
  for (u64 i = 0; i < envc; ++i) {
    put_key_idx("env", i);
    put_escaped(envp[i]);
    put_c('\n');
  }

  i64 r = sys2(SYS_getcwd, (i64)lbuf, sizeof lbuf);
  put_s("cwd=");
  if (r < 0) put_err(r);
  else put_escaped(lbuf);
  put_c('\n');

  print_fds();
  print_signals();
  print_rlimits();

  i64 old = sys1(SYS_umask, 0);
  sys1(SYS_umask, old);
  put_s("umask=");
  put_oct((u64)old);
  put_c('\n');

  r = sys2(SYS_getpriority, 0 /* PRIO_PROCESS */, 0);
  put_s("nice=");
  if (r < 0) put_err(r);
  else put_sdec(20 - r);  // the raw syscall returns 20 - nice
  put_c('\n');
  put_fact("sched", sys1(SYS_sched_getscheduler, 0));

  print_ids();
  print_status();

  put_fact("pid", sys0(SYS_getpid));
  put_fact("ppid", sys0(SYS_getppid));
  put_fact("pgid", sys1(SYS_getpgid, 0));
  put_fact("sid", sys1(SYS_getsid, 0));
  int pdeathsig = 0;
  r = sys2(SYS_prctl, PR_GET_PDEATHSIG, (i64)&pdeathsig);
  put_fact("pdeathsig", r < 0 ? r : pdeathsig);
  const int with_mm = argc >= 2 && streq(argv[1], "--mm");
  print_stat_fields(with_mm);
  if (with_mm) {
    print_raw("cmdline", "/proc/self/cmdline");
    print_raw("environ", "/proc/self/environ");
  }

  print_namespaces();

  static char uts[6 * 65];
  r = sys1(SYS_uname, (i64)uts);
  put_s("hostname=");
  if (r < 0) put_err(r);
  else put_escaped(uts + 65);  // struct utsname: sysname[65], nodename[65], ...
  put_c('\n');

  print_lines("uid_map", "/proc/self/uid_map");
  print_lines("gid_map", "/proc/self/gid_map");
  print_lines("cgroup", "/proc/self/cgroup");

  r = walk_dir("/proc", count_pid);
  if (r < 0) put_fact("proc_pids", r);
  else put_fact("proc_pids", (i64)proc_pids);

  put_s("end=1\n");
  flush();
  sys_exit(0);
}
