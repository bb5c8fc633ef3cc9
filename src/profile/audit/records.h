/* The record procforge_audit.so writes to the tracer's pipe, one per audit
 * hook, and audit_records.cpp reads back: the one definition of the wire
 * format, in C so the libc-free module and the C++ reader share it.
 *
 * On the wire a record is the fixed header (PF_AUDIT_HEADER_BYTES) followed by
 * name_len bytes of name, no terminator; the host's byte order (both ends run
 * on the same machine). One record is one write() below PIPE_BUF, so records
 * never interleave. */
#ifndef PROCFORGE_PROFILE_AUDIT_RECORDS_H
#define PROCFORGE_PROFILE_AUDIT_RECORDS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* Which hook wrote the record (rtld-audit(7)). */
enum pf_audit_kind {
  PF_AUDIT_OBJOPEN = 1,        /* la_objopen: an object was mapped; name = l_name, addr = l_addr */
  PF_AUDIT_ACT_ADD = 2,        /* la_activity(LA_ACT_ADD): dependencies are about to be mapped */
  PF_AUDIT_ACT_CONSISTENT = 3, /* la_activity(LA_ACT_CONSISTENT): every object is relocated */
  PF_AUDIT_ACT_DELETE = 4,     /* la_activity(LA_ACT_DELETE) */
  PF_AUDIT_PREINIT = 5         /* la_preinit: right before main */
};

enum { PF_AUDIT_NAME_MAX = 256 }; /* longer names are cut here */

struct pf_audit_record {
  uint32_t kind;     /* enum pf_audit_kind */
  uint32_t name_len; /* bytes of name that follow the header, <= PF_AUDIT_NAME_MAX */
  int64_t ns;        /* CLOCK_MONOTONIC when the hook ran */
  uint64_t addr;     /* l_addr for PF_AUDIT_OBJOPEN, else 0 */
  int64_t lmid;      /* the link-map namespace (always LM_ID_BASE: others are not reported) */
  char name[PF_AUDIT_NAME_MAX];
};

#define PF_AUDIT_HEADER_BYTES offsetof(struct pf_audit_record, name)

/* The layout the reader decodes field by field: fixed, whatever the compiler. */
static_assert(offsetof(struct pf_audit_record, kind) == 0, "audit record layout");
static_assert(offsetof(struct pf_audit_record, name_len) == 4, "audit record layout");
static_assert(offsetof(struct pf_audit_record, ns) == 8, "audit record layout");
static_assert(offsetof(struct pf_audit_record, addr) == 16, "audit record layout");
static_assert(offsetof(struct pf_audit_record, lmid) == 24, "audit record layout");
static_assert(offsetof(struct pf_audit_record, name) == 32, "audit record layout");

#endif
