/* procforge_audit.so: the LD_AUDIT module of `procforge profile`.
 *
 * ld.so calls it (rtld-audit(7), glibc elf/rtld.c and elf/dl-load.c) at
 *   la_objopen             after each object is mapped (main program and ld.so first),
 *   la_activity(ADD)       just before the dependencies are mapped,
 *   la_activity(CONSISTENT) after every object is relocated,
 *   la_preinit             in __libc_start_main, right before main.
 * Each hook writes one record, stamped with CLOCK_MONOTONIC, to the pipe whose
 * number the tracer puts in PROCFORGE_AUDIT_FD. The module links no libc:
 * a libc in the audit namespace costs ~150 us and ~30 faults more per start
 * (reference/startup-and-ldso.md 2.2), so it calls the kernel directly and
 * reads its environment from /proc/self/environ. It closes the pipe at
 * la_preinit and never writes again, so a descriptor the program later reuses
 * is never touched. x86_64 only. */
#define _GNU_SOURCE 1 /* Lmid_t, LAV_CURRENT, LA_ACT_* */
#include <link.h>
#include <stdint.h>

#include "records.h"

static int out_fd = -1;
static uintptr_t base_head; /* the main program's link_map: la_activity for LM_ID_BASE names it */

static long sys3(long n, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

static int64_t now_ns(void) {
  struct {
    long sec, nsec;
  } ts = {0, 0};
  sys3(228 /* clock_gettime */, 1 /* CLOCK_MONOTONIC */, (long)&ts, 0);
  return (int64_t)ts.sec * 1000000000 + ts.nsec;
}

/* PROCFORGE_AUDIT_FD=<fd>:<inode> from /proc/self/environ, read in chunks.
 * The descriptor is used only when it still is the tracer's pipe (same inode):
 * children of the program inherit the variable, not the pipe. */
static int find_fd(void) {
  static const char key[] = "PROCFORGE_AUDIT_FD=";
  char buf[512];
  long fd = sys3(2 /* open */, (long)"/proc/self/environ", 0 /* O_RDONLY */, 0);
  if (fd < 0) return -1;
  int pos = 0, matching = 1, field = -1; /* field: 0 = fd digits, 1 = inode digits */
  long value[2] = {0, 0};
  for (;;) {
    long n = sys3(0 /* read */, fd, (long)buf, sizeof buf);
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) {
      char c = buf[i];
      if (field >= 0) {
        if (c == 0) goto done;
        if (c == ':' && field == 0) {
          field = 1;
          continue;
        }
        if (c < '0' || c > '9' || value[field] > 100000000000000L) {
          field = -1;
          goto done;
        }
        value[field] = value[field] * 10 + (c - '0');
      } else if (c == 0) {
        pos = 0, matching = 1;
      } else if (matching) {
        if (c != key[pos]) matching = 0;
        else if (++pos == (int)sizeof key - 1) field = 0;
      }
    }
  }
done:
  sys3(3 /* close */, fd, 0, 0);
  if (field != 1) return -1;
  unsigned long st[18]; /* struct stat on x86_64: 144 bytes, st_ino at offset 8 */
  if (sys3(5 /* fstat */, value[0], (long)st, 0) != 0 || (long)st[1] != value[1]) return -1;
  return (int)value[0];
}

static void emit(uint32_t kind, const char* name, uint64_t addr, int64_t lmid) {
  if (out_fd < 0) return;
  struct pf_audit_record r;
  r.kind = kind;
  r.ns = now_ns();
  r.addr = addr;
  r.lmid = lmid;
  uint32_t len = 0;
  if (name)
    for (; name[len] && len < PF_AUDIT_NAME_MAX; ++len) r.name[len] = name[len];
  r.name_len = len;
  /* One write below PIPE_BUF: atomic, never interleaved. */
  sys3(1 /* write */, out_fd, (long)&r, (long)(PF_AUDIT_HEADER_BYTES + len));
}

unsigned int la_version(unsigned int version) {
  out_fd = find_fd();
  return version < LAV_CURRENT ? version : LAV_CURRENT;
}

unsigned int la_objopen(struct link_map* map, Lmid_t lmid, uintptr_t* cookie) {
  (void)cookie;
  if (lmid != LM_ID_BASE) return 0;
  if (!base_head) base_head = (uintptr_t)map;
  emit(PF_AUDIT_OBJOPEN, map->l_name, map->l_addr, lmid);
  return 0; /* no symbol binding callbacks: they cost a call per binding */
}

void la_activity(uintptr_t* cookie, unsigned int flag) {
  if (*cookie != base_head) return;
  uint32_t kind = flag == LA_ACT_ADD          ? PF_AUDIT_ACT_ADD
                  : flag == LA_ACT_CONSISTENT ? PF_AUDIT_ACT_CONSISTENT
                                              : PF_AUDIT_ACT_DELETE;
  emit(kind, 0, 0, 0);
}

void la_preinit(uintptr_t* cookie) {
  (void)cookie;
  emit(PF_AUDIT_PREINIT, 0, 0, 0);
  if (out_fd >= 0) sys3(3 /* close */, out_fd, 0, 0);
  out_fd = -1;
}
