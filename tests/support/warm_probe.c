// warm_probe: a dynamically linked glibc program that prints what it was
// started with, as main() and /proc see it, so that a cold start and a warm
// instance of the same command can be compared line by line.
//
// stdout: argc, argv, environ, program_invocation_name and short name,
// __progname, /proc/self/cmdline, /proc/self/environ, cwd, umask, the signal
// mask and ignored signals, nice, RLIMIT_NOFILE, ids, no_new_privs, open fds.
// WARM_PROBE_LAYOUT=1 adds (on stderr) what differs between two starts of
// the same program: AT_RANDOM's bytes and where the stack, libc and the heap are.
// WARM_PROBE_EXIT=N exits with N; WARM_PROBE_STDERR=TEXT writes TEXT to stderr.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;
extern char* __progname;

static void escaped(const char* label, const char* s, size_t n) {
  printf("%s ", label);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0) fputs("\\0", stdout);
    else if (c < 32 || c >= 127 || c == '\\') printf("\\x%02x", c);
    else putchar(c);
  }
  putchar('\n');
}

static void proc_file(const char* label, const char* path) {
  static char buf[1 << 20];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t n = 0;
  ssize_t r;
  while (fd >= 0 && (r = read(fd, buf + n, sizeof buf - n)) > 0) n += (size_t)r;
  if (fd >= 0) close(fd);
  escaped(label, buf, n);
}

int main(int argc, char** argv) {
  printf("argc %d\n", argc);
  for (int i = 0; i < argc; ++i) escaped("argv", argv[i], strlen(argv[i]));
  for (char** e = environ; *e; ++e) escaped("env", *e, strlen(*e));
  printf("program_invocation_name %s\n", program_invocation_name);
  printf("program_invocation_short_name %s\n", program_invocation_short_name);
  printf("__progname %s\n", __progname);
  proc_file("cmdline", "/proc/self/cmdline");
  proc_file("environ", "/proc/self/environ");
  char cwd[4096];
  printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
  mode_t m = umask(0);
  printf("umask %03o\n", (unsigned)m);
  sigset_t set;
  sigprocmask(SIG_SETMASK, NULL, &set);
  printf("blocked");
  for (int s = 1; s < 65; ++s)
    if (sigismember(&set, s) == 1) printf(" %d", s);
  printf("\nignored");
  for (int s = 1; s < 65; ++s) {
    struct sigaction sa;
    if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) printf(" %d", s);
  }
  errno = 0;
  printf("\nnice %d\n", getpriority(PRIO_PROCESS, 0));
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  printf("nofile %llu %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  gid_t groups[64];
  int ng = getgroups(64, groups);
  printf("ids %u %u %u %u groups", getuid(), geteuid(), getgid(), getegid());
  for (int i = 0; i < ng; ++i) printf(" %u", groups[i]);
  printf("\nno_new_privs %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  DIR* d = opendir("/proc/self/fd");
  int own = d ? dirfd(d) : -1;
  for (struct dirent* e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == own) continue;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    // Pipes and sockets carry an inode number that differs between any two runs.
    if (strncmp(target, "pipe:", 5) == 0) strcpy(target, "pipe");
    if (strncmp(target, "socket:", 7) == 0) strcpy(target, "socket");
    printf("fd %s %s\n", e->d_name, target);
  }
  if (d) closedir(d);
  fflush(stdout);
  if (getenv("WARM_PROBE_LAYOUT")) {
    const unsigned char* r = (const unsigned char*)getauxval(AT_RANDOM);
    fprintf(stderr, "at_random ");
    for (int i = 0; r && i < 16; ++i) fprintf(stderr, "%02x", r[i]);
    void* heap = malloc(16);
    fprintf(stderr, "\nstack %p\nlibc %p\nheap %p\n", (void*)&argc, (void*)&printf, heap);
    free(heap);
  }
  if (getenv("WARM_PROBE_STDERR")) fprintf(stderr, "%s\n", getenv("WARM_PROBE_STDERR"));
  return getenv("WARM_PROBE_EXIT") ? atoi(getenv("WARM_PROBE_EXIT")) : 0;
}
