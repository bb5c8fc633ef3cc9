/* procforge-spawn: the spawn server's client for shells and build tools.
 *
 *   procforge-spawn [--socket PATH] [--warm] [--cwd DIR] [--detach] [--] PROGRAM [ARG]...
 *
 * It asks `procforge serve` to start PROGRAM with this process's argv,
 * environment, cwd and stdin/stdout/stderr, waits for the exit event and
 * exits as `procforge run` does: the program's status, 128+N when signal N
 * ended it, 127 not found, 126 not executable, 125 anything else.
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the
 * program as `kill` messages.
 *
 * C and libc only, linked statically against musl where musl-gcc is
 * installed (glibc's static start costs some hundreds of microseconds more:
 * see CMakeLists.txt): what a shell pays for it is an execve of one small
 * file, no dynamic linking and no C++ runtime. The wire format is
 * src/server/wire.h, shared with the server's own protocol code. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/wire.h"

extern char** environ;

enum { status_failure = 125 };

static const char* program_name = "procforge-spawn";

static void complain(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  dprintf(2, "%s: %s\n", program_name, line);
}

/* ---- a message being written ---- */

struct message {
  char* bytes;
  size_t size, capacity;
  int too_big;
};

static void put(struct message* m, const void* p, size_t n) {
  if (m->too_big) return;
  if (m->size + n > PFW_MAX_MESSAGE) {
    m->too_big = 1;
    return;
  }
  if (m->size + n > m->capacity) {
    size_t want = m->capacity ? m->capacity : 4096;
    while (want < m->size + n) want *= 2;
    char* grown = realloc(m->bytes, want);
    if (!grown) {
      m->too_big = 1;
      return;
    }
    m->bytes = grown;
    m->capacity = want;
  }
  memcpy(m->bytes + m->size, p, n);
  m->size += n;
}

static void begin(struct message* m, uint16_t kind, uint64_t id) {
  uint32_t magic = PFW_MAGIC;
  uint16_t version = PFW_VERSION;
  m->size = 0;
  m->too_big = 0;
  put(m, &magic, sizeof magic);
  put(m, &version, sizeof version);
  put(m, &kind, sizeof kind);
  put(m, &id, sizeof id);
}

static void field(struct message* m, uint16_t tag, const void* value, size_t n) {
  uint32_t len = (uint32_t)n;
  put(m, &tag, sizeof tag);
  put(m, &len, sizeof len);
  put(m, value, n);
}

static void text(struct message* m, uint16_t tag, const char* s) { field(m, tag, s, strlen(s)); }

/* ---- the socket ---- */

static int send_with_fds(int sock, const struct message* m, const int* fds, int nfds) {
  struct iovec iov = {.iov_base = m->bytes, .iov_len = m->size};
  union {
    char buf[CMSG_SPACE(sizeof(int) * PFW_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = (socklen_t)CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = (socklen_t)CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno != EINTR) return -1;
  }
}

/* A received message: its header and fields. Descriptors that came with it
 * (the pidfd of `spawned`) are closed: the exit comes as a message. */
struct reply {
  uint16_t kind;
  uint64_t id;
  const char* fields;
  size_t size;
};

static char reply_buffer[64 << 10];

/* 1: a message; 0: the server closed the connection; -1: an error (errno). */
static int receive(int sock, struct reply* r) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * PFW_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = reply_buffer, .iov_len = sizeof reply_buffer};
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        close(fd);
      }
    }
  if (n == 0) return 0;
  if ((size_t)n < PFW_HEADER_SIZE || (msg.msg_flags & MSG_TRUNC)) {
    errno = EPROTO;
    return -1;
  }
  uint32_t magic;
  uint16_t version;
  memcpy(&magic, reply_buffer, sizeof magic);
  memcpy(&version, reply_buffer + 4, sizeof version);
  memcpy(&r->kind, reply_buffer + 6, sizeof r->kind);
  memcpy(&r->id, reply_buffer + 8, sizeof r->id);
  if (magic != PFW_MAGIC || version != PFW_VERSION) {
    errno = EPROTO;
    return -1;
  }
  r->fields = reply_buffer + PFW_HEADER_SIZE;
  r->size = (size_t)n - PFW_HEADER_SIZE;
  return 1;
}

/* The value of TAG in a reply: its length, or -1 when absent or cut short. */
static long find(const struct reply* r, uint16_t tag, const char** value) {
  size_t at = 0;
  while (r->size - at >= PFW_FIELD_HEAD) {
    uint16_t t;
    uint32_t len;
    memcpy(&t, r->fields + at, sizeof t);
    memcpy(&len, r->fields + at + 2, sizeof len);
    at += PFW_FIELD_HEAD;
    if (len > r->size - at) return -1;
    if (t == tag) {
      *value = r->fields + at;
      return (long)len;
    }
    at += len;
  }
  return -1;
}

static int32_t find_i32(const struct reply* r, uint16_t tag, int32_t otherwise) {
  const char* v;
  int32_t x;
  if (find(r, tag, &v) != (long)sizeof x) return otherwise;
  memcpy(&x, v, sizeof x);
  return x;
}

/* The `failed` reply: its message on stderr, its shell status. */
static int report_failure(const struct reply* r) {
  const char* v;
  long n = find(r, PFW_T_MESSAGE, &v);
  if (n < 0) {
    v = "the server refused the request";
    n = (long)strlen(v);
  }
  dprintf(2, "%s: %.*s\n", program_name, (int)n, v);
  int status = find_i32(r, PFW_T_STATUS, status_failure);
  return status >= 1 && status <= 255 ? status : status_failure;
}

/* ---- the request ---- */

struct options {
  const char* socket_path;
  const char* cwd;
  int warm, detach;
  char** argv;
};

static int default_socket(char* out, size_t size) {
  const char* x = getenv("XDG_RUNTIME_DIR");
  if (x && x[0] == '/') return snprintf(out, size, "%s/procforge.sock", x) < (int)size ? 0 : -1;
  if (geteuid() == 0) return snprintf(out, size, "/run/procforge/procforge.sock") < (int)size ? 0 : -1;
  complain("no socket path: XDG_RUNTIME_DIR is not set and /run/procforge is root's; give --socket PATH");
  return -1;
}

static int connect_to(const char* path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    complain("socket path %s is too long", path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    complain("making a socket: %s", strerror(errno));
    return -1;
  }
  if (connect(sock, (struct sockaddr*)&addr, sizeof addr) != 0) {
    int e = errno;
    complain("connecting to the procforge server at %s: %s%s", path, strerror(e),
             e == ENOENT || e == ECONNREFUSED ? " (is `procforge serve` running there?)" : "");
    close(sock);
    return -1;
  }
  return sock;
}

/* The cwd the program gets: absolute, as the protocol asks. */
static int program_cwd(const char* asked, char* out, size_t size) {
  if (asked && asked[0] == '/') return snprintf(out, size, "%s", asked) < (int)size ? 0 : -1;
  if (!getcwd(out, size)) {
    complain("the cwd cannot be read: %s", strerror(errno));
    return -1;
  }
  if (asked) {
    size_t used = strlen(out);
    if (snprintf(out + used, size - used, "%s%s", used > 1 ? "/" : "", asked) >= (int)(size - used)) return -1;
  }
  return 0;
}

/* Hello and spawn, sent together: the server reads them in order. */
static int send_request(int sock, const struct options* o) {
  struct message m = {0};
  int status = -1;
  uint16_t lo = PFW_VERSION, hi = PFW_VERSION;
  begin(&m, PFW_HELLO, 0);
  field(&m, PFW_T_MIN_VERSION, &lo, sizeof lo);
  field(&m, PFW_T_MAX_VERSION, &hi, sizeof hi);
  if (send_with_fds(sock, &m, NULL, 0) != 0) {
    complain("sending hello: %s", strerror(errno));
    goto out;
  }

  char cwd[PATH_MAX + 1];
  if (program_cwd(o->cwd, cwd, sizeof cwd) != 0) goto out;
  begin(&m, PFW_SPAWN, 1);
  text(&m, PFW_T_PATH, o->argv[0]);
  for (char** a = o->argv; *a; ++a) text(&m, PFW_T_ARG, *a);
  for (char** e = environ; *e; ++e) text(&m, PFW_T_ENV, *e);
  text(&m, PFW_T_CWD, cwd);
  int fds[3], nfds = 0;
  for (int32_t target = 0; target < 3; ++target) {
    if (fcntl(target, F_GETFD) < 0) continue; /* closed here: closed there */
    int32_t placement[2] = {target, nfds};
    fds[nfds++] = target;
    field(&m, PFW_T_FD, placement, sizeof placement);
  }
  if (o->warm) field(&m, PFW_T_WARM, NULL, 0);
  if (o->detach) field(&m, PFW_T_DETACH, NULL, 0);
  if (m.too_big) {
    complain("the arguments and environment are above the server's %d KiB for one request", PFW_MAX_MESSAGE >> 10);
    goto out;
  }
  if (send_with_fds(sock, &m, fds, nfds) != 0) {
    complain("sending the request: %s", strerror(errno));
    goto out;
  }
  status = 0;
out:
  free(m.bytes);
  return status;
}

static void send_kill(int sock, int32_t signal) {
  struct message m = {0};
  begin(&m, PFW_KILL, 1);
  field(&m, PFW_T_SIGNAL, &signal, sizeof signal);
  if (!m.too_big) send_with_fds(sock, &m, NULL, 0);
  free(m.bytes);
}

/* Replies until the exit event; signals passed on meanwhile. */
static int await_exit(int sock, int signals, int detach) {
  struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = signals, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      complain("poll: %s", strerror(errno));
      return status_failure;
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(signals, &si, sizeof si) == (ssize_t)sizeof si) send_kill(sock, (int32_t)si.ssi_signo);
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    struct reply r;
    int got = receive(sock, &r);
    if (got <= 0) {
      complain("the server %s before the program's exit", got == 0 ? "closed the connection" : strerror(errno));
      return status_failure;
    }
    switch (r.kind) {
      case PFW_WELCOME: break;
      case PFW_FAILED: return report_failure(&r);
      case PFW_SPAWNED:
        if (detach) {
          dprintf(1, "%d\n", find_i32(&r, PFW_T_PID, -1));
          return 0;
        }
        break;
      case PFW_EXITED: {
        const char* v;
        int32_t status = find_i32(&r, PFW_T_STATUS, -1);
        if (status < 0) break;
        return find(&r, PFW_T_EXITED, &v) == 0 ? status & 0xff : 128 + status;
      }
      default: break;
    }
  }
}

static void usage(FILE* to) {
  fprintf(to,
          "usage: %s [--socket PATH] [--warm] [--cwd DIR] [--detach] [--] PROGRAM [ARG]...\n"
          "Starts PROGRAM through `procforge serve` with this process's environment, cwd and stdio,\n"
          "and exits with its status (128+N when signal N ended it; 127 not found, 126 not\n"
          "executable, 125 another failure).\n"
          "  -s, --socket PATH  the server's socket (default $XDG_RUNTIME_DIR/procforge.sock,\n"
          "                     or /run/procforge/procforge.sock for root)\n"
          "  -w, --warm         start from a warm template when one can stand in\n"
          "  -C, --cwd DIR      run in DIR\n"
          "  -d, --detach       print the pid and exit; the program outlives the connection\n"
          "  -h, --help         this text\n"
          "      --version      the version\n",
          program_name);
}

static int parse(int argc, char** argv, struct options* o) {
  static const struct option longs[] = {{"socket", required_argument, NULL, 's'},
                                        {"warm", no_argument, NULL, 'w'},
                                        {"cwd", required_argument, NULL, 'C'},
                                        {"detach", no_argument, NULL, 'd'},
                                        {"help", no_argument, NULL, 'h'},
                                        {"version", no_argument, NULL, 'V'},
                                        {NULL, 0, NULL, 0}};
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "+:s:wC:dh", longs, NULL);
    if (c == -1) break;
    switch (c) {
      case 's': o->socket_path = optarg; break;
      case 'w': o->warm = 1; break;
      case 'C': o->cwd = optarg; break;
      case 'd': o->detach = 1; break;
      case 'h': usage(stdout); exit(0);
      case 'V': printf("procforge-spawn %s\n", PROCFORGE_VERSION); exit(0);
      case ':': {
        const char* given = optind - 1 < argc ? argv[optind - 1] : NULL;
        if (given && strncmp(given, "--", 2) == 0) complain("option %s needs a value (--help for the usage)", given);
        else complain("option -%c needs a value (--help for the usage)", optopt);
        return -1;
      }
      default:
        if (optopt) complain("unknown option -%c (--help for the usage)", optopt);
        else complain("unknown option %s (--help for the usage)", argv[optind - 1]);
        return -1;
    }
  }
  if (optind >= argc) {
    complain("no program given (--help for the usage)");
    return -1;
  }
  if (o->cwd && !o->cwd[0]) {
    complain("--cwd: an empty directory name");
    return -1;
  }
  o->argv = argv + optind;
  return 0;
}

int main(int argc, char** argv) {
  struct options o = {0};
  if (parse(argc, argv, &o) != 0) return 2;
  char path[sizeof(((struct sockaddr_un*)0)->sun_path) + 1];
  if (!o.socket_path) {
    if (default_socket(path, sizeof path) != 0) return status_failure;
    o.socket_path = path;
  }

  /* Signals meant for the program arrive here (it is the server's child,
   * in another process group): take them as messages to pass on. */
  sigset_t forwarded;
  sigemptyset(&forwarded);
  const int passed_on[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof passed_on / sizeof passed_on[0]; ++i) sigaddset(&forwarded, passed_on[i]);
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  int signals = signalfd(-1, &forwarded, SFD_CLOEXEC);
  if (signals < 0) {
    complain("signalfd: %s", strerror(errno));
    return status_failure;
  }

  int sock = connect_to(o.socket_path);
  if (sock < 0) return status_failure;
  if (send_request(sock, &o) != 0) return status_failure;
  return await_exit(sock, signals, o.detach);
}
