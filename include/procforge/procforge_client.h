/* procforge_client.h: the spawn server's client as a C API, for C and for
 * other languages through their foreign-function interfaces (Python's
 * ctypes: examples/server_client.py). Link with -lprocforge. Each call is the
 * C++ client (procforge/client.hpp) underneath: the program's environment,
 * cwd and stdio are the caller's unless given, and the process is the
 * server's child, waited for through the connection.
 *
 * Every call that can fail returns -1 (or NULL) and writes a one-line
 * message into err (errlen bytes, NUL-terminated) when err is not NULL. */
#ifndef PROCFORGE_CLIENT_H
#define PROCFORGE_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct procforge_client procforge_client;

/* Connects to the server at socket_path (NULL: the default socket). */
__attribute__((visibility("default"))) procforge_client* procforge_client_connect(const char* socket_path, char* err,
                                                                                  size_t errlen);

/* Closes the connection; processes not yet waited for are killed. */
__attribute__((visibility("default"))) void procforge_client_close(procforge_client* c);

/* Starts argv[0] (searched in PATH when it has no '/') with argv (NULL-
 * terminated), envp (NULL: the caller's environment), cwd (NULL: the
 * caller's), warm (non-zero: from a warm template when one can stand in).
 * Returns the pid; *pidfd (when not NULL) gets a pidfd of it, which stays
 * owned by the client. On failure: -1, and *status (when not NULL) the
 * shell status a local spawn would give (125, 126, 127). */
__attribute__((visibility("default"))) pid_t procforge_client_spawn(procforge_client* c, const char* const* argv,
                                                                    const char* const* envp, const char* cwd, int warm,
                                                                    int* pidfd, int* status, char* err, size_t errlen);

/* Waits for pid (from procforge_client_spawn) and returns its shell status:
 * the exit status, or 128+N when signal N ended it; -1 on failure. */
__attribute__((visibility("default"))) int procforge_client_wait(procforge_client* c, pid_t pid, char* err,
                                                                 size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
