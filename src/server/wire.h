/* The spawn server's wire constants (docs/server.md): the header's magic and
 * version, the message kinds and the field tags. C, so that the C++ protocol
 * code (protocol.hpp) and the libc-only client procforge-spawn
 * (src/spawn_client/) read one definition.
 *
 * A datagram: header { u32 magic, u16 version, u16 kind, u64 id }, then
 * fields { u16 tag, u32 length, value }, host byte order. */
#ifndef PROCFORGE_SERVER_WIRE_H
#define PROCFORGE_SERVER_WIRE_H

#define PFW_MAGIC 0x31736670u /* "pfs1" */
#define PFW_VERSION 1
#define PFW_HEADER_SIZE 16
#define PFW_FIELD_HEAD 6
/* A request's argv + envp + fields; one datagram, so below the socket's
 * default send buffer (net.core.wmem_default, 208 KiB). */
#define PFW_MAX_MESSAGE (192 << 10)
#define PFW_MAX_FDS 32 /* descriptors one request may pass */

enum pfw_kind { PFW_HELLO = 1, PFW_WELCOME, PFW_SPAWN, PFW_SPAWNED, PFW_EXITED, PFW_FAILED, PFW_KILL };

enum pfw_tag {
  /* hello / welcome */
  PFW_T_MIN_VERSION = 1,
  PFW_T_MAX_VERSION,
  PFW_T_VERSION,
  PFW_T_SERVER_PID,
  PFW_T_BACKEND,
  /* request */
  PFW_T_PATH = 10,
  PFW_T_NO_SEARCH,
  PFW_T_ARG,
  PFW_T_ENV,
  PFW_T_CWD,
  PFW_T_FD, /* { i32 target, i32 index (-1: /dev/null) } */
  PFW_T_UMASK,
  PFW_T_NICE,
  PFW_T_RLIMIT,
  PFW_T_SIGNAL_MASK,
  PFW_T_KEEP_DISPOSITIONS,
  PFW_T_IGNORE_SIGNAL,
  PFW_T_SETSID,
  PFW_T_PROCESS_GROUP,
  PFW_T_NO_NEW_PRIVS,
  PFW_T_UID,
  PFW_T_GID,
  PFW_T_GROUPS,
  PFW_T_WARM,
  PFW_T_DETACH,
  /* replies */
  PFW_T_PID = 40,
  PFW_T_FALLBACK,
  PFW_T_EXITED,
  PFW_T_STATUS,
  PFW_T_CORE,
  PFW_T_USAGE,
  PFW_T_ERRNO,
  PFW_T_MESSAGE,
  PFW_T_SIGNAL
};

#endif
